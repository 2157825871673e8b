// sim: the harness's command line.
//
//   sim run SCENARIO.json [--redis URL] [--out DIR] [--seed N] [--speedup X] [--arch polling,queue]
//                         [--format md,json,html,junit] [--baseline REPORT.json] [--max-regression PCT]
//                         [--gate "METRIC OP VALUE"]... [--rerun-if-disturbed N] [--rerun-if-slow N] [--quiet]
//   sim validate SCENARIO.json...
//   sim report REPORT.json --format html
//   sim compare OLD.json NEW.json [--max-regression PCT]
//
// Exit codes: 0 all gates passed; 1 a gate failed; 2 bad input or usage; 3 infrastructure error
// (Redis unreachable, a process would not start); 130 interrupted (Ctrl-C), everything stopped.
#include "qsim/sim/model.h"
#include "qsim/sim/planner.h"
#include "qsim/sim/report.h"
#include "qsim/sim/run.h"
#include "qsim/sim/scenario.h"
#include "qsim/sim/verdict.h"
#include "qsim/sim/architecture.h"
#include "qsim/dashboard/dashboard.h"
#include "qsim/security/signature.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace {

using json = nlohmann::json;
std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) { g_cancel.store(true); }

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

int validate(const std::vector<std::string>& files) {
  int bad = 0;
  for (const auto& f : files) {
    try {
      std::ifstream in(f);
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object() && j.contains("$schema")) {  // scenarios/*.json includes the schema itself
        std::cout << "skipped: " << f << " (a JSON Schema, not a scenario)\n";
        continue;
      }
      auto s = qsim::sim::load_scenario(f);
      qsim::sim::check_gate_metrics(s);
      std::string archs;
      for (const auto& a : qsim::sim::architectures_of(s, {})) archs += " " + a;
      std::cout << "ok: " << f << " (" << s.name << ", " << s.orders << " orders, architectures:" << archs << ", "
                << s.gates.size() << " gates)\n";
    } catch (const qsim::sim::ScenarioError& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++bad;
    }
  }
  return bad == 0 ? 0 : 2;
}

struct RunArgs {
  std::string scenario, redis, out, arch, format = "md,json,html,junit", baseline;
  std::optional<std::uint64_t> seed;
  std::optional<double> speedup;
  double max_regression = 10;
  std::vector<std::string> gates;
  int probe_orders = 50;
  int dashboard = 0;  // a port: serve the live dashboard there during the run
  int rerun_if_disturbed = 0;
  int rerun_if_slow = 0;
  std::string logs;
  std::string calibrate;  // model: a live report.json
  std::uint64_t rolls = 0;  // model: ModelOptions::rolls
  bool quiet = false, no_probe = false, side_by_side = false, one_at_a_time = false, redis_acl = false;
};

void show_progress(const qsim::sim::Progress& p) {
  std::string line;
  if (p.phase == "workload")
    line = fmt::format("[{}] workload: simulated {:.0f} of ~{:.0f} min, {} of {} orders finished", p.arch, p.sim_s / 60,
                       p.sim_expected_s / 60, p.done, p.total);
  else
    line = fmt::format("[{}] {}", p.arch, p.phase);
  std::cerr << "\r\033[K" << line << std::flush;
}

// The options `run` and `model` share.
void add_report_options(CLI::App* c, RunArgs& a, const std::string& default_out) {
  c->add_option("scenario", a.scenario, "scenario file")->required()->check(CLI::ExistingFile);
  c->add_option("--out", a.out, "report folder (default " + default_out + ")");
  c->add_option("--seed", a.seed, "override the scenario's seed");
  c->add_option("--arch", a.arch,
                "architectures: polling, queue, rq, celery, bullmq, sidekiq, external, e.g. queue,rq (default: every "
                "one in the scenario; a framework it does not configure runs with its defaults)");
  c->add_option("--format", a.format, "report formats: md,json,html,junit")->capture_default_str();
  c->add_option("--baseline", a.baseline, "a previous report.json: headline metrics may not regress")
      ->check(CLI::ExistingFile);
  c->add_option("--max-regression", a.max_regression, "allowed regression against --baseline, percent")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  c->add_option("--gate", a.gates, "an extra gate, e.g. \"queue.e2e.p95<=90m\" (repeatable)");
  c->add_flag("--quiet,-q", a.quiet, "no progress and no summary");
}

