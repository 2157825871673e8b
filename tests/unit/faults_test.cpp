// The fault schedule is a pure function of the scenario and its seed.
#include "qsim/sim/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

using namespace qsim::sim;

namespace {

Scenario scenario(std::uint64_t seed) {
  auto j = nlohmann::json::parse(R"({
    "name": "f", "seed": 1, "speedup": 100,
    "orders": {"count": 200, "arrival": {"kind": "poisson", "rate_per_h": 60}},
    "job": {"download": {"dist": "constant", "value": "1m"}, "upload": {"dist": "constant", "value": "10s"}},
    "architectures": {"queue": {"workers": 4}},
    "faults": [
      {"kind": "kill_process", "target": "worker", "every": "10m", "probability": 0.5},
      {"kind": "kill_process", "target": "worker-2", "at": "30m", "count": 2},
      {"kind": "restart_redis", "every": "1h", "persistence": "always"},
      {"kind": "poison_job", "at": "5m", "count": 7},
      {"kind": "duplicate_webhook", "probability": 0.3, "copies": [1, 3], "spread": "1m"},
      {"kind": "forge_webhook", "probability": 0.1},
      {"kind": "replay_webhook", "probability": 0.1, "from": "1h"}
    ]})");
  j["seed"] = seed;
  return parse_scenario(j, "test.json");
}

}  // namespace

TEST(FaultPlan, TheSameSeedGivesTheSameTimeline) {
  auto s = scenario(42);
  auto arrivals = arrival_times_s(s);
  auto a = plan_faults(s, arrivals, 4 * 3600), b = plan_faults(s, arrivals, 4 * 3600);
  ASSERT_EQ(a.firings.size(), b.firings.size());
  for (std::size_t i = 0; i < a.firings.size(); ++i) {
    EXPECT_EQ(a.firings[i].t_s, b.firings[i].t_s);
    EXPECT_EQ(a.firings[i].pick, b.firings[i].pick);
    EXPECT_EQ(a.firings[i].target, b.firings[i].target);
  }
  ASSERT_EQ(a.webhooks.size(), b.webhooks.size());
  for (std::size_t i = 0; i < a.webhooks.size(); ++i) {
    EXPECT_EQ(a.webhooks[i].order, b.webhooks[i].order);
    EXPECT_EQ(a.webhooks[i].at_s, b.webhooks[i].at_s);
    EXPECT_EQ(a.webhooks[i].kind, b.webhooks[i].kind);
  }
  auto other = plan_faults(scenario(43), arrival_times_s(scenario(43)), 4 * 3600);
  bool differs = other.firings.size() != a.firings.size() || other.webhooks.size() != a.webhooks.size();
  for (std::size_t i = 0; !differs && i < a.firings.size(); ++i) differs = other.firings[i].t_s != a.firings[i].t_s;
  EXPECT_TRUE(differs) << "another seed, another timeline";
}

TEST(FaultPlan, FiringsFollowTheirSpecification) {
  auto s = scenario(42);
  auto plan = plan_faults(s, arrival_times_s(s), 4 * 3600);
  int every_kills = 0, restarts = 0;
  for (const auto& f : plan.firings) {
    EXPECT_GE(f.t_s, 0);
    if (f.fault == 0) {
      ++every_kills;
      EXPECT_EQ(std::fmod(f.t_s, 600.0), 0.0) << "on the 10-minute grid";
    }
    if (f.fault == 1) {
      EXPECT_EQ(f.t_s, 1800);
      EXPECT_EQ(f.count, 2);
    }
    if (f.fault == 2) ++restarts;
    if (f.fault == 3) {
      EXPECT_EQ(f.count, 7);
    }
  }
  EXPECT_GT(every_kills, 5) << "about half of 24 opportunities";
  EXPECT_LT(every_kills, 20);
  EXPECT_EQ(restarts, 4) << "every hour over 4 hours";
  for (std::size_t i = 1; i < plan.firings.size(); ++i) EXPECT_LE(plan.firings[i - 1].t_s, plan.firings[i].t_s);
  auto arrivals = arrival_times_s(s);
  int duplicates = 0;
  for (const auto& w : plan.webhooks) {
    EXPECT_GE(w.at_s, arrivals[w.order]) << "an extra request never precedes its order";
    if (w.kind == WebhookExtra::Kind::duplicate) {
      ++duplicates;
      EXPECT_LE(w.at_s, arrivals[w.order] + 60);
    }
    if (w.kind == WebhookExtra::Kind::replay) {
      EXPECT_GE(arrivals[w.order], 3600) << "only from 1h";
    }
  }
  EXPECT_GT(duplicates, 200 * 0.3 * 1.2) << "30 % of orders, one to three copies each";
}

TEST(FaultPlan, AddingAFaultDoesNotMoveTheArrivalTrace) {
  auto with = scenario(42);
  auto without = with;
  without.faults.clear();
  EXPECT_EQ(arrival_times_s(with), arrival_times_s(without));
}
