// The TCP fault proxy without faults must be invisible: kept-alive HTTP requests through it are
// answered as quickly as direct ones. (Without TCP_NODELAY on its legs, a request's body, written
// on its own after the headers, waited for the server's delayed ACK: up to 40 ms per request on a
// kept-alive connection, which stalled the full chaos soak's queue workers.)
#include "qsim/components/http_client.h"
#include "qsim/components/http_service.h"
#include "qsim/sim/fault_proxy.h"
#include "qsim/sim/redis_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace qsim;

namespace {

double p90_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.at(v.size() * 9 / 10);
}

TEST(FaultProxy, KeptAliveRequestsCrossItWithoutWaitingForDelayedAcks) {
  components::HttpService server;
  server.post("/echo", [](const components::HttpRequest& r) { return components::HttpResponse(200, std::string(r.body)); });
  const int port = sim::free_loopback_port();
  std::thread serving([&] { server.listen("127.0.0.1", port); });
  ASSERT_TRUE(server.wait_until_listening(5s));
  sim::FaultProxy proxy(7);
  const int proxied = proxy.add_link("test_link", port);
  const std::string body(80, 'x');

  auto time_requests = [&](int to_port) {
    components::HttpClient client("127.0.0.1", to_port, 2s);
    std::vector<double> ms;
    for (int i = 0; i < 200; ++i) {
      const auto t = std::chrono::steady_clock::now();
      auto r = client.post("/echo", body, {{"Content-Type", "application/json"}});
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
      EXPECT_EQ(r.status, 200) << r.error;
    }
    return ms;
  };
  const double direct = p90_ms(time_requests(port));
  const double through = p90_ms(time_requests(proxied));
  EXPECT_EQ(proxy.counters().at("test_link").connections, 1) << "one kept-alive connection for 200 requests";
  // a delayed ACK costs 40 ms; a loaded 2-core machine a few
  EXPECT_LT(through, 20.0) << "p90 through the proxy " << through << " ms, direct " << direct << " ms";
  server.stop();
  serving.join();
}

}  // namespace
