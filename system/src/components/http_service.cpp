#include "qsim/components/http_service.h"
#include "qsim/components/http_client.h"

#include <httplib.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <thread>

namespace qsim::components {

struct HttpService::Impl {
  httplib::Server server;
  std::function<HttpResponse(std::size_t)> too_large;
};

namespace {

httplib::Server::Handler adapt(HttpService::Handler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    HttpRequest r;
    r.header = [&req](std::string_view name) -> std::optional<std::string_view> {
      auto it = req.headers.find(std::string(name));
      if (it == req.headers.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    r.param = [&req](std::string_view name) -> std::optional<std::string_view> {
      auto it = req.params.find(std::string(name));
      if (it == req.params.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    r.body = req.body;
    r.path = req.path;
    auto out = h(r);
    res.status = out.status;
    res.set_content(out.body, out.content_type.c_str());
  };
}

}  // namespace

HttpService::HttpService() : impl_(std::make_unique<Impl>()) {
  ignore_sigpipe();
  // Handlers may block for a while (the world sleeps its latency in one): more threads than
  // httplib's default of 8, so that ten workers' slow calls do not queue behind each other.
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  impl_->server.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.status != 413 || !impl_->too_large) return httplib::Server::HandlerResponse::Unhandled;
        auto out = impl_->too_large(req.body.size());
        res.set_content(out.body, out.content_type.c_str());
        return httplib::Server::HandlerResponse::Handled;
      }));
}

HttpService::~HttpService() = default;

void HttpService::post(const std::string& path, Handler h) { impl_->server.Post(path, adapt(std::move(h))); }
void HttpService::get(const std::string& path, Handler h) { impl_->server.Get(path, adapt(std::move(h))); }

void HttpService::on_too_large(std::size_t hard_cap, std::function<HttpResponse(std::size_t)> h) {
  impl_->server.set_payload_max_length(hard_cap);
  impl_->too_large = std::move(h);
}

bool HttpService::listen(const std::string& host, int port) {
  // Debian's httplib is a compiled library that listens with a backlog of 5: a burst of
  // webhooks overflows it, and each dropped SYN comes back a whole second later (TCP's
  // retransmit timeout), which a run would report as latency. Capture the socket as it is
  // made, then listen again on it with a real backlog (Linux updates it in place).
  int fd = -1;
  impl_->server.set_socket_options([&fd](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    // Accepted sockets inherit it: an answer's headers and body are two writes, and with
    // Nagle's algorithm the second waits for the client's delayed ACK.
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    fd = sock;
  });
  if (!impl_->server.bind_to_port(host.c_str(), port)) return false;
  if (fd >= 0) ::listen(fd, 1024);
  return impl_->server.listen_after_bind();
}

bool HttpService::wait_until_listening(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!impl_->server.is_running()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}
void HttpService::stop() { impl_->server.stop(); }

namespace {
std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop_flag(int) { g_stop_requested.store(true); }
}  // namespace

int serve_until_signal(HttpService& http, int port, const std::string& program) {
  static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");
  g_stop_requested = false;
  std::signal(SIGTERM, request_stop_flag);
  std::signal(SIGINT, request_stop_flag);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load() && !g_stop_requested.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!done.load()) {
      http.wait_until_listening(std::chrono::seconds(5));  // a stop before listen() began would be lost
      http.stop();
    }
  });
  bool ok = http.listen("127.0.0.1", port);
  done = true;
  watcher.join();
  if (!ok && !g_stop_requested.load()) {
    std::cerr << program << ": cannot listen on 127.0.0.1:" << port << "\n";
    return 3;
  }
  return 0;
}

}  // namespace qsim::components
