// The reliable queue engine: at-least-once delivery over Redis.
//
// Lifecycle of a job (key layout in keys.h):
//   enqueue -> ready (or delayed) -> reserve -> active (leased) -> ack -> done
//                                                  |-> fail(transient) -> delayed (backoff) -> ready
//                                                  |-> fail(unavailable) -> delayed, attempt not counted
//                                                  |-> fail(permanent) / attempts used up -> dead
//                                                  |-> lease expires -> reaper -> ready (front)
//                                                  |     on the last attempt (crash loop): ready
//                                                  |     once more for burial, attempt > max ->
//                                                  |     a worker records the loss -> dead
//                                                  |     (burial delivery lost too -> dead)
//                                                  '-> release (graceful hand-back) -> ready (front)
//   dead -> requeue (an operator, admin.h) -> ready, attempts reset
//
// Each arrow is one Lua script, so a job is always in Redis, never only in a worker's memory.
// A reservation is identified by a lease token; ack/heartbeat/fail/release with a stale token
// (the reaper already gave the job to someone else) change nothing and report `lease_lost`.
//
// Thread-safety: a Queue wraps one redis::Connection and is used by one thread at a time.
#pragma once

#include "qsim/queue/keys.h"
#include "qsim/redis/connection.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qsim::queue {

// The outcome of one queue call: a value, or why Redis could not give one.
template <class T>
struct [[nodiscard]] Expected {
  redis::Status status = redis::Status::ok;
  std::string error;
  T value{};

  bool ok() const { return status == redis::Status::ok; }
  explicit operator bool() const { return ok(); }
  static Expected failure(const redis::Result& r) { return {r.status, r.error, T{}}; }
};

struct EnqueueOptions {
  Priority priority = Priority::normal;
  std::chrono::milliseconds delay{0};
  std::string unique_key;  // non-empty: a second enqueue with this key returns the first job
  int max_attempts = 3;
};

struct Enqueued {
  std::string id;
  bool created = false;  // false: the unique key existed, `id` is the existing job
};

// A reserved job as a worker sees it.
struct Job {
  std::string id;
  std::string payload;
  int attempt = 0;  // 1 on first delivery
  int max_attempts = 0;
  Priority priority = Priority::normal;
  std::string lease_token;  // "<id>:<serial>": names this reservation

  // Every attempt lost its worker: this delivery is the job's burial, not one more run.
  bool for_burial() const { return max_attempts > 0 && attempt > max_attempts; }
};

// Decodes an inbox entry ("id\ntoken\nattempt\nmax\nprio\npayload"); nullopt if malformed.
std::optional<Job> decode_handed_job(std::string_view entry);

struct Reservation {
  int acked = 0;                       // acks carried by this call that still held their lease
  std::vector<Job> jobs;               // empty: nothing ready
  std::optional<std::chrono::milliseconds> next_due;  // when nothing ready: the next delayed job
  bool registered_idle = false;        // the caller is now registered as idle (see IdleRegistration)
};

// How a worker takes part in direct hand-off. A worker that found nothing registers as idle
// for `ttl`; while registered, new jobs are leased to it and put in its inbox, which it blocks
// on (wait_for_work) — pickup in one hop. Its next reserve must say `was_idle` so the
// registration is dropped and a job handed over meanwhile is collected.
struct IdleRegistration {
  bool was_idle = false;
  std::chrono::milliseconds ttl{0};  // 0: do not register
};

// unavailable: the job could not reach something it cannot do without (its store refused or was
// down), which says nothing about the job; retried like a transient failure but without counting
// the attempt, up to kMaxUncountedFailures times per job, and transient after that.
// crash_loop: the burial of a job whose every attempt lost its worker (delivered with attempt >
// max_attempts); dead-lettered with the reason as given.
enum class FailKind { transient, permanent, unavailable, crash_loop };
inline constexpr int kMaxUncountedFailures = 100;
enum class FailOutcome { lease_lost, retry_scheduled, dead };
enum class JobState { ready, delayed, active, done, failed, dead, unknown };
std::string_view to_string(JobState s);

struct Transition {
  std::string state;        // ready delayed active done dead redelivered released
  std::int64_t at_ms = 0;   // Redis server time
  std::string worker;       // for active
};

