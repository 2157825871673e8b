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
#include <string>
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

// The planned workload: every order's arrival and stage durations, drawn from the scenario's
// seed ("arrivals" and "durations" streams). Order i is order_id(i) everywhere: in the store,
// the world's call log, the reports and the model.
struct Plan {
  std::vector<double> arrivals_s, download_s, upload_s;
};
Plan make_plan(const Scenario& s);
std::string order_id(std::size_t i);  // "order-00042"

// A uniform draw in [0, 1) keyed by (seed, what, key, nth) rather than taken from a stream:
// the world's failure decisions and stage-triggered kills, which live runs and the model must
// make alike whatever order the calls come in.
double keyed_draw(std::uint64_t seed, std::string_view what, std::string_view key, int nth);

}  // namespace qsim::sim
