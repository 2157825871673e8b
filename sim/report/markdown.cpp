#include "qsim/sim/report.h"
#include "qsim/sim/stats.h"

#include "document.h"
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

namespace report_detail {

namespace {

// The load over time in at most ten rows: the run's windows merged (merge_load).
void load_table(Document& d, const json& load) {
  d.paragraph("Load over time, per simulated second: what the same system would see at real speed, except for what a "
              "component does on a period of wall time (a heartbeat, a blocking wait's timeout), which the speedup "
              "thins out. The harness's own commands are not counted; - where Redis restarted inside the window. "
              "Utilisation: the workers' share of time busy with an order, from its last pickup to its end.");
  std::vector<LoadPoint> windows(load["t_s"].size());
  for (std::size_t i = 0; i < windows.size(); ++i) {
    auto rate = [&](const char* key) { return load[key][i].is_null() ? -1.0 : load[key][i].get<double>(); };
    windows[i] = {load["t_s"][i].get<double>(), load["dt_s"][i].get<double>(), rate("redis_commands_per_s"),
                  rate("store_queries_per_s"), load["worker_utilisation"][i].get<double>()};
  }
  auto& t = d.table({"from (simulated)", "for", "Redis commands / s", "store queries / s", "worker utilisation"},
                    {false, true, true, true, true});
  auto rate = [](double v) { return v < 0 ? std::string("-") : fmt::format("{:.3g}", v); };
  for (const LoadPoint& p : merge_load(windows, 10))
    t.rows.push_back({{minutes(p.t_s)},
                      {minutes(p.dt_s)},
                      {rate(p.redis_commands_per_s)},
                      {rate(p.store_queries_per_s)},
                      {p.dt_s > 0 ? fmt::format("{:.0f} %", 100 * p.worker_utilisation) : std::string("-")}});
}

}  // namespace

Document report_document(const json& rep) {
  Document d;
  d.heading(1, rep["scenario"].get<std::string>() + " — " + (rep["passed"].get<bool>() ? "all gates passed" : "GATES FAILED"));
  d.paragraph(fmt::format("Seed {}, {}, {:.1f} s of wall time, {}.", rep["seed"].get<std::uint64_t>(), speedup_text(rep),
                          rep["wall_s"].get<double>(), rep["redis"].get<std::string>()),
              true);
  d.paragraph("Replay: `" + rep["replay_command"].get<std::string>() + "`", true);
  for (const auto& a : rep.value("disturbed_attempts", json::array()))
    d.paragraph(fmt::format("Run again: an earlier attempt failed only timing gates ({}); the host took {:.0f} % of this "
                            "machine's CPU time during it.",
                            fmt::join(a["failed_gates"].get<std::vector<std::string>>(), ", "),
                            a["host_steal_share"].get<double>() * 100));
  d.paragraph("All times are simulated.");
  if (!rep["comparison"].empty()) {
    d.heading(2, "Polling vs queue");
    auto& t = d.table({"metric", "polling", "queue", "polling / queue"}, {false, true, true, true});
    for (const auto& c : rep["comparison"]) {
      const std::string m = c["metric"];
      const bool is_time = m.find("_s") != std::string::npos;
      auto show = [&](const json& v) {
        if (!v.is_number()) return std::string("n/a");
        const double x = v;
        return is_time ? (x >= 120 ? minutes(x) : secs(x)) : fmt_value(x);
      };
      t.rows.push_back({{c["label"].get<std::string>()},
                        {show(c["polling"])},
                        {show(c["queue"])},
                        {c["ratio"].is_number() ? fmt::format("{:.2f}×", c["ratio"].get<double>()) : "n/a"}});
    }
  }
  if (!rep["claims"].empty()) {
    d.heading(2, "Claims of the seed documents");
    auto& t = d.table({"claim", "architecture", "expected", "measured", "tolerance", "holds"},
                      {false, false, false, false, false, false});
    for (const auto& c : rep["claims"]) {
      const bool fails = !c["holds"].is_null() && !c["holds"].get<bool>();
      t.rows.push_back({{c["claim"].get<std::string>()},
                        {c["architecture"].get<std::string>()},
                        {c["expected"].get<std::string>()},
                        {c["measured"].get<std::string>()},
                        {c.value("tolerance", "")},
                        {c["holds"].is_null() ? "n/a" : fails ? "no" : "yes", fails}});
    }
  }
  d.heading(2, "Checker");
  const std::vector<std::string> archs = rep["architectures"];
  {
    std::vector<std::string> header{""};
    std::vector<bool> numeric{false};
    for (const auto& a : archs) header.push_back(a), numeric.push_back(true);
    auto& t = d.table(header, numeric);
    for (const auto& f : kCheckerFields) {
      std::vector<Cell> row{{f}};
      for (const auto& a : archs) row.push_back({std::to_string(rep["results"][a]["checker"].value(f, 0LL))});
      t.rows.push_back(std::move(row));
    }
  }
  d.heading(2, "Per architecture");
  for (const auto& a : archs) {
    const auto& r = rep["results"][a];
    d.heading(3, fmt::format("{} ({} worker{})", a, r["workers"].get<int>(), r["workers"] == 1 ? "" : "s"));
    auto& dist = d.table({"distribution", "p50", "p90", "p95", "p99", "max"}, {false, true, true, true, true, true});
    auto rows = std::vector<std::pair<std::string, const json*>>{
        {"e2e_s", &r["e2e_s"]}, {"pickup_s", &r["pickup_s"]}, {"probe_pickup_s", &r["probe_pickup_s"]},
        {"overhead_s", &r["overhead_s"]}};
    if (r.contains("stages_s"))  // reports from before per-stage figures have none
      for (const char* stage : {"download", "upload", "finalize"})
        rows.emplace_back(std::string(stage) + " stage", &r["stages_s"][stage]);
    for (const auto& [name, pp] : rows) {
      const auto& p = *pp;
      dist.rows.push_back({{fmt::format("{} ({})", name, p["count"].get<long long>())},
                           {secs(p["p50"])},
                           {secs(p["p90"])},
                           {secs(p["p95"])},
                           {secs(p["p99"])},
                           {secs(p["max"])}});
    }
    std::string queries = "Store queries by component: ";
    for (const auto& [k, v] : r["store_queries_by_component"].items()) queries += fmt::format("{} {}, ", k, v.get<long long>());
    d.paragraph(queries + fmt::format("per idle day {:.0f}. Redis commands {} (per idle day {:.0f}; the harness's own {} "
                                      "excluded).",
                                      r["store_queries_per_idle_day"].get<double>(), r["redis_commands"].get<long long>(),
                                      r["redis_commands_per_idle_day"].get<double>(),
                                      r["harness_commands"].get<long long>()));
    if (r.contains("load") && !r["load"]["t_s"].empty()) load_table(d, r["load"]);
    d.paragraph("Probe: " + r["probe"]["method"].get<std::string>() + ".");
    if (r.contains("explanations") && !r["explanations"].empty()) {
      d.paragraph("Why the losses and duplicates above happened:");
      d.bullets(r["explanations"].get<std::vector<std::string>>());
    }
    if (r.contains("configuration") && !r["configuration"].empty()) {
      auto& t = d.table({"configuration that ran", "value"}, {false, false});
      for (const auto& [k, v] : r["configuration"].items()) t.rows.push_back({{k}, {v.get<std::string>()}});
    }
    d.paragraph(fmt::format("Peak backlog {} orders; longest drain {} (from a fault, or the end of a spike, to an empty "
                            "backlog); retry amplification {:.2f} download attempts per completed order.",
                            r["peak_backlog"].get<int>(), minutes(r["drain_s"]), r["retry_amplification"].get<double>()));
    if (!r["faults"].empty()) {
      std::string fired = "Faults fired:";
      for (const auto& [k, v] : r["fault_counts"].items()) fired += fmt::format(" {} {};", k, v.get<long long>());
      d.paragraph(fired);
      if (!r["kills"].empty()) {
        long long never = 0;
        for (const auto& k : r["kills"]) never += k["redelivered_after_s"].is_null();
        d.paragraph(fmt::format("Workers killed holding an order: {}; redelivered {} (after p50 {}, max {}; bound {}), "
                                "never {}.",
                                r["kills"].size(), r["recovery_s"]["count"].get<long long>(), secs(r["recovery_s"]["p50"]),
                                secs(r["recovery_s"]["max"]),
                                r["recovery_bound_s"].get<double>() > 0 ? secs(r["recovery_bound_s"]) : std::string("none"),
                                never));
      }
      if (!r["webhooks"].empty()) {
        auto& t = d.table({"extra webhook", "answers"}, {false, false});
        for (const auto& [kind, answers] : r["webhooks"].items()) {
          std::string words;
          for (const auto& [word, n] : answers.items()) words += fmt::format("{}{} {}", words.empty() ? "" : " ", word, n.get<long long>());
          t.rows.push_back({{kind}, {words}});
        }
      }
      if (!r["network"].empty()) {
        auto& t = d.table({"link (fault proxy)", "connections", "resets", "bytes", "delayed chunks"},
                          {false, true, true, true, true});
        for (const auto& [link, c] : r["network"].items())
          t.rows.push_back({{link},
                            {std::to_string(c["connections"].get<long long>())},
                            {std::to_string(c["resets"].get<long long>())},
                            {std::to_string(c["bytes"].get<long long>())},
                            {std::to_string(c["delayed_chunks"].get<long long>())}});
      }
      if (!r["dead_letters_by_reason"].empty()) {
        std::string reasons = "Dead letters by reason:";
        for (const auto& [k, v] : r["dead_letters_by_reason"].items()) reasons += fmt::format(" \"{}\" {};", k, v.get<long long>());
        d.paragraph(reasons);
      }
      auto& t = d.table({"t", "fault", "target", "detail"}, {true, false, false, false});
      std::size_t shown = 0;
      for (const auto& f : r["faults"]) {
        if (++shown > 40) {
          t.rows.push_back({{""}, {fmt::format("... {} more in report.json", r["faults"].size() - 40)}, {""}, {""}});
          break;
        }
        t.rows.push_back({{minutes(f["t_s"])},
                          {f["kind"].get<std::string>()},
                          {f["target"].get<std::string>()},
                          {f["detail"].get<std::string>()}});
      }
    }
    d.bullets(r["notes"].get<std::vector<std::string>>());
  }
  d.heading(2, "Timing");
  d.paragraph(rep["timing"].get<std::string>());
  d.heading(2, "Gates");
  if (rep["gates"].empty()) {
    d.paragraph("No gates.");
  } else {
    auto& t = d.table({"gate", "value", "threshold", "passed"}, {false, true, false, false});
    for (const auto& g : rep["gates"]) {
      const bool passed = g["passed"].get<bool>();
      t.rows.push_back({{g["name"].get<std::string>()},
                        {gate_value_text(g)},
                        {g["op"].get<std::string>() + " " + fmt_value(g["threshold"])},
                        {passed ? "yes" : "no", !passed}});
    }
  }
  return d;
}

std::string to_markdown(const Document& d) {
  std::string md;
  for (const auto& b : d.blocks()) {
    switch (b.kind) {
      case Block::Kind::heading:
        md += std::string(static_cast<std::size_t>(b.level), '#') + " " + b.text + "\n\n";
        break;
      case Block::Kind::paragraph:
        md += b.text + "\n\n";
        break;
      case Block::Kind::bullets:
        for (const auto& i : b.items) md += "- " + i + "\n";
        md += "\n";
        break;
      case Block::Kind::table: {
        md += "|";
        for (const auto& h : b.header) md += " " + h + " |";
        md += "\n|";
        for (bool n : b.numeric) md += n ? "---:|" : "---|";
        md += "\n";
        for (const auto& row : b.rows) {
          md += "|";
          for (const auto& c : row) md += " " + (c.bad ? "**" + c.text + "**" : c.text) + " |";
          md += "\n";
        }
        md += "\n";
        break;
      }
    }
  }
  return md;
}

}  // namespace report_detail

std::string render_markdown(const json& rep) { return to_markdown(report_document(rep)); }

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
