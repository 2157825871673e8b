#include "qsim/queue/backoff.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qsim::queue {

double backoff_delay(double base, double factor, double cap, int attempt) {
  if (attempt < 1) attempt = 1;
  return std::min(base * std::pow(factor, attempt - 1), cap);
}

std::chrono::milliseconds BackoffPolicy::delay(int attempt) const {
  const double d = backoff_delay(static_cast<double>(base.count()), factor, static_cast<double>(cap.count()), attempt);
  return std::chrono::milliseconds(static_cast<long long>(d));
}

std::chrono::milliseconds BackoffPolicy::jittered(int attempt, std::mt19937_64& rng) const {
  auto d = static_cast<double>(delay(attempt).count());
  double scaled = d * (1.0 - jitter * unit_uniform(rng));
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(scaled)));
}

void BackoffPolicy::validate() const {
  if (base.count() < 0) throw std::invalid_argument("backoff base must be >= 0");
  if (factor < 1.0) throw std::invalid_argument("backoff factor must be >= 1");
  if (cap < base) throw std::invalid_argument("backoff cap must be >= base");
  if (jitter < 0.0 || jitter > 1.0) throw std::invalid_argument("backoff jitter must be within [0, 1]");
}

}  // namespace qsim::queue
