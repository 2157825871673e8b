#include "qsim/sim/random.h"

#include "qsim/queue/backoff.h"
#include "qsim/sim/hash.h"

#include <cmath>
#include <numbers>

namespace qsim::sim {

Stream::Stream(std::uint64_t seed, std::string_view name) : engine_(seed ^ (detail::fnv1a(name) * 0x9e3779b97f4a7c15ULL)) {}

double Stream::normal() {
  double u1 = uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double keyed_draw(std::uint64_t seed, std::string_view what, std::string_view key, int nth) {
  using detail::fnv1a;
  using detail::splitmix64;
  std::uint64_t x = splitmix64(seed ^ splitmix64(fnv1a(what) ^ splitmix64(fnv1a(key) + static_cast<std::uint64_t>(nth))));
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

std::uint64_t fork_seed(std::uint64_t seed, std::string_view what, int nth) {
  using detail::fnv1a;
  using detail::splitmix64;
  return splitmix64(splitmix64(seed) ^ splitmix64(fnv1a(what) + static_cast<std::uint64_t>(nth)));
}

}  // namespace qsim::sim
