// The report: a run's results as JSON (schema_version 1, the one format every other is made
// from), the seed documents' claims checked against it, gates evaluated on it, and the
// Markdown, HTML and JUnit renderings. `sim report` and `sim compare` work from the JSON alone.
//
// Gate metric names, resolved against the JSON:
//   lost, stuck, duplicate_effects, ... (any checker field)   summed over the architectures
//   <arch>.<field>             results.<arch>.<field>, also with "_s" appended (queue.makespan)
//   <arch>.<field>.<stat>      p50 p90 p95 p99 max mean of a distribution (queue.e2e.p95)
//   <arch>.<checker field>     one architecture's checker (polling.stuck)
//   speedup.<field>[.<stat>]   polling's value divided by the queue's (speedup.makespan)
//   claims_failed              claims of the seed documents that do not hold
// A name that resolves to nothing is an error, never a silent pass.
#pragma once

#include "qsim/sim/results.h"
#include "qsim/sim/scenario.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace qsim::sim {

constexpr int kReportSchemaVersion = 1;

// Everything but the gates.
nlohmann::json report_json(const RunResult& r, const Scenario& s);

// The claims table of DESIGN.md for a burst scenario with both architectures (else empty),
// computed from the report.
nlohmann::json claims(const nlohmann::json& report, const Scenario& s);

//   <arch>.fault_counts.<kind>   how often a fault kind fired in that architecture's run (0: never)
std::optional<double> metric_value(const nlohmann::json& report, const std::string& name);
// For a statistic of a distribution (queue.recovery.max), how many samples it has; none for
// other metrics. A gate over a distribution with no samples fails with "no data".
std::optional<std::size_t> metric_samples(const nlohmann::json& report, const std::string& name);

// Throws ScenarioError (file `where`) for a gate whose metric no report of these architectures
// would have.
void check_gate_metrics(const std::vector<Gate>& gates, const std::vector<std::string>& architectures,
                        const std::string& where);

// The same for a scenario's own gates and architectures.
void check_gate_metrics(const Scenario& s);

// "queue.makespan <= 650m" (from --gate). Throws ScenarioError("--gate", ...).
Gate parse_gate(const std::string& text);

// Gate results as JSON objects {name, op, threshold, value, passed, source}.
nlohmann::json evaluate_gates(const nlohmann::json& report, const std::vector<Gate>& gates, const std::string& source);
// Baseline gates: per architecture in both reports, the headline metrics may not regress by
// more than `max_regression_pct` (plus the report's resolution).
nlohmann::json baseline_gates(const nlohmann::json& report, const nlohmann::json& baseline, double max_regression_pct);

// A run during which the hypervisor took at least this share of the machine's CPU time is
// disturbed: its timing figures say more about the host than about the queue.
constexpr double kDisturbedStealShare = 0.03;

// Whether a failed gate measures timing (makespan, waits, latencies, idle polls, baseline
// regressions, a claim about those) rather than correctness (lost, stuck, duplicates, ...): only
// a timing gate can fail because the host was busy.
bool timing_gate(const nlohmann::json& gate, const nlohmann::json& report);

// The share of the machine's CPU time the host took during the busiest stretch measured: the
// whole run, or one architecture's run (a short queue run can be disturbed while the whole run
// looks calm).
double busiest_steal_share(const nlohmann::json& report);

// A gate failed and every failed gate is a timing gate.
bool only_timing_gates_failed(const nlohmann::json& report);

// A report (with its gates) worth running again: only timing gates failed, and the host took at
// least kDisturbedStealShare of the CPU time.
bool disturbed_run(const nlohmann::json& report);

// An inline SVG line chart (steps if `step`), with optional shaded x marks and a dashed
// horizontal line (a threshold); the building block of the HTML reports.
struct ChartSeries {
  std::string name, color;
  std::vector<double> x, y;
  bool step = false;
};
std::string svg_chart(const std::string& title, const std::vector<ChartSeries>& series, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<double>& marks = {},
                      std::optional<double> hline = std::nullopt);
std::string escape_html(const std::string& text);

std::string render_markdown(const nlohmann::json& report);
std::string render_html(const nlohmann::json& report);
std::string render_junit(const nlohmann::json& report);
// OLD vs NEW, headline metrics with the change in percent.
std::string render_comparison(const nlohmann::json& older, const nlohmann::json& newer);

// Writes report.<ext> for each format (json, md, html, junit -> junit.xml) into `dir`;
// returns the paths written.
// Writes `text` to dir/name, creating dir; the path written. std::runtime_error if it cannot.
std::string write_file(const std::string& dir, const std::string& name, const std::string& text);
std::vector<std::string> write_reports(const nlohmann::json& report, const std::string& dir,
                                       const std::vector<std::string>& formats);
// Reads and checks a report (schema_version 1). Throws ScenarioError(path, ...).
nlohmann::json load_report(const std::string& path);

}  // namespace qsim::sim
