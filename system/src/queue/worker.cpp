#include "qsim/queue/worker.h"

#include "qsim/log.h"

#include <algorithm>
#include <cstdio>
#include <condition_variable>
#include <random>
#include <thread>
#include <unistd.h>

namespace qsim::queue {

using std::chrono::milliseconds;

namespace {
std::string fmt_worker_id(long pid) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "w%ld", pid);
  return std::string(buf, static_cast<std::size_t>(n));
}
}  // namespace

Worker::Worker(redis::Endpoint endpoint, std::string queue, WorkerOptions options, Clock& clock)
    : endpoint_(std::move(endpoint)), queue_name_(std::move(queue)), options_(std::move(options)), clock_(&clock) {
  if (options_.worker_id.empty()) options_.worker_id = fmt_worker_id(::getpid());
  if (options_.heartbeat_interval.count() <= 0) options_.heartbeat_interval = std::max(milliseconds(1), options_.lease / 3);
  if (options_.batch == 0) options_.batch = 1;
  options_.backoff.validate();
  if (options_.lease <= options_.heartbeat_interval)
    throw std::invalid_argument("worker lease must be longer than the heartbeat interval");
}

Worker::~Worker() = default;

std::string Worker::current_job() const {
  std::lock_guard lock(mu_);
  return running_;
}

void Worker::set_held(std::vector<Job> jobs) {
  std::lock_guard lock(mu_);
  held_ = std::move(jobs);
}

void Worker::drop_held(const std::string& id) {
  std::lock_guard lock(mu_);
  held_.erase(std::remove_if(held_.begin(), held_.end(), [&](const Job& j) { return j.id == id; }), held_.end());
}

