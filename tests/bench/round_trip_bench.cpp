// What one round trip costs on this machine, the unit an order of the live harness is made of
// (issue #14: an order makes 6 HTTP requests and about 8 Redis calls). Google benchmarks, each
// on loopback with kept-alive connections, as the components make them:
//   BM_TcpPingPong       the floor: 128 bytes each way over a loopback TCP socket, an echo thread
//                        (no library, no parsing: what the kernel and this VM charge a round trip)
//   BM_HttpRoundTrip/0   a POST to an HttpService handler on its thread pool (the intake, finalize)
//   BM_HttpRoundTrip/1   a POST to a deferred handler, answered on the I/O thread (the world)
//   BM_RedisPing         PING on one redis::Connection to a private redis-server
//   BM_StoreTransition   one TaskStore::transition (the store's Lua script, EVALSHA)
// "CPU" is this process's CPU time an iteration, every thread counted (client and server of the
// HTTP benchmarks are both in this process); redis_cpu_us is what the Redis server itself used
// an iteration (INFO cpu, read before and after). Run:
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

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

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
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
    components::HttpClient client("127.0.0.1", port);
    for (auto _ : state) {
      auto r = client.post("/call", kBody);
      if (!r.ok()) {
        state.SkipWithError(("a request failed: " + r.error).c_str());
        break;
      }
    }
  }
  http.stop();
  server.join();
  state.SetLabel(deferred ? "deferred handler (the world)" : "pooled handler (intake, finalize)");
}
BENCHMARK(BM_HttpRoundTrip)->Arg(0)->Arg(1)->MeasureProcessCPUTime()->UseRealTime();

// One private redis-server for the Redis benchmarks, started on first use.
sim::RedisServer& redis_server() {
  static std::unique_ptr<sim::RedisServer> server = [] {
    auto s = std::make_unique<sim::RedisServer>();
    s->start();
    return s;
  }();
  return *server;
}

double redis_cpu_s(redis::Connection& c) {
  auto r = c.command({"INFO", "cpu"});
  if (!r.ok()) throw std::runtime_error("INFO cpu: " + r.error);
  double total = 0;
  for (const char* key : {"used_cpu_sys:", "used_cpu_user:"}) {
    auto at = r.reply.str.find(key);
    if (at == std::string::npos) throw std::runtime_error(std::string("INFO cpu has no ") + key);
    total += std::stod(r.reply.str.substr(at + std::char_traits<char>::length(key)));
  }
  return total;
}

// Runs `one` every iteration and reports the Redis server's CPU an iteration beside this
// process's.
template <class F>
void with_redis_cpu(benchmark::State& state, redis::Connection& c, F&& one) {
  const double before = redis_cpu_s(c);
  for (auto _ : state) {
    if (!one()) {
      state.SkipWithError("a Redis call failed");
      return;
    }
  }
  const double used = redis_cpu_s(c) - before;
  state.counters["redis_cpu_us"] = benchmark::Counter(used * 1e6 / static_cast<double>(state.iterations()));
}

void BM_RedisPing(benchmark::State& state) {
  redis::Connection c(redis_server().endpoint());
  with_redis_cpu(state, c, [&] { return c.command({"PING"}).ok(); });
}
BENCHMARK(BM_RedisPing)->MeasureProcessCPUTime()->UseRealTime();

void BM_StoreTransition(benchmark::State& state) {
  redis::Connection c(redis_server().endpoint());
  store::TaskStore s(c, "bench", "bench");
  store::NewOrder order;
  order.id = "order-bench";
  auto created = s.create(order);
  if (!created.ok() || !created.value) {
    state.SkipWithError("could not create the order");
    return;
  }
  (void)s.transition(order.id, {store::OrderStatus::created}, store::OrderStatus::paid);
  (void)s.transition(order.id, {store::OrderStatus::paid}, store::OrderStatus::downloading, "worker-1");
  bool down = true;
  with_redis_cpu(state, c, [&] {
    auto from = down ? store::OrderStatus::downloading : store::OrderStatus::uploading;
    auto to = down ? store::OrderStatus::uploading : store::OrderStatus::downloading;
    down = !down;
    auto r = s.transition(order.id, {from}, to, "worker-1");
    return r.ok() && r.value;
  });
  (void)c.command({"FLUSHALL"});
}
BENCHMARK(BM_StoreTransition)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
