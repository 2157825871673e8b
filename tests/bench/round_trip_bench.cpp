// What one round trip costs on this machine, the unit an order of the live harness is made of
// (issue #14: an order makes 6 HTTP requests and about 8 Redis calls). Google benchmarks, each
// on loopback with kept-alive connections, as the components make them:
//   BM_TcpPingPong        the floor: 128 bytes each way over a loopback TCP socket, an echo thread
//                         (no library, no parsing: what the kernel and this VM charge a round trip)
//   BM_HttpRoundTrip/0/N  POSTs to an HttpService handler on its thread pool (the intake, finalize)
//   BM_HttpRoundTrip/1/N  POSTs to a deferred handler, answered on the I/O thread (the world)
//   BM_RedisPing/N        PING on redis::Connections to a private redis-server
//   BM_StoreTransition/N  TaskStore::transition (the store's Lua script, EVALSHA)
// N callers at once, each on its own connection and thread (1: one round trip at a time; 16: the
// servers see many in flight, as at a high arrival rate). "CPU" is this process's CPU time, every
// thread counted; cpu_us_per_trip is that a round trip (the HTTP benchmarks' server runs in this
// process, so both ends), redis_cpu_us_per_trip what the Redis server used (INFO cpu, read before
// and after). Run:
//   build/bin/round_trip_bench [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include "qsim/components/http_client.h"
#include "qsim/components/http_service.h"
#include "qsim/redis/connection.h"
#include "qsim/sim/redis_server.h"
#include "qsim/store/task_store.h"

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace qsim;

