#include "qsim/sim/verdict.h"

#include "qsim/sim/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace qsim::sim {

using json = nlohmann::json;

GateSet gate_set(const Scenario& s, const std::vector<std::string>& archs, const std::vector<Gate>& extra) {
  GateSet g;
  const std::vector<std::string> configured = architectures_of(s, {});
  for (const auto& gate : s.gates) {
    const auto dot = gate.metric.find('.');
    const std::string head = gate.metric.substr(0, dot);
    const bool about_arch = dot != std::string::npos &&
                            (head == "speedup" || std::find(configured.begin(), configured.end(), head) != configured.end());
    auto runs = [&](const std::string& a) { return std::find(archs.begin(), archs.end(), a) != archs.end(); };
    // speedup.* divides polling's figure by the queue's: it needs both
    const bool left_out = about_arch && (head == "speedup" ? !(runs("polling") && runs("queue")) : !runs(head));
    (left_out ? g.skipped.push_back(gate.metric) : g.scenario.push_back(gate));
  }
  check_gate_metrics(g.scenario, archs, s.file);
  check_gate_metrics(extra, archs, "--gate");
  g.extra = extra;
  return g;
}

bool judge(json& report, const GateSet& gates, const VerdictOptions& options) {
  json all = evaluate_gates(report, gates.scenario, report.value("file", std::string("scenario")));
  for (auto& g : evaluate_gates(report, gates.extra, "--gate")) all.push_back(std::move(g));
  if (!options.baseline.is_null())
    for (auto& g : baseline_gates(report, options.baseline, options.max_regression_pct)) all.push_back(std::move(g));
  bool passed = true;
  for (const auto& g : all) passed = passed && g["passed"].get<bool>();
  report["gates"] = std::move(all);
  report["gates_skipped"] = gates.skipped;
  report["passed"] = passed;
  return passed;
}

json run_judged(const std::function<json()>& attempt, const GateSet& gates, const VerdictOptions& options,
                const std::function<void(const std::string&)>& note) {
  json disturbed = json::array();  // earlier attempts, run again because the host disturbed them
  for (int n = 0;; ++n) {
    json report = attempt();
    const bool passed = judge(report, gates, options);
    report["disturbed_attempts"] = disturbed;
    if (passed || report.value("kind", std::string("run")) == "model" || !only_timing_gates_failed(report))
      return report;
    const double steal = busiest_steal_share(report);
    const bool busy = disturbed_run(report);
    const int reruns = busy ? std::max(options.rerun_if_disturbed, options.rerun_if_slow) : options.rerun_if_slow;
    std::vector<std::string> failed;
    for (const auto& g : report["gates"])
      if (!g["passed"].get<bool>()) failed.push_back(g["name"]);
    if (n >= reruns) {
      if (note && busy && reruns == 0)
        note(fmt::format("note: the host took {:.0f} % of this machine's CPU time during the run (steal time), and only "
                         "timing gates failed; --rerun-if-disturbed N runs again when that happens",
                         steal * 100));
      return report;
    }
    disturbed.push_back({{"host_steal_share", steal}, {"failed_gates", failed}});
    if (note)
      note(fmt::format("only timing gates failed ({}){}: running again, attempt {} of {}", fmt::join(failed, ", "),
                       busy ? fmt::format(" while the host took {:.0f} % of this machine's CPU time (steal time)",
                                          steal * 100)
                            : "",
                       n + 2, reruns + 1));
  }
}

}  // namespace qsim::sim
