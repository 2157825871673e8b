#include "qsim/sim/report.h"

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

namespace {

using json = nlohmann::json;

const std::vector<std::string> kCheckerFields{
    "orders",          "completed",          "failed_visible",       "lost",
    "stuck",           "duplicate_deliveries", "duplicate_effect_calls", "duplicate_effects",
    "missing_effects", "orphaned_effects",   "unexpected_effects",   "undelivered_payments",
    "duplicate_jobs",  "forged_accepted",    "crashes"};

json pct(const Percentiles& p) {
  return {{"count", p.count}, {"p50", p.p50}, {"p90", p.p90}, {"p95", p.p95},
          {"p99", p.p99},     {"max", p.max}, {"mean", p.mean}};
}

json order_json(const OrderRecord& o) {
  return {{"id", o.id},
          {"arrival_s", o.arrival_s},
          {"planned", {{"download_s", o.download_plan_s}, {"upload_s", o.upload_plan_s}}},
          {"webhook_attempts", o.webhook_attempts},
          {"payment_accepted", o.payment_accepted},
          {"status", o.status},
          {"error", o.error},
          {"stages_s", o.stages_s.to_map()},
          {"download_calls", o.download_calls},
          {"downloads_ok", o.downloads_ok},
          {"grants", o.grants},
          {"mails", o.mails}};
}

json arch_json(const ArchResult& a) {
  const auto& c = a.checker;
  json timeline{{"t_s", json::array()}, {"depth", json::array()}, {"busy", json::array()}};
  for (const auto& p : a.timeline) {
    timeline["t_s"].push_back(p.t_s);
    timeline["depth"].push_back(p.depth);
    timeline["busy"].push_back(p.busy);
  }
  json orders = json::array();
  for (const auto& o : a.orders) orders.push_back(order_json(o));
  json faults = json::array();
  for (const auto& f : a.faults)
    faults.push_back({{"t_s", f.t_s}, {"kind", f.kind}, {"target", f.target}, {"detail", f.detail}});
  json kills = json::array();
  for (const auto& k : a.kills)
    kills.push_back({{"kill_t_s", k.kill_t_s},
                     {"worker", k.worker},
                     {"order", k.order},
                     {"redelivered_after_s", k.redelivered_after_s ? json(*k.redelivered_after_s) : json(nullptr)}});
  return {{"workers", a.workers},
          {"speedup", a.speedup},
          {"resolution_s", a.resolution_s},
          {"wall_s", a.wall_s},
          {"host_steal_share", a.host_steal_share},
          {"makespan_s", a.makespan_s},
          {"wait_first_s", a.wait_first_s},
          {"wait_last_s", a.wait_last_s},
          {"e2e_s", pct(a.e2e_s)},
          {"pickup_s", pct(a.pickup_s)},
          {"p_wait", a.p_wait},
          {"probe_pickup_s", pct(a.probe_pickup_s)},
          {"probe", {{"speedup", a.probe_speedup}, {"resolution_s", a.probe_resolution_s}, {"method", a.probe_method}}},
          {"throughput_per_h", a.throughput_per_h},
          {"store_queries", a.store_queries},
          {"store_queries_by_component", a.store_queries_by_component},
          {"store_queries_per_idle_day", a.store_queries_per_idle_day},
          {"redis_commands", a.redis_commands},
          {"redis_commands_per_idle_day", a.redis_commands_per_idle_day},
          {"redis_commands_by_name", a.redis_commands_by_name},
          {"harness_commands", a.harness_commands},
          {"idle_window_s", a.idle_window_s},
          {"retries", a.retries},
          {"dead_letters", a.dead_letters},
          {"recoveries", a.recoveries},
          {"overhead_s", pct(a.overhead_s)},
          {"checker",
           {{"orders", c.orders},
            {"completed", c.completed},
            {"failed_visible", c.failed_visible},
            {"lost", c.lost},
            {"stuck", c.stuck},
            {"duplicate_deliveries", c.duplicate_deliveries},
            {"duplicate_effect_calls", c.duplicate_effect_calls},
            {"duplicate_effects", c.duplicate_effects},
            {"missing_effects", c.missing_effects},
            {"orphaned_effects", c.orphaned_effects},
            {"unexpected_effects", c.unexpected_effects},
            {"undelivered_payments", c.undelivered_payments},
            {"crashes", c.crashes},
            {"duplicate_jobs", a.duplicate_jobs},
            {"forged_accepted", a.forged_accepted}}},
          {"faults", faults},
          {"fault_counts", a.fault_counts},
          {"kills_holding_order", a.kills.size()},
          {"kills", kills},
          {"recovery_s", pct(a.recovery_s)},
          {"recovery_bound_s", a.recovery_bound_s},
          {"peak_backlog", a.peak_backlog},
          {"drain_s", a.drain_s},
          {"retry_amplification", a.retry_amplification},
          {"dead_letters_by_reason", a.dead_letters_by_reason},
          {"webhooks", a.webhooks},
          {"network", a.network},
          {"timeline", timeline},
          {"notes", a.notes},
          {"orders", orders}};
}

const std::vector<std::pair<std::string, std::string>> kComparisonRows{
    {"makespan_s", "time to finish all orders"},
    {"wait_first_s", "first customer's wait"},
    {"wait_last_s", "last customer's wait"},
    {"e2e_s.p50", "payment to completion, p50"},
    {"e2e_s.p95", "payment to completion, p95"},
    {"e2e_s.p99", "payment to completion, p99"},
    {"pickup_s.p50", "payment to pickup (workload), p50"},
    {"pickup_s.p95", "payment to pickup (workload), p95"},
    {"probe_pickup_s.p50", "payment to pickup (idle probe), p50"},
    {"probe_pickup_s.p99", "payment to pickup (idle probe), p99"},
    {"throughput_per_h", "throughput, orders per hour"},
    {"store_queries", "store queries (workload)"},
    {"store_queries_per_idle_day", "store queries per idle day"},
    {"redis_commands", "Redis commands (workload)"},
    {"retries", "retries"},
    {"dead_letters", "dead letters"},
    {"recoveries", "recoveries (redeliveries)"},
    {"peak_backlog", "peak backlog (orders waiting)"},
    {"drain_s", "longest drain after a fault or spike"},
    {"retry_amplification", "download attempts per completed order"}};

std::optional<double> lookup(const json& node, const std::vector<std::string>& path) {
  const json* n = &node;
  for (const auto& p : path) {
    if (!n->is_object() || !n->contains(p)) return std::nullopt;
    n = &(*n)[p];
  }
  if (!n->is_number()) return std::nullopt;
  return n->get<double>();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// The seeds' idealisation: W workers take orders first come first served, with no overhead.
struct Ideal {
  double makespan_s = 0, wait_first_s = 0, wait_last_s = 0;
};
Ideal ideal_schedule(const json& orders, int workers) {
  std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
  for (int i = 0; i < workers; ++i) free_at.push(0);
  Ideal r;
  double first_end = INFINITY, last_end = -INFINITY, first_arrival = INFINITY;
  for (const auto& o : orders) {
    double arrival = o["arrival_s"], work = o["planned"]["download_s"].get<double>() + o["planned"]["upload_s"].get<double>();
    first_arrival = std::min(first_arrival, arrival);
    double start = std::max(arrival, free_at.top());
    free_at.pop();
    double end = start + work;
    free_at.push(end);
    if (end < first_end) first_end = end, r.wait_first_s = end - arrival;
    if (end > last_end) last_end = end, r.wait_last_s = end - arrival;
  }
  if (!orders.empty()) r.makespan_s = last_end - first_arrival;
  return r;
}

std::string minutes(double s) { return fmt::format("{:.1f} min", s / 60); }
std::string secs(double s) { return s < 1 ? fmt::format("{:.3f} s", s) : fmt::format("{:.2f} s", s); }

std::string fmt_value(double v) {
  if (std::isnan(v)) return "n/a";
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  if (std::abs(v) >= 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string xml_escape(const std::string& s) { return html_escape(s); }

bool compare(double v, const std::string& op, double t) {
  if (op == "<=") return v <= t;
  if (op == "<") return v < t;
  if (op == ">=") return v >= t;
  if (op == ">") return v > t;
  return v == t;
}

}  // namespace

json report_json(const RunResult& r, const Scenario& s) {
  json results = json::object();
  json archs = json::array();
  for (const auto& a : r.results) {
    results[a.name] = arch_json(a);
    archs.push_back(a.name);
  }
  json report{{"schema_version", kReportSchemaVersion},
              {"kind", r.kind},
              {"scenario", r.scenario},
              {"file", r.file},
              {"seed", r.seed},
              {"speedup", r.speedup},
              {"resolution_s", r.resolution_s},
              {"wall_s", r.wall_s},
              {"host_steal_share", r.host_steal_share},
              {"redis", r.redis},
              {"replay_command", r.replay_command},
              {"architectures", archs},
              {"results", results},
              {"arrivals_s", r.arrivals_s}};
  json firings = json::array();
  for (const auto& f : r.fault_plan.firings)
    firings.push_back({{"t_s", f.t_s}, {"fault", f.fault}, {"kind", s.faults.size() > f.fault ? s.faults[f.fault].name : ""},
                       {"target", f.target}, {"pick", f.pick}, {"count", f.count}});
  std::map<std::string, long long> extras;
  for (const auto& w : r.fault_plan.webhooks) extras[to_string(w.kind)]++;
  report["fault_plan"] = {{"firings", firings}, {"webhook_extras", extras}};
  std::string timing = fmt::format(
      "Stage times are stamped by Redis in milliseconds of wall time; at speedup {:g} that is a resolution of {:g} "
      "simulated seconds.",
      r.speedup, r.resolution_s);
  for (const auto& a : r.results)
    if (a.speedup != r.speedup)
      timing += fmt::format(" {} runs at its own speedup {:g} (resolution {:g} s): its run is short in wall time, so a "
                            "lower speedup keeps its fixed per-order overhead small in simulated time.",
                            a.name, a.speedup, a.resolution_s);
  std::string busy;
  for (const auto& a : r.results)
    if (a.host_steal_share >= kDisturbedStealShare)
      busy += fmt::format("{}{:.0f} % during the {} run", busy.empty() ? "" : ", ", a.host_steal_share * 100, a.name);
  if (r.host_steal_share >= kDisturbedStealShare || !busy.empty())
    timing += fmt::format(" The host took {:.0f} % of this machine's CPU time during the run{} (steal time in "
                          "/proc/stat): the timing figures are inflated by it; the correctness figures (lost, "
                          "duplicates) are not.",
                          r.host_steal_share * 100, busy.empty() ? "" : " (" + busy + ")");
  for (const auto& a : r.results)
    if (a.overhead_s.count)
      timing += fmt::format(" {}: measured overhead (work time beyond the planned download and upload: HTTP, store, "
                            "finalize) mean {:.1f} s, p95 {:.1f} s simulated per order.",
                            a.name, a.overhead_s.mean, a.overhead_s.p95);
  report["timing"] = timing;
  json comparison = json::array();
  if (r.find("polling") && r.find("queue"))
    for (const auto& [metric, label] : kComparisonRows) {
      auto p = metric_value(report, "polling." + metric), q = metric_value(report, "queue." + metric);
      comparison.push_back({{"metric", metric},
                            {"label", label},
                            {"polling", p.value_or(NAN)},
                            {"queue", q.value_or(NAN)},
                            {"ratio", (p && q && *q != 0) ? json(*p / *q) : json(nullptr)}});
    }
  report["comparison"] = comparison;
  report["claims"] = claims(report, s);
  int failed = 0;
  for (const auto& c : report["claims"])
    if (c["holds"] == false) ++failed;
  report["claims_failed"] = failed;
  report["gates"] = json::array();
  report["passed"] = true;
  return report;
}

// The seeds' two qualitative claims, measured when the scenario kills workers or fails calls.
static void recovery_claims(json& out, const json& p, const json& q) {
  const auto& pk = p["kills"];
  const auto& qk = q["kills"];
  if (pk.empty() && qk.empty()) {
    out.push_back({{"claim", "recovery from a worker crash"}, {"architecture", "both"},
                   {"expected", "manual / automatic (~10 s)"},
                   {"measured", "not measured: this scenario kills no worker holding an order"}, {"holds", nullptr}});
  } else {
    long long never = 0;
    for (const auto& k : pk) never += k["redelivered_after_s"].is_null();
    out.push_back({{"claim", "recovery from a worker crash"}, {"architecture", "polling"}, {"expected", "manual"},
                   {"measured", fmt::format("{} of {} orders held by a killed worker never picked up again ({} stuck "
                                            "at the end)",
                                            never, pk.size(), p["checker"]["stuck"].get<long long>())},
                   {"holds", pk.empty() ? json(nullptr) : json(never == static_cast<long long>(pk.size()))}});
    double worst = q["recovery_s"]["max"], bound = q["recovery_bound_s"];
    long long q_never = 0;
    for (const auto& k : qk) q_never += k["redelivered_after_s"].is_null();
    out.push_back({{"claim", "recovery from a worker crash"}, {"architecture", "queue"},
                   {"expected", fmt::format("automatic, within lease + one reaper tick ({})", secs(bound))},
                   {"measured", fmt::format("{} orders redelivered, worst after {}; {} never", qk.size() - q_never,
                                            secs(worst), q_never)},
                   {"measured_value", worst},
                   {"holds", qk.empty() ? json(nullptr) : json(q_never == 0 && worst <= bound)}});
  }
  const long long q_retries = q["retries"], p_failed = p["checker"]["failed_visible"];
  if (q_retries == 0 && p_failed == 0) {
    out.push_back({{"claim", "failed-task retries"}, {"architecture", "both"},
                   {"expected", "manual / automatic (3 attempts)"},
                   {"measured", "not measured: no call failed in this scenario"}, {"holds", nullptr}});
  } else {
    out.push_back({{"claim", "failed-task retries"}, {"architecture", "polling"}, {"expected", "manual (none)"},
                   {"measured", fmt::format("{} orders failed for good, 0 retries", p_failed)},
                   {"holds", p["retries"] == 0}});
    out.push_back({{"claim", "failed-task retries"}, {"architecture", "queue"}, {"expected", "automatic (3 attempts)"},
                   {"measured", fmt::format("{} retries, {} dead letters", q_retries, q["dead_letters"].get<long long>())},
                   {"holds", q_retries > 0}});
  }
}

json claims(const json& report, const Scenario& s) {
  json out = json::array();
  const auto& res = report["results"];
  if (s.arrival.kind != Arrival::Kind::burst || !res.contains("polling") || !res.contains("queue") || !s.polling ||
      !s.queue)
    return out;
  const auto& p = res["polling"];
  const auto& q = res["queue"];
  auto ideal_p = ideal_schedule(p["orders"], p["workers"]);
  auto ideal_q = ideal_schedule(q["orders"], q["workers"]);
  auto within = [&](const std::string& claim, const std::string& arch, double expected, double measured,
                    double tolerance) {
    bool holds = std::abs(measured - expected) <= tolerance * expected;
    out.push_back({{"claim", claim},
                   {"architecture", arch},
                   {"expected", minutes(expected)},
                   {"expected_value", expected},
                   {"measured", minutes(measured)},
                   {"measured_value", measured},
                   {"tolerance", fmt::format("±{:g} %", tolerance * 100)},
                   {"holds", holds},
                   {"timing", true},
                   {"off_by_pct", expected != 0 ? (measured - expected) / expected * 100 : 0.0}});
  };
  within("time to finish all orders", "polling", ideal_p.makespan_s, p["makespan_s"], 0.05);
  within("time to finish all orders", "queue", ideal_q.makespan_s, q["makespan_s"], 0.05);
  within("first customer's wait", "polling", ideal_p.wait_first_s, p["wait_first_s"], 0.05);
  within("first customer's wait", "queue", ideal_q.wait_first_s, q["wait_first_s"], 0.05);
  within("last customer's wait", "polling", ideal_p.wait_last_s, p["wait_last_s"], 0.05);
  within("last customer's wait", "queue", ideal_q.wait_last_s, q["wait_last_s"], 0.05);

  const double interval = s.polling->poll_interval_s;
  const auto& pp = p["probe_pickup_s"];
  const auto& qp = q["probe_pickup_s"];
  if (pp["count"] > 0) {
    double mean = pp["mean"], mx = pp["max"];
    bool holds = mean >= 0.35 * interval && mean <= 0.65 * interval && mx <= 1.1 * interval;
    out.push_back({{"claim", "delay from payment to pickup (idle system)"},
                   {"architecture", "polling"},
                   {"expected", fmt::format("{:g}-{:g} s (mean about half the poll interval, at most the interval)",
                                            interval / 2, interval)},
                   {"measured", fmt::format("mean {}, p50 {}, max {}", secs(mean), secs(pp["p50"]), secs(mx))},
                   {"measured_value", mean},
                   {"tolerance", "mean within 35-65 % of the interval, max ≤ 110 %"},
                   {"holds", holds},
                   {"timing", true}});
  }
  if (qp["count"] > 0) {
    double p99 = qp["p99"];
    out.push_back({{"claim", "delay from payment to pickup (idle system)"},
                   {"architecture", "queue"},
                   {"expected", "< 1 s"},
                   {"measured", fmt::format("p50 {}, p99 {}, max {}", secs(qp["p50"]), secs(p99), secs(qp["max"]))},
                   {"measured_value", p99},
                   {"tolerance", "p99 < 1 s"},
                   {"holds", p99 < 1.0},
                   {"timing", true}});
  }
  const double per_day = 86'400 / interval;
  double measured_p = p["store_queries_per_idle_day"];
  out.push_back({{"claim", "DB queries per idle day"},
                 {"architecture", "polling"},
                 {"expected", fmt::format("{:.0f}", per_day)},
                 {"expected_value", per_day},
                 {"measured", fmt::format("{:.0f}", measured_p)},
                 {"measured_value", measured_p},
                 {"tolerance", "±1 %"},
                 {"holds", std::abs(measured_p - per_day) <= 0.01 * per_day},
                 {"timing", true},
                 {"off_by_pct", (measured_p - per_day) / per_day * 100}});
  double measured_q = q["store_queries_per_idle_day"];
  out.push_back({{"claim", "DB queries per idle day"},
                 {"architecture", "queue"},
                 {"expected", "~0 (~100)"},
                 {"expected_value", 0},
                 {"measured", fmt::format("{:.0f} (Redis commands: {:.0f}, the reaper's ticks and idle workers' "
                                          "blocking waits)",
                                          measured_q, q["redis_commands_per_idle_day"].get<double>())},
                 {"measured_value", measured_q},
                 {"tolerance", "≤ 100"},
                 {"holds", measured_q <= 100}});
  recovery_claims(out, p, q);
  return out;
}

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
  // <arch>.fault_counts.<kind>: how often a fault kind fired (0 if never)
  if (parts.size() == 3 && parts[1] == "fault_counts") return r.contains("fault_counts") ? r["fault_counts"].value(parts[2], 0.0) : 0.0;
  std::string field = r.contains(parts[1]) ? parts[1] : parts[1] + "_s";
  std::vector<std::string> path{field};
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
  const std::string field = r.contains(parts[1]) ? parts[1] : parts[1] + "_s";
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

bool disturbed_run(const json& report) {
  bool failed = false;
  for (const auto& g : report.value("gates", json::array()))
    if (!g["passed"].get<bool>()) {
      if (!timing_gate(g, report)) return false;
      failed = true;
    }
  return failed && busiest_steal_share(report) >= kDisturbedStealShare;
}

std::string escape_html(const std::string& text) { return html_escape(text); }

namespace {

// "speedup 12000 (resolution 12 simulated s)", and each architecture that runs at its own
std::string speedup_text(const json& rep) {
  const double speedup = rep["speedup"].get<double>();
  std::string text = fmt::format("speedup {:g} (resolution {:g} simulated s)", speedup, rep["resolution_s"].get<double>());
  for (const auto& [name, a] : rep["results"].items())
    if (a.contains("speedup") && a["speedup"].get<double>() != speedup)
      text += fmt::format("; {} at speedup {:g} (resolution {:g} s)", name, a["speedup"].get<double>(),
                          a["resolution_s"].get<double>());
  return text;
}

}  // namespace

std::string render_markdown(const json& rep) {
  std::ostringstream md;
  md << "# " << rep["scenario"].get<std::string>() << " — "
     << (rep["passed"].get<bool>() ? "all gates passed" : "GATES FAILED") << "\n\n";
  md << fmt::format("Seed {}, {}, {:.1f} s of wall time, {}.\n\n", rep["seed"].get<std::uint64_t>(),
                    speedup_text(rep), rep["wall_s"].get<double>(), rep["redis"].get<std::string>());
  md << "Replay: `" << rep["replay_command"].get<std::string>() << "`\n\n";
  for (const auto& d : rep.value("disturbed_attempts", json::array())) {
    md << fmt::format("Run again (`--rerun-if-disturbed`): an earlier attempt failed only timing gates ({}) while the "
                      "host took {:.0f} % of this machine's CPU time.\n\n",
                      fmt::join(d["failed_gates"].get<std::vector<std::string>>(), ", "),
                      d["host_steal_share"].get<double>() * 100);
  }
  md << "All times are simulated.\n\n";
  if (!rep["comparison"].empty()) {
    md << "## Polling vs queue\n\n| metric | polling | queue | polling / queue |\n|---|---:|---:|---:|\n";
    for (const auto& c : rep["comparison"]) {
      const std::string m = c["metric"];
      bool is_time = m.find("_s") != std::string::npos;
      auto show = [&](const json& v) {
        if (!v.is_number()) return std::string("n/a");
        double x = v;
        return is_time ? (x >= 120 ? minutes(x) : secs(x)) : fmt_value(x);
      };
      md << "| " << c["label"].get<std::string>() << " | " << show(c["polling"]) << " | " << show(c["queue"]) << " | "
         << (c["ratio"].is_number() ? fmt::format("{:.2f}×", c["ratio"].get<double>()) : "n/a") << " |\n";
    }
    md << "\n";
  }
  if (!rep["claims"].empty()) {
    md << "## Claims of the seed documents\n\n| claim | architecture | expected | measured | tolerance | holds |\n"
          "|---|---|---|---|---|---|\n";
    for (const auto& c : rep["claims"])
      md << "| " << c["claim"].get<std::string>() << " | " << c["architecture"].get<std::string>() << " | "
         << c["expected"].get<std::string>() << " | " << c["measured"].get<std::string>() << " | "
         << c.value("tolerance", "") << " | "
         << (c["holds"].is_null() ? "n/a" : c["holds"].get<bool>() ? "yes" : "**no**") << " |\n";
    md << "\n";
  }
  md << "## Checker\n\n| | " ;
  std::vector<std::string> archs = rep["architectures"];
  for (const auto& a : archs) md << a << " | ";
  md << "\n|---|";
  for (std::size_t i = 0; i < archs.size(); ++i) md << "---:|";
  md << "\n";
  for (const auto& f : kCheckerFields) {
    md << "| " << f << " | ";
    for (const auto& a : archs) md << rep["results"][a]["checker"].value(f, 0LL) << " | ";
    md << "\n";
  }
  md << "\n## Per architecture\n\n";
  for (const auto& a : archs) {
    const auto& r = rep["results"][a];
    md << "### " << a << " (" << r["workers"].get<int>() << " worker" << (r["workers"] == 1 ? "" : "s") << ")\n\n";
    md << "| distribution | p50 | p90 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n";
    for (const char* d : {"e2e_s", "pickup_s", "probe_pickup_s", "overhead_s"}) {
      const auto& p = r[d];
      md << "| " << d << " (" << p["count"].get<long long>() << ") | " << secs(p["p50"]) << " | " << secs(p["p90"])
         << " | " << secs(p["p95"]) << " | " << secs(p["p99"]) << " | " << secs(p["max"]) << " |\n";
    }
    md << "\nStore queries by component: ";
    for (const auto& [k, v] : r["store_queries_by_component"].items()) md << k << " " << v.get<long long>() << ", ";
    md << fmt::format("per idle day {:.0f}. Redis commands {} (per idle day {:.0f}; the harness's own {} excluded).\n\n",
                      r["store_queries_per_idle_day"].get<double>(), r["redis_commands"].get<long long>(),
                      r["redis_commands_per_idle_day"].get<double>(), r["harness_commands"].get<long long>());
    md << "Probe: " << r["probe"]["method"].get<std::string>() << ".\n\n";
    md << fmt::format("Peak backlog {} orders; longest drain {} (from a fault, or the end of a spike, to an empty "
                      "backlog); retry amplification {:.2f} download attempts per completed order.\n\n",
                      r["peak_backlog"].get<int>(), minutes(r["drain_s"]), r["retry_amplification"].get<double>());
    if (!r["faults"].empty()) {
      md << "Faults fired:";
      for (const auto& [k, v] : r["fault_counts"].items()) md << " " << k << " " << v.get<long long>() << ";";
      md << "\n\n";
      if (!r["kills"].empty()) {
        long long never = 0;
        for (const auto& k : r["kills"]) never += k["redelivered_after_s"].is_null();
        md << fmt::format("Workers killed holding an order: {}; redelivered {} (after p50 {}, max {}; bound {}), "
                          "never {}.\n\n",
                          r["kills"].size(), r["recovery_s"]["count"].get<long long>(), secs(r["recovery_s"]["p50"]),
                          secs(r["recovery_s"]["max"]),
                          r["recovery_bound_s"].get<double>() > 0 ? secs(r["recovery_bound_s"]) : std::string("none"),
                          never);
      }
      if (!r["webhooks"].empty()) {
        md << "| extra webhook | answers |\n|---|---|\n";
        for (const auto& [kind, answers] : r["webhooks"].items()) {
          md << "| " << kind << " | ";
          for (const auto& [word, n] : answers.items()) md << word << " " << n.get<long long>() << " ";
          md << "|\n";
        }
        md << "\n";
      }
      if (!r["network"].empty()) {
        md << "| link (fault proxy) | connections | resets | bytes | delayed chunks |\n|---|---:|---:|---:|---:|\n";
        for (const auto& [link, c] : r["network"].items())
          md << "| " << link << " | " << c["connections"].get<long long>() << " | " << c["resets"].get<long long>()
             << " | " << c["bytes"].get<long long>() << " | " << c["delayed_chunks"].get<long long>() << " |\n";
        md << "\n";
      }
      if (!r["dead_letters_by_reason"].empty()) {
        md << "Dead letters by reason:";
        for (const auto& [k, v] : r["dead_letters_by_reason"].items()) md << " \"" << k << "\" " << v.get<long long>() << ";";
        md << "\n\n";
      }
      md << "| t | fault | target | detail |\n|---:|---|---|---|\n";
      std::size_t shown = 0;
      for (const auto& f : r["faults"]) {
        if (++shown > 40) {
          md << "| | ... " << r["faults"].size() - 40 << " more in report.json | | |\n";
          break;
        }
        md << "| " << minutes(f["t_s"]) << " | " << f["kind"].get<std::string>() << " | " << f["target"].get<std::string>()
           << " | " << f["detail"].get<std::string>() << " |\n";
      }
      md << "\n";
    }
    for (const auto& n : r["notes"]) md << "- " << n.get<std::string>() << "\n";
    md << "\n";
  }
  md << "## Timing\n\n" << rep["timing"].get<std::string>() << "\n\n";
  md << "## Gates\n\n";
  if (rep["gates"].empty()) md << "No gates.\n";
  else {
    md << "| gate | value | threshold | passed |\n|---|---:|---|---|\n";
    for (const auto& g : rep["gates"])
      md << "| " << g["name"].get<std::string>() << " | " << (g["value"].is_number() ? fmt_value(g["value"]) : g.value("no_data", false) ? "no data" : "n/a")
         << " | " << g["op"].get<std::string>() << " " << fmt_value(g["threshold"]) << " | "
         << (g["passed"].get<bool>() ? "yes" : "**no**") << " |\n";
  }
  return md.str();
}

namespace {

const char* kColors[] = {"#d9534f", "#0275d8", "#5cb85c", "#f0ad4e"};

std::string svg_timeline(const std::string& arch, const json& orders, std::size_t limit) {
  struct Bar {
    double paid, picked, end;
    std::string status;
  };
  std::vector<Bar> bars;
  double tmax = 0;
  for (const auto& o : orders) {
    const auto& st = o["stages_s"];
    if (!st.contains("paid")) continue;
    Bar b{st["paid"], st.value("processing", st["paid"].get<double>()), 0, o["status"]};
    b.end = st.contains(b.status) ? st[b.status].get<double>() : b.picked;
    tmax = std::max(tmax, b.end);
    bars.push_back(b);
  }
  // In the order work started, so that the chart reads as the schedule it was.
  std::sort(bars.begin(), bars.end(), [](const Bar& a, const Bar& b) { return std::tie(a.picked, a.paid) < std::tie(b.picked, b.paid); });
  if (bars.size() > limit) bars.resize(limit);
  if (tmax <= 0) tmax = 1;
  const double W = 640, L = 60, R = 20, row = bars.size() > 60 ? 3 : 6, H = 50 + row * static_cast<double>(bars.size());
  auto px = [&](double x) { return L + x / tmax * (W - L - R); };
  std::ostringstream o;
  o << fmt::format(R"~(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}">)~", W, H, W, H);
  o << fmt::format(R"~(<text x="{}" y="18" font-size="14" font-weight="bold">{}: per-order timeline (the first {} orders to start work; light: waiting, dark: in work)</text>)~",
                   L, html_escape(arch), bars.size());
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    double y = 30 + row * static_cast<double>(i);
    o << fmt::format(R"~(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="#9ecae1"/>)~", px(b.paid), y,
                     std::max(0.5, px(b.picked) - px(b.paid)), row - 1);
    o << fmt::format(R"~(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"/>)~", px(b.picked), y,
                     std::max(0.5, px(b.end) - px(b.picked)), row - 1,
                     b.status == "completed" ? "#08519c" : "#d9534f");
  }
  o << fmt::format(R"~(<text x="{}" y="{}" font-size="10">0</text><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)~",
                   L, H - 6, W - R, H - 6, minutes(tmax));
  o << "</svg>";
  return o.str();
}

}  // namespace

std::string svg_chart(const std::string& title, const std::vector<ChartSeries>& series, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<double>& marks, std::optional<double> hline) {
  const double W = 640, H = 300, L = 60, R = 20, T = 30, B = 45;
  double xmax = 0, ymax = hline ? *hline * 1.2 : 0;
  for (const auto& s : series) {
    for (double v : s.x) xmax = std::max(xmax, v);
    for (double v : s.y)
      if (std::isfinite(v)) ymax = std::max(ymax, v);
  }
  if (xmax <= 0) xmax = 1;
  if (ymax <= 0) ymax = 1;
  auto px = [&](double x) { return L + x / xmax * (W - L - R); };
  auto py = [&](double y) { return H - B - y / ymax * (H - T - B); };
  std::ostringstream o;
  o << fmt::format(R"~(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}">)~", W, H, W, H);
  o << fmt::format(R"~(<text x="{}" y="18" font-size="14" font-weight="bold">{}</text>)~", L, html_escape(title));
  o << fmt::format(R"~(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#333"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#333"/>)~",
                   L, H - B, W - R, T);
  for (int k = 0; k <= 4; ++k) {
    double xv = xmax * k / 4, yv = ymax * k / 4;
    o << fmt::format(R"~(<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>)~", px(xv), H - B + 14,
                     fmt_value(std::round(xv * 100) / 100));
    o << fmt::format(R"~(<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)~", L - 4, py(yv) + 3,
                     fmt_value(std::round(yv * 100) / 100));
    o << fmt::format(R"~(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#eee"/>)~", L, py(yv), W - R, py(yv));
  }
  o << fmt::format(R"~(<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>)~", (L + W - R) / 2, H - 8,
                   html_escape(xlabel));
  o << fmt::format(R"~(<text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>)~",
                   (T + H - B) / 2, (T + H - B) / 2, html_escape(ylabel));
  for (double m : marks)  // faults, shaded where they fired
    if (m >= 0 && m <= xmax)
      o << fmt::format(R"~(<rect x="{:.1f}" y="{}" width="3" height="{}" fill="#d9534f" opacity="0.25"/>)~", px(m) - 1, T,
                       H - T - B);
  if (hline && *hline >= 0 && *hline <= ymax)
    o << fmt::format(R"~(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#333" stroke-dasharray="6,4"/>)~", L, py(*hline),
                     W - R, py(*hline));
  int legend = 0;
  for (const auto& s : series) {
    std::string pts;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (s.step && i > 0) pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i - 1]));
      pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i]));
    }
    o << fmt::format(R"~(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)~", s.color, pts);
    o << fmt::format(R"~(<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>)~",
                     W - R - 150, T + legend * 16, s.color, W - R - 135, T + legend * 16 + 9, html_escape(s.name));
    ++legend;
  }
  o << "</svg>";
  return o.str();
}

