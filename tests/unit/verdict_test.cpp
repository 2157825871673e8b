// The verdict as a library call: which gates apply, "no data" failing, the decision.
#include "qsim/sim/report.h"
#include "qsim/sim/verdict.h"

#include <gtest/gtest.h>

#include <functional>

namespace qsim::sim {
namespace {

Scenario two_architectures() {
  Scenario s;
  s.file = "inline.json";
  s.polling = PollingArch{};
  s.queue = QueueArch{};
  s.gates = {parse_gate("lost == 0"), parse_gate("queue.recovery.max <= 75s"), parse_gate("polling.stuck >= 0"),
             parse_gate("speedup.makespan >= 1")};
  return s;
}

nlohmann::json report_of(const Scenario& s, const std::vector<std::string>& archs, bool kill_recovered) {
  RunResult r;
  for (const auto& a : archs) {
    ArchResult ar;
    ar.name = a;
    ar.makespan_s = a == "queue" ? 10 : 100;
    if (kill_recovered) {
      ar.recovery_s.count = 1;
      ar.recovery_s.max = 30;
    }
    r.results.push_back(ar);
  }
  return report_json(r, s);
}

TEST(Verdict, GatesAboutAnArchitectureLeftOutAreSkippedNotFailed) {
  auto s = two_architectures();
  auto gates = gate_set(s, {"queue"}, {parse_gate("queue.makespan <= 20s")});
  EXPECT_EQ(gates.skipped, (std::vector<std::string>{"polling.stuck", "speedup.makespan"}));
  auto report = report_of(s, {"queue"}, true);
  EXPECT_TRUE(judge(report, gates, {}));
  EXPECT_EQ(report["gates"].size(), 3u);
  EXPECT_EQ(report["gates_skipped"].size(), 2u);
}

TEST(Verdict, AGateOverADistributionWithNoSamplesFailsWithNoData) {
  auto s = two_architectures();
  auto gates = gate_set(s, {"polling", "queue"}, {});
  auto report = report_of(s, {"polling", "queue"}, false);
  EXPECT_FALSE(judge(report, gates, {})) << "no kill landed on an order: the recovery gate has no evidence";
  for (const auto& g : report["gates"]) {
    if (g["name"] == "queue.recovery.max") {
      EXPECT_FALSE(g["passed"].get<bool>());
      EXPECT_TRUE(g.value("no_data", false));
      EXPECT_TRUE(g["value"].is_null());
    } else {
      EXPECT_TRUE(g["passed"].get<bool>()) << g.dump();
    }
  }
  EXPECT_NE(render_markdown(report).find("no data"), std::string::npos);
  auto with_data = report_of(s, {"polling", "queue"}, true);
  EXPECT_TRUE(judge(with_data, gates, {}));
}

TEST(Verdict, AGateNoReportWouldHaveIsRefusedBeforeTheRun) {
  auto s = two_architectures();
  EXPECT_THROW(gate_set(s, {"queue"}, {parse_gate("queue.no_such_field <= 1")}), ScenarioError);
}

TEST(Verdict, FaultCountsAreMetricsEvenWhenTheFaultNeverFired) {
  auto s = two_architectures();
  auto gates = gate_set(s, {"queue"}, {parse_gate("queue.fault_counts.kill_process >= 1")});
  auto report = report_of(s, {"queue"}, true);
  EXPECT_FALSE(judge(report, gates, {})) << "a fault scenario whose fault never fired proves nothing";
}

// run_judged with up to two reruns over attempts made by `attempt(n)`, n from 1; how many ran.
int attempts_judged(const GateSet& gates, const std::function<nlohmann::json(int)>& attempt, nlohmann::json& report) {
  VerdictOptions o;
  o.rerun_if_disturbed = 2;
  int n = 0;
  report = run_judged([&] { return attempt(++n); }, gates, o);
  return n;
}

TEST(Verdict, ADisturbedRunRunsAgainOnlyForTimingGates) {
  auto s = two_architectures();
  s.gates = {parse_gate("queue.makespan <= 5s")};
  nlohmann::json report;
  const int attempts = attempts_judged(gate_set(s, {"queue"}, {}), [&](int n) {
    auto r = report_of(s, {"queue"}, true);
    r["host_steal_share"] = n < 2 ? 0.2 : 0.0;
    r["results"]["queue"]["makespan_s"] = n < 2 ? 10.0 : 4.0;
    return r;
  }, report);
  EXPECT_EQ(attempts, 2);
  EXPECT_TRUE(report["passed"].get<bool>());
  EXPECT_EQ(report["disturbed_attempts"].size(), 1u);
}

TEST(Verdict, RerunIfSlowRunsAgainForTimingGatesWhateverTheSteal) {
  auto s = two_architectures();
  s.gates = {parse_gate("queue.makespan <= 5s")};
  VerdictOptions o;
  o.rerun_if_slow = 2;
  int n = 0;
  auto report = run_judged([&] {
    ++n;
    auto r = report_of(s, {"queue"}, true);
    r["host_steal_share"] = 0.0;
    r["results"]["queue"]["makespan_s"] = n < 3 ? 10.0 : 4.0;
    return r;
  }, gate_set(s, {"queue"}, {}), o);
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(report["passed"].get<bool>());
  EXPECT_EQ(report["disturbed_attempts"].size(), 2u);

  n = 0;  // a timing figure that fails every attempt fails
  report = run_judged([&] {
    ++n;
    auto r = report_of(s, {"queue"}, true);
    r["results"]["queue"]["makespan_s"] = 10.0;
    return r;
  }, gate_set(s, {"queue"}, {}), o);
  EXPECT_EQ(n, 3);
  EXPECT_FALSE(report["passed"].get<bool>());

  n = 0;  // a correctness gate is never run again
  s.gates = {parse_gate("queue.stuck >= 1")};
  report = run_judged([&] {
    ++n;
    return report_of(s, {"queue"}, true);
  }, gate_set(s, {"queue"}, {}), o);
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(report["passed"].get<bool>());
}

TEST(Verdict, AGateWithNoDataIsNeverRunAgain) {
  auto s = two_architectures();
  s.gates = {parse_gate("queue.recovery.max <= 75s")};
  nlohmann::json report;
  const int attempts = attempts_judged(gate_set(s, {"queue"}, {}), [&](int) {
    auto r = report_of(s, {"queue"}, false);
    r["host_steal_share"] = 0.2;
    return r;
  }, report);
  EXPECT_EQ(attempts, 1) << "a missing kill is no busy host's doing";
  EXPECT_FALSE(report["passed"].get<bool>());
}

}  // namespace
}  // namespace qsim::sim
