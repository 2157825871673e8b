#include "qsim/sim/planner.h"

#include "qsim/sim/report.h"
#include "qsim/sim/workload.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>

namespace qsim::sim {

namespace {

using json = nlohmann::json;

double slo_value(const ArchResult& r, const std::string& metric) {
  const auto& p = metric.rfind("e2e", 0) == 0 ? r.e2e_s : r.pickup_s;
  const std::string q = metric.substr(metric.find('_') + 1);
  return q == "p50" ? p.p50 : q == "p90" ? p.p90 : q == "p95" ? p.p95 : p.p99;
}

std::string mins(double s) { return std::isfinite(s) ? fmt::format("{:.1f}", s / 60) : "∞"; }

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

  json points = json::array(), recommendations = json::array(), knees = json::array();
  std::map<int, double> knee;
  for (double rate : spec.rates_per_h) {
    json best;
    for (int w : spec.workers) {
      Scenario s = scenario;
      s.polling.reset();
      if (!s.queue) s.queue = QueueArch{};
      s.queue->workers = w;
      s.faults.clear();
      s.gates.clear();
      s.arrival = Arrival{};
      s.arrival.kind = Arrival::Kind::poisson;
      s.arrival.rate_per_h = rate;
      s.orders = spec.orders;
      ModelOptions o;
      o.keep_orders = false;
      const auto result = run_model(s, o);
      const ArchResult& r = result.results.front();
      const double utilisation = rate / 3600 * mean_service_s / w;
      const bool stable = utilisation < 0.99 && r.peak_backlog < 0.05 * spec.orders;
      const double value = slo_value(r, spec.slo_metric);
      const bool meets = stable && value <= spec.slo_max_s;
      const auto ec = erlang_c(rate / 3600, 1 / mean_service_s, w);
      json p{{"rate_per_h", rate},
             {"workers", w},
             {"utilisation", utilisation},
             {"wait_s", {{"p50", r.pickup_s.p50}, {"p95", r.pickup_s.p95}, {"p99", r.pickup_s.p99}, {"mean", r.pickup_s.mean}}},
             {"e2e_s", {{"p50", r.e2e_s.p50}, {"p95", r.e2e_s.p95}, {"p99", r.e2e_s.p99}}},
             {"p_wait", r.p_wait},
             {"peak_backlog", r.peak_backlog},
             {"makespan_s", r.makespan_s},
             {"stable", stable},
             {"slo_value_s", value},
             {"meets_slo", meets},
             {"erlang_c",
              {{"exact", mmc_like},
               {"p_wait", ec.p_wait},
               {"mean_wait_s", std::isfinite(ec.mean_wait_s) ? json(ec.mean_wait_s) : json(nullptr)}}}};
      if (spec.cost_per_worker_hour) p["cost"] = *spec.cost_per_worker_hour * w * r.makespan_s / 3600;
      if (stable) knee[w] = std::max(knee[w], rate);
      if (meets && best.is_null())
        best = {{"rate_per_h", rate}, {"workers", w}, {"slo_value_s", value}, {"headroom", 1 - value / spec.slo_max_s},
                {"utilisation", utilisation}};
      points.push_back(p);
    }
    if (best.is_null()) best = {{"rate_per_h", rate}, {"workers", nullptr}, {"note", "no worker count in the plan meets the SLO"}};
    recommendations.push_back(best);
  }
  for (int w : spec.workers)
    knees.push_back({{"workers", w}, {"max_stable_rate_per_h", knee.count(w) ? json(knee[w]) : json(nullptr)},
                     {"capacity_per_h", 3600 / mean_service_s * w}});
  return {{"schema_version", 1},
          {"kind", "plan"},
          {"scenario", scenario.name},
          {"seed", scenario.seed},
          {"slo", {{"metric", spec.slo_metric}, {"max_s", spec.slo_max_s}}},
          {"orders_per_point", spec.orders},
          {"mean_service_s", mean_service_s},
          {"mmc_like", mmc_like},
          {"cost_per_worker_hour", spec.cost_per_worker_hour ? json(*spec.cost_per_worker_hour) : json(nullptr)},
          {"points", points},
          {"recommendations", recommendations},
          {"knees", knees},
          {"method",
           "discrete-event model of the queue architecture (sim model), Poisson arrivals at each rate, the scenario's "
           "stage durations and failures, no faults; Erlang C " +
               std::string(mmc_like ? "exact (the service is exponential)"
                                    : "is the M/M/c approximation with the same mean service, not exact here")}};
}

std::string render_plan_markdown(const json& plan) {
  std::ostringstream md;
  md << "# Capacity plan: " << plan["scenario"].get<std::string>() << "\n\n";
  md << fmt::format("SLO: {} ≤ {} min. Mean service {} min. {} simulated orders per point, seed {}.\n\n",
                    plan["slo"]["metric"].get<std::string>(), mins(plan["slo"]["max_s"]), mins(plan["mean_service_s"]),
                    plan["orders_per_point"].get<int>(), plan["seed"].get<std::uint64_t>());
  md << "Method: " << plan["method"].get<std::string>() << ".\n\n";
  md << "## Smallest worker count meeting the SLO\n\n| orders per hour | workers | SLO value (min) | headroom | utilisation |\n"
        "|---:|---:|---:|---:|---:|\n";
  for (const auto& r : plan["recommendations"]) {
    if (r["workers"].is_null()) {
      md << "| " << r["rate_per_h"].get<double>() << " | none in the plan | | | |\n";
      continue;
    }
    md << fmt::format("| {:g} | {} | {} | {:.0f} % | {:.2f} |\n", r["rate_per_h"].get<double>(), r["workers"].get<int>(),
                      mins(r["slo_value_s"]), r["headroom"].get<double>() * 100, r["utilisation"].get<double>());
  }
  md << "\n## Knee: the highest planned rate each worker count keeps up with\n\n| workers | capacity (orders/h) | "
        "highest stable planned rate |\n|---:|---:|---:|\n";
  for (const auto& k : plan["knees"])
    md << fmt::format("| {} | {:.1f} | {} |\n", k["workers"].get<int>(), k["capacity_per_h"].get<double>(),
                      k["max_stable_rate_per_h"].is_null() ? std::string("none")
                                                           : fmt::format("{:g}", k["max_stable_rate_per_h"].get<double>()));
  const bool cost = !plan["cost_per_worker_hour"].is_null();
  md << "\n## Every point\n\n| rate/h | workers | util. | wait p50 | wait p95 | wait p99 | e2e p95 | P(wait) | Erlang C "
        "P(wait) | Erlang C mean wait | model mean wait | peak backlog | makespan (h) |"
     << (cost ? " cost |" : "") << " stable | SLO |\n"
     << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" << (cost ? "---:|" : "") << "---|---|\n";
  for (const auto& p : plan["points"]) {
    const auto& ec = p["erlang_c"];
    md << fmt::format("| {:g} | {} | {:.2f} | {} | {} | {} | {} | {:.3f} | {} | {} | {} | {} | {:.1f} |", p["rate_per_h"].get<double>(),
                      p["workers"].get<int>(), p["utilisation"].get<double>(), mins(p["wait_s"]["p50"]),
                      mins(p["wait_s"]["p95"]), mins(p["wait_s"]["p99"]), mins(p["e2e_s"]["p95"]), p["p_wait"].get<double>(),
                      fmt::format("{:.3f}{}", ec["p_wait"].get<double>(), ec["exact"].get<bool>() ? "" : "≈"),
                      ec["mean_wait_s"].is_null() ? "∞" : mins(ec["mean_wait_s"]) + (ec["exact"].get<bool>() ? "" : "≈"),
                      mins(p["wait_s"]["mean"]), p["peak_backlog"].get<int>(), p["makespan_s"].get<double>() / 3600);
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
