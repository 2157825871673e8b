// The internet-facing components under hostile clients, as real processes on real sockets
// with a live Redis: 1,000 unauthenticated connections that send nothing, send their headers
// a byte a second, or announce a large body and trickle it, held open against the payment
// intake (and, separately, finalize) while 200 genuine signed webhooks are timed; then the
// header and body timeouts close every one of them. Oversized headers, header floods,
// pipelined junk and an oversized body are answered and closed, and a genuine webhook still
// goes through afterwards. And a stop lets the answers of running handlers out first.
#include "live_redis.h"
#include "qsim/components/http_client.h"
#include "qsim/components/http_service.h"
#include "qsim/components/webhook.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"
#include "service_process.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
using Steady = std::chrono::steady_clock;

namespace {

constexpr int kHostile = 1000;
constexpr int kGenuine = 200;
// The services' timeouts in this test: apart, so that each is seen to close its own clients.
constexpr double kHeaderTimeoutS = 5;
constexpr double kBodyTimeoutS = 8;

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    auto n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Whether the server has closed the connection: readable at end of stream, or an error.
bool closed_by_peer(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char c;
  auto n = ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

// Everything the server sends until it closes, and whether it closed within `limit`.
std::pair<std::string, bool> read_until_closed(int fd, std::chrono::milliseconds limit) {
  std::string out;
  auto end = Steady::now() + limit;
  char buf[4096];
  while (Steady::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {out, true};  // end of stream, or reset
    out.append(buf, static_cast<std::size_t>(n));
  }
  return {out, false};
}

long rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb = 0;
      in >> kb;
      return kb;
    }
    in.ignore(1 << 16, '\n');
  }
  return -1;
}

// The soft limit raised to the hard one; returns the limit now in force.
rlim_t raise_descriptor_limit() {
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return 0;
  if (l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &l);
  }
  return l.rlim_cur;
}

struct Hostile {
  enum Kind { idle, slow_headers, slow_body } kind;
  int fd = -1;
};

// Holds the hostile connections, and every second sends one more byte on the slow ones.
class HostileCrowd {
public:
  HostileCrowd(int port, const std::string& path) {
    for (int i = 0; i < kHostile; ++i) {
      Hostile h{i % 10 < 4 ? Hostile::idle : i % 10 < 7 ? Hostile::slow_headers : Hostile::slow_body};
      h.fd = connect_loopback(port);
      if (h.fd < 0) {
        failed_++;
        continue;
      }
      if (h.kind == Hostile::slow_headers) send_all(h.fd, "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
      if (h.kind == Hostile::slow_body)
        send_all(h.fd, "POST " + path +
                           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           "Content-Length: 1000000\r\n\r\n{");
      crowd_.push_back(h);
    }
    trickler_ = std::thread([this] {
      while (!quit_) {
        for (auto& h : crowd_)
          if (h.kind != Hostile::idle) (void)::send(h.fd, h.kind == Hostile::slow_body ? " " : "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        for (int i = 0; i < 20 && !quit_; ++i) std::this_thread::sleep_for(50ms);
      }
    });
  }
  ~HostileCrowd() {
    quit_ = true;
    trickler_.join();
    for (auto& h : crowd_) ::close(h.fd);
  }
  int failed_to_connect() const { return failed_; }
  int still_open() const {
    return static_cast<int>(std::count_if(crowd_.begin(), crowd_.end(), [](const Hostile& h) { return !closed_by_peer(h.fd); }));
  }
  int still_open(Hostile::Kind kind) const {
    return static_cast<int>(std::count_if(crowd_.begin(), crowd_.end(),
                                          [kind](const Hostile& h) { return h.kind == kind && !closed_by_peer(h.fd); }));
  }
  int count(Hostile::Kind kind) const {
    return static_cast<int>(std::count_if(crowd_.begin(), crowd_.end(), [kind](const Hostile& h) { return h.kind == kind; }));
  }

private:
  std::vector<Hostile> crowd_;
  int failed_ = 0;
  std::atomic<bool> quit_{false};
  std::thread trickler_;
};

const std::string kPaymentSecret = "whsec_hostile_payment";
const std::string kFinalizeSecret = "whsec_hostile_finalize";

class HostileClients : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    // this process holds the crowd and the service another 1,000 of them; both raise their limit
    ASSERT_GE(raise_descriptor_limit(), rlim_t{1200})
        << "1,000 held connections need a descriptor limit over 1,200 (ulimit -n)";
    tag = testkit::unique_queue_name();
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    store = std::make_unique<store::TaskStore>(*conn, tag, "test");
    const std::string redis_url = testkit::live_redis().endpoint().to_string();
    const std::vector<std::string> limits{"--header-timeout", std::to_string(kHeaderTimeoutS), "--body-timeout",
                                          std::to_string(kBodyTimeoutS)};
    if (intake()) {
      std::vector<std::string> args{"--redis", redis_url, "--queue", tag, "--mode", "polling"};
      args.insert(args.end(), limits.begin(), limits.end());
      service = std::make_unique<testkit::ServiceProcess>(QSIM_PAYMENT_INTAKE_EXE, args,
                                                          std::map<std::string, std::string>{{"QSIM_PAYMENT_SECRET", kPaymentSecret}});
    } else {
      world = std::make_unique<testkit::ServiceProcess>(QSIM_WORLD_EXE, std::vector<std::string>{});
      std::vector<std::string> args{"--redis", redis_url, "--queue", tag, "--world-port", std::to_string(world->port())};
      args.insert(args.end(), limits.begin(), limits.end());
      service = std::make_unique<testkit::ServiceProcess>(QSIM_FINALIZE_EXE, args,
                                                          std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}});
    }
  }
  bool intake() const { return GetParam() == "intake"; }
  std::string path() const { return intake() ? "/webhooks/payment" : "/webhooks/finalize"; }

  // An order in the state its webhook expects: created for a payment, finalizing for finalize.
  void prepare(const std::string& id) {
    ASSERT_TRUE(store->create({id, id + "@example.com", "https://courses.example/" + id, 1000}).value);
    if (intake()) return;
    for (auto [from, to] : {std::pair{store::OrderStatus::created, store::OrderStatus::paid},
                            {store::OrderStatus::paid, store::OrderStatus::processing},
                            {store::OrderStatus::processing, store::OrderStatus::finalizing}})
      ASSERT_TRUE(store->transition(id, {from}, to).value);
  }
  // One genuine signed webhook on a new connection: its status and how long it took, ms.
  std::pair<int, double> genuine(const std::string& id) {
    std::string body = intake() ? nlohmann::json{{"order_id", id}, {"amount", 1000}, {"txn_id", "txn-" + id}}.dump()
                                : nlohmann::json{{"order_id", id}}.dump();
    const auto& secret = intake() ? kPaymentSecret : kFinalizeSecret;
    auto ts = components::unix_now();
    auto start = Steady::now();
    components::HttpClient c("127.0.0.1", service->port(), 10s);
    auto r = c.post(path(), body,
                    {{std::string(security::kTimestampHeader), std::to_string(ts)},
                     {std::string(security::kSignatureHeader), security::sign(secret, ts, body)}});
    return {r.status, std::chrono::duration<double, std::milli>(Steady::now() - start).count()};
  }

  std::string tag;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<store::TaskStore> store;
  std::unique_ptr<testkit::ServiceProcess> world, service;
};

}  // namespace

