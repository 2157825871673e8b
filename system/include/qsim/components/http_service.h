// A small HTTP server for the components (cpp-httplib underneath, not exposed): routes by
// method and path, a hook for bodies over the hard size cap, listen on a loopback port, stop
// from any thread. Handlers run on the server's thread pool.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace qsim::components {

struct HttpRequest {
  std::function<std::optional<std::string_view>(std::string_view)> header;
  std::function<std::optional<std::string_view>(std::string_view)> param;  // query string
  std::string_view body;
  std::string_view path;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class HttpService {
public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  HttpService();
  ~HttpService();
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  void post(const std::string& path, Handler h);
  void get(const std::string& path, Handler h);
  // Bodies above `hard_cap` are refused by the server itself; `h` answers (and counts) them.
  void on_too_large(std::size_t hard_cap, std::function<HttpResponse(std::size_t bytes)> h);

  bool listen(const std::string& host, int port);  // blocks until stop(); false if it cannot bind
  // Waits (up to `limit`) until listen() is accepting; false if it did not get there.
  bool wait_until_listening(std::chrono::milliseconds limit);
  void stop();  // from any ordinary thread; not from a signal handler (it closes sockets)

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// For a component's main(): serves 127.0.0.1:port until SIGTERM/SIGINT. The signal handler
// only sets a flag; a watcher thread stops the server. Returns the exit code: 0 after a stop,
// 3 when the port cannot be bound (said on stderr).
int serve_until_signal(HttpService& http, int port, const std::string& program);

}  // namespace qsim::components