// One screen at the end of a run: per architecture what the checker counted and the makespan.
std::string summary_table(const json& report) {
  std::string out = fmt::format("\n{:<10} {:>9} {:>5} {:>6} {:>7} {:>10} {:>12} {:>12}\n", "", "completed", "lost",
                                "stuck", "failed", "dup. work", "dup. effects", "makespan");
  for (const auto& name : report["architectures"]) {
    const auto& a = report["results"][name.get<std::string>()];
    const auto& c = a["checker"];
    auto n = [&c](const char* k) { return c.value(k, 0LL); };
    out += fmt::format("{:<10} {:>9} {:>5} {:>6} {:>7} {:>10} {:>12} {:>8.1f} min\n", name.get<std::string>(),
                       fmt::format("{}/{}", n("completed"), n("orders")), n("lost"), n("stuck"), n("failed_visible"),
                       n("duplicate_deliveries"), n("duplicate_effects"), a.value("makespan_s", 0.0) / 60);
  }
  return out + "\n";
}

int run(const RunArgs& a, bool model) {
  namespace sim = qsim::sim;
  sim::Scenario s;
  std::vector<sim::Gate> cli_gates;
  sim::GateSet gates;
  sim::VerdictOptions verdict;
  sim::RunOptions o;
  sim::Calibration calibration;
  std::vector<std::string> formats = split_list(a.format);
  try {
    s = sim::load_scenario(a.scenario);
    for (const auto& f : formats)
      if (f != "md" && f != "json" && f != "html" && f != "junit")
        throw sim::ScenarioError("--format", f, "expected a list of md, json, html, junit");
    for (const auto& g : a.gates) cli_gates.push_back(sim::parse_gate(g));
    o.architectures = split_list(a.arch);
    const std::vector<std::string> archs =
        model ? sim::model_architectures(s, o.architectures) : sim::live_architectures(s, o.architectures);
    gates = sim::gate_set(s, archs, cli_gates);
    if (!a.baseline.empty()) verdict.baseline = sim::load_report(a.baseline);
    verdict.max_regression_pct = a.max_regression;
    verdict.rerun_if_disturbed = a.rerun_if_disturbed;
    verdict.rerun_if_slow = a.rerun_if_slow;
    if (model && !a.calibrate.empty()) calibration = sim::calibration_from_report(sim::load_report(a.calibrate), a.calibrate);
  } catch (const sim::ScenarioError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  if (!a.redis.empty()) o.redis_url = a.redis;
  o.seed = a.seed;
  o.speedup = a.speedup;
  o.probe = !a.no_probe;
  if (a.side_by_side) o.side_by_side = true;
  if (a.one_at_a_time) o.side_by_side = false;
  o.redis_acl = a.redis_acl;
  o.probe_orders = a.probe_orders;
  o.log_dir = a.logs;
  o.cancel = &g_cancel;
  const bool tty = ::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO);
  if (tty && !a.quiet) o.on_progress = show_progress;
  std::unique_ptr<qsim::dashboard::Dashboard> live;
  if (!model && a.dashboard > 0) {
    qsim::dashboard::Options d;
    d.port = a.dashboard;
    d.sample_every = std::chrono::milliseconds(250);  // a run's minutes are seconds of wall time
    d.history = 1200;
    try {
      d.token = qsim::security::find_secret("dashboard").value_or("");
    } catch (const std::exception& e) {
      std::cerr << "error: --dashboard: " << e.what() << "\n";
      return 2;
    }
    live = std::make_unique<qsim::dashboard::Dashboard>(d);
    live->set_run(s.name);
    if (!live->start()) {
      std::cerr << "error: --dashboard: " << live->error() << "\n";
      return 3;
    }
    std::cerr << "dashboard: http://127.0.0.1:" << a.dashboard << "/" << (d.token.empty() ? " (read-only: no token)" : "")
              << "\n";
    auto* dash = live.get();
    o.on_progress = [dash, shown = o.on_progress](const sim::Progress& p) {
      dash->update_lane({p.arch, p.phase, p.sim_s, p.sim_expected_s, p.done, p.total});
      if (shown) shown(p);
    };
    o.on_services_up = [dash](const std::string& arch, const qsim::redis::Endpoint& e, const std::string& prefix,
                              const std::string& queue, bool engine) {
      dash->add_queue({arch, e, prefix, queue, engine});
    };
    o.on_fault = [dash](const std::string& arch, const sim::FaultEvent& f) {
      dash->add_fault({arch, f.t_s, f.kind, f.target, f.detail});
    };
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  json report;
  try {
    report = sim::run_judged(
        [&] {
          sim::ModelOptions mo;
          mo.architectures = o.architectures;
          mo.seed = o.seed;
          mo.calibration = calibration;
          mo.rolls = a.rolls;
          auto result = model ? sim::run_model(s, mo) : sim::run_scenario(s, o);
          if (tty && !a.quiet) std::cerr << "\r\033[K";
          return sim::report_json(result, s);
        },
        gates, verdict, [](const std::string& line) { std::cerr << line << "\n"; });
  } catch (const sim::ScenarioError& e) {
    std::cerr << "\nerror: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    // Cancelled, or whatever failed first while the interrupt was being handled.
    if (g_cancel.load()) {
      std::cerr << "\ninterrupted: every process of the run has been stopped\n";
      return 130;
    }
    std::cerr << "\ninfrastructure error: " << e.what() << "\n";
    return 3;
  }
  if (live) {
    live->set_outcome(report["passed"].get<bool>() ? "Finished: all gates passed." : "Finished: gates failed.");
    for (auto& [arch, r] : report["results"].items())
      if (r.contains("notes"))
        r["notes"].push_back("a live dashboard (--dashboard) read this Redis during the run: its reads are in the Redis "
                             "command counts (its store reads are not counted as store queries)");
  }
  std::string out = a.out.empty() ? "reports/" + s.name + (model ? "-model" : "") : a.out;
  try {
    for (const auto& path : sim::write_reports(report, out, formats))
      if (!a.quiet) std::cout << "wrote " << path << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
  auto gate_line = [](const json& g) {
    return fmt::format("{} {} = {} ({} {:g})\n", g["passed"].get<bool>() ? "pass" : "FAIL", g["name"].get<std::string>(),
                       g["value"].is_number() ? fmt::format("{:g}", g["value"].get<double>())
                       : g.value("no_data", false) ? "no data" : "n/a",
                       g["op"].get<std::string>(), g["threshold"].get<double>());
  };
  // A failed claims gate names the claims that failed, and the host's share of the CPU time, so
  // that a CI log tells a slow host from a wrong result.
  auto failed_claims = [&report] {
    std::string text;
    for (const auto& c : report.value("claims", json::array()))
      if (c["holds"] == false)
        text += fmt::format("  claim failed: {} ({}): measured {}, expected {} {}\n", c["claim"].get<std::string>(),
                            c["architecture"].get<std::string>(), c["measured"].get<std::string>(),
                            c["expected"].get<std::string>(), c["tolerance"].get<std::string>());
    if (!text.empty())
      text += fmt::format("  (host steal, busiest stretch of the run: {:.1f} % of CPU time)\n",
                          qsim::sim::busiest_steal_share(report) * 100);
    return text;
  };
  if (a.quiet) {  // quiet, but a CI log must still say why it failed
    for (const auto& g : report["gates"])
      if (!g["passed"].get<bool>()) {
        std::cerr << gate_line(g);
        if (g["name"] == "claims_failed") std::cerr << failed_claims();
      }
  } else {
    std::cout << summary_table(report);
    for (const auto& c : report["comparison"])
      if (c["metric"] == "makespan_s" && c["ratio"].is_number())
        std::cout << fmt::format("makespan: polling {:.1f} min, queue {:.1f} min ({:.2f}x)\n",
                                 c["polling"].get<double>() / 60, c["queue"].get<double>() / 60, c["ratio"].get<double>());
    for (const auto& g : report["gates"]) {
      std::cout << gate_line(g);
      if (g["name"] == "claims_failed" && !g["passed"].get<bool>()) std::cout << failed_claims();
    }
    std::cout << (report["passed"].get<bool>() ? "all gates passed\n" : "a gate failed\n");
  }
  return report["passed"].get<bool>() ? 0 : 1;
}

int report_cmd(const std::string& path, const std::string& format, const std::string& out) {
  try {
    auto report = qsim::sim::load_report(path);
    auto dir = out.empty() ? std::filesystem::path(path).parent_path().string() : out;
    for (const auto& p : qsim::sim::write_reports(report, dir.empty() ? "." : dir, split_list(format)))
      std::cout << "wrote " << p << "\n";
    return 0;
  } catch (const qsim::sim::ScenarioError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}

int compare_cmd(const std::string& older, const std::string& newer, double max_regression) {
  try {
    auto a = qsim::sim::load_report(older), b = qsim::sim::load_report(newer);
    std::cout << qsim::sim::render_comparison(a, b);
    bool passed = true;
    for (const auto& g : qsim::sim::baseline_gates(b, a, max_regression)) {
      if (!g["passed"].get<bool>()) {
        std::cout << "REGRESSION " << g["name"].get<std::string>() << ": " << fmt::format("{:g}", g["value"].get<double>())
                  << " (" << g["text"].get<std::string>() << ")\n";
        passed = false;
      }
    }
    return passed ? 0 : 1;
  } catch (const qsim::sim::ScenarioError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  qsim::sim::keep_freed_memory_for_reuse();  // `sim plan` runs many models of up to millions of orders in turn
  CLI::App app{"sim: a simulation and test harness for queue behaviour\n"
               "exit codes: 0 gates passed, 1 a gate failed, 2 bad input or usage, 3 infrastructure error"};
  app.require_subcommand(1);

  RunArgs ra, ma;
  auto* r = app.add_subcommand("run", "run a scenario's architectures on real components and write the report");
  auto* m = app.add_subcommand("model", "the discrete-event model of the scenario's architectures: no Redis, "
                                        "milliseconds; the same reports and gates as `run`");
  add_report_options(r, ra, "reports/<scenario name>");
  add_report_options(m, ma, "reports/<scenario name>-model");
  m->add_option("--calibrate", ma.calibrate,
                "a live run's report.json (`sim run`): each attempt also pays what that run measured besides the "
                "world's download and upload (its overhead per architecture: hand-offs, store transitions, HTTP, "
                "finalize), and a Redis restart keeps the store away as much longer than down_for as it did there")
      ->check(CLI::ExistingFile);
  m->add_option("--rolls", ma.rolls,
                "roll afresh what a live run leaves to chance: the network's resets with a probability, each "
                "retry's jitter, which idle worker takes each job, a stranded job's heartbeat and reaper phases "
                "(default 0: the model's own resets, retries without jitter, the first idle worker, the phases' "
                "means); a live run is one roll of many, so compare it with the spread of several");
  r->add_option("--redis", ra.redis,
                "use this Redis (loopback only) with a per-run key prefix; default: a private redis-server. "
                "redis://user@host:port connects every component as that user, its password from "
                "QSIM_REDIS_SECRET or the file named by QSIM_REDIS_SECRET_FILE");
  r->add_flag("--redis-acl", ra.redis_acl,
              "least privilege: the private redis-server with a user per component, allowed only the commands and "
              "keys it needs, no client the default user (the scenario's redis_acl)");
  r->add_option("--speedup", ra.speedup, "override the scenario's speedup (simulated seconds per wall second)");
  r->add_flag("--no-probe", ra.no_probe, "skip the idle pickup probe");
  r->add_option("--dashboard", ra.dashboard,
                "serve a live dashboard of the run on 127.0.0.1:PORT: its progress, the faults as they fire, each "
                "architecture's queue and orders; requeue needs a token (QSIM_DASHBOARD_SECRET or "
                "QSIM_DASHBOARD_SECRET_FILE), without one it is read-only")
      ->check(CLI::Range(1, 65535));
  r->add_flag("--side-by-side", ra.side_by_side,
              "run the architectures at the same time, each on its own private redis-server");
  r->add_flag("--one-at-a-time", ra.one_at_a_time,
              "run the architectures one after the other on one redis-server (overrides the scenario's side_by_side)")
      ->excludes("--side-by-side");
  r->add_option("--logs", ra.logs, "keep every component's stderr in this folder (default: discarded after the run)");
  r->add_option("--probe-orders", ra.probe_orders, "orders in the idle pickup probe")
      ->capture_default_str()->check(CLI::Range(1, 10'000));
  r->add_option("--rerun-if-disturbed", ra.rerun_if_disturbed,
                "when only timing gates failed and the host took at least 3 % of this machine's CPU time during the "
                "run (steal time on a shared VM), run again, up to N more times; the report lists the disturbed "
                "attempts")
      ->capture_default_str()->check(CLI::Range(0, 10));
  r->add_option("--rerun-if-slow", ra.rerun_if_slow,
                "when only timing gates failed, whatever the steal time, run again, up to N more times (timing "
                "noise only adds time, so one attempt within its bounds shows the figure holds); the report lists "
                "the earlier attempts, and a correctness gate is never run again")
      ->capture_default_str()->check(CLI::Range(0, 10));

  std::string plan_scenario, plan_out, plan_format = "md,json,html";
  auto* pl = app.add_subcommand("plan", "a capacity plan from the model: the scenario's `plan` section swept over "
                                        "worker counts and arrival rates");
  pl->add_option("scenario", plan_scenario, "scenario file with a plan section")->required()->check(CLI::ExistingFile);
  pl->add_option("--out", plan_out, "folder (default reports/<scenario name>-plan)");
  pl->add_option("--format", plan_format, "formats: md,json,html")->capture_default_str();

  std::vector<std::string> files;
  auto* v = app.add_subcommand("validate", "check scenario files against scenarios/schema.json (built into sim; "
                                           "every problem listed) and the rules across keys it cannot express, "
                                           "such as gate metrics; exit 2 if any is invalid");
  v->add_option("files", files, "scenario files")->required()->check(CLI::ExistingFile);

  std::string report_path, report_format = "html", report_out;
  auto* rep = app.add_subcommand("report", "render a report.json again, as md, html, junit or json");
  rep->add_option("report", report_path, "report.json")->required()->check(CLI::ExistingFile);
  rep->add_option("--format", report_format, "formats: md,json,html,junit")->capture_default_str();
  rep->add_option("--out", report_out, "folder (default: the report's own)");

  std::string older, newer;
  double cmp_regression = 10;
  auto* cmp = app.add_subcommand("compare", "compare two reports; exit 1 if a headline metric regressed");
  cmp->add_option("old", older, "the older report.json")->required()->check(CLI::ExistingFile);
  cmp->add_option("new", newer, "the newer report.json")->required()->check(CLI::ExistingFile);
  cmp->add_option("--max-regression", cmp_regression, "allowed regression, percent")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;  // usage errors are bad input
  }
  if (*r) return run(ra, false);
  if (*m) return run(ma, true);
  if (*pl) {
    try {
      auto s = qsim::sim::load_scenario(plan_scenario);
      auto plan = qsim::sim::plan_capacity(s);
      for (const auto& p : qsim::sim::write_plan(plan, plan_out.empty() ? "reports/" + s.name + "-plan" : plan_out,
                                                 split_list(plan_format)))
        std::cout << "wrote " << p << "\n";
      for (const auto& rec : plan["recommendations"])
        std::cout << fmt::format("{:g} orders/h: ", rec["rate_per_h"].get<double>())
                  << (rec["workers"].is_null() ? std::string("no planned worker count meets the SLO")
                                             : fmt::format("{} workers, {} mean {:.1f} min, a run on a fresh seed "
                                                           "within {:.1f}-{:.1f} (95 %), {:.0f} % headroom",
                                                           rec["workers"].get<int>(), plan["slo"]["metric"].get<std::string>(),
                                                           rec["slo_interval_s"]["mean"].get<double>() / 60,
                                                           rec["slo_interval_s"]["prediction95"][0].get<double>() / 60,
                                                           rec["slo_interval_s"]["prediction95"][1].get<double>() / 60,
                                                           rec["headroom"].get<double>() * 100))
                  << "\n";
      return 0;
    } catch (const qsim::sim::ScenarioError& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 2;
    }
  }
  if (*v) return validate(files);
  if (*rep) return report_cmd(report_path, report_format, report_out);
  if (*cmp) return compare_cmd(older, newer, cmp_regression);
  return 2;
}
