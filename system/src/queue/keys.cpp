#include "qsim/queue/keys.h"

#include <stdexcept>

namespace qsim::queue {

std::string_view to_string(Priority p) {
  switch (p) {
    case Priority::high: return "high";
    case Priority::normal: return "default";
    case Priority::low: return "low";
  }
  return "default";
}

Priority priority_from_string(std::string_view s) {
  if (s == "high") return Priority::high;
  if (s == "default") return Priority::normal;
  if (s == "low") return Priority::low;
  throw std::invalid_argument("priority must be high, default or low, not '" + std::string(s) + "'");
}

Keys::Keys(std::string_view queue, std::string_view prefix) : queue_(queue) {
  if (queue.empty()) throw std::invalid_argument("queue name must not be empty");
  // A brace inside the name would move the hash tag and split the queue across slots.
  if (queue.find_first_of("{}") != std::string_view::npos)
    throw std::invalid_argument("queue name must not contain '{' or '}': " + std::string(queue));
  base_ = std::string(prefix) + ":{" + std::string(queue) + "}:";
}

std::string Keys::ready(Priority p) const { return base_ + "ready:" + std::string(to_string(p)); }

}  // namespace qsim::queue
