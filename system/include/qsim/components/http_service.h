// A small HTTP/1.1 server for the components (Boost.Beast on Asio underneath, not exposed):
// routes by method and exact path, a hook for bodies over the hard size cap, listen on a
// loopback port, stop from any thread.
//
// One I/O thread reads and writes every connection; handlers run on a thread pool, so a slow
// handler (a store call, a call of another service) never holds up reading other requests. A
// deferred handler runs on the I/O thread itself and answers later (the world waits out its
// latency on a timer), so no other thread wakes for its request. A connection that sends
// nothing, or its headers a byte at a time, costs a few kilobytes and no thread. Each request's
// headers must arrive within `header_timeout` (counted from the connection's opening, or from the
// end of the previous answer on a kept-alive one) and its body within `body_timeout`, or the
// connection is closed. Headers over `header_limit` are answered 431, a malformed request 400,
// and both close the connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qsim::components {

struct HttpRequest {
  std::function<std::optional<std::string_view>(std::string_view)> header;
  std::function<std::optional<std::string_view>(std::string_view)> param;  // query string
  std::string_view body;
  std::string_view path;
};

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status_, std::string body_, std::string content_type_ = "application/json")
      : status(status_), body(std::move(body_)), content_type(std::move(content_type_)) {}

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // more of them: Location, Set-Cookie, ...
};

struct HttpLimits {
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};  // a client that does not read its answer
  std::size_t header_limit = 16 * 1024;             // request line and headers, bytes
  std::size_t max_connections = 10'000;             // beyond it a new connection is closed at once
  int handler_threads = 64;
};

class HttpService {
public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  using Respond = std::function<void(HttpResponse)>;
  // Answers later, without a thread of its own: runs on the I/O thread, so it must not block;
  // it calls `respond` once, from any thread (from a timer set with after(), say), and a stop
  // waits for that. A `respond` dropped uncalled answers 500. The request (its body, headers
  // and query) is valid only while the handler runs.
  using DeferredHandler = std::function<void(const HttpRequest&, Respond)>;
  HttpService();
  ~HttpService();
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  void post(const std::string& path, Handler h);
  void get(const std::string& path, Handler h);
  void post_deferred(const std::string& path, DeferredHandler h);
  // Runs `f` on the I/O thread once `delay` has passed (a deferred handler's wait). A stop waits
  // for it: the server stops once every request in flight has been answered. An exception from
  // `f` is dropped.
  void after(std::chrono::microseconds delay, std::function<void()> f);
  // Bodies above `hard_cap` are refused by the server itself; `h` answers (and counts) them.
  void on_too_large(std::size_t hard_cap, std::function<HttpResponse(std::size_t bytes)> h);
  void set_limits(const HttpLimits& limits);  // before listen()
  std::size_t open_connections() const;

  bool listen(const std::string& host, int port);  // blocks until stop(); false if it cannot bind
  // Waits (up to `limit`) until listen() is accepting; false if it did not get there.
  bool wait_until_listening(std::chrono::milliseconds limit);
  void stop();  // from any ordinary thread; not from a signal handler (it closes sockets)

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// An application/x-www-form-urlencoded body (or a query string) as name -> value, decoded; a
// malformed escape is kept as it is.
std::multimap<std::string, std::string, std::less<>> parse_form(std::string_view body);

// For a component's main(): serves 127.0.0.1:port until SIGTERM/SIGINT. The signal handler
// only sets a flag; a watcher thread stops the server. Returns the exit code: 0 after a stop,
// 3 when the port cannot be bound (said on stderr).
int serve_until_signal(HttpService& http, int port, const std::string& program);

}  // namespace qsim::components
