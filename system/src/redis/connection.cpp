#include "qsim/redis/connection.h"

#include "qsim/log.h"
#include "qsim/security/signature.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <poll.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <stdexcept>

namespace qsim::redis {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// The one place a redisReply is read: everything is copied into owned values.
Reply copy_reply(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::string; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::status; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::error; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::integer; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
      break;
    default: out.type = Reply::Type::nil; break;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

Result from_reply(const redisReply* r) {
  Result res;
  res.reply = copy_reply(r);
  if (res.reply.type == Reply::Type::error) {
    res.status = Status::server_error;
    res.error = res.reply.str;
  }
  return res;
}

}  // namespace

std::optional<long long> Reply::as_integer() const {
  if (type == Type::integer) return integer;
  if (is_string()) {
    long long v = 0;
    auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
    if (ec == std::errc() && p == str.data() + str.size()) return v;
  }
  return std::nullopt;
}

std::string_view to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::timeout: return "timeout";
    case Status::connection_lost: return "connection lost";
    case Status::server_error: return "server error";
    case Status::protocol_error: return "protocol error";
  }
  return "unknown";
}

namespace {

std::atomic<DeniedHandler> denied_handler{nullptr};

// "user@rest" -> user, rest; a password ("user:pw@") is refused.
std::string take_user(std::string_view& url) {
  auto at = url.find('@');
  if (at == std::string_view::npos) return {};
  auto userinfo = url.substr(0, at);
  if (userinfo.find(':') != std::string_view::npos || userinfo.find('/') != std::string_view::npos)
    throw std::invalid_argument("redis url: a password in the URL is not accepted (it would be visible in argv); name the "
                                "user only (redis://user@host:port) and give the password in QSIM_REDIS_SECRET or "
                                "QSIM_REDIS_SECRET_FILE");
  if (userinfo.empty()) throw std::invalid_argument("redis url: an empty user name before '@'");
  url.remove_prefix(at + 1);
  return std::string(userinfo);
}

std::pair<std::string, int> host_and_port(std::string_view hp) {
  auto colon = hp.rfind(':');
  if (colon == std::string_view::npos || colon == 0) throw std::invalid_argument("redis url: expected host:port, got '" + std::string(hp) + "'");
  int p = 0;
  auto port = hp.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p <= 0 || p > 65535)
    throw std::invalid_argument("redis url: bad port '" + std::string(port) + "'");
  return {std::string(hp.substr(0, colon)), p};
}
}  // namespace

Endpoint Endpoint::parse(std::string_view url) {
  Endpoint e;
  if (url.rfind("redis+sentinel://", 0) == 0) {
    url.remove_prefix(17);
    e.user = take_user(url);
    auto slash = url.find('/');
    if (slash == std::string_view::npos || slash + 1 >= url.size())
      throw std::invalid_argument("redis url: redis+sentinel://host:port[,host:port]/master-name needs the master's name");
    e.master = std::string(url.substr(slash + 1));
    for (auto list = url.substr(0, slash); !list.empty();) {
      auto comma = list.find(',');
      e.sentinels.push_back(host_and_port(list.substr(0, comma)));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    if (e.sentinels.empty()) throw std::invalid_argument("redis url: no Sentinel given");
    return e;
  }
  if (url.rfind("unix://", 0) == 0) {
    e.unix_socket = std::string(url.substr(7));
    if (e.unix_socket.empty()) throw std::invalid_argument("redis url: empty unix socket path");
    return e;
  }
  if (url.rfind("redis://", 0) == 0) url.remove_prefix(8);
  // A password in a URL sits in argv, where any process can read it; a database number would be
  // dropped silently (every key of a queue is in database 0).
  e.user = take_user(url);
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    if (slash + 1 < url.size()) throw std::invalid_argument("redis url: a database number is not supported, only database 0");
    url = url.substr(0, slash);
  }
  auto colon = url.rfind(':');
  if (colon == std::string_view::npos) {
    if (!url.empty()) e.host = std::string(url);
    return e;
  }
  e.host = std::string(url.substr(0, colon));
  auto port = url.substr(colon + 1);
  int p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p <= 0 || p > 65535)
    throw std::invalid_argument("redis url: bad port '" + std::string(port) + "'");
  e.port = p;
  if (e.host.empty()) e.host = "127.0.0.1";
  return e;
}

