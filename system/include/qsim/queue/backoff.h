// Retry delays: exponential backoff with jitter, a pure function of the attempt number and a
// caller-owned random engine (std::mt19937_64 with the caller's seed, so runs replay).
//
//   delay(n) = min(cap, base * factor^(n-1))            n = the attempt that just failed, 1..
//   jittered = delay(n) * (1 - jitter * u)              u uniform in [0, 1), our own mapping
//
// jitter = 0 gives the plain schedule; jitter = 1 gives "full jitter" in (0, delay].
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace qsim::queue {

// The schedule itself, in any unit: min(cap, base * factor^(attempt-1)), attempt >= 1. The one
// formula the workers (through BackoffPolicy) and the discrete-event model share.
double backoff_delay(double base, double factor, double cap, int attempt);

// A worker's default cap: this many times the first delay when the delay grows.
constexpr double kBackoffCapFactor = 64;

struct BackoffPolicy {
  std::chrono::milliseconds base{1000};
  double factor = 2.0;
  std::chrono::milliseconds cap{60'000};
  double jitter = 0.2;  // 0..1

  std::chrono::milliseconds delay(int attempt) const;
  std::chrono::milliseconds jittered(int attempt, std::mt19937_64& rng) const;
  void validate() const;  // throws std::invalid_argument
};

// Uniform double in [0, 1) from the top 53 bits: the same on every standard library.
inline double unit_uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace qsim::queue
