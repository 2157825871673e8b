// The operator's view of one queue and the operator's actions on it (`qsim-queue`, the
// dashboard): what waits, what runs and on which worker, what died and why; requeue the dead,
// pause and resume, purge what waits. Every action is one Lua script (atomic), counted in the
// queue's stats and kept in each job's history.
//
// Thread-safety: like Queue, one thread at a time.
#pragma once

#include "qsim/queue/queue.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qsim::queue {

struct InFlightJob {
  std::string id, worker;
  int attempt = 0;
  std::int64_t lease_remaining_ms = 0;  // negative: expired, the reaper will take it back
};

struct WorkerPresence {
  std::string id;
  std::string job;                 // empty: idle
  std::int64_t since_beat_ms = 0;  // since it last said it was alive
  std::int64_t interval_ms = 0;    // how often it says so
  std::int64_t started_ms = 0;     // server ms of its first word
  bool alive = false;              // heard within three intervals (and at least 3 s)
};

struct QueueOverview {
  std::string queue;
  std::int64_t server_ms = 0;
  long long ready_high = 0, ready_default = 0, ready_low = 0, delayed = 0, in_flight = 0, dead = 0;
  bool paused = false;
  Counters counters;
  std::vector<InFlightJob> in_flight_jobs;  // soonest lease deadline first, at most the limit asked
  std::vector<WorkerPresence> workers;      // most recently heard first
};

struct DeadJob {
  std::string id, reason, payload;
  int attempts = 0;
  std::int64_t died_ms = 0;
};

class QueueAdmin {
public:
  explicit QueueAdmin(Queue& queue) : q_(&queue) {}

  Expected<QueueOverview> overview(std::size_t max_in_flight = 100);
  // Dead jobs, oldest first, whose reason contains `reason` (empty: all), at most `limit` (0: all).
  // Without `payloads`, their payloads are not read (a poison job's may be megabytes).
  Expected<std::vector<DeadJob>> dead(std::string_view reason = {}, std::size_t limit = 0, bool payloads = true);
  // Back to ready with their attempts reset; returns the ids requeued (ids not dead are skipped,
  // so a second run of the same requeue does nothing).
  Expected<std::vector<std::string>> requeue_dead(const std::vector<std::string>& ids);
  Expected<bool> set_paused(bool paused);
  Expected<long long> purge();  // ready and delayed jobs deleted; in flight and dead kept

private:
  Queue* q_;
};

}  // namespace qsim::queue