void Worker::run(const Handler& handler, const BurialHook& before_burial) {
  redis::Connection conn(endpoint_, options_.connection, *clock_);
  Queue queue(conn, queue_name_, options_.queue);
  std::mt19937_64 rng(options_.seed);
  done_ = false;
  std::thread keeper([this] { keeper_loop(); });

  std::vector<Job> to_ack;
  auto pause_after_error = [&] {
    stats_.redis_errors++;
    clock_->sleep_for(milliseconds(50));
  };
  // Registered idle in Redis: jobs may be handed to our inbox. After a failed call we cannot know,
  // so we say we were idle (deregistering twice is harmless).
  bool idle = false;
  // The registration outlives our wait by a margin for the round trip; if it lapses first, a new
  // job simply goes to the ready list and we find it when the wait ends.
  const IdleRegistration register_when_empty{false, options_.idle_wait + milliseconds(250)};

  while (!stop_.load()) {
    IdleRegistration reg = register_when_empty;
    reg.was_idle = idle;
    auto r = queue.ack_and_reserve(to_ack, options_.batch, options_.worker_id, options_.lease, reg);
    if (!r) {  // the acks may or may not have landed; resending them is harmless (token check)
      idle = true;
      pause_after_error();
      continue;
    }
    stats_.acked += r.value.acked;
    stats_.last_redis_ok_ms = std::chrono::duration_cast<milliseconds>(clock_->now().time_since_epoch()).count();
    to_ack.clear();
    idle = r.value.registered_idle;
    auto jobs = std::move(r.value.jobs);
    if (jobs.empty()) {
      set_held({});
      milliseconds wait = options_.idle_wait;
      if (r.value.next_due) wait = std::min(wait, std::max(milliseconds(1), *r.value.next_due));
      auto w = queue.wait_for_work(options_.worker_id, wait);
      if (!w) {
        pause_after_error();
        continue;
      }
      stats_.last_redis_ok_ms = std::chrono::duration_cast<milliseconds>(clock_->now().time_since_epoch()).count();
      if (!w.value) continue;  // timed out: the next reserve deregisters and looks again
      idle = false;            // whoever handed us the job removed our registration
      jobs.push_back(std::move(*w.value));
    }
    set_held(jobs);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const Job& job = jobs[i];
      if (stop_.load()) {  // not started yet: hand back untouched
        if (auto rel = queue.release(job); rel && rel.value) stats_.released++;
        drop_held(job.id);
        continue;
      }
      current_lost_ = false;
      {
        std::lock_guard lock(mu_);
        running_ = job.id;
        running_token_ = job.lease_token;
      }
      if (job.for_burial()) {  // shown as this worker's job, and handed back at a shutdown deadline
        bury(queue, job, before_burial, rng);
        {
          std::lock_guard lock(mu_);
          running_.clear();
          running_token_.clear();
        }
        drop_held(job.id);
        continue;
      }
      stats_.started++;
      if (log::enabled(log::Level::debug))
        log::event(log::Level::debug, "job_reserved",
                   {{"job", job.id}, {"attempt", std::to_string(job.attempt)}, {"worker", options_.worker_id}});
      JobContext ctx(&stop_, &current_lost_);
      enum class Result { ok, transient, permanent, unavailable } result = Result::ok;
      std::string reason;
      try {
        handler(job, ctx);
      } catch (const PermanentError& e) {
        result = Result::permanent;
        reason = e.what();
      } catch (const Unavailable& e) {
        result = Result::unavailable;
        reason = e.what();
      } catch (const std::exception& e) {
        result = Result::transient;
        reason = e.what();
      } catch (...) {
        result = Result::transient;
        reason = "unknown exception";
      }
      bool lost;
      {
        // Under the lock the keeper takes to hand a job back: either it saw us running and the
        // job is gone, or it will see us finished and leave the job alone.
        std::lock_guard lock(mu_);
        running_.clear();
        running_token_.clear();
        lost = current_lost_.load();
      }
      if (lost) {  // handed back or taken over: the result is not ours to record
        stats_.lease_lost++;
        log::event(log::Level::warn, "job_lease_lost", {{"job", job.id}, {"worker", options_.worker_id}});
        drop_held(job.id);
        continue;
      }
      if (result == Result::ok) {
        to_ack.push_back(job);  // stays held (heartbeated) until the ack lands
        if (log::enabled(log::Level::debug)) log::event(log::Level::debug, "job_done", {{"job", job.id}, {"worker", options_.worker_id}});
        continue;
      }
      auto delay = options_.backoff.jittered(job.attempt, rng);
      const FailKind kind = result == Result::permanent     ? FailKind::permanent
                            : result == Result::unavailable ? FailKind::unavailable
                                                            : FailKind::transient;
      auto f = queue.fail(job, reason, kind, delay);
      if (!f) stats_.redis_errors++;  // lease will expire and the reaper redelivers: still at-least-once
      else if (f.value == FailOutcome::dead) stats_.dead++;
      else if (f.value == FailOutcome::retry_scheduled) (kind == FailKind::unavailable ? stats_.unavailable : stats_.retried)++;
      else stats_.lease_lost++;
      log::event(f && f.value == FailOutcome::dead ? log::Level::error : log::Level::warn, "job_failed",
                 {{"job", job.id},
                  {"attempt", std::to_string(job.attempt)},
                  {"of", std::to_string(job.max_attempts)},
                  {"kind", kind == FailKind::permanent ? "permanent" : kind == FailKind::unavailable ? "unavailable" : "transient"},
                  {"outcome", !f ? "unrecorded" : f.value == FailOutcome::dead ? "dead" : f.value == FailOutcome::retry_scheduled ? "retry" : "lease_lost"},
                  {"worker", options_.worker_id},
                  {"reason", reason}});
      drop_held(job.id);
    }
  }
  // Flush acks, deregister, and hand back anything handed to us meanwhile; a few tries, then
  // leave it to the reaper (at-least-once).
  for (int tries = 0; (!to_ack.empty() || idle) && tries < 5; ++tries) {
    auto a = queue.ack_and_reserve(to_ack, 0, options_.worker_id, options_.lease, {idle, milliseconds(0)});
    if (!a) {
      pause_after_error();
      continue;
    }
    stats_.acked += a.value.acked;
    to_ack.clear();
    idle = false;
    for (const auto& handed : a.value.jobs)
      if (auto rel = queue.release(handed); rel && rel.value) stats_.released++;
  }
  set_held({});
  done_ = true;
  keeper.join();
  (void)queue.announce(options_.worker_id, {}, milliseconds(0), true);  // gone: best effort, the entry ages out
}