Endpoint Endpoint::from_url(std::string_view url) {
  Endpoint e = parse(url);
  if (!e.user.empty()) e.password = security::load_secret("REDIS");
  return e;
}

std::string Endpoint::to_string() const {
  const std::string who = user.empty() ? "" : user + "@";
  if (!sentinels.empty()) {
    std::string out = "redis+sentinel://" + who;
    for (std::size_t i = 0; i < sentinels.size(); ++i)
      out += (i ? "," : "") + sentinels[i].first + ":" + std::to_string(sentinels[i].second);
    return out + "/" + master;
  }
  return unix_socket.empty() ? "redis://" + who + host + ":" + std::to_string(port) : "unix://" + unix_socket;
}

bool is_denied(std::string_view e) {
  // anywhere: a script's error carries its command's after a prefix of its own, and checked()
  // puts the user and the command before Redis's words
  for (std::string_view code : {"NOPERM", "WRONGPASS", "NOAUTH"})
    if (e.find(code) != std::string_view::npos) return true;
  return false;
}

void set_denied_handler(DeniedHandler handler) { denied_handler = handler; }

Script::Script(std::string source) : source_(std::move(source)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest);
  static const char* hex = "0123456789abcdef";
  sha_.reserve(2 * SHA_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    sha_.push_back(hex[b >> 4]);
    sha_.push_back(hex[b & 0xf]);
  }
}

Connection::Connection(Endpoint endpoint, ConnectionOptions options, Clock& clock)
    : endpoint_(std::move(endpoint)), options_(options), clock_(&clock) {}

Connection::~Connection() { drop(); }

Connection::Connection(Connection&& o) noexcept
    : endpoint_(std::move(o.endpoint_)), options_(o.options_), clock_(o.clock_), ctx_(o.ctx_),
      backoff_(o.backoff_), next_connect_(o.next_connect_), connects_(o.connects_), reported_down_(o.reported_down_) {
  o.ctx_ = nullptr;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    drop();
    endpoint_ = std::move(o.endpoint_);
    options_ = o.options_;
    clock_ = o.clock_;
    ctx_ = o.ctx_;
    backoff_ = o.backoff_;
    next_connect_ = o.next_connect_;
    connects_ = o.connects_;
    reported_down_ = o.reported_down_;
    o.ctx_ = nullptr;
  }
  return *this;
}

