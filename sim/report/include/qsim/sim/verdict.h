// The pass/fail verdict of a run, as one library call for the command line and embedders alike:
// which gates apply (the scenario's, those given on the command line, a baseline's), which are
// skipped because the run left their architecture out, the decision, and whether a run that
// failed only because the host was busy runs again.
#pragma once

#include "qsim/sim/scenario.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace qsim::sim {

struct VerdictOptions {
  nlohmann::json baseline;            // a previous report (null: none): headline metrics may not regress
  double max_regression_pct = 10;
  int rerun_if_disturbed = 0;         // run again up to N times when only timing gates failed on a busy host
  // Run again up to N times when only timing gates failed, whatever the steal: timing noise on a
  // shared machine only ever adds time (a slower neighbour shows no steal), so a timing figure
  // that holds in one attempt of several holds; a correctness gate is never run again.
  int rerun_if_slow = 0;
};

struct GateSet {
  std::vector<Gate> scenario, extra;
  std::vector<std::string> skipped;   // scenario gates about an architecture the run leaves out
};

// The gates a run of `archs` is judged by. A scenario gate about an architecture not in `archs`
// (or a speedup.* gate without both polling and queue) is skipped, not failed. Throws ScenarioError for a
// gate whose metric no report of these architectures would have.
GateSet gate_set(const Scenario& s, const std::vector<std::string>& archs, const std::vector<Gate>& extra);

// Evaluates the gates on `report` and records them in it ("gates", "gates_skipped", "passed");
// returns whether every gate passed.
bool judge(nlohmann::json& report, const GateSet& gates, const VerdictOptions& options);

// Runs `attempt` (a live run or the model, returning its report without gates) and judges it;
// while it fails only timing gates on a disturbed host (disturbed_run), or only timing gates at
// all (rerun_if_slow), and reruns are left, runs it again, listing the earlier attempts in
// "disturbed_attempts" (each with its steal share and failed gates). `note` hears why, in a line.
nlohmann::json run_judged(const std::function<nlohmann::json()>& attempt, const GateSet& gates,
                          const VerdictOptions& options, const std::function<void(const std::string&)>& note = {});

}  // namespace qsim::sim
