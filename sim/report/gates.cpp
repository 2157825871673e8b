#include "qsim/sim/report.h"

#include "internal.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>


namespace qsim::sim {

using namespace report_detail;

namespace {

// An architecture's field as a gate names it: as written, or with "_s" (queue.makespan).
std::string field_of(const json& arch, const std::string& name) { return arch.contains(name) ? name : name + "_s"; }

}  // namespace

std::optional<double> metric_value(const json& report, const std::string& name) {
  auto parts = split(name, '.');
  const bool checker_field = std::find(kCheckerFields.begin(), kCheckerFields.end(), parts.back()) != kCheckerFields.end();
  if (parts.size() == 1) {
    if (name == "claims_failed") return lookup(report, {"claims_failed"});
    if (!checker_field || !report.contains("results")) return std::nullopt;
    double sum = 0;
    for (const auto& [arch, r] : report["results"].items()) sum += lookup(r, {"checker", name}).value_or(0);
    return sum;
  }
  if (parts[0] == "speedup") {
    std::string rest = name.substr(8);
    auto p = metric_value(report, "polling." + rest), q = metric_value(report, "queue." + rest);
    if (!p || !q) return std::nullopt;
    return *q == 0 ? NAN : *p / *q;
  }
  if (!report.contains("results") || !report["results"].contains(parts[0])) return std::nullopt;
  const json& r = report["results"][parts[0]];
  if (parts.size() == 2 && checker_field) return lookup(r, {"checker", parts[1]});
  // Counts by name, 0 for a name never counted: <arch>.fault_counts.<kind> (how often a fault
  // kind fired), <arch>.payment_refusals.<result> (deliveries the intake refused, by its answer)
  if (parts.size() == 3 && (parts[1] == "fault_counts" || parts[1] == "payment_refusals"))
    return r.contains(parts[1]) ? r[parts[1]].value(parts[2], 0.0) : 0.0;
  std::vector<std::string> path{field_of(r, parts[1])};
  for (std::size_t i = 2; i < parts.size(); ++i) path.push_back(parts[i]);
  return lookup(r, path);
}

void check_gate_metrics(const std::vector<Gate>& gates, const std::vector<std::string>& architectures,
                        const std::string& where) {
  RunResult skeleton;
  for (const auto& a : architectures) {
    ArchResult r;
    r.name = a;
    skeleton.results.push_back(r);
  }
  static const Scenario no_claims;  // claims need a scenario; the skeleton needs none
  auto report = report_json(skeleton, no_claims);
  for (const auto& g : gates)
    if (!metric_value(report, g.metric))
      throw ScenarioError(where, "$.gates." + g.metric,
                          "a metric the report has (lost, duplicate_effects, <arch>.makespan, <arch>.e2e.p95, "
                          "speedup.makespan, claims_failed, ...; architectures here: " +
                              fmt::format("{}", fmt::join(architectures, ", ")) + ")");
}

void check_gate_metrics(const Scenario& s) { check_gate_metrics(s.gates, architectures_of(s, {}), s.file); }

Gate parse_gate(const std::string& text) {
  auto op_at = text.find_first_of("<>=");
  if (op_at == std::string::npos || op_at == 0)
    throw ScenarioError("--gate", text, "expected METRIC OP VALUE, like \"queue.makespan<=650m\"");
  std::string metric = text.substr(0, op_at);
  while (!metric.empty() && metric.back() == ' ') metric.pop_back();
  return parse_gate_condition(metric, text.substr(op_at), "--gate", text);
}

std::optional<std::size_t> metric_samples(const json& report, const std::string& name) {
  auto parts = split(name, '.');
  if (parts.size() < 3 || parts[0] == "speedup" || !report.contains("results") || !report["results"].contains(parts[0]))
    return std::nullopt;
  const json& r = report["results"][parts[0]];
  const std::string field = field_of(r, parts[1]);
  if (!r.contains(field) || !r[field].is_object() || !r[field].contains("count")) return std::nullopt;
  return r[field]["count"].get<std::size_t>();
}

json evaluate_gates(const json& report, const std::vector<Gate>& gates, const std::string& source) {
  json out = json::array();
  for (const auto& g : gates) {
    auto v = metric_value(report, g.metric);
    if (!v) throw ScenarioError(source, "$.gates." + g.metric, "a metric the report has");
    // A statistic of a distribution with no samples is no evidence: the gate fails.
    const bool no_data = metric_samples(report, g.metric) == std::optional<std::size_t>(0);
    json gate{{"name", g.metric},
              {"op", g.op},
              {"threshold", g.threshold},
              {"text", g.text},
              {"value", std::isnan(*v) || no_data ? json(nullptr) : json(*v)},
              {"passed", !no_data && !std::isnan(*v) && compare(*v, g.op, g.threshold)},
              {"source", source}};
    if (no_data) gate["no_data"] = true;
    out.push_back(std::move(gate));
  }
  return out;
}

json baseline_gates(const json& report, const json& baseline, double max_regression_pct) {
  json out = json::array();
  const std::vector<std::pair<std::string, bool>> metrics{{"makespan_s", true},   {"e2e_s.p95", true},
                                                          {"pickup_s.p95", true}, {"wait_last_s", true},
                                                          {"probe_pickup_s.p99", true}, {"throughput_per_h", false}};
  for (const auto& [arch, r] : report["results"].items()) {
    if (!baseline.contains("results") || !baseline["results"].contains(arch)) continue;
    for (const auto& [metric, lower_better] : metrics) {
      auto now = metric_value(report, arch + "." + metric), before = metric_value(baseline, arch + "." + metric);
      if (!now || !before) continue;
      const double slack = r.value("resolution_s", report.value("resolution_s", 0.0));
      double f = max_regression_pct / 100;
      double threshold = lower_better ? *before * (1 + f) + slack : *before * (1 - f);
      out.push_back({{"name", "baseline:" + arch + "." + metric},
                     {"op", lower_better ? "<=" : ">="},
                     {"threshold", threshold},
                     {"text", fmt::format("{} {:g} % of the baseline {}", lower_better ? "at most +" : "at least -",
                                          max_regression_pct, fmt_value(*before))},
                     {"value", *now},
                     {"passed", lower_better ? *now <= threshold : *now >= threshold},
                     {"source", "--baseline"}});
    }
  }
  return out;
}

bool timing_gate(const json& gate, const json& report) {
  if (gate.value("no_data", false)) return false;  // missing evidence is no busy host's doing
  const std::string name = gate.value("name", "");
  if (name.rfind("baseline:", 0) == 0 || name.rfind("speedup.", 0) == 0) return true;
  if (name == "claims_failed") {
    for (const auto& c : report.value("claims", json::array()))
      if (c["holds"] == false && !c.value("timing", false)) return false;
    return true;
  }
  const auto dot = name.find('.');
  std::string field = dot == std::string::npos ? name : name.substr(dot + 1);
  field = field.substr(0, field.find('.'));
  static const std::set<std::string> timing{"makespan", "wait_first", "wait_last", "e2e", "pickup", "probe_pickup",
                                            "throughput_per_h", "p_wait", "store_queries_per_idle_day",
                                            "redis_commands_per_idle_day", "recovery", "drain", "overhead",
                                            "peak_backlog", "wall"};
  if (field.size() > 2 && field.compare(field.size() - 2, 2, "_s") == 0) field.resize(field.size() - 2);
  return timing.count(field) > 0;
}

double busiest_steal_share(const json& report) {
  double share = report.value("host_steal_share", 0.0);
  for (const auto& [name, a] : report["results"].items()) share = std::max(share, a.value("host_steal_share", 0.0));
  return share;
}

bool only_timing_gates_failed(const json& report) {
  bool failed = false;
  for (const auto& g : report.value("gates", json::array()))
    if (!g["passed"].get<bool>()) {
      if (!timing_gate(g, report)) return false;
      failed = true;
    }
  return failed;
}

bool disturbed_run(const json& report) {
  return only_timing_gates_failed(report) && busiest_steal_share(report) >= kDisturbedStealShare;
}

}  // namespace qsim::sim
