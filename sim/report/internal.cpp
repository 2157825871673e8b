#include "internal.h"

#include "qsim/html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>

namespace qsim::sim::report_detail {

extern const std::vector<std::string> kCheckerFields;
const std::vector<std::string> kCheckerFields{
    "orders",          "completed",          "failed_visible",       "lost",
    "stuck",           "duplicate_deliveries", "duplicate_effect_calls", "duplicate_effects",
    "missing_effects", "orphaned_effects",   "unexpected_effects",   "undelivered_payments",
    "duplicate_jobs",  "forged_accepted",    "crashes"};

json pct(const Percentiles& p) {
  return {{"count", p.count}, {"p50", p.p50}, {"p90", p.p90}, {"p95", p.p95},
          {"p99", p.p99},     {"max", p.max}, {"mean", p.mean}};
}

extern const std::vector<std::pair<std::string, std::string>> kComparisonRows;
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

std::string xml_escape(const std::string& s) { return html_escape(s); }

bool compare(double v, const std::string& op, double t) {
  if (op == "<=") return v <= t;
  if (op == "<") return v < t;
  if (op == ">=") return v >= t;
  if (op == ">") return v > t;
  return v == t;
}


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


std::string gate_value_text(const json& gate) {
  if (gate["value"].is_number()) return fmt_value(gate["value"]);
  return gate.value("no_data", false) ? "no data" : "n/a";
}

}  // namespace qsim::sim::report_detail
