#include "qsim/components/http_service.h"

#include <httplib.h>

#include <atomic>
#include <csignal>
#include <iostream>

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
    r.body = req.body;
    r.path = req.path;
    auto out = h(r);
    res.status = out.status;
    res.set_content(out.body, out.content_type.c_str());
  };
}

}  // namespace

HttpService::HttpService() : impl_(std::make_unique<Impl>()) {
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

bool HttpService::listen(const std::string& host, int port) { return impl_->server.listen(host.c_str(), port); }
void HttpService::stop() { impl_->server.stop(); }

namespace {
std::atomic<HttpService*> g_serving{nullptr};
extern "C" void stop_serving(int) {
  if (auto* s = g_serving.load()) s->stop();
}
}  // namespace

int serve_until_signal(HttpService& http, int port, const std::string& program) {
  g_serving = &http;
  std::signal(SIGTERM, stop_serving);
  std::signal(SIGINT, stop_serving);
  bool ok = http.listen("127.0.0.1", port);
  g_serving = nullptr;
  if (!ok) {
    std::cerr << program << ": cannot listen on 127.0.0.1:" << port << "\n";
    return 3;
  }
  return 0;
}

}  // namespace qsim::components
