// BullMQ (npm, pinned by system/frameworks/bullmq/package-lock.json) under test: `Queue.add`
// hands the order off; each worker is a BullMQ `Worker` running `concurrency` jobs. A worker
// holds a lock on each job and renews it; a job whose worker was SIGKILLed keeps its lock until
// `lock_duration` passes, and the next stalled-jobs check (every `stalled_interval`) moves it back
// to wait, up to `max_stalled_count` times, then fails it (moveStalledJobsToWait).
#include "framework.h"

namespace qsim::sim {

std::unique_ptr<Architecture> make_bullmq(const Scenario& s) {
  const FrameworkArch f = s.framework("bullmq");
  FrameworkSpec spec;
  spec.name = "bullmq";
  spec.workers = f.workers;
  spec.restart_delay_s = f.restart_delay_s;
  FrameworkOptions o(s, f, spec);
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
  spec.recovery_wall_ms = (lock_s + stalled_s) * 1e3;
  spec.handoff_command = {"node", frameworks_dir() + "/bullmq/qsim_bullmq.js", "handoff"};
  spec.worker_command = {"node", frameworks_dir() + "/bullmq/qsim_bullmq.js", "worker"};
  return make_framework_architecture(std::move(spec));
}

}  // namespace qsim::sim