void Connection::drop() {
  if (ctx_) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

Result Connection::ensure_connected() {
  if (ctx_) return {};
  auto now = clock_->now();
  if (now < next_connect_) return {Status::connection_lost, {}, "reconnect backoff in effect for " + endpoint_.to_string()};
  std::string host = endpoint_.host, why;
  int port = endpoint_.port;
  redisContext* c = nullptr;
  if (!endpoint_.sentinels.empty()) {
    if (auto located = locate_primary(host, port); !located) why = located.error;
  }
  if (why.empty()) {
    c = endpoint_.unix_socket.empty() || !endpoint_.sentinels.empty()
            ? redisConnectWithTimeout(host.c_str(), port, to_timeval(options_.connect_timeout))
            : redisConnectUnixWithTimeout(endpoint_.unix_socket.c_str(), to_timeval(options_.connect_timeout));
    if (c == nullptr || c->err) {
      why = c ? c->errstr : "cannot allocate redis context";
      if (c) redisFree(c);
      c = nullptr;
    }
  }
  if (c && !endpoint_.user.empty()) {  // before anything else: without it, the default user needs a password
    redisSetTimeout(c, to_timeval(options_.command_timeout));
    const char* argv[] = {"AUTH", endpoint_.user.c_str(), endpoint_.password.c_str()};
    const std::size_t lens[] = {4, endpoint_.user.size(), endpoint_.password.size()};
    auto* auth = static_cast<redisReply*>(redisCommandArgv(c, 3, argv, lens));
    if (!auth || auth->type == REDIS_REPLY_ERROR) {
      why = auth ? "AUTH as user '" + endpoint_.user + "': " + std::string(auth->str, auth->len) : "AUTH: " + std::string(c->errstr);
      if (auth && is_denied(std::string_view(auth->str, auth->len)))
        if (auto h = denied_handler.load()) h("Redis at " + endpoint_.to_string() + " refused the credentials: " + why);
      redisFree(c), c = nullptr;
    }
    if (auth) freeReplyObject(auth);
  }
  if (c && !endpoint_.sentinels.empty()) {  // the Sentinel's answer may be stale: ask the server itself
    redisSetTimeout(c, to_timeval(options_.command_timeout));
    auto* role = static_cast<redisReply*>(redisCommand(c, "ROLE"));
    const bool primary = role && role->type == REDIS_REPLY_ARRAY && role->elements > 0 &&
                         role->element[0]->type == REDIS_REPLY_STRING && std::string_view(role->element[0]->str) == "master";
    if (!primary) why = host + ":" + std::to_string(port) + " is not a primary (yet)";
    if (role) freeReplyObject(role);
    if (!primary) redisFree(c), c = nullptr;
  }
  if (!c) {
    // Through a Sentinel, a retry is a question to the Sentinel, cheap: asked often, it finds a
    // promoted replica within a quarter second of its promotion.
    const auto cap = endpoint_.sentinels.empty() ? options_.reconnect_backoff_max
                                                 : std::min(options_.reconnect_backoff_max, std::chrono::milliseconds(250));
    backoff_ = backoff_.count() == 0 ? std::min(options_.reconnect_backoff_initial, cap) : std::min(backoff_ * 2, cap);
    next_connect_ = now + backoff_;
    if (!reported_down_) {  // once per outage, not once per retry
      reported_down_ = true;
      log::event(log::Level::warn, "redis_unreachable", {{"endpoint", endpoint_.to_string()}, {"error", why}});
    }
    return {Status::connection_lost, {}, "connect to " + endpoint_.to_string() + ": " + why};
  }
  redisSetTimeout(c, to_timeval(options_.command_timeout));
  if (endpoint_.unix_socket.empty()) redisEnableKeepAlive(c);
  ctx_ = c;
  backoff_ = std::chrono::milliseconds{0};
  if (connects_ > 0 || reported_down_)
    log::event(log::Level::info, "redis_reconnected", {{"endpoint", endpoint_.to_string()}, {"connects", std::to_string(connects_ + 1)}});
  reported_down_ = false;
  ++connects_;
  return {};
}

Result Connection::locate_primary(std::string& host, int& port) {
  std::string why;
  for (const auto& [shost, sport] : endpoint_.sentinels) {
    redisContext* s = redisConnectWithTimeout(shost.c_str(), sport, to_timeval(options_.connect_timeout));
    if (s == nullptr || s->err) {
      why = "sentinel " + shost + ":" + std::to_string(sport) + ": " + (s ? s->errstr : "cannot allocate redis context");
      if (s) redisFree(s);
      continue;
    }
    redisSetTimeout(s, to_timeval(options_.command_timeout));
    const char* argv[] = {"SENTINEL", "get-master-addr-by-name", endpoint_.master.c_str()};
    const std::size_t lens[] = {8, 23, endpoint_.master.size()};
    auto* r = static_cast<redisReply*>(redisCommandArgv(s, 3, argv, lens));
    const bool found = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                       r->element[1]->type == REDIS_REPLY_STRING;
    if (found) {
      host = r->element[0]->str;
      port = std::atoi(r->element[1]->str);
    } else {
      why = "sentinel " + shost + ":" + std::to_string(sport) + " does not know a primary named '" + endpoint_.master + "'";
    }
    if (r) freeReplyObject(r);
    redisFree(s);
    if (found) return {};
  }
  return {Status::connection_lost, {}, why};
}

Result Connection::transport_failure() {
  Result res;
  // hiredis 0.14 reports a read timeout as an I/O error with errno EAGAIN.
  bool timed_out = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
  res.status = timed_out ? Status::timeout
               : ctx_->err == REDIS_ERR_PROTOCOL ? Status::protocol_error
                                                   : Status::connection_lost;
  res.error = timed_out ? "timed out waiting for " + endpoint_.to_string() : std::string(ctx_->errstr);
  log::event(log::Level::warn, "redis_connection_lost", {{"endpoint", endpoint_.to_string()}, {"error", res.error}});
  drop();  // a context is dead after any error
  return res;
}

Result Connection::checked(Result r, const std::string& command, bool* demoted) {
  if (r.status != Status::server_error) return r;
  if (!endpoint_.sentinels.empty() && r.error.find("READONLY") != std::string::npos) {
    // The server we found was demoted while alive (a failover it survived): drop it, so that the
    // next command asks the Sentinel again instead of writing to a replica forever.
    if (demoted) {
      *demoted = true;  // a pipeline drops it once every reply is read
    } else {
      log::event(log::Level::warn, "redis_demoted", {{"endpoint", endpoint_.to_string()}, {"error", r.error}});
      drop();
    }
    return r;
  }
  if (!is_denied(r.error)) return r;
  r.error = "Redis denied " + (endpoint_.user.empty() ? std::string("the default user") : "user '" + endpoint_.user + "'") +
            " " + command + ": " + r.error;
  log::event(log::Level::error, "redis_denied", {{"endpoint", endpoint_.to_string()}, {"error", r.error}});
  if (auto h = denied_handler.load()) h(r.error);
  return r;
}

Result Connection::roundtrip(const std::vector<std::string>& argv, bool may_spin) {
  if (auto c = ensure_connected(); !c) return c;
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  errno = 0;
  if (!may_spin || options_.spin_before_block.count() <= 0) {
    ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
    if (!r) return transport_failure();
    return checked(from_reply(r.get()), argv.at(0));
  }
  // Low-latency mode: write, spin on the socket until readable (or the budget is spent), read.
  redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  for (int done = 0; !done;)
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) return transport_failure();
  auto until = clock_->now() + options_.spin_before_block;
  pollfd pfd{ctx_->fd, POLLIN, 0};
  while (::poll(&pfd, 1, 0) == 0 && clock_->now() < until) {
  }
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return transport_failure();
  ReplyPtr r(static_cast<redisReply*>(raw));
  return checked(from_reply(r.get()), argv.at(0));
}

