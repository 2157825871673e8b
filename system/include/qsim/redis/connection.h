// One RAII connection to Redis over hiredis 0.14.
//
// - Commands are sent as argv (binary-safe); there is no format-string API.
// - After any transport error (timeout, I/O error, protocol error) the hiredis context is
//   freed and never used again; the next command reconnects, but not before the reconnect
//   backoff has elapsed (capped exponential, reset on success). Until then commands fail fast
//   with Status::connection_lost, so a caller never blocks on a dead server.
// - Scripts (see Script) are called by SHA and loaded on NOSCRIPT, once per connection.
// - With Sentinel discovery (Endpoint::sentinels), every connect first asks a Sentinel for the
//   primary; a connection to a primary that died fails, and the reconnect finds its successor.
//
// Thread-safety: a Connection is used by one thread at a time (like a hiredis context).
// Give each thread its own.
#pragma once

#include "qsim/clock.h"
#include "qsim/redis/reply.h"

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct redisContext;

namespace qsim::redis {

struct Endpoint {
  Endpoint() = default;
  Endpoint(std::string host_, int port_, std::string unix_socket_ = {})
      : host(std::move(host_)), port(port_), unix_socket(std::move(unix_socket_)) {}

  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  // when set, host and port are ignored
  // Sentinel discovery: when set, host and port are ignored; each (re)connect asks these
  // Sentinels, in order, where the primary named `master` is, and connects there only if that
  // server says it is a primary (ROLE), so that after a failover the next connect finds the
  // promoted replica.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master;
  // A Redis ACL user: every (re)connect authenticates as it (AUTH user password) before anything
  // else; with Sentinel discovery, on the data servers (the Sentinels take no credentials).
  std::string user;
  std::string password;  // never part of a URL, never printed (to_string() names the user only)

  // Parses "redis://[user@]host:port", "[user@]host:port", "unix:///path/to/socket" or
  // "redis+sentinel://[user@]host:port[,host:port...]/master-name". A password in the URL is
  // refused: a URL travels in argv, where every process can read it.
  static Endpoint parse(std::string_view url);
  // parse(), then, when the URL names a user, its password: the environment variable
  // QSIM_REDIS_SECRET, or the first line of the file named by QSIM_REDIS_SECRET_FILE. Throws
  // std::runtime_error when a user is named and neither is set.
  static Endpoint from_url(std::string_view url);
  std::string to_string() const;
};

// Redis denied a command (NOPERM: the user may not run it or touch its keys) or refused the
// credentials (WRONGPASS, or NOAUTH: no user given where the default user has a password). A deployment
// error that no retry mends. The result's error says which user and what Redis said.
bool is_denied(std::string_view redis_error);
// What this process does on such an error, besides returning it: nothing (the default, for a
// library embedded elsewhere), or what a component's main installs (log and exit 77, EX_NOPERM:
// see components/exit_on_denied). Set once at start-up, before any connection is made.
using DeniedHandler = void (*)(const std::string& message);
void set_denied_handler(DeniedHandler handler);
// The exit status of a component that stops on a denial (sysexits' EX_NOPERM).
inline constexpr int kDeniedExitCode = 77;

struct ConnectionOptions {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds reconnect_backoff_initial{50};
  std::chrono::milliseconds reconnect_backoff_max{2000};
  // Opt-in low-latency mode: after sending a (non-blocking) command, poll the socket for up to
  // this long before blocking in read(). On a VM, being descheduled and woken costs tens of
  // microseconds per round trip; spinning avoids it at the price of a busy CPU. Off by default:
  // on a small machine spinning clients take CPU from Redis itself.
  std::chrono::microseconds spin_before_block{0};
};

// A Lua script with its SHA1 computed up front. Immutable; share freely.
class Script {
public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha() const { return sha_; }

private:
  std::string source_;
  std::string sha_;
};

class Connection {
public:
  explicit Connection(Endpoint endpoint, ConnectionOptions options = {}, Clock& clock = SystemClock::instance());
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;

  Result command(const std::vector<std::string>& argv);
  Result command(std::initializer_list<std::string_view> argv);
  // For blocking commands (BLPOP ...): the read timeout is raised to `timeout` for this call.
  Result command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

  // Sends all commands in one write and reads every reply. Stops at the first transport
  // error: the remaining results carry that error too.
  std::vector<Result> pipeline(const std::vector<std::vector<std::string>>& commands);

  // EVALSHA, with SCRIPT LOAD and one retry on NOSCRIPT.
  Result eval(const Script& script, const std::vector<std::string>& keys, const std::vector<std::string>& args);

  bool connected() const { return ctx_ != nullptr; }
  const Endpoint& endpoint() const { return endpoint_; }
  // How many times a context was (re)made; for tests and health reporting.
  std::uint64_t connects() const { return connects_; }

private:
  Result ensure_connected();
  // Sentinel discovery: where the primary is now, or the reason no Sentinel said.
  Result locate_primary(std::string& host, int& port);
  Result roundtrip(const std::vector<std::string>& argv, bool may_spin = true);
  // A denied command's error names the user and the command, and goes to the denied handler;
  // through a Sentinel, a READONLY answer drops the connection (the primary was demoted).
  Result checked(Result r, const std::string& command, bool* demoted = nullptr);
  Result transport_failure();
  void drop();

  Endpoint endpoint_;
  ConnectionOptions options_;
  Clock* clock_;
  redisContext* ctx_ = nullptr;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_connect_{};
  std::uint64_t connects_ = 0;
  bool reported_down_ = false;  // the outage is logged once
};

}  // namespace qsim::redis
