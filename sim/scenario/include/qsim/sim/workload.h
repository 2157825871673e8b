// The workload a scenario describes, made concrete and replayable: arrival times and stage
// durations, all from the scenario's seed.
//
// The "arrivals" and "durations" streams (random.h) are this file's own: adding a fault does not
// move the arrival trace.
#pragma once

#include "qsim/sim/random.h"
#include "qsim/sim/scenario.h"

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::sim {

// Simulated arrival times in seconds, sorted, one per order. A trace file is read relative to
// the scenario's directory: one arrival time per line, a duration ("90s") or plain seconds.
// Throws ScenarioError for an unreadable or malformed trace.
std::vector<double> arrival_times_s(const Scenario& s);
// A trace's arrivals (at most n), from its text: one per line, a duration or plain seconds; blank
// lines and '#' comments skipped. ScenarioError names the trace and the line.
std::vector<double> read_trace(std::istream& in, std::size_t n, const std::string& scenario_file,
                               const std::string& trace_name);

// One draw of a stage duration in seconds (never negative).
double sample_s(const Distribution& d, Stream& rng);

// The planned workload: every order's arrival and stage durations, drawn from the scenario's
// seed ("arrivals" and "durations" streams). Order i is order_id(i) everywhere: in the store,
// the world's call log, the reports and the model.
struct Plan {
  std::vector<double> arrivals_s, download_s, upload_s;
};
Plan make_plan(const Scenario& s);
std::string order_id(std::size_t i);  // "order-00042"

// The scenario's fault plan (fault.h) over its arrivals; `horizon_s` bounds `every` without an
// `until`. For a planned workload, that horizon is two of the longest jobs after the last arrival.
FaultPlan plan_faults(const Scenario& s, const std::vector<double>& arrivals_s, double horizon_s);
FaultPlan plan_faults(const Scenario& s, const Plan& plan);

}  // namespace qsim::sim
