#include "qsim/sim/planner.h"

#include "qsim/sim/random.h"
#include "qsim/sim/report.h"
#include "qsim/sim/stats.h"
#include "qsim/sim/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace qsim::sim {

namespace {

using json = nlohmann::json;

double slo_value(const ArchResult& r, const std::string& metric) {
  const auto& p = metric.rfind("e2e", 0) == 0 ? r.e2e_s : r.pickup_s;
  const std::string q = metric.substr(metric.find('_') + 1);
  return q == "p50" ? p.p50 : q == "p90" ? p.p90 : q == "p95" ? p.p95 : p.p99;
}

std::string mins(double s) { return std::isfinite(s) ? fmt::format("{:.1f}", s / 60) : "∞"; }

// One plan point's replications, summarised. Skipped: the offered load alone makes it unstable.
struct PointRuns {
  bool skipped = false;
  bool stable = false;
  Replicated slo, wait_p50, wait_p95, wait_p99, wait_mean, e2e_p50, e2e_p95, e2e_p99, p_wait, makespan;
  int peak_backlog = 0;  // the largest of any replication
};

PointRuns run_point(const Scenario& scenario, const PlanSpec& spec, double rate, int workers, double utilisation) {
  PointRuns out;
  if (utilisation >= 0.99) {
    out.skipped = true;
    return out;
  }
  Scenario s = scenario;
  s.polling.reset();
  if (!s.queue) s.queue = QueueArch{};
  s.queue->workers = workers;
  s.faults.clear();
  s.gates.clear();
  s.arrival = Arrival{};
  s.arrival.kind = Arrival::Kind::poisson;
  s.arrival.rate_per_h = rate;
  s.orders = spec.orders;
  std::vector<double> slo, w50, w95, w99, wmean, e50, e95, e99, pw, mk;
  out.stable = true;
  for (int k = 0; k < spec.replications; ++k) {
    ModelOptions o;
    o.keep_orders = false;
    // the same seeds at every point (common random numbers): worker counts are compared on the
    // same arrivals and durations, so their difference is not sampling noise
    o.seed = fork_seed(scenario.seed, "plan-replication", k);
    const auto result = run_model(s, o);
    const ArchResult& r = result.results.front();
    out.stable = out.stable && r.peak_backlog < 0.05 * spec.orders;
    out.peak_backlog = std::max(out.peak_backlog, r.peak_backlog);
    slo.push_back(slo_value(r, spec.slo_metric));
    w50.push_back(r.pickup_s.p50);
    w95.push_back(r.pickup_s.p95);
    w99.push_back(r.pickup_s.p99);
    wmean.push_back(r.pickup_s.mean);
    e50.push_back(r.e2e_s.p50);
    e95.push_back(r.e2e_s.p95);
    e99.push_back(r.e2e_s.p99);
    pw.push_back(r.p_wait);
    mk.push_back(r.makespan_s);
  }
  out.slo = replicated_95(slo);
  out.wait_p50 = replicated_95(w50);
  out.wait_p95 = replicated_95(w95);
  out.wait_p99 = replicated_95(w99);
  out.wait_mean = replicated_95(wmean);
  out.e2e_p50 = replicated_95(e50);
  out.e2e_p95 = replicated_95(e95);
  out.e2e_p99 = replicated_95(e99);
  out.p_wait = replicated_95(pw);
  out.makespan = replicated_95(mk);
  return out;
}

}  // namespace

