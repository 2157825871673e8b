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

#include "qsim/sim/stats.h"

namespace qsim::sim {

using namespace report_detail;

namespace {

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
  // null where a rate was not measured (a Redis restart inside the window)
  auto rate = [](double v) { return v < 0 ? json() : json(v); };
  json load{{"t_s", json::array()},
            {"dt_s", json::array()},
            {"redis_commands_per_s", json::array()},
            {"store_queries_per_s", json::array()},
            {"worker_utilisation", json::array()}};
  for (const auto& p : a.load) {
    load["t_s"].push_back(p.t_s);
    load["dt_s"].push_back(p.dt_s);
    load["redis_commands_per_s"].push_back(rate(p.redis_commands_per_s));
    load["store_queries_per_s"].push_back(rate(p.store_queries_per_s));
    load["worker_utilisation"].push_back(p.worker_utilisation);
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
  json out{{"workers", a.workers},
          {"speedup", a.speedup},
          {"resolution_s", a.resolution_s},
          {"wall_s", a.wall_s},
          {"host_steal_share", a.host_steal_share},
          {"makespan_s", a.makespan_s},
          {"wait_first_s", a.wait_first_s},
          {"wait_last_s", a.wait_last_s},
          {"e2e_s", pct(a.e2e_s)},
          {"pickup_s", pct(a.pickup_s)},
          {"stages_s",
           {{"pickup", pct(a.pickup_s)},
            {"download", pct(a.download_stage_s)},
            {"upload", pct(a.upload_stage_s)},
            {"finalize", pct(a.finalize_stage_s)}}},
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
          {"redis_oom_errors", a.redis_oom_errors},
          {"redis_misconf_errors", a.redis_misconf_errors},
          {"redis_evicted_keys", a.redis_evicted_keys},
          {"payment_refusals", a.payment_refusals},
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
          {"configuration", a.configuration},
          {"explanations", a.explanations},
          {"orders", orders}};
  if (!a.load.empty()) out["load"] = load;
  return out;
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
    firings.push_back({{"t_s", f.t_s}, {"fault", f.fault}, {"kind", s.faults.size() > f.fault ? s.faults[f.fault].kind : ""},
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
