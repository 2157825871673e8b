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

}  // namespace qsim::sim
