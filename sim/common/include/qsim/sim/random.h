// The seeded randomness every part draws from. One seed is forked per stream ("arrivals",
// "durations", "faults", ...), so that drawing more from one stream never shifts another. The
// engine is std::mt19937_64 and every distribution is our own code over it (the standard
// library's distributions are not portable across implementations), so a seed replays
// everywhere.
#pragma once

#include "qsim/queue/backoff.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string_view>

namespace qsim::sim {

class Stream {
public:
  Stream(std::uint64_t seed, std::string_view name);
  // inline: the model draws millions of these per run
  double uniform() { return queue::unit_uniform(engine_); }                          // [0, 1)
  double exponential(double rate) { return -std::log1p(-uniform()) / rate; }  // mean 1/rate
  double normal();                  // standard normal (Box-Muller)

private:
  std::mt19937_64 engine_;
};

// A uniform draw in [0, 1) keyed by (seed, what, key, nth) rather than taken from a stream:
// the world's failure decisions and stage-triggered kills, which live runs and the model must
// make alike whatever order the calls come in.
double keyed_draw(std::uint64_t seed, std::string_view what, std::string_view key, int nth);

// The seed of the nth independent replication (`what`: of what) forked from `seed`: replications
// of one plan point share no stream, and a plan run again draws the same ones.
std::uint64_t fork_seed(std::uint64_t seed, std::string_view what, int nth);

}  // namespace qsim::sim