std::string render_html(const json& rep) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << html_escape(rep["scenario"]) << " — qsim report</title>"
    << "<style>body{font-family:sans-serif;max-width:1000px;margin:20px auto;color:#222}table{border-collapse:collapse;"
       "margin:10px 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f4f4f4}"
       ".no{color:#c00;font-weight:bold}.yes{color:#080}svg{display:block;margin:12px 0}</style></head><body>";
  bool passed = rep["passed"];
  h << "<h1>" << html_escape(rep["scenario"]) << " — <span class=\"" << (passed ? "yes" : "no") << "\">"
    << (passed ? "all gates passed" : "gates failed") << "</span></h1>";
  h << "<p>" << html_escape(fmt::format("Seed {}, {}, {:.1f} s of wall time, {}.", rep["seed"].get<std::uint64_t>(),
                                        speedup_text(rep), rep["wall_s"].get<double>(),
                                        rep["redis"].get<std::string>()))
    << "</p><p>Replay: <code>" << html_escape(rep["replay_command"]) << "</code></p>";
  // The Markdown tables, as HTML tables: one rendering of the numbers.
  std::istringstream md(render_markdown(rep));
  std::string line;
  bool in_table = false, header = false;
  while (std::getline(md, line)) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (line.rfind("|", 0) == 0) {
      if (line.rfind("|---", 0) == 0) continue;
      if (!in_table) h << "<table>", in_table = true, header = true;
      h << "<tr>";
      auto cells = split(line.substr(1, line.size() - 2), '|');
      for (auto c : cells) {
        while (!c.empty() && c.front() == ' ') c.erase(c.begin());
        while (!c.empty() && c.back() == ' ') c.pop_back();
        bool bold = c.size() > 4 && c.rfind("**", 0) == 0;
        if (bold) c = c.substr(2, c.size() - 4);
        h << (header ? "<th>" : "<td>") << (bold ? "<span class=\"no\">" : "") << html_escape(c) << (bold ? "</span>" : "")
          << (header ? "</th>" : "</td>");
      }
      h << "</tr>";
      header = false;
      continue;
    }
    if (in_table) h << "</table>", in_table = false;
    if (line.rfind("## ", 0) == 0) h << "<h2>" << html_escape(line.substr(3)) << "</h2>";
    else if (line.rfind("### ", 0) == 0) h << "<h3>" << html_escape(line.substr(4)) << "</h3>";
    else if (line.rfind("- ", 0) == 0) h << "<p>• " << html_escape(line.substr(2)) << "</p>";
    else if (!line.empty() && line.rfind("# ", 0) != 0 && line.rfind("Replay", 0) != 0 && line.rfind("Seed", 0) != 0)
      h << "<p>" << html_escape(line) << "</p>";
  }
  if (in_table) h << "</table>";

  h << "<h2>Charts</h2>";
  std::vector<ChartSeries> cdf;
  int color = 0;
  for (const auto& a : rep["architectures"]) {
    const std::string arch = a;
    std::vector<double> waits;
    for (const auto& o : rep["results"][arch]["orders"]) {
      const auto& st = o["stages_s"];
      if (o["status"] == "completed" && st.contains("paid") && st.contains("completed"))
        waits.push_back((st["completed"].get<double>() - st["paid"].get<double>()) / 60);
    }
    std::sort(waits.begin(), waits.end());
    ChartSeries s{arch, kColors[color++ % 4], {}, {}, true};
    for (std::size_t i = 0; i < waits.size(); ++i) {
      s.x.push_back(waits[i]);
      s.y.push_back(static_cast<double>(i + 1) / static_cast<double>(waits.size()));
    }
    cdf.push_back(s);
  }
  h << svg_chart("Latency CDF: payment to completion", cdf, "simulated minutes", "fraction of orders");
  for (const auto& a : rep["architectures"]) {
    const std::string arch = a;
    const auto& t = rep["results"][arch]["timeline"];
    std::vector<double> x;
    for (double v : t["t_s"]) x.push_back(v / 60);
    ChartSeries depth{"queue depth", kColors[0], x, t["depth"].get<std::vector<double>>(), true};
    ChartSeries busy{"busy workers", kColors[1], x, t["busy"].get<std::vector<double>>(), true};
    std::vector<double> marks;
    for (const auto& f : rep["results"][arch]["faults"]) {
      const std::string kind = f["kind"];
      if (kind.size() < 8 || kind.compare(kind.size() - 8, 8, "_webhook") != 0)  // per-order extras: too many to shade
        marks.push_back(f["t_s"].get<double>() / 60);
    }
    h << svg_chart(arch + ": queue depth and busy workers over time" + (marks.empty() ? "" : " (faults shaded)"),
                   {depth, busy}, "simulated minutes", "count", marks);
    h << svg_timeline(arch, rep["results"][arch]["orders"], 120);
  }
  h << "</body></html>\n";
  return h.str();
}

