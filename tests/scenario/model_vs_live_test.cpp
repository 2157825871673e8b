// The model against the live runs of the same scenarios: the reports scenario_run.<name> just
// wrote (ctest fixtures) and run_model() on the same file agree within 10 % on makespan and
// p95 end-to-end latency, for the seeds' story and for a fault scenario.
#include "qsim/sim/model.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace {

void agree(const std::string& name) {
  const std::filesystem::path live_path = std::filesystem::path(QSIM_SCENARIO_REPORTS) / name / "report.json";
  std::ifstream in(live_path);
  ASSERT_TRUE(in) << live_path << " (written by ctest's scenario_run." << name << ")";
  auto live = nlohmann::json::parse(in);
  auto model = qsim::sim::run_model(qsim::sim::load_scenario(std::string(QSIM_SOURCE_DIR) + "/scenarios/" + name + ".json"));
  EXPECT_EQ(live["seed"], model.seed);
  for (const auto& r : model.results) {
    const auto& l = live["results"][r.name];
    const double makespan = l["makespan_s"], p95 = l["e2e_s"]["p95"];
    EXPECT_NEAR(r.makespan_s / makespan, 1.0, 0.10) << name << " " << r.name << ": model " << r.makespan_s
                                                    << " s, live " << makespan << " s";
    EXPECT_NEAR(r.e2e_s.p95 / p95, 1.0, 0.10) << name << " " << r.name << ": model p95 " << r.e2e_s.p95 << " s, live "
                                              << p95 << " s";
  }
}

}  // namespace

TEST(ModelVsLive, TheSeedsStory) { agree("100_orders"); }
TEST(ModelVsLive, DuplicateForgedAndLateWebhooks) { agree("duplicate_webhooks"); }