namespace {

// A 120-byte JSON body and a short answer, about what the components send each other.
const std::string kBody =
    R"({"order_id":"order-000042","worker":"worker-3","attempt":1,"stage":"download","key":"order-000042:download:1"})";

bool full_write(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    auto w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool full_read(int fd, char* p, std::size_t n) {
  while (n > 0) {
    auto r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

void BM_TcpPingPong(benchmark::State& state) {
  constexpr std::size_t kSize = 128;
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    state.SkipWithError("could not listen on loopback");
    if (listener >= 0) ::close(listener);
    return;
  }
  std::thread echo([listener] {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[kSize];
    while (full_read(fd, buf, kSize) && full_write(fd, buf, kSize)) {
    }
    ::close(fd);
  });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    state.SkipWithError("could not connect on loopback");
  } else {
    char buf[kSize] = {};
    for (auto _ : state) {
      if (!full_write(fd, buf, kSize) || !full_read(fd, buf, kSize)) {
        state.SkipWithError("the echo broke");
        break;
      }
    }
  }
  if (fd >= 0) ::close(fd);  // the echo thread reads end of file and stops
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  echo.join();
}
BENCHMARK(BM_TcpPingPong)->MeasureProcessCPUTime()->UseRealTime();

double process_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One private redis-server for the Redis benchmarks, started on first use; null (and the
// benchmark skipped, saying why) when it cannot start.
sim::RedisServer* redis_server(benchmark::State& state) {
  static std::string failure;
  static std::unique_ptr<sim::RedisServer> server = []() -> std::unique_ptr<sim::RedisServer> {
    try {
      auto s = std::make_unique<sim::RedisServer>();
      s->start();
      return s;
    } catch (const std::exception& e) {
      failure = std::string("the private redis-server did not start: ") + e.what();
      return nullptr;
    }
  }();
  if (!server) state.SkipWithError(failure.c_str());
  return server.get();
}

// The CPU the Redis server has used, user and system (INFO cpu).
double redis_cpu_s(redis::Connection& c) {
  double total = 0;
  for (const char* key : {"used_cpu_sys", "used_cpu_user"}) {
    auto v = sim::redis_info_real(c, "cpu", key);
    if (!v) throw std::runtime_error(std::string("INFO cpu did not give ") + key);
    total += *v;
  }
  return total;
}

// Each iteration, every client makes kPerCaller calls on its own thread, all at once, so the
// servers see len(clients) callers in flight. Counters: round trips a second; this process's CPU
// a round trip (every thread: the callers, and a server running in this process); and, given a
// Redis connection to ask, the Redis server's CPU a round trip.
constexpr int kPerCaller = 100;

template <class Client, class Call>
void concurrent_trips(benchmark::State& state, std::vector<std::unique_ptr<Client>>& clients, Call call,
                      redis::Connection* redis_admin = nullptr) {
  std::atomic<bool> failed{false};
  const double redis0 = redis_admin ? redis_cpu_s(*redis_admin) : 0, cpu0 = process_cpu_s();
  for (auto _ : state) {
    std::vector<std::thread> callers;
    for (auto& c : clients)
      callers.emplace_back([&, client = c.get()] {
        for (int k = 0; k < kPerCaller && !failed; ++k)
          if (!call(*client)) failed = true;
      });
    for (auto& t : callers) t.join();
    if (failed) {
      state.SkipWithError("a call failed");
      return;
    }
  }
  const double trips = static_cast<double>(state.iterations()) * kPerCaller * static_cast<double>(clients.size());
  state.counters["trips_per_s"] = benchmark::Counter(trips, benchmark::Counter::kIsRate);
  state.counters["cpu_us_per_trip"] = benchmark::Counter((process_cpu_s() - cpu0) * 1e6 / trips);
  if (redis_admin) state.counters["redis_cpu_us_per_trip"] = benchmark::Counter((redis_cpu_s(*redis_admin) - redis0) * 1e6 / trips);
}

// range(0): 0 a pooled handler, 1 a deferred one; range(1): callers at once.
void BM_HttpRoundTrip(benchmark::State& state) {
  const bool deferred = state.range(0) != 0;
  components::HttpService http;
  if (deferred) {
    http.post_deferred("/call", [](const components::HttpRequest&, components::HttpService::Respond respond) {
      respond(components::HttpResponse(200, R"({"ok":true})"));
    });
  } else {
    http.post("/call", [](const components::HttpRequest&) { return components::HttpResponse(200, R"({"ok":true})"); });
  }
  const int port = sim::free_loopback_port();
  std::thread server([&] { http.listen("127.0.0.1", port); });
  if (!http.wait_until_listening(std::chrono::seconds(5))) {
    http.stop();
    server.join();
    state.SkipWithError("the HTTP service did not listen");
    return;
  }
  {
    std::vector<std::unique_ptr<components::HttpClient>> clients;
    for (int i = 0; i < state.range(1); ++i) clients.push_back(std::make_unique<components::HttpClient>("127.0.0.1", port));
    concurrent_trips(state, clients, [](components::HttpClient& c) { return c.post("/call", kBody).ok(); });
  }
  http.stop();
  server.join();
  state.SetLabel(deferred ? "deferred handler (the world)" : "pooled handler (intake, finalize)");
}
BENCHMARK(BM_HttpRoundTrip)->ArgsProduct({{0, 1}, {1, 16}})->MeasureProcessCPUTime()->UseRealTime();

std::vector<std::unique_ptr<redis::Connection>> redis_clients(benchmark::State& state, const sim::RedisServer& server) {
  std::vector<std::unique_ptr<redis::Connection>> out;
  for (int i = 0; i < state.range(0); ++i) out.push_back(std::make_unique<redis::Connection>(server.endpoint()));
  return out;
}

// range(0): callers at once, each on its own connection.
void BM_RedisPing(benchmark::State& state) {
  auto* server = redis_server(state);
  if (!server) return;
  redis::Connection admin(server->endpoint());
  auto clients = redis_clients(state, *server);
  concurrent_trips(state, clients, [](redis::Connection& c) { return c.command({"PING"}).ok(); }, &admin);
}
BENCHMARK(BM_RedisPing)->Arg(1)->Arg(16)->MeasureProcessCPUTime()->UseRealTime();

// One TaskStore::transition a call, each caller moving its own order between downloading and
// uploading. range(0): callers at once.
void BM_StoreTransition(benchmark::State& state) {
  auto* server = redis_server(state);
  if (!server) return;
  redis::Connection admin(server->endpoint());
  auto conns = redis_clients(state, *server);
  struct Caller {
    std::unique_ptr<store::TaskStore> store;
    std::string order;
    bool down = true;
  };
  std::vector<std::unique_ptr<Caller>> callers;
  for (std::size_t i = 0; i < conns.size(); ++i) {
    auto c = std::make_unique<Caller>();
    c->store = std::make_unique<store::TaskStore>(*conns[i], "bench", "bench");
    c->order = "order-bench-" + std::to_string(i);
    store::NewOrder order;
    order.id = c->order;
    auto created = c->store->create(order);
    if (!created.ok() || !created.value ||
        !c->store->transition(order.id, {store::OrderStatus::created}, store::OrderStatus::paid).ok() ||
        !c->store->transition(order.id, {store::OrderStatus::paid}, store::OrderStatus::downloading, "worker-1").ok()) {
      state.SkipWithError("could not make the order");
      return;
    }
    callers.push_back(std::move(c));
  }
  concurrent_trips(state, callers, [](Caller& c) {
    auto from = c.down ? store::OrderStatus::downloading : store::OrderStatus::uploading;
    auto to = c.down ? store::OrderStatus::uploading : store::OrderStatus::downloading;
    c.down = !c.down;
    auto r = c.store->transition(c.order, {from}, to, "worker-1");
    return r.ok() && r.value;
  }, &admin);
  (void)admin.command({"FLUSHALL"});
}
BENCHMARK(BM_StoreTransition)->Arg(1)->Arg(16)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
