#include "qsim/queue/backoff.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qsim::queue {

std::chrono::milliseconds BackoffPolicy::delay(int attempt) const {
  if (attempt < 1) attempt = 1;
  double d = static_cast<double>(base.count()) * std::pow(factor, attempt - 1);
  double capped = std::min(d, static_cast<double>(cap.count()));
  return std::chrono::milliseconds(static_cast<long long>(capped));
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
