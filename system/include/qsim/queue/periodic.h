// Periodic (cron-like) jobs.
//
// Schedule says when a job fires: either "@every <duration>" (fires at multiples of the period
// since the Unix epoch, e.g. "@every 250ms", "@every 10s") or a five-field cron expression in UTC
// ("minute hour day-of-month month day-of-week", each field "*", "N", "A-B", lists "A,B" and
// steps "*/S" or "A-B/S"; day-of-week 0-7 with 0 and 7 Sunday; when both day fields are
// restricted, either may match, as in Vixie cron).
//
// PeriodicScheduler fires each registered job at most once per period however many schedulers
// run: the next fire time lives in Redis and a script moves it forward and enqueues in one step
// (compare-and-set on the expected value, due-check against Redis server time).
//
// Thread-safety: Schedule is immutable. A PeriodicScheduler is used by one thread.
#pragma once

#include "qsim/clock.h"
#include "qsim/queue/keys.h"
#include "qsim/queue/queue.h"

#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qsim::queue {

class Schedule {
public:
  static Schedule parse(std::string_view spec);  // throws std::invalid_argument saying where
  // The first fire time strictly after `after_ms` (Unix epoch milliseconds, UTC).
  std::int64_t next_after(std::int64_t after_ms) const;
  const std::string& spec() const { return spec_; }

private:
  std::string spec_;
  std::int64_t every_ms_ = 0;  // > 0 for "@every"
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;  // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_;  // 0..6, Sunday = 0
  bool dom_restricted_ = false, dow_restricted_ = false;
  bool matches_day(int mday, int month, int wday) const;
};

struct PeriodicJob {
  std::string name;
  Schedule schedule;
  std::string payload;
  Priority priority = Priority::normal;
  int max_attempts = 3;
};

class PeriodicScheduler {
public:
  PeriodicScheduler(Queue& queue, std::vector<PeriodicJob> jobs, Clock& clock = SystemClock::instance());
  // Fires what is due. Returns how many jobs this call enqueued. Cheap when nothing is due
  // (no round trip until the cached next fire time is near).
  [[nodiscard]] Expected<int> tick();

private:
  struct Entry {
    PeriodicJob job;
    std::optional<std::int64_t> next;  // cached copy of Redis' next fire time
  };
  Queue* queue_;
  Clock* clock_;
  std::vector<Entry> entries_;
  std::int64_t server_now_ms_ = 0;  // last server time seen
  std::chrono::steady_clock::time_point seen_at_{};
  std::int64_t estimated_server_now() const;
};

}  // namespace qsim::queue