Result Connection::command(const std::vector<std::string>& argv) { return roundtrip(argv); }

Result Connection::command(std::initializer_list<std::string_view> argv) {
  std::vector<std::string> v;
  v.reserve(argv.size());
  for (auto a : argv) v.emplace_back(a);
  return roundtrip(v);
}

Result Connection::command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (auto c = ensure_connected(); !c) return c;
  redisSetTimeout(ctx_, to_timeval(timeout));
  Result res = roundtrip(argv, /*may_spin=*/false);  // a blocking command waits by design
  if (ctx_) redisSetTimeout(ctx_, to_timeval(options_.command_timeout));
  return res;
}

std::vector<Result> Connection::pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<Result> out;
  out.reserve(commands.size());
  if (auto c = ensure_connected(); !c) {
    out.assign(commands.size(), c);
    return out;
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  bool demoted = false;
  for (const auto& argv : commands) {
    ptrs.clear();
    lens.clear();
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      Result failure = transport_failure();
      while (out.size() < commands.size()) out.push_back(failure);
      return out;
    }
    ReplyPtr r(static_cast<redisReply*>(raw));
    out.push_back(checked(from_reply(r.get()), commands[i].at(0), &demoted));
  }
  if (demoted) {
    log::event(log::Level::warn, "redis_demoted", {{"endpoint", endpoint_.to_string()}});
    drop();
  }
  return out;
}

Result Connection::eval(const Script& script, const std::vector<std::string>& keys, const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.emplace_back("EVALSHA");
  argv.push_back(script.sha());
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  Result res = roundtrip(argv);
  if (res.status == Status::server_error && res.error.rfind("NOSCRIPT", 0) == 0) {
    Result load = roundtrip({"SCRIPT", "LOAD", script.source()});
    if (!load) return load;
    res = roundtrip(argv);
  }
  return res;
}

}  // namespace qsim::redis
