#include "qsim/components/http_service.h"
#include "qsim/components/http_client.h"

#include <utility>  // Boost 1.74's Asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <optional>
#include <sys/resource.h>
#include <thread>
#include <unordered_map>

namespace qsim::components {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// The body grows with the bytes that arrive (a flat buffer), never with the length a client
// announces: a string body would reserve a Content-Length of 16 MiB before its first byte.
using Body = http::basic_dynamic_body<beast::flat_buffer>;
using Request = http::request<Body>;
using Response = http::response<http::string_body>;

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

std::string result_json(const char* result, const std::string& detail) {
  return nlohmann::json{{"result", result}, {"detail", detail}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding of one query-string part; a malformed escape is
// kept as it is.
std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::multimap<std::string, std::string, std::less<>> parse_query(std::string_view q) {
  std::multimap<std::string, std::string, std::less<>> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    out.emplace(url_decode(part.substr(0, eq)), eq == std::string_view::npos ? "" : url_decode(part.substr(eq + 1)));
  }
  return out;
}

// Lets the process hold as many sockets as its hard limit allows: 1,000 idle clients would
// exhaust a soft limit of 1,024 descriptors.
void raise_descriptor_limit() {
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &l);
  }
}

}  // namespace

struct HttpService::Impl {
  struct Session;
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer accept_pause{io};
  std::unique_ptr<asio::thread_pool> pool;
  std::map<std::string, Handler, std::less<>> gets, posts;
  std::map<std::string, DeferredHandler, std::less<>> deferred_posts;
  std::function<HttpResponse(std::size_t)> too_large;
  std::size_t body_limit = 64 * 1024 * 1024;  // the world's /config of a long run is a few MiB
  HttpLimits limits;
  std::atomic<bool> listening{false};
  bool stopping = false;                                           // I/O thread only
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // I/O thread only
  std::atomic<std::size_t> open{0};

  void accept();
  void close_all();
  Response respond(const Request& req);
  // A deferred route's handler, on the I/O thread; false when `req` is not for one.
  bool respond_later(const Request& req, std::function<void(Response)> send);
};

// One connection: read a request's headers (with their deadline), then its body, hand it to
// the pool, write the answer, and again while the client keeps the connection alive.
struct HttpService::Impl::Session : std::enable_shared_from_this<Session> {
  Session(Impl& owner, tcp::socket s) : impl(owner), stream(std::move(s)) {}

  Impl& impl;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<Body>> parser;
  std::optional<Response> answer;
  bool closed = false;
  bool in_handler = false;  // its request is on the pool: a stop lets the answer go out first

  void start() {
    impl.sessions[this] = weak_from_this();
    impl.open++;
    read_header();
  }

  void close() {
    if (closed) return;
    closed = true;
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    impl.sessions.erase(this);
    impl.open--;
  }

