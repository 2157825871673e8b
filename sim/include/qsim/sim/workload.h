// The workload a scenario describes, made concrete and replayable: arrival times and stage
// durations, all from the scenario's seed.
//
// One seed is forked per stream ("arrivals", "durations", later "faults"...), so that drawing
// more from one stream never shifts another: adding a fault does not move the arrival trace.
// The engine is std::mt19937_64 and every distribution is our own code over it (the standard
// library's distributions are not portable across implementations), so a seed replays
// everywhere.
#pragma once

#include "qsim/sim/scenario.h"

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace qsim::sim {

class Stream {
public:
  Stream(std::uint64_t seed, std::string_view name);
  double uniform();                 // [0, 1)
  double exponential(double rate);  // mean 1/rate
  double normal();                  // standard normal (Box-Muller)

private:
  std::mt19937_64 engine_;
};

// Simulated arrival times in seconds, sorted, one per order. A trace file is read relative to
// the scenario's directory: one arrival time per line, a duration ("90s") or plain seconds.
// Throws ScenarioError for an unreadable or malformed trace.
std::vector<double> arrival_times_s(const Scenario& s);

// One draw of a stage duration in seconds (never negative).
double sample_s(const Distribution& d, Stream& rng);

}  // namespace qsim::sim
