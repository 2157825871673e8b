// The model against the live runs of the same scenarios: the reports ctest's scenario_run.<name>
// just wrote (fixtures), and run_model() on the same file, calibrated from that report as
// `sim model --calibrate` does (each attempt also pays the live run's overhead p50: hand-offs,
// store transitions, HTTP, finalize).
//
// Within 5 % on makespan and on payment-to-completion p95, for every scenario of the tier whose
// faults the model covers and whose live p95 repeats within that: the seeds' story, forged and
// late webhooks, the capacity plan's scenario, the hand-off window and the load spike. The others
// are in reports/BENCHMARKS.md with the reason (live p95 that varies more than 5 % between two
// runs, or faults the model does not cover: Redis restarts, full memory, clock skew, network).
#include "qsim/sim/model.h"
#include "qsim/sim/report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace {

struct Compared {
  nlohmann::json live;
  qsim::sim::RunResult model;
};

Compared compare(const std::string& name) {
  const std::string live_path = std::string(QSIM_SCENARIO_REPORTS) + "/" + name + "/report.json";
  Compared c;
  c.live = qsim::sim::load_report(live_path);  // (written by ctest's scenario_run.<name>)
  qsim::sim::ModelOptions o;
  o.calibration = qsim::sim::calibration_from_report(c.live, live_path);
  c.model = qsim::sim::run_model(qsim::sim::load_scenario(std::string(QSIM_SOURCE_DIR) + "/scenarios/" + name + ".json"), o);
  EXPECT_EQ(c.live["seed"], c.model.seed);
  return c;
}

void agree(const std::string& name, double bound = 0.05, bool p95 = true) {
  const auto c = compare(name);
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    const double makespan = l["makespan_s"], live_p95 = l["e2e_s"]["p95"];
    EXPECT_NEAR(r.makespan_s / makespan, 1.0, bound) << name << " " << r.name << ": model " << r.makespan_s
                                                     << " s, live " << makespan << " s";
    if (p95) {
      EXPECT_NEAR(r.e2e_s.p95 / live_p95, 1.0, bound) << name << " " << r.name << ": model p95 " << r.e2e_s.p95
                                                      << " s, live " << live_p95 << " s";
    }
  }
}

}  // namespace

TEST(ModelVsLive, TheSeedsStory) { agree("100_orders"); }
TEST(ModelVsLive, DuplicateForgedAndLateWebhooks) { agree("duplicate_webhooks"); }
TEST(ModelVsLive, TheCapacityPlansScenario) { agree("capacity_plan"); }
TEST(ModelVsLive, TheHandOffWindow) { agree("handoff_window"); }
TEST(ModelVsLive, ALoadSpike) { agree("load_spike"); }

// The world's failures: the model draws exactly the live world's, so each architecture ends with
// the same orders completed and failed, after the same retries. The makespan agrees within 5 %;
// p95 is left out: the nearest rank of 30 orders moved from 201 s to 235 s between two live runs
// (a retry waits for the reaper's tick, whose phase differs from run to run).
TEST(ModelVsLive, TheWorldsFailures) {
  agree("external_failures", 0.05, false);
  const auto c = compare("external_failures");
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    EXPECT_EQ(r.checker.completed, l["checker"]["completed"].get<long long>()) << r.name;
    EXPECT_EQ(r.checker.failed_visible, l["checker"]["failed_visible"].get<long long>()) << r.name;
    EXPECT_EQ(r.dead_letters, l["dead_letters"].get<long long>()) << r.name;
    EXPECT_NEAR(static_cast<double>(r.retries), l["retries"].get<double>(), 1) << r.name;
  }
}