TEST_P(HostileClients, AThousandHeldConnectionsDoNotDelaySignedWebhooks) {
  for (int i = 0; i < kGenuine; ++i) prepare("o-" + std::to_string(i));
  const long rss_before = rss_kb(service->pid());
  ASSERT_GT(rss_before, 0);

  // Each connection's deadline starts when the server accepts it: from before the first one.
  const auto opened = Steady::now();
  HostileCrowd crowd(service->port(), path());
  ASSERT_EQ(crowd.failed_to_connect(), 0) << "the server must accept every connection";

  std::vector<double> ms;
  for (int i = 0; i < kGenuine; ++i) {
    auto [status, took] = genuine("o-" + std::to_string(i));
    ASSERT_EQ(status, 200) << "genuine webhook " << i << " with " << kHostile << " hostile connections held";
    ms.push_back(took);
  }
  const double measured_s = std::chrono::duration<double>(Steady::now() - opened).count();
  const long rss_held = rss_kb(service->pid());
  const int open_during = crowd.still_open();
  ASSERT_LT(measured_s, kHeaderTimeoutS) << "the crowd and the measurement took longer than the header timeout: the "
                                            "crowd was not all held while the webhooks were timed";
  EXPECT_EQ(open_during, kHostile) << "every hostile connection is still held while the genuine ones are timed";

  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2 - 1], p99 = ms[static_cast<std::size_t>(0.99 * static_cast<double>(ms.size())) - 1];
  std::cout << GetParam() << ": " << kGenuine << " signed webhooks with " << kHostile << " hostile connections held: p50 "
            << p50 << " ms, p99 " << p99 << " ms, max " << ms.back() << " ms; server RSS " << rss_before << " -> "
            << rss_held << " KiB\n";
  RecordProperty("p50_ms", std::to_string(p50));
  RecordProperty("p99_ms", std::to_string(p99));
  RecordProperty("rss_growth_kib", std::to_string(rss_held - rss_before));
  EXPECT_LT(p99, 100.0) << "p99 of genuine webhooks under " << kHostile << " hostile connections";
  EXPECT_LT(rss_held - rss_before, 64 * 1024) << "memory grows by more than 64 MiB for 1,000 connections";

  // The header timeout closes the idle and slow-header connections, the body timeout (later)
  // the trickled bodies; never one before its deadline.
  auto wait_closed = [&](std::vector<Hostile::Kind> kinds, double limit_s) {
    const auto deadline = opened + std::chrono::duration<double>(limit_s);
    auto open = [&] {
      int n = 0;
      for (auto k : kinds) n += crowd.still_open(k);
      return n;
    };
    while (Steady::now() < deadline && open() > 0) std::this_thread::sleep_for(100ms);
    return std::pair{open(), std::chrono::duration<double>(Steady::now() - opened).count()};
  };
  auto [headers_open, headers_closed_s] = wait_closed({Hostile::idle, Hostile::slow_headers}, kHeaderTimeoutS + 10);
  EXPECT_EQ(headers_open, 0) << "idle or slow-header connections still open " << headers_closed_s << " s after opening";
  EXPECT_GE(headers_closed_s, kHeaderTimeoutS - 0.1) << "closed before the header timeout";
  if (headers_closed_s < kBodyTimeoutS - 0.5) {
    EXPECT_EQ(crowd.still_open(Hostile::slow_body), crowd.count(Hostile::slow_body))
        << "a trickled body was cut off by the header timeout, not the body timeout";
  }
  auto [bodies_open, bodies_closed_s] = wait_closed({Hostile::slow_body}, kBodyTimeoutS + 10);
  EXPECT_EQ(bodies_open, 0) << "trickled bodies still open " << bodies_closed_s << " s after opening";
  EXPECT_GE(bodies_closed_s, kBodyTimeoutS - 0.1) << "closed before the body timeout";
  std::cout << GetParam() << ": the server closed the idle and slow-header connections " << headers_closed_s
            << " s after opening (header timeout " << kHeaderTimeoutS << " s), the trickled bodies " << bodies_closed_s
            << " s (body timeout " << kBodyTimeoutS << " s)\n";

  auto [status, took] = genuine("o-0");  // a repeat delivery, answered again
  EXPECT_EQ(status, 200);
  (void)took;
}

