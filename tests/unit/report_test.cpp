// The report module without a run: percentiles, metric names, gates, claims and renderings on
// a hand-made result whose numbers are known.
#include "qsim/sim/report.h"
#include "qsim/sim/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

using namespace qsim::sim;
using json = nlohmann::json;

namespace {

ArchResult arch(const std::string& name, int workers, double makespan_s) {
  ArchResult a;
  a.name = name;
  a.workers = workers;
  a.makespan_s = makespan_s;
  a.wait_first_s = 3600;
  a.wait_last_s = makespan_s;
  a.e2e_s = percentiles({3600, 7200, makespan_s});
  a.checker.orders = 3;
  a.checker.completed = 3;
  a.store_queries_per_idle_day = name == "polling" ? 8640 : 0;
  for (int i = 0; i < 3; ++i) {
    OrderRecord o;
    o.id = "order-" + std::to_string(i);
    o.download_plan_s = 3300;
    o.upload_plan_s = 300;
    o.status = "completed";
    o.stages_s = {{"paid", 0}, {"processing", i * 3600.0 / workers}, {"completed", (i + 1) * 3600.0 / workers}};
    a.orders.push_back(o);
  }
  a.timeline = {{0, 3, 0}, {1800, 2, 1}, {3600, 0, 0}};
  return a;
}

const Scenario kNoScenario;  // no claims: they need a burst scenario with both architectures

RunResult result() {
  RunResult r;
  r.scenario = "three";
  r.seed = 1;
  r.speedup = 1000;
  r.resolution_s = 1;
  r.results = {arch("polling", 1, 10'800), arch("queue", 3, 3600)};
  return r;
}

}  // namespace

TEST(Percentiles, ExactNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  auto p = percentiles(v);
  EXPECT_EQ(p.count, 100u);
  EXPECT_EQ(p.p50, 50);
  EXPECT_EQ(p.p90, 90);
  EXPECT_EQ(p.p95, 95);
  EXPECT_EQ(p.p99, 99);
  EXPECT_EQ(p.max, 100);
  EXPECT_DOUBLE_EQ(p.mean, 50.5);
  auto one = percentiles({7});
  EXPECT_EQ(one.p50, 7);
  EXPECT_EQ(one.p99, 7);
  EXPECT_EQ(percentiles({}).count, 0u);
}

// Many values take the bucketed selection: each figure must still be a full sort's.
TEST(Percentiles, ManyValuesAreExactlyASortsNearestRank) {
  std::mt19937_64 rng(11);
  std::exponential_distribution<double> exp(1.0 / 600);
  std::uniform_real_distribution<double> narrow(100.0, 100.0 + 1e-9);
  const std::vector<std::function<double(int)>> shapes = {
      [&](int) { return exp(rng); },                                      // wide, heavy-tailed
      [&](int i) { return i % 3 == 0 ? 0.0 : exp(rng); },                 // a third at exactly 0 (waits)
      [&](int i) { return i % 2 ? -exp(rng) : exp(rng) * 1e-12; },        // negative and tiny values
      [&](int) { return narrow(rng); },                                   // all in one bucket
      [&](int) { return 42.0; },                                          // all equal
      [&](int i) { return static_cast<double>((i * 7919) % 5000); },      // integers, many ties
  };
  for (std::size_t s = 0; s < shapes.size(); ++s)
    for (int n : {4096, 4097, 100'003}) {
      std::vector<double> v(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = shapes[s](i);
      auto sorted = v;
      std::sort(sorted.begin(), sorted.end());
      auto rank = [&](double q) { return sorted[static_cast<std::size_t>(std::ceil(q * n) - 1)]; };
      const auto p = percentiles(v);
      EXPECT_EQ(p.count, static_cast<std::size_t>(n));
      EXPECT_EQ(p.p50, rank(0.50)) << "shape " << s << ", " << n << " values";
      EXPECT_EQ(p.p90, rank(0.90)) << "shape " << s << ", " << n << " values";
      EXPECT_EQ(p.p95, rank(0.95)) << "shape " << s << ", " << n << " values";
      EXPECT_EQ(p.p99, rank(0.99)) << "shape " << s << ", " << n << " values";
      EXPECT_EQ(p.max, sorted.back()) << "shape " << s << ", " << n << " values";
      double sum = 0;
      for (double x : v) sum += x;  // the values' own order
      EXPECT_EQ(p.mean, sum / n) << "shape " << s << ", " << n << " values";
    }
}

TEST(Report, MetricNamesResolveAgainstTheJson) {
  auto rep = report_json(result(), kNoScenario);
  EXPECT_EQ(metric_value(rep, "queue.makespan"), 3600);
  EXPECT_EQ(metric_value(rep, "queue.makespan_s"), 3600);
  EXPECT_EQ(metric_value(rep, "polling.e2e.p50"), 7200);
  EXPECT_EQ(metric_value(rep, "speedup.makespan"), 3);
  EXPECT_EQ(metric_value(rep, "completed"), 6) << "a bare checker field sums the architectures";
  EXPECT_EQ(metric_value(rep, "queue.completed"), 3);
  EXPECT_EQ(metric_value(rep, "lost"), 0);
  EXPECT_EQ(metric_value(rep, "claims_failed"), 0);
  EXPECT_FALSE(metric_value(rep, "queue.makespam"));
  EXPECT_FALSE(metric_value(rep, "sidekiq.makespan"));
  EXPECT_FALSE(metric_value(rep, "queue.e2e.p42"));
  EXPECT_FALSE(metric_value(rep, "nonsense"));
}

TEST(Report, GatesPassFailAndRefuseUnknownMetrics) {
  auto rep = report_json(result(), kNoScenario);
  std::vector<Gate> gates{parse_gate("queue.makespan<=61m"), parse_gate("speedup.makespan >= 9"),
                          parse_gate("lost==0")};
  auto g = evaluate_gates(rep, gates, "test");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_TRUE(g[0]["passed"]);
  EXPECT_EQ(g[0]["threshold"], 3660);
  EXPECT_FALSE(g[1]["passed"]) << "3x is not >= 9";
  EXPECT_TRUE(g[2]["passed"]);
  EXPECT_THROW(evaluate_gates(rep, {parse_gate("queue.makespam<=1m")}, "test"), ScenarioError);
  EXPECT_THROW(check_gate_metrics({parse_gate("speedup.makespan>=2")}, {"queue"}, "x.json"), ScenarioError);
  EXPECT_NO_THROW(check_gate_metrics({parse_gate("speedup.makespan>=2")}, {"polling", "queue"}, "x.json"));
  EXPECT_THROW(parse_gate("queue.makespan"), ScenarioError) << "no operator";
  EXPECT_THROW(parse_gate("queue.makespan <= soon"), ScenarioError);
}

TEST(Report, BaselineGatesAllowTheRegressionAndNoMore) {
  auto base = report_json(result(), kNoScenario);
  auto r = result();
  r.results[1].makespan_s = 3600 * 1.09;  // +9 %
  auto ok = baseline_gates(report_json(r, kNoScenario), base, 10);
  r.results[1].makespan_s = 3600 * 1.2;  // +20 %
  auto bad = baseline_gates(report_json(r, kNoScenario), base, 10);
  auto find = [](const json& gates, const std::string& name) {
    for (const auto& g : gates)
      if (g["name"] == name) return g;
    return json();
  };
  EXPECT_TRUE(find(ok, "baseline:queue.makespan_s")["passed"]);
  EXPECT_FALSE(find(bad, "baseline:queue.makespan_s")["passed"]);
  EXPECT_TRUE(find(bad, "baseline:polling.makespan_s")["passed"]);
}

TEST(Report, ClaimsComeFromTheIdealScheduleOfTheSameOrders) {
  Scenario s;
  s.polling = PollingArch{};
  s.queue = QueueArch{};
  auto r = result();
  r.results[0].probe_pickup_s = percentiles({1, 4, 5, 6, 9});
  r.results[1].probe_pickup_s = percentiles({0.001, 0.002});
  auto rep = report_json(r, s);
  ASSERT_FALSE(rep["claims"].empty());
  const auto& makespan_polling = rep["claims"][0];
  EXPECT_EQ(makespan_polling["architecture"], "polling");
  EXPECT_EQ(makespan_polling["expected_value"], 3 * 3600) << "three 60-minute orders, one worker";
  EXPECT_TRUE(makespan_polling["holds"]);
  EXPECT_EQ(rep["claims"][1]["expected_value"], 3600) << "three orders, three workers";
  EXPECT_EQ(rep["claims_failed"], 0);
  s.arrival.kind = Arrival::Kind::poisson;
  EXPECT_TRUE(report_json(r, s)["claims"].empty()) << "the seeds' claims are about a burst";
}

TEST(Report, RenderingsCarryTheNumbersAndOneTestCasePerGate) {
  auto rep = report_json(result(), kNoScenario);
  rep["gates"] = evaluate_gates(rep, {parse_gate("queue.makespan<=61m"), parse_gate("speedup.makespan>=9")}, "t");
  rep["passed"] = false;
  auto md = render_markdown(rep);
  EXPECT_NE(md.find("GATES FAILED"), std::string::npos);
  EXPECT_NE(md.find("| time to finish all orders | 180.0 min | 60.0 min | 3.00× |"), std::string::npos) << md;
  auto html = render_html(rep);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_GE(std::count(html.begin(), html.end(), '<') - 0, 100);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("Latency CDF"), std::string::npos);
  EXPECT_NE(html.find("per-order timeline"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "self-contained and static";
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg")) << "no external resources";
  // it shows before it tells: verdict and headline comparison, then the charts, then the tables
  const auto charts = html.find("<h2>Charts</h2>");
  ASSERT_NE(charts, std::string::npos);
  EXPECT_LT(html.find("<h2>Polling vs queue</h2>"), charts);
  EXPECT_GT(html.find("<h2>Checker</h2>"), charts);
  EXPECT_GT(html.find("<h2>Gates</h2>"), charts);
  EXPECT_LT(html.find("Failed gates: speedup.makespan"), charts) << "a failed gate is named at the top";
  auto junit = render_junit(rep);
  EXPECT_NE(junit.find("tests=\"2\" failures=\"1\""), std::string::npos) << junit;
  std::size_t cases = 0;
  for (auto at = junit.find("<testcase"); at != std::string::npos; at = junit.find("<testcase", at + 1)) ++cases;
  EXPECT_EQ(cases, 2u);
  EXPECT_NE(junit.find("<failure message=\"speedup.makespan = 3, expected &gt;= 9\"/>"), std::string::npos) << junit;
}

// Only a timing gate may be run again when the host disturbed a run; a lost order never is.
TEST(Report, TimingGatesAreToldFromCorrectnessGates) {
  Scenario s;
  s.polling = PollingArch{};
  s.queue = QueueArch{};
  auto r = result();
  r.results[1].makespan_s = 3600 * 1.2;  // the queue's makespan claim fails
  auto rep = report_json(r, s);
  ASSERT_EQ(rep["claims_failed"], 1);
  auto gate = [](const std::string& name) { return json{{"name", name}, {"passed", false}}; };
  for (const char* name : {"queue.makespan", "polling.e2e.p95", "queue.probe_pickup.p99", "speedup.makespan",
                           "polling.store_queries_per_idle_day", "queue.wait_first_s", "baseline:queue.e2e_s.p95",
                           "queue.drain", "claims_failed"})
    EXPECT_TRUE(timing_gate(gate(name), rep)) << name;
  for (const char* name : {"lost", "stuck", "duplicate_effects", "queue.lost", "polling.stuck", "forged_accepted",
                           "queue.dead_letters", "queue.completed", "duplicate_jobs"})
    EXPECT_FALSE(timing_gate(gate(name), rep)) << name;
  rep["claims"].push_back({{"claim", "recovery from a worker crash"}, {"holds", false}});
  EXPECT_FALSE(timing_gate(gate("claims_failed"), rep)) << "an order never redelivered is not a matter of timing";
}

TEST(Report, AnArchitectureAtItsOwnSpeedupIsSaidSo) {
  auto r = result();
  r.results[0].speedup = 1000;
  r.results[0].resolution_s = 1;
  r.results[1].speedup = 250;
  r.results[1].resolution_s = 0.25;
  r.host_steal_share = 0.2;
  auto rep = report_json(r, kNoScenario);
  EXPECT_EQ(rep["results"]["queue"]["speedup"], 250);
  rep["gates"] = json::array();
  rep["passed"] = true;
  auto md = render_markdown(rep);
  EXPECT_NE(md.find("speedup 1000 (resolution 1 simulated s); queue at speedup 250 (resolution 0.25 s)"),
            std::string::npos) << md;
  EXPECT_NE(md.find("The host took 20 % of this machine's CPU time"), std::string::npos) << md;
}

TEST(Report, ARunIsRunAgainOnlyWhenTheHostTookTheCpuAndOnlyTimingGatesFailed) {
  auto r = result();
  r.results[1].host_steal_share = 0.18;  // the queue's run, disturbed; the whole run looks calm
  r.host_steal_share = 0.01;
  auto rep = report_json(r, kNoScenario);
  EXPECT_DOUBLE_EQ(busiest_steal_share(rep), 0.18);
  rep["gates"] = evaluate_gates(rep, {parse_gate("queue.makespan<=30m"), parse_gate("lost==0")}, "t");
  EXPECT_TRUE(disturbed_run(rep)) << "a makespan gate failed while the host took 18 %";
  rep["gates"] = evaluate_gates(rep, {parse_gate("queue.makespan<=30m"), parse_gate("lost>=1")}, "t");
  EXPECT_FALSE(disturbed_run(rep)) << "a correctness gate failed too";
  rep["gates"] = evaluate_gates(rep, {parse_gate("queue.makespan<=90m")}, "t");
  EXPECT_FALSE(disturbed_run(rep)) << "nothing failed";
  r.results[1].host_steal_share = 0.01;
  rep = report_json(r, kNoScenario);
  rep["gates"] = evaluate_gates(rep, {parse_gate("queue.makespan<=30m")}, "t");
  EXPECT_FALSE(disturbed_run(rep)) << "a calm host: the failure stands";
}

// Per-stage latency of each completed order's last attempt, in the JSON and the Markdown.
TEST(Report, PerStageLatencyForEveryArchitecture) {
  RunResult r = result();
  for (auto& a : r.results) {
    for (auto& o : a.orders) {
      const double picked = *o.stages_s.get("processing");
      o.payment_accepted = true;
      o.stages_s = {{"paid", 0}, {"processing", picked}, {"downloading", picked + 1}, {"uploading", picked + 3301},
                    {"finalizing", picked + 3601}, {"completed", picked + 3603}};
    }
    summarize(a, 0, 0);
  }
  auto rep = report_json(r, kNoScenario);
  for (const char* arch : {"polling", "queue"}) {
    const auto& st = rep["results"][arch]["stages_s"];
    EXPECT_EQ(st["download"]["count"], 3);
    EXPECT_DOUBLE_EQ(st["download"]["p50"].get<double>(), 3300);
    EXPECT_DOUBLE_EQ(st["upload"]["p95"].get<double>(), 300);
    EXPECT_DOUBLE_EQ(st["finalize"]["max"].get<double>(), 2);
    EXPECT_EQ(st["pickup"], rep["results"][arch]["pickup_s"]);
  }
  EXPECT_NE(render_markdown(rep).find("| download stage (3) |"), std::string::npos) << render_markdown(rep);
}

TEST(Report, LoadOverTimeFromCounterReadingsAndOrders) {
  // readings every 100 simulated seconds; Redis restarted between the third and the fourth
  std::vector<LoadSample> samples{{0, 0, 0}, {100, 500, 10}, {200, 1500, 30}, {300, 200, 40}, {400, 700, 50}};
  std::vector<OrderRecord> orders(3);
  orders[0].status = "completed";
  orders[0].stages_s = {{"paid", 0}, {"processing", 50}, {"completed", 250}};
  orders[1].status = "paid";  // never picked up: not busy
  orders[1].stages_s = {{"paid", 0}};
  orders[2].status = "processing";  // still in work at the end: busy to the last reading
  orders[2].stages_s = {{"paid", 0}, {"processing", 300}};
  auto load = load_series(samples, orders, 2);
  ASSERT_EQ(load.size(), 4u);
  EXPECT_DOUBLE_EQ(load[0].redis_commands_per_s, 5);
  EXPECT_DOUBLE_EQ(load[1].redis_commands_per_s, 10);
  EXPECT_LT(load[2].redis_commands_per_s, 0) << "the restart's window has no rate";
  EXPECT_DOUBLE_EQ(load[3].redis_commands_per_s, 5);
  EXPECT_DOUBLE_EQ(load[2].store_queries_per_s, 0.1);
  EXPECT_DOUBLE_EQ(load[0].worker_utilisation, 0.25);  // one of two workers, half the window
  EXPECT_DOUBLE_EQ(load[1].worker_utilisation, 0.5);
  EXPECT_DOUBLE_EQ(load[2].worker_utilisation, 0.25);
  EXPECT_DOUBLE_EQ(load[3].worker_utilisation, 0.5);

  // merged into two windows: rates over the whole window, none where a part had none
  auto merged = load_series(samples, orders, 2, 2);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_DOUBLE_EQ(merged[0].dt_s, 200);
  EXPECT_DOUBLE_EQ(merged[0].redis_commands_per_s, 7.5);
  EXPECT_LT(merged[1].redis_commands_per_s, 0);
  EXPECT_DOUBLE_EQ(merged[1].worker_utilisation, 0.375);
  EXPECT_TRUE(load_series({{0, 0, 0}}, orders, 2).empty()) << "one reading is no window";

  RunResult r = result();
  r.results[1].load = load;
  auto rep = report_json(r, kNoScenario);
  EXPECT_FALSE(rep["results"]["polling"].contains("load")) << "no readings, no series";
  const auto& l = rep["results"]["queue"]["load"];
  EXPECT_EQ(l["t_s"].size(), 4u);
  EXPECT_TRUE(l["redis_commands_per_s"][2].is_null());
  const std::string md = render_markdown(rep);
  EXPECT_NE(md.find("| from (simulated) | for | Redis commands / s | store queries / s | worker utilisation |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 1.7 min | 1.7 min | 10 | 0.2 | 50 % |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 3.3 min | 1.7 min | - | 0.1 | 25 % |"), std::string::npos) << md;
  const std::string html = render_html(rep);
  EXPECT_NE(html.find("Redis commands per simulated second"), std::string::npos);
  EXPECT_NE(html.find("Worker utilisation"), std::string::npos);
  EXPECT_EQ(html.find("nan"), std::string::npos) << "an unmeasured window breaks the line, it draws no NaN";
}
