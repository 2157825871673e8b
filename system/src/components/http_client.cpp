#include "qsim/components/http_client.h"

#include <httplib.h>

#include <csignal>

namespace qsim::components {

struct HttpClient::Impl {
  Impl(const std::string& host, int port) : client(host, port) {}
  httplib::Client client;
};

void ignore_sigpipe() {
  // A peer that vanishes mid-request (killed, restarting) must cost us an error, not the
  // process: writes to its socket would otherwise raise SIGPIPE.
  static const bool once = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)once;
}

HttpClient::HttpClient(std::string host, int port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(host, port)) {
  ignore_sigpipe();
  impl_->client.set_connection_timeout(timeout);
  impl_->client.set_read_timeout(timeout);
  impl_->client.set_write_timeout(timeout);
  // httplib writes a request's headers and its body in two writes: with Nagle's algorithm the
  // body waits for the peer's (delayed) ACK of the headers, up to 40 ms on Linux.
  impl_->client.set_tcp_nodelay(true);
  // One connection for every request, not one each: opening and closing a loopback TCP
  // connection costs more than the request itself. A connection the server has closed since
  // (its idle timeout, a restart) is noticed before the next request and made anew. (The full
  // chaos soak once stalled with this on: the fault proxy's legs had Nagle's algorithm, so on a
  // kept-alive connection a request's body waited 40 ms for a delayed ACK; fault_proxy.cpp.)
  impl_->client.set_keep_alive(true);
}

HttpClient::~HttpClient() = default;

namespace {
HttpResult convert(const httplib::Result& r) {
  if (!r) return {0, {}, httplib::to_string(r.error())};
  return {r->status, r->body, {}};
}
}  // namespace

HttpResult HttpClient::post(const std::string& path, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers) {
  httplib::Headers h(headers.begin(), headers.end());
  return convert(impl_->client.Post(path.c_str(), h, body, "application/json"));
}

HttpResult HttpClient::get(const std::string& path) { return convert(impl_->client.Get(path.c_str())); }

}  // namespace qsim::components