  void read_header() {
    if (impl.stopping) return close();
    parser.emplace();
    parser->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(impl.limits.header_limit, UINT32_MAX)));
    parser->body_limit(impl.body_limit);
    stream.expires_after(impl.limits.header_timeout);
    http::async_read_header(stream, buffer, *parser,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return fail(ec);
    if (beast::iequals(parser->get()[http::field::expect], "100-continue") && !parser->is_done()) {
      static const std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      stream.expires_after(impl.limits.write_timeout);
      return asio::async_write(stream, asio::buffer(go_on), [self = shared_from_this()](beast::error_code e, std::size_t) {
        if (e) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    if (parser->is_done()) return dispatch();
    stream.expires_after(impl.limits.body_timeout);
    http::async_read(stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail(ec);
      self->dispatch();
    });
  }

  void dispatch() {
    stream.expires_never();
    in_handler = true;
    auto send = [self = shared_from_this()](Response res) {
      asio::dispatch(self->impl.io, [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
    };
    if (impl.respond_later(parser->get(), send)) return;
    asio::post(*impl.pool, [self = shared_from_this(), req = parser->release()]() mutable {
      Response res;
      try {
        res = self->impl.respond(req);
      } catch (...) {  // out of memory building the answer, say: a bare 500, never the process
        res = Response{http::status::internal_server_error, req.version()};
        res.keep_alive(false);
        res.prepare_payload();
      }
      asio::post(self->impl.io, [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
    });
  }

  void write(Response res, bool refusal = false) {
    in_handler = false;
    if (closed) return;
    answer = std::move(res);
    if (impl.stopping) answer->keep_alive(false);
    stream.expires_after(impl.limits.write_timeout);
    http::async_write(stream, *answer, [self = shared_from_this(), refusal](beast::error_code ec, std::size_t) {
      if (ec || self->impl.stopping) return self->close();
      // The client may have sent more (pipelined, or the rest of an oversized header): linger
      // rather than reset the connection under the answer.
      if (refusal || !self->answer->keep_alive()) return self->linger();
      self->answer.reset();
      self->read_header();
    });
  }

  // After a refusal the client may still be sending (the rest of an oversized header): closing
  // with unread bytes would reset the connection, and the reset can destroy the answer before
  // the client reads it. Stop sending, read and drop what comes for a moment, then close.
  void linger() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(2));
    drain();
  }
  void drain() {
    static std::array<char, 16384> discard;  // one I/O thread: never read into concurrently
    stream.async_read_some(asio::buffer(discard), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  // A request that cannot be read to its end: a client that went away or ran out of time is
  // closed without a word; one that broke the rules is told why, then closed.
  void fail(beast::error_code ec) {
    if (closed) return;
    if (ec == http::error::header_limit)
      return refuse(http::status::request_header_fields_too_large,
                    result_json("headers_too_large",
                                "request line and headers over " + std::to_string(impl.limits.header_limit) + " bytes"));
    if (ec == http::error::body_limit) {
      std::size_t bytes = parser && parser->content_length() ? static_cast<std::size_t>(*parser->content_length())
                                                             : impl.body_limit + 1;
      HttpResponse out{413, R"({"result":"body_too_large"})", "application/json"};
      if (impl.too_large) {
        try {
          out = impl.too_large(bytes);
        } catch (const std::exception&) {  // the hook's own failure must not end the I/O thread
        }
      }
      return refuse(http::status::payload_too_large, std::move(out.body), out.content_type);
    }
    const bool gone = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                      ec == beast::error::timeout || ec == asio::error::operation_aborted ||
                      ec.category() != http::make_error_code(http::error::bad_target).category();
    if (gone) return close();
    refuse(http::status::bad_request, result_json("bad_request", ec.message()));
  }

  void refuse(http::status status, std::string body, const std::string& type = "application/json") {
    Response res{status, 11};
    res.set(http::field::content_type, type);
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    write(std::move(res), true);
  }
};

void HttpService::Impl::accept() {
  acceptor->async_accept([this](beast::error_code ec, tcp::socket s) {
    if (stopping || !acceptor->is_open()) return;
    if (ec) {
      // Out of descriptors, say: wait a little rather than spin on the error.
      accept_pause.expires_after(std::chrono::milliseconds(50));
      return accept_pause.async_wait([this](beast::error_code) {
        if (!stopping) accept();
      });
    }
    if (sessions.size() >= limits.max_connections) {
      beast::error_code ignored;
      s.close(ignored);  // shed: the client may come back when one closes
    } else {
      s.set_option(tcp::no_delay(true), ec);  // headers and body are two writes
      std::make_shared<Session>(*this, std::move(s))->start();
    }
    accept();
  });
}

void HttpService::Impl::close_all() {
  stopping = true;
  beast::error_code ec;
  if (acceptor) acceptor->close(ec);
  accept_pause.cancel();
  std::vector<std::shared_ptr<Session>> live;
  for (auto& [raw, weak] : sessions)
    if (auto s = weak.lock()) live.push_back(std::move(s));
  // A request whose handler runs is answered (listen() writes it after the pool drains), as a
  // webhook whose effect took place must not look refused to its sender.
  for (auto& s : live)
    if (!s->in_handler) s->close();
}

namespace {

Response to_beast(HttpResponse out, unsigned version, bool keep_alive) {
  Response res{static_cast<http::status>(out.status), version};
  res.set(http::field::content_type, out.content_type);
  for (const auto& [name, value] : out.headers) res.insert(name, value);
  res.keep_alive(keep_alive);
  res.body() = std::move(out.body);
  res.prepare_payload();
  return res;
}

std::string_view path_of(const Request& req) {
  const std::string_view target = view(req.target());
  return target.substr(0, target.find('?'));
}

using Params = std::optional<std::multimap<std::string, std::string, std::less<>>>;

// A handler's view of `req`: headers, body, path, and the query string, parsed into `params` on
// the first look. Both must outlive the view.
HttpRequest view_of(const Request& req, Params& params) {
  const std::string_view target = view(req.target());
  const auto q = target.find('?');
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  HttpRequest r;
  r.header = [&req](std::string_view name) -> std::optional<std::string_view> {
    auto f = req.find(beast::string_view(name.data(), name.size()));
    if (f == req.end()) return std::nullopt;
    return view(f->value());
  };
  r.param = [&params, query](std::string_view name) -> std::optional<std::string_view> {
    if (!params) params = parse_query(query);
    auto f = params->find(name);
    if (f == params->end()) return std::nullopt;
    return std::string_view(f->second);
  };
  const auto& data = req.body().data();
  r.body = std::string_view(static_cast<const char*>(data.data()), data.size());
  r.path = target.substr(0, q);
  return r;
}

}  // namespace

namespace {

// A deferred request's answer, sent once. It holds the I/O loop open until it is sent (a stop
// waits for it, whichever thread answers), and a handler that drops it unanswered (or whose
// timer threw) gets its request answered 500 rather than left hanging.
struct DeferredAnswer {
  DeferredAnswer(asio::io_context& io, std::function<void(Response)> send_, unsigned version_, bool keep_alive_)
      : send(std::move(send_)), version(version_), keep_alive(keep_alive_), work(asio::make_work_guard(io)) {}
  ~DeferredAnswer() {
    if (!done.load())
      answer({500, result_json("handler_failed", "the handler never answered"), "application/json"});
  }
  void answer(HttpResponse out) {
    if (done.exchange(true)) return;  // a second answer (a handler's bug) is dropped
    try {
      send(to_beast(std::move(out), version, keep_alive));
    } catch (...) {  // out of memory building the answer: a bare 500
      Response res{http::status::internal_server_error, version};
      res.keep_alive(false);
      res.prepare_payload();
      send(std::move(res));
    }
  }
  std::function<void(Response)> send;
  unsigned version;
  bool keep_alive;
  std::atomic<bool> done{false};
  asio::executor_work_guard<asio::io_context::executor_type> work;
};

}  // namespace

bool HttpService::Impl::respond_later(const Request& req, std::function<void(Response)> send) {
  if (req.method() != http::verb::post || deferred_posts.empty()) return false;
  auto it = deferred_posts.find(path_of(req));
  if (it == deferred_posts.end()) return false;
  Params params;
  const HttpRequest r = view_of(req, params);
  auto pending = std::make_shared<DeferredAnswer>(io, std::move(send), req.version(), req.keep_alive());
  Respond respond = [pending](HttpResponse out) { pending->answer(std::move(out)); };
  try {
    it->second(r, respond);
  } catch (const std::exception& e) {
    respond({500, result_json("handler_failed", e.what()), "application/json"});
  } catch (...) {
    respond({500, result_json("handler_failed", "an exception that is not a std::exception"), "application/json"});
  }
  return true;
}

Response HttpService::Impl::respond(const Request& req) {
  const std::string_view path = path_of(req);
  auto json_answer = [&req](http::status status, std::string body) {
    Response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  const auto* table = req.method() == http::verb::get ? &gets : req.method() == http::verb::post ? &posts : nullptr;
  auto it = table ? table->find(path) : gets.end();
  if (!table || it == table->end()) {
    const bool elsewhere = gets.count(path) || posts.count(path) || deferred_posts.count(path);
    return elsewhere ? json_answer(http::status::method_not_allowed, R"({"result":"method_not_allowed"})")
                     : json_answer(http::status::not_found, R"({"result":"not_found"})");
  }
  Params params;
  const HttpRequest r = view_of(req, params);
  HttpResponse out;
  try {
    out = it->second(r);
  } catch (const std::exception& e) {
    out = {500, result_json("handler_failed", e.what()), "application/json"};
  } catch (...) {
    out = {500, result_json("handler_failed", "an exception that is not a std::exception"), "application/json"};
  }
  return to_beast(std::move(out), req.version(), req.keep_alive());
}

std::multimap<std::string, std::string, std::less<>> parse_form(std::string_view body) { return parse_query(body); }

HttpService::HttpService() : impl_(std::make_unique<Impl>()) { ignore_sigpipe(); }

HttpService::~HttpService() = default;

void HttpService::post(const std::string& path, Handler h) { impl_->posts[path] = std::move(h); }
void HttpService::get(const std::string& path, Handler h) { impl_->gets[path] = std::move(h); }
void HttpService::post_deferred(const std::string& path, DeferredHandler h) { impl_->deferred_posts[path] = std::move(h); }

void HttpService::after(std::chrono::microseconds delay, std::function<void()> f) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->io, delay);
  timer->async_wait([timer, f = std::move(f)](beast::error_code) {
    try {
      f();
    } catch (...) {  // never out of io.run(): a deferred answer it owed goes out as a 500
    }
  });
}

void HttpService::on_too_large(std::size_t hard_cap, std::function<HttpResponse(std::size_t)> h) {
  impl_->body_limit = hard_cap;
  impl_->too_large = std::move(h);
}

void HttpService::set_limits(const HttpLimits& limits) { impl_->limits = limits; }

std::size_t HttpService::open_connections() const { return impl_->open.load(); }

bool HttpService::listen(const std::string& host, int port) {
  raise_descriptor_limit();
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec || port < 0 || port > 65535) return false;
  const tcp::endpoint at(address, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor.emplace(impl_->io);
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  // A burst of webhooks must not overflow the backlog: each dropped SYN comes back a whole
  // second later (TCP's retransmit timeout), which a run would report as latency.
  if (!ec) a.listen(1024, ec);
  if (ec) {
    a.close(ec);
    return false;
  }
  impl_->pool = std::make_unique<asio::thread_pool>(static_cast<std::size_t>(std::max(1, impl_->limits.handler_threads)));
  impl_->accept();
  impl_->listening = true;
  impl_->io.run();
  impl_->pool->join();  // handlers in flight finish...
  impl_->io.restart();
  impl_->io.run();      // ...and their answers go out, each connection closing after its own
  impl_->listening = false;
  return true;
}

bool HttpService::wait_until_listening(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!impl_->listening.load()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void HttpService::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->close_all(); });
}

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
    if (!done.load()) http.stop();
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
