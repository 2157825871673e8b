// BullMQ (npm, pinned by system/frameworks/bullmq/package-lock.json) under test: `Queue.add`
// hands the order off; each worker is a BullMQ `Worker` running `concurrency` jobs. A worker
// holds a lock on each job and renews it; a job whose worker was SIGKILLed keeps its lock until
// `lock_duration` passes, and the next stalled-jobs check (every `stalled_interval`) moves it back
// to wait, up to `max_stalled_count` times, then fails it (moveStalledJobsToWait).
#include "framework.h"

#include <algorithm>

namespace qsim::sim {

std::unique_ptr<Architecture> make_bullmq(const Scenario& s) {
  FrameworkSpec spec;
  FrameworkOptions o(s, "bullmq", spec);
  const char* floor = "raised so that scheduling hiccups on a loaded machine do not stall healthy jobs";
  const double lock_s = o.wall_s("lock_duration", 30, 0.25, false, floor);
  const double stalled_s = o.wall_s("stalled_interval", 30, 0.25, false, floor);
  const std::string backoff = o.text("backoff", "fixed");
  if (backoff != "fixed" && backoff != "exponential") o.fail("backoff", "expected fixed or exponential");
  spec.config = {
      {"concurrency", o.integer("concurrency", 1)},
      {"lock_duration_ms", lock_s * 1e3},
      {"stalled_interval_ms", stalled_s * 1e3},
      {"max_stalled_count", o.integer("max_stalled_count", 1)},
      {"attempts", o.integer("attempts", 1)},
      {"backoff_type", backoff},
      {"backoff_delay_ms", o.wall_s("backoff_delay", 0, 0.001) * 1e3},
  };
  spec.explains = {
      {"duplicate_deliveries",
       "a worker paused (or cut off) longer than lockDuration cannot renew its lock: the stalled-jobs check moves the "
       "job back to wait and another worker runs it, while the paused one runs its copy on when it resumes"},
      {"stuck",
       "its job was still waiting when the run ended: a killed worker's job comes back only after its lock expires "
       "and two stalled-jobs checks have seen it (lockDuration, stalledInterval), or a retry's backoff outlasted the "
       "run; or its worker was killed between BullMQ recording the failure and the failed handler marking the order"},
      {"failed_visible",
       "its attempts were used up, or it stalled more than maxStalledCount times (\"job stalled more than allowable "
       "limit\", moveStalledJobsToWait): the worker's failed handler moved the order to dead"},
  };
  // The lock expires, then two stalled-jobs checks must see the job without one (one check per
  // interval across the queue's workers: the stalled-check key, which a killed worker may have
  // just taken).
  spec.recovery_wall_ms = std::max(lock_s + stalled_s, 3 * stalled_s) * 1e3;
  spec.handoff_command = {"node", frameworks_dir() + "/bullmq/qsim_bullmq.js", "handoff"};
  spec.worker_command = {"node", frameworks_dir() + "/bullmq/qsim_bullmq.js", "worker"};
  return make_framework_architecture(std::move(spec));
}

}  // namespace qsim::sim