TEST_P(HostileClients, MalformedRequestsAreAnsweredThenClosed) {
  // The answer to `bytes`; the server must close the connection after it.
  auto exchange = [&](const std::string& bytes) {
    int fd = connect_loopback(service->port());
    EXPECT_GE(fd, 0);
    if (fd < 0) return std::string();
    (void)send_all(fd, bytes);  // the server may stop reading midway: a failed send is expected
    auto [out, closed] = read_until_closed(fd, 5s);
    EXPECT_TRUE(closed) << "the server did not close the connection after: " << out.substr(0, 200);
    ::close(fd);
    return out;
  };
  auto status_lines = [](const std::string& answer) {
    std::vector<std::string> out;
    for (std::size_t at = answer.find("HTTP/1.1 "); at != std::string::npos; at = answer.find("HTTP/1.1 ", at + 1))
      out.push_back(answer.substr(at, 12));
    return out;
  };
  const std::string head = "POST " + path() + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";

  auto big = exchange(head + "X-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(status_lines(big), std::vector<std::string>{"HTTP/1.1 431"}) << big.substr(0, 300);
  EXPECT_NE(big.find("headers_too_large"), std::string::npos);

  std::string flood = head;
  for (int i = 0; i < 3000; ++i) flood += "X-Flood-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_lines(exchange(flood + "\r\n")), std::vector<std::string>{"HTTP/1.1 431"});
  // Many headers within the limit are read, then the request is judged like any other.
  std::string many = head + "Connection: close\r\nContent-Length: 2\r\n";
  for (int i = 0; i < 600; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  auto judged = exchange(many + "\r\n{}");
  EXPECT_EQ(status_lines(judged), std::vector<std::string>{"HTTP/1.1 401"}) << judged.substr(0, 300);
  EXPECT_NE(judged.find("missing_headers"), std::string::npos);

  auto junk = exchange("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\x01\x02 junk \xff\r\n\r\n");
  EXPECT_EQ(status_lines(junk), (std::vector<std::string>{"HTTP/1.1 200", "HTTP/1.1 400"})) << junk;

  auto huge = exchange(head + "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{");
  EXPECT_EQ(status_lines(huge), std::vector<std::string>{"HTTP/1.1 413"}) << huge.substr(0, 300);
  EXPECT_NE(huge.find("body_too_large"), std::string::npos);

  auto unknown = exchange("GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_lines(unknown), std::vector<std::string>{"HTTP/1.1 404"});

  // Two requests on one kept-alive connection are both answered, in order.
  auto two = exchange("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Connection: close\r\n\r\n");
  EXPECT_EQ(status_lines(two), (std::vector<std::string>{"HTTP/1.1 200", "HTTP/1.1 200"}));

  prepare("o-after");
  EXPECT_EQ(genuine("o-after").first, 200) << "a genuine webhook after the junk";
}

// A stop while a handler runs: the handler's effect took place, so its answer goes out (a
// webhook answered with a reset would be delivered again), then the server stops.
TEST(HttpServiceStop, AnswersTheRequestsItsHandlersAreRunning) {
  components::HttpService http;
  std::atomic<bool> entered{false};
  http.post("/slow", [&](const components::HttpRequest&) {
    entered = true;
    std::this_thread::sleep_for(300ms);
    return components::HttpResponse{200, R"({"result":"done"})"};
  });
  const int port = sim::free_loopback_port();
  std::thread server([&] { EXPECT_TRUE(http.listen("127.0.0.1", port)); });
  ASSERT_TRUE(http.wait_until_listening(5s));
  components::HttpResult answer;
  std::thread client([&] { answer = components::HttpClient("127.0.0.1", port, 5s).post("/slow", "{}"); });
  while (!entered) std::this_thread::sleep_for(1ms);
  http.stop();
  client.join();
  server.join();
  EXPECT_EQ(answer.status, 200) << answer.error;
  EXPECT_EQ(answer.body, R"({"result":"done"})");
  EXPECT_FALSE(components::HttpClient("127.0.0.1", port, 500ms).get("/slow").answered()) << "stopped";
}

// A deferred handler answers from a timer on the I/O thread: many requests wait at once with no
// thread each, a stop answers the ones still waiting, a throw (or an answer dropped) is a 500, and
// a GET is refused.
TEST(HttpServiceDeferred, AnswersFromATimerAndAStopWaitsForTheAnswer) {
  components::HttpService http;
  components::HttpLimits limits;
  limits.handler_threads = 1;  // the deferred requests must not need the pool
  http.set_limits(limits);
  std::atomic<int> entered{0};
  http.post_deferred("/later", [&](const components::HttpRequest& req, components::HttpService::Respond respond) {
    std::string body(req.body);  // the request is valid only while the handler runs
    entered++;
    http.after(300ms, [respond, body] {
      respond({200, R"({"echo":)" + body + "}"});
      respond({500, "a second answer is dropped"});
    });
  });
  http.post_deferred("/throws", [](const components::HttpRequest&, components::HttpService::Respond) {
    throw std::runtime_error("refused on purpose");
  });
  http.post_deferred("/drops", [&](const components::HttpRequest& req, components::HttpService::Respond respond) {
    auto kept = std::make_shared<components::HttpService::Respond>(std::move(respond));
    std::string who(req.param("who").value_or("nobody"));
    // a timer that throws, and the answer it owed dropped with it
    http.after(10ms, [kept, who] { throw std::runtime_error("lost " + who); });
  });
  const int port = sim::free_loopback_port();
  std::thread server([&] { EXPECT_TRUE(http.listen("127.0.0.1", port)); });
  ASSERT_TRUE(http.wait_until_listening(5s));

  // Eight at once on one pool thread: they all wait together, about 300 ms, not 8 x 300.
  std::vector<components::HttpResult> answers(8);
  std::vector<std::thread> clients;
  const auto t0 = Steady::now();
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      answers[i] = components::HttpClient("127.0.0.1", port, 5s).post("/later", std::to_string(i));
    });
  for (auto& c : clients) c.join();
  const auto took = Steady::now() - t0;
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(answers[i].status, 200) << answers[i].error;
    EXPECT_EQ(answers[i].body, R"({"echo":)" + std::to_string(i) + "}");
  }
  EXPECT_LT(took, 2s) << "the waits overlap";

  components::HttpClient c("127.0.0.1", port, 5s);
  auto thrown = c.post("/throws", "{}");
  EXPECT_EQ(thrown.status, 500);
  EXPECT_NE(thrown.body.find("refused on purpose"), std::string::npos) << thrown.body;
  EXPECT_EQ(c.get("/later").status, 405);
  auto dropped = c.post("/drops?who=me", "{}");
  EXPECT_EQ(dropped.status, 500) << "answered, not left hanging";
  EXPECT_NE(dropped.body.find("never answered"), std::string::npos) << dropped.body;
  EXPECT_EQ(c.post("/later", "8").status, 200) << "the server goes on after a timer threw";

  components::HttpResult last;
  std::thread client([&] { last = components::HttpClient("127.0.0.1", port, 5s).post("/later", "9"); });
  while (entered < 10) std::this_thread::sleep_for(1ms);
  http.stop();
  client.join();
  server.join();
  EXPECT_EQ(last.status, 200) << "answered before the stop: " << last.error;
  EXPECT_EQ(last.body, R"({"echo":9})");
}

INSTANTIATE_TEST_SUITE_P(Services, HostileClients, ::testing::Values("intake", "finalize"),
                         [](const auto& param_info) { return param_info.param; });