struct JobStatus {
  std::string id;
  JobState state = JobState::unknown;
  int attempts = 0;
  int max_attempts = 0;
  Priority priority = Priority::normal;
  std::string worker;
  std::string last_error;
  std::string payload;
  std::int64_t created_ms = 0;
  std::vector<Transition> history;
};

struct Counters {
  long long enqueued = 0, reserved = 0, acked = 0, retried = 0, redelivered = 0, released = 0, dead = 0;
  long long burials = 0;  // crash loops sent for burial (see reap)
  long long requeued = 0, purged = 0;  // by an operator (admin.h)
};

struct ReapResult {
  bool acted = false;  // false: another reaper holds this tick
  int redelivered = 0;
  int dead = 0;             // buried here: a crash loop whose burial delivery was lost too
  int sent_for_burial = 0;  // crash loops handed to a worker once more, to be buried by it
};

struct QueueConfig {
  std::string prefix = "qsim";
  std::size_t max_payload_bytes = 1 << 20;  // larger payloads are dead-lettered at reserve
};

class Queue {
public:
  Queue(redis::Connection& conn, std::string_view name, QueueConfig config = {});

  const Keys& keys() const { return keys_; }
  redis::Connection& connection() { return *conn_; }

  Expected<Enqueued> enqueue(std::string_view payload, const EnqueueOptions& options = {});
  // Enqueues many in one pipeline (bulk loads, benchmarks). Fails as a whole on a transport error.
  Expected<std::vector<Enqueued>> enqueue_many(const std::vector<std::string>& payloads, const EnqueueOptions& options = {});

  // Acks `acks` (jobs whose handler succeeded), promotes due delayed jobs, then reserves up to
  // `max_jobs` with a lease of `lease` — one round trip. max_jobs = 0 only acks.
  Expected<Reservation> ack_and_reserve(const std::vector<Job>& acks, std::size_t max_jobs,
                                        std::string_view worker_id, std::chrono::milliseconds lease,
                                        IdleRegistration idle = {});
  Expected<Reservation> reserve(std::size_t max_jobs, std::string_view worker_id, std::chrono::milliseconds lease) {
    return ack_and_reserve({}, max_jobs, worker_id, lease);
  }
  Expected<int> ack(const std::vector<Job>& jobs);  // how many still held their lease

  // Blocks up to `timeout` on the worker's inbox (BLPOP): a job handed to this idle worker,
  // already leased to it, or nullopt. Costs no Redis work while waiting.
  Expected<std::optional<Job>> wait_for_work(std::string_view worker_id, std::chrono::milliseconds timeout);

  // One bool per job: false means the lease was lost.
  Expected<std::vector<bool>> heartbeat(const std::vector<Job>& jobs, std::chrono::milliseconds lease);
  Expected<FailOutcome> fail(const Job& job, std::string_view reason, FailKind kind, std::chrono::milliseconds retry_delay);
  Expected<bool> release(const Job& job);
  Expected<ReapResult> reap(std::string_view holder, std::chrono::milliseconds tick, int limit = 1000);

  // A worker's presence for operators (admin.h): its current job (empty: idle) and how often it
  // says so; `leaving` removes it (a clean stop).
  Expected<bool> announce(std::string_view worker_id, std::string_view job_id, std::chrono::milliseconds interval,
                          bool leaving = false);

  Expected<std::optional<JobStatus>> status(std::string_view id);
  Expected<Counters> counters();
  Expected<long long> ready_count();
  Expected<std::vector<std::string>> dead_ids();

  // Runs the periodic script (see periodic.h). Returns the raw {code, value, server_now}.
  Expected<std::vector<std::string>> periodic_step(std::string_view name, std::string_view expected_next,
                                                  std::int64_t new_next, const std::string& payload,
                                                  Priority priority, int max_attempts);

private:
  friend class QueueAdmin;
  Expected<std::vector<redis::Reply>> run(const redis::Script& script, std::vector<std::string> args,
                                          const std::string* extra_key = nullptr);
  std::vector<std::string> script_keys(const redis::Script& script, const std::string* extra_key) const;
  const std::vector<std::string>& keys_for(const redis::Script& script) const;

  redis::Connection* conn_;
  Keys keys_;
  QueueConfig config_;
  std::vector<std::string> keys_cache_;
  std::vector<std::vector<std::string>> keys_by_count_;  // [n] = the first n of keys_cache_
  std::vector<std::string> enqueue_keys_;                // enqueue's: handed in place of active
};

}  // namespace qsim::queue
