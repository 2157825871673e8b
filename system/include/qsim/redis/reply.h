// Owned Redis values and the result of one command.
//
// Replies are copied out of hiredis at the boundary (no redisReply* ever leaves
// connection.cpp), so a Reply is an ordinary value: copyable, movable, thread-agnostic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::redis {

struct Reply {
  enum class Type { nil, status, error, integer, string, array };
  Type type = Type::nil;
  std::string str;             // status, error and string replies
  long long integer = 0;       // integer replies
  std::vector<Reply> elements; // array replies

  bool is_nil() const { return type == Type::nil; }
  bool is_string() const { return type == Type::string || type == Type::status; }
  bool is_array() const { return type == Type::array; }
  // Integer replies, or strings holding an integer (Lua often returns numbers as strings).
  std::optional<long long> as_integer() const;
};

// What happened to a command. The caller reacts differently to each, so they are distinct.
enum class Status {
  ok,               // a reply arrived (which may itself be nil)
  timeout,          // no reply within the command timeout; the connection was dropped
  connection_lost,  // could not connect, or the connection broke; it was dropped
  server_error,     // Redis answered with an error reply (text in Result::error)
  protocol_error,   // the reply could not be parsed; the connection was dropped
};

std::string_view to_string(Status s);

struct [[nodiscard]] Result {
  Status status = Status::ok;
  Reply reply;
  std::string error;  // server error text or connection error description

  bool ok() const { return status == Status::ok; }
  explicit operator bool() const { return ok(); }
};

}  // namespace qsim::redis