json plan_capacity(const Scenario& scenario) {
  if (!scenario.plan) throw ScenarioError(scenario.file, "$.plan", "a plan section for `sim plan` (see scenarios/schema.json)");
  const PlanSpec& spec = *scenario.plan;
  // the mean service time of the scenario's job, from a large seeded sample
  Stream rng(scenario.seed, "plan-service");
  double sum = 0;
  const int samples = 200'000;
  for (int i = 0; i < samples; ++i) sum += sample_s(scenario.download, rng) + sample_s(scenario.upload, rng);
  const double mean_service_s = sum / samples;
  const bool exponential = (scenario.download.kind == Distribution::Kind::exponential &&
                            scenario.upload.kind == Distribution::Kind::constant && scenario.upload.a_s == 0) ||
                           (scenario.upload.kind == Distribution::Kind::exponential &&
                            scenario.download.kind == Distribution::Kind::constant && scenario.download.a_s == 0);
  const bool failures = scenario.fail_download > 0 || scenario.fail_upload > 0 || scenario.fail_grant > 0 || scenario.fail_mail > 0;
  const bool mmc_like = exponential && !failures;

  // every point's replications, on as many threads as the machine has (each model run is
  // independent and deterministic, so the plan is the same whatever the thread count)
  struct Point {
    double rate;
    int workers;
    double utilisation;
    PointRuns runs;
  };
  std::vector<Point> grid;
  for (double rate : spec.rates_per_h)
    for (int w : spec.workers) grid.push_back({rate, w, rate / 3600 * mean_service_s / w, {}});
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
  auto work = [&] {
    for (std::size_t i; (i = next++) < grid.size();) {
      try {
        grid[i].runs = run_point(scenario, spec, grid[i].rate, grid[i].workers, grid[i].utilisation);
      } catch (...) {
        std::lock_guard lock(failure_mu);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);

  auto interval = [](const Replicated& m) {
    return json{{"mean", m.mean},
                {"stddev", m.stddev},
                {"mean_ci95", {m.ci_low, m.ci_high}},
                {"prediction95", {m.pi_low, m.pi_high}}};
  };
  json points = json::array(), recommendations = json::array(), knees = json::array();
  std::map<int, double> knee;
  std::map<double, json> best;
  for (const auto& g : grid) {
    const auto ec = erlang_c(g.rate / 3600, 1 / mean_service_s, g.workers);
    const PointRuns& r = g.runs;
    const bool stable = !r.skipped && r.stable && g.utilisation < 0.99;
    // One more replication, a run on a fresh seed, falls under the prediction interval's upper
    // bound 97.5 % of the time: a team provisioning this count meets its SLO that often. (The
    // mean's interval is narrower and says only where the mean lies: near the threshold, half
    // the runs under a mean just below the SLO miss it.)
    const bool meets = stable && r.slo.pi_high <= spec.slo_max_s;
    json p{{"rate_per_h", g.rate},
           {"workers", g.workers},
           {"utilisation", g.utilisation},
           {"stable", stable},
           {"meets_slo", meets},
           {"erlang_c",
            {{"exact", mmc_like},
             {"p_wait", ec.p_wait},
             {"mean_wait_s", std::isfinite(ec.mean_wait_s) ? json(ec.mean_wait_s) : json(nullptr)}}}};
    if (r.skipped) {
      p["modelled"] = false;
      p["note"] = "not modelled: utilisation >= 0.99, the backlog grows without bound";
    } else {
      p["modelled"] = true;
      p["wait_s"] = {{"p50", r.wait_p50.mean}, {"p95", r.wait_p95.mean}, {"p99", r.wait_p99.mean}, {"mean", r.wait_mean.mean}};
      p["e2e_s"] = {{"p50", r.e2e_p50.mean}, {"p95", r.e2e_p95.mean}, {"p99", r.e2e_p99.mean}};
      p["p_wait"] = r.p_wait.mean;
      p["peak_backlog"] = r.peak_backlog;
      p["makespan_s"] = r.makespan.mean;
      p["slo_value_s"] = r.slo.mean;
      p["slo_interval_s"] = interval(r.slo);
      if (spec.cost_per_worker_hour) p["cost"] = *spec.cost_per_worker_hour * g.workers * r.makespan.mean / 3600;
    }
    if (stable) knee[g.workers] = std::max(knee[g.workers], g.rate);
    if (meets && !best.count(g.rate))
      best[g.rate] = {{"rate_per_h", g.rate},
                      {"workers", g.workers},
                      {"slo_value_s", r.slo.mean},
                      {"slo_interval_s", interval(r.slo)},
                      {"headroom", 1 - r.slo.pi_high / spec.slo_max_s},
                      {"utilisation", g.utilisation}};
    points.push_back(p);
  }
  for (double rate : spec.rates_per_h)
    recommendations.push_back(best.count(rate) ? best[rate]
                                               : json{{"rate_per_h", rate},
                                                      {"workers", nullptr},
                                                      {"note", "no worker count in the plan meets the SLO"}});
  for (int w : spec.workers)
    knees.push_back({{"workers", w}, {"max_stable_rate_per_h", knee.count(w) ? json(knee[w]) : json(nullptr)},
                     {"capacity_per_h", 3600 / mean_service_s * w}});
  return {{"schema_version", 2},
          {"kind", "plan"},
          {"scenario", scenario.name},
          {"seed", scenario.seed},
          {"slo", {{"metric", spec.slo_metric}, {"max_s", spec.slo_max_s}}},
          {"orders_per_point", static_cast<long long>(spec.orders) * spec.replications},
          {"orders_per_replication", spec.orders},
          {"replications", spec.replications},
          {"confidence", 0.95},
          {"mean_service_s", mean_service_s},
          {"mmc_like", mmc_like},
          {"cost_per_worker_hour", spec.cost_per_worker_hour ? json(*spec.cost_per_worker_hour) : json(nullptr)},
          {"points", points},
          {"recommendations", recommendations},
          {"knees", knees},
          {"method",
           "discrete-event model of the queue architecture (sim model), Poisson arrivals at each rate, the scenario's "
           "stage durations and failures, no faults; " +
               std::to_string(spec.replications) + " independent replications of " + std::to_string(spec.orders) +
               " orders per point (seeds forked from the scenario's, the same at every point); a worker count meets "
               "the SLO when the upper bound of the 95 % prediction interval of its SLO value (where a run on a fresh "
               "seed falls) does, and is stable when every replication is; Erlang C " +
               std::string(mmc_like ? "exact (the service is exponential)"
                                    : "is the M/M/c approximation with the same mean service, not exact here")}};
}

std::string render_plan_markdown(const json& plan) {
  std::ostringstream md;
  md << "# Capacity plan: " << plan["scenario"].get<std::string>() << "\n\n";
  md << fmt::format("SLO: {} ≤ {} min. Mean service {} min. {} replications of {} simulated orders per point, seeds "
                    "forked from {}.\n\n",
                    plan["slo"]["metric"].get<std::string>(), mins(plan["slo"]["max_s"]), mins(plan["mean_service_s"]),
                    plan["replications"].get<int>(), plan["orders_per_replication"].get<int>(),
                    plan["seed"].get<std::uint64_t>());
  md << "Method: " << plan["method"].get<std::string>() << ".\n\n";
  auto ci = [](const json& i) {
    return fmt::format("{} ({}–{})", mins(i["mean"]), mins(i["mean_ci95"][0]), mins(i["mean_ci95"][1]));
  };
  auto pi = [](const json& i) { return fmt::format("{}–{}", mins(i["prediction95"][0]), mins(i["prediction95"][1])); };
  md << "## Smallest worker count meeting the SLO\n\nA worker count meets the SLO when the upper bound of the 95 % "
        "prediction interval of its SLO value (where a run on a fresh seed falls) does; the headroom is counted from "
        "that bound.\n\n"
        "| orders per hour | workers | SLO value: mean (95 % CI of the mean) | 95 % prediction interval | headroom | utilisation |\n"
        "|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : plan["recommendations"]) {
    if (r["workers"].is_null()) {
      md << "| " << r["rate_per_h"].get<double>() << " | none in the plan | | | | |\n";
      continue;
    }
    md << fmt::format("| {:g} | {} | {} | {} | {:.0f} % | {:.2f} |\n", r["rate_per_h"].get<double>(), r["workers"].get<int>(),
                      ci(r["slo_interval_s"]), pi(r["slo_interval_s"]), r["headroom"].get<double>() * 100,
                      r["utilisation"].get<double>());
  }
  md << "\n## Knee: the highest planned rate each worker count keeps up with\n\n| workers | capacity (orders/h) | "
        "highest stable planned rate |\n|---:|---:|---:|\n";
  for (const auto& k : plan["knees"])
    md << fmt::format("| {} | {:.1f} | {} |\n", k["workers"].get<int>(), k["capacity_per_h"].get<double>(),
                      k["max_stable_rate_per_h"].is_null() ? std::string("none")
                                                           : fmt::format("{:g}", k["max_stable_rate_per_h"].get<double>()));
  const bool cost = !plan["cost_per_worker_hour"].is_null();
  md << "\n## Every point\n\nMeans over the replications; the SLO column gives the mean's 95 % confidence interval "
        "and, after it, the 95 % prediction interval of one run.\n\n"
        "| rate/h | workers | util. | wait p50 | wait p95 | wait p99 | e2e p95 | SLO value (CI; prediction) | P(wait) | Erlang C "
        "P(wait) | Erlang C mean wait | model mean wait | peak backlog | makespan (h) |"
     << (cost ? " cost |" : "") << " stable | SLO |\n"
     << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" << (cost ? "---:|" : "") << "---|---|\n";
  for (const auto& p : plan["points"]) {
    const auto& ec = p["erlang_c"];
    const std::string erlang = fmt::format(
        "{:.3f}{} | {}", ec["p_wait"].get<double>(), ec["exact"].get<bool>() ? "" : "≈",
        ec["mean_wait_s"].is_null() ? "∞" : mins(ec["mean_wait_s"]) + (ec["exact"].get<bool>() ? "" : "≈"));
    if (!p["modelled"].get<bool>()) {
      md << fmt::format("| {:g} | {} | {:.2f} | | | | | not modelled: utilisation ≥ 0.99 | | {} | | | |",
                        p["rate_per_h"].get<double>(), p["workers"].get<int>(), p["utilisation"].get<double>(), erlang)
         << (cost ? " |" : "") << " **no** | — |\n";
      continue;
    }
    md << fmt::format("| {:g} | {} | {:.2f} | {} | {} | {} | {} | {} | {:.3f} | {} | {} | {} | {:.1f} |",
                      p["rate_per_h"].get<double>(), p["workers"].get<int>(), p["utilisation"].get<double>(),
                      mins(p["wait_s"]["p50"]), mins(p["wait_s"]["p95"]), mins(p["wait_s"]["p99"]), mins(p["e2e_s"]["p95"]),
                      ci(p["slo_interval_s"]) + "; " + pi(p["slo_interval_s"]), p["p_wait"].get<double>(), erlang,
                      mins(p["wait_s"]["mean"]),
                      p["peak_backlog"].get<int>(), p["makespan_s"].get<double>() / 3600);
    if (cost) md << fmt::format(" {:.2f} |", p["cost"].get<double>());
    md << " " << (p["stable"].get<bool>() ? "yes" : "**no**") << " | " << (p["meets_slo"].get<bool>() ? "met" : "—") << " |\n";
  }
  md << "\nTimes in simulated minutes; ≈ marks Erlang C values that approximate a service time that is not exponential.\n";
  return md.str();
}

std::string render_plan_html(const json& plan) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << escape_html(plan["scenario"])
    << " — capacity plan</title><style>body{font-family:sans-serif;max-width:1100px;margin:20px auto;color:#222}"
       "pre{white-space:pre-wrap;font-size:12px}</style></head><body>";
  h << "<h1>Capacity plan: " << escape_html(plan["scenario"]) << "</h1>";
  // the chart: the SLO metric against workers, one line per rate, the SLO dashed
  static const char* colors[] = {"#d9534f", "#0275d8", "#5cb85c", "#f0ad4e", "#6f42c1", "#20c997", "#343a40", "#e83e8c"};
  std::vector<ChartSeries> series;
  std::map<double, ChartSeries> by_rate;
  for (const auto& p : plan["points"]) {
    auto& s = by_rate[p["rate_per_h"].get<double>()];
    s.name = fmt::format("{:g} orders/h", p["rate_per_h"].get<double>());
    if (!p["stable"].get<bool>()) continue;  // an unstable point has no steady value to draw
    s.x.push_back(p["workers"].get<int>());
    s.y.push_back(p["slo_value_s"].get<double>() / 60);
  }
  std::size_t c = 0;
  for (auto& [rate, s] : by_rate) {
    s.color = colors[c++ % 8];
    series.push_back(s);
  }
  h << svg_chart(plan["slo"]["metric"].get<std::string>() + " (minutes) against workers, stable points; dashed: the SLO",
                 series, "workers", "simulated minutes", {}, plan["slo"]["max_s"].get<double>() / 60);
  h << "<pre>" << escape_html(render_plan_markdown(plan)) << "</pre></body></html>\n";
  return h.str();
}

std::vector<std::string> write_plan(const json& plan, const std::string& dir, const std::vector<std::string>& formats) {
  std::vector<std::string> written;
  for (const auto& f : formats) {
    const std::string text = f == "json"   ? plan.dump(1) + "\n"
                             : f == "md"   ? render_plan_markdown(plan)
                             : f == "html" ? render_plan_html(plan)
                                           : throw ScenarioError("--format", f, "expected md, json or html");
    written.push_back(write_file(dir, "plan." + f, text));
  }
  return written;
}

}  // namespace qsim::sim
