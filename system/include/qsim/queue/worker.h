// A queue worker: reserves jobs, runs a handler, acks — one round trip per job in the steady
// state (the ack of job N travels with the reserve of job N+1).
//
// While idle it registers in the queue's idle set and blocks in BLPOP on its own inbox, where
// producers hand it jobs already leased to it (no sleep-polling, pickup in one hop). A keeper thread,
// on its own connection, heartbeats the leases of every job the worker holds and runs the
// reaper once per tick (the reaper lock makes that one reaper per queue per tick however many
// workers run it).
//
// Handler outcomes: return normally -> ack; throw PermanentError (MalformedPayload is one) ->
// dead-letter with the message; throw Unavailable -> retried after the backoff without counting
// the attempt (FailKind::unavailable); throw anything else -> transient failure, retried after
// BackoffPolicy::jittered(attempt) until max_attempts, then dead-lettered. A handler never kills
// the worker.
//
// Crash loop: when the worker running a job's last attempt is lost (its lease expired), the
// reaper hands the job out once more for burial (Job::for_burial()). The handler is not run
// again; the worker calls the burial hook, so that the loss is recorded where the job's owner
// looks (the order marked dead), then dead-letters the job. A hook that throws hands the attempt
// back (FailKind::unavailable) and the burial is tried again after the backoff: never a dead job
// beside work that still looks alive.
//
// Shutdown: request_stop() (async-signal-safe) stops reserving; the current job may finish
// within shutdown_deadline, after which the keeper hands it back to the queue (release) and its
// late result is dropped. run() then returns.
//
// Thread-safety: run() is called by one thread; request_stop(), stats() and current_job() from
// any thread.
#pragma once

#include "qsim/clock.h"
#include "qsim/queue/backoff.h"
#include "qsim/queue/queue.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace qsim::queue {

class PermanentError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The job could not reach something it cannot do without (its store refused: Redis out of
// memory, or down): not the job's fault, so not one of its attempts.
class Unavailable : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class MalformedPayload : public PermanentError {
public:
  explicit MalformedPayload(const std::string& why) : PermanentError("malformed payload: " + why) {}
};

struct WorkerOptions {
  std::string worker_id;  // empty: "w<pid>"
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds heartbeat_interval{0};  // 0: lease / 3
  std::chrono::milliseconds reaper_tick{1'000};
  bool run_reaper = true;
  std::chrono::milliseconds idle_wait{1'000};  // longest single BLPOP while idle
  std::size_t batch = 1;                       // jobs reserved per round trip
  BackoffPolicy backoff;
  std::uint64_t seed = 1;  // jitter stream
  std::chrono::milliseconds shutdown_deadline{10'000};
  redis::ConnectionOptions connection;
  QueueConfig queue;
};

class JobContext {
public:
  bool stop_requested() const { return stop_->load(); }
  // True once the keeper saw the lease go to someone else, or handed the job back at shutdown.
  bool lease_lost() const { return lost_->load(); }

private:
  friend class Worker;
  JobContext(const std::atomic<bool>* stop, const std::atomic<bool>* lost) : stop_(stop), lost_(lost) {}
  const std::atomic<bool>* stop_;
  const std::atomic<bool>* lost_;
};

using Handler = std::function<void(const Job&, JobContext&)>;
// Called before a crash loop is dead-lettered, with the reason it will be buried with.
using BurialHook = std::function<void(const Job&, const std::string& reason)>;

struct WorkerStats {
  std::atomic<long long> started{0}, acked{0}, retried{0}, dead{0}, lease_lost{0}, released{0},
      reaped{0}, redis_errors{0}, unavailable{0}, buried{0};  // buried: crash loops this worker buried
  // Clock time (ms since the clock's epoch) of the last Redis call that got an answer; an idle
  // worker's blocking wait answers at least every idle_wait.
  std::atomic<long long> last_redis_ok_ms{0};
};

class Worker {
public:
  Worker(redis::Endpoint endpoint, std::string queue, WorkerOptions options, Clock& clock = SystemClock::instance());
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void run(const Handler& handler, const BurialHook& before_burial = {});
  void request_stop() noexcept { stop_.store(true); }
  const WorkerStats& stats() const { return stats_; }
  const std::string& id() const { return options_.worker_id; }
  std::string current_job() const;  // empty when idle

private:
  void keeper_loop();
  void set_held(std::vector<Job> jobs);
  void drop_held(const std::string& id);
  void bury(Queue& queue, const Job& job, const BurialHook& before_burial, std::mt19937_64& rng);

  redis::Endpoint endpoint_;
  std::string queue_name_;
  WorkerOptions options_;
  Clock* clock_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> current_lost_{false};
  WorkerStats stats_;

  mutable std::mutex mu_;
  std::vector<Job> held_;       // reserved and not yet acked/failed: heartbeated by the keeper
  std::string running_;         // id of the job whose handler runs now
  std::string running_token_;
};

}  // namespace qsim::queue