std::string render_junit(const json& rep) {
  std::ostringstream x;
  int failures = 0;
  for (const auto& g : rep["gates"]) failures += !g["passed"].get<bool>();
  const std::string suite = "sim." + rep["scenario"].get<std::string>();
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << fmt::format("<testsuites tests=\"{0}\" failures=\"{1}\">\n<testsuite name=\"{2}\" tests=\"{0}\" failures=\"{1}\" time=\"{3:.3f}\">\n",
                   rep["gates"].size(), failures, xml_escape(suite), rep["wall_s"].get<double>());
  for (const auto& g : rep["gates"]) {
    std::string value = g["value"].is_number() ? fmt_value(g["value"]) : g.value("no_data", false) ? "no data" : "n/a";
    x << fmt::format("  <testcase classname=\"{}\" name=\"{}\">", xml_escape(suite), xml_escape(g["name"]));
    if (!g["passed"].get<bool>())
      x << fmt::format("<failure message=\"{}\"/>",
                       xml_escape(fmt::format("{} = {}, expected {} {}", g["name"].get<std::string>(), value,
                                              g["op"].get<std::string>(), fmt_value(g["threshold"]))));
    x << "</testcase>\n";
  }
  x << "</testsuite>\n</testsuites>\n";
  return x.str();
}

