#include "qsim/sim/world.h"

#include <gtest/gtest.h>

using namespace qsim;
using namespace std::chrono_literals;

namespace {
std::string req(const std::string& order, const std::string& key) {
  return nlohmann::json{{"order_id", order}, {"key", key}}.dump();
}
}  // namespace

TEST(World, EffectsOncePerKeyEveryCallLogged) {
  ManualClock clock;
  sim::World w({}, clock);
  EXPECT_EQ(w.call("grant", req("o1", "grant:o1")).body, R"({"result":"ok","effect":true})");
  EXPECT_EQ(w.call("grant", req("o1", "grant:o1")).body, R"({"result":"ok","effect":false})");
  EXPECT_EQ(w.call("mail", req("o1", "mail:o1")).status, 200);
  EXPECT_EQ(w.calls().size(), 3u);
  EXPECT_EQ(w.effects("grant")["o1"], 1);
  EXPECT_EQ(w.effects("mail")["o1"], 1);
}

TEST(World, LatencyUsesTheInjectedClock) {
  ManualClock clock;
  sim::WorldConfig c;
  c.apis["download"].latency = 250ms;
  sim::World w(c, clock);
  auto before = clock.now();
  (void)w.call("download", req("o1", "download:o1"));
  EXPECT_EQ(clock.now() - before, 250ms);
}

TEST(World, FailuresFollowTheSeedAndTheProbability) {
  ManualClock clock;
  sim::WorldConfig c;
  c.seed = 7;
  c.apis["upload"].fail_probability = 0.3;
  sim::World a(c, clock), b(c, clock);
  int failures = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string order = "o";
    order += std::to_string(i);  // (not "o" + to_string: GCC 12 warns falsely on that)
    const std::string key = "upload:" + order;
    auto ra = a.call("upload", req(order, key));
    auto rb = b.call("upload", req(order, key));
    ASSERT_EQ(ra.status, rb.status) << "same seed, same key, same call number: same outcome";
    failures += ra.status == 503;
  }
  EXPECT_GT(failures, 2000 * 0.3 * 0.85);
  EXPECT_LT(failures, 2000 * 0.3 * 1.15);
  EXPECT_NE(sim::World::draw(7, "upload", "k", 0), sim::World::draw(8, "upload", "k", 0));
  EXPECT_NE(sim::World::draw(7, "upload", "k", 0), sim::World::draw(7, "upload", "k", 1)) << "a retry draws anew";
}

TEST(World, PermanentFailuresAre4xx) {
  ManualClock clock;
  sim::WorldConfig c;
  c.apis["grant"].fail_probability = 1.0;
  c.apis["grant"].kind = sim::FailureKind::permanent;
  sim::World w(c, clock);
  EXPECT_EQ(w.call("grant", req("o1", "grant:o1")).status, 400);
  EXPECT_TRUE(w.effects("grant").empty());
}

TEST(World, BadRequestsAndConfigsSayWhere) {
  ManualClock clock;
  sim::World w({}, clock);
  EXPECT_EQ(w.call("grant", "not json").status, 400);
  EXPECT_EQ(w.call("grant", R"({"order_id":"o1"})").status, 400);
  EXPECT_EQ(w.call("teleport", req("o1", "k")).status, 404);
  auto throws_with = [](const char* json, const char* fragment) {
    try {
      (void)sim::WorldConfig::from_json(nlohmann::json::parse(json));
      ADD_FAILURE() << "accepted " << json;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  throws_with(R"({"download":{"latency_ms":-1}})", "$.download.latency_ms");
  throws_with(R"({"mail":{"fail_probability":1.5}})", "$.mail.fail_probability");
  throws_with(R"({"mail":{"fail_kind":"sometimes"}})", "$.mail.fail_kind");
  throws_with(R"({"payments":{}})", "$.payments");
  throws_with(R"({"grant":{"latency":5}})", "$.grant.latency");
  auto ok = sim::WorldConfig::from_json(nlohmann::json::parse(R"({"seed":3,"grant":{"latency_ms":5,"fail_probability":0.5}})"));
  EXPECT_EQ(ok.seed, 3u);
  EXPECT_EQ(ok.apis["grant"].latency, 5ms);
  EXPECT_EQ(sim::WorldConfig::from_json(ok.to_json()).to_json(), ok.to_json()) << "round trip";
}