void Worker::bury(Queue& queue, const Job& job, const BurialHook& before_burial, std::mt19937_64& rng) {
  const std::string reason = "lease expired on attempt " + std::to_string(job.max_attempts) + " of " +
                             std::to_string(job.max_attempts) + ": worker lost (crash loop)";
  std::string refused;
  if (before_burial) {
    try {
      before_burial(job, reason);
    } catch (const std::exception& e) {
      refused = e.what();
    } catch (...) {
      refused = "unknown exception";
    }
  }
  auto f = refused.empty()
               ? queue.fail(job, reason, FailKind::crash_loop, milliseconds(0))
               : queue.fail(job, reason + "; its burial could not be recorded: " + refused, FailKind::unavailable,
                            options_.backoff.jittered(job.max_attempts, rng));
  log::event(log::Level::error, "job_buried",
             {{"job", job.id}, {"worker", options_.worker_id}, {"reason", reason}, {"refused", refused}});
  if (!f) stats_.redis_errors++;  // the lease expires and the reaper buries it (burial delivery lost)
  else if (f.value == FailOutcome::dead) (refused.empty() ? stats_.buried : stats_.dead)++;
  else if (f.value == FailOutcome::retry_scheduled) stats_.unavailable++;
  else stats_.lease_lost++;
}

void Worker::keeper_loop() {
  redis::Connection conn(endpoint_, options_.connection, *clock_);
  Queue queue(conn, queue_name_, options_.queue);
  auto now = clock_->now();
  auto next_beat = now + options_.heartbeat_interval;
  auto next_reap = now;
  // operators see the worker alive (admin.h) at most once a second, whatever the heartbeat
  const milliseconds presence_interval = std::max(milliseconds(1000), options_.heartbeat_interval);
  auto next_presence = now;
  std::optional<std::chrono::steady_clock::time_point> stop_seen;
  // Timer resolution of the keeper: fine enough that heartbeats and reaper ticks are on time.
  using Rep = milliseconds::rep;
  const milliseconds step(std::max<Rep>(
      1, std::min<Rep>({25, options_.heartbeat_interval.count() / 2, options_.reaper_tick.count() / 4})));
  while (!done_.load()) {
    clock_->sleep_for(step);
    now = clock_->now();
    if (stop_.load() && !stop_seen) stop_seen = now;
    if (now >= next_beat) {
      std::vector<Job> held;
      {
        std::lock_guard lock(mu_);
        held = held_;
      }
      if (!held.empty()) {
        auto hb = queue.heartbeat(held, options_.lease);
        if (!hb) {
          stats_.redis_errors++;
        } else {
          std::lock_guard lock(mu_);
          for (std::size_t i = 0; i < held.size() && i < hb.value.size(); ++i)
            if (!hb.value[i] && held[i].id == running_) current_lost_ = true;
        }
      }
      next_beat = now + options_.heartbeat_interval;
    }
    if (now >= next_presence) {
      std::string job;
      {
        std::lock_guard lock(mu_);
        job = running_;
      }
      if (!queue.announce(options_.worker_id, job, presence_interval)) stats_.redis_errors++;
      next_presence = now + presence_interval;
    }
    if (options_.run_reaper && now >= next_reap) {
      auto rr = queue.reap(options_.worker_id, options_.reaper_tick);
      if (!rr) stats_.redis_errors++;
      else if (rr.value.acted) {
        stats_.reaped += rr.value.redelivered + rr.value.dead + rr.value.sent_for_burial;
        if (rr.value.redelivered + rr.value.dead + rr.value.sent_for_burial > 0)
          log::event(log::Level::warn, "jobs_redelivered",
                     {{"redelivered", std::to_string(rr.value.redelivered)},
                      {"sent_for_burial", std::to_string(rr.value.sent_for_burial)},
                      {"buried", std::to_string(rr.value.dead)},
                      {"reaper", options_.worker_id}});
      }
      next_reap = now + options_.reaper_tick;
    }
    if (stop_seen && now - *stop_seen >= options_.shutdown_deadline) {
      Job running;
      {
        std::lock_guard lock(mu_);
        if (running_.empty() || current_lost_.load()) continue;
        running.id = running_;
        running.lease_token = running_token_;
        current_lost_ = true;  // the handler's late result is dropped
      }
      if (auto rel = queue.release(running); rel && rel.value) stats_.released++;
    }
  }
}

}  // namespace qsim::queue