std::string render_comparison(const json& older, const json& newer) {
  std::ostringstream md;
  md << "| metric | old | new | change |\n|---|---:|---:|---:|\n";
  for (const auto& [arch, r] : newer["results"].items()) {
    if (!older["results"].contains(arch)) continue;
    for (const auto& [metric, label] : kComparisonRows) {
      auto a = metric_value(older, arch + "." + metric), b = metric_value(newer, arch + "." + metric);
      if (!a || !b) continue;
      md << "| " << arch << " " << label << " | " << fmt_value(*a) << " | " << fmt_value(*b) << " | "
         << (*a != 0 ? fmt::format("{:+.1f} %", (*b - *a) / *a * 100) : (*b == 0 ? "0" : "new")) << " |\n";
    }
  }
  return md.str();
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  std::filesystem::create_directories(dir);
  auto path = (std::filesystem::path(dir) / name).string();
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

std::vector<std::string> write_reports(const json& report, const std::string& dir, const std::vector<std::string>& formats) {
  std::vector<std::string> written;
  for (const auto& f : formats) {
    std::string text = f == "json"    ? report.dump(1) + "\n"
                       : f == "md"    ? render_markdown(report)
                       : f == "html"  ? render_html(report)
                       : f == "junit" ? render_junit(report)
                                      : throw ScenarioError("--format", f, "expected md, json, html or junit");
    written.push_back(write_file(dir, f == "junit" ? "junit.xml" : "report." + f, text));
  }
  return written;
}

json load_report(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ScenarioError(path, "$", "cannot read the report");
  auto j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw ScenarioError(path, "$", "not valid JSON");
  if (!j.is_object() || j.value("schema_version", 0) != kReportSchemaVersion)
    throw ScenarioError(path, "$.schema_version", "a report of schema_version 1");
  for (const char* k : {"scenario", "results", "architectures", "gates", "claims", "comparison"})
    if (!j.contains(k)) throw ScenarioError(path, std::string("$.") + k, "present in a report");
  return j;
}

}  // namespace qsim::sim
