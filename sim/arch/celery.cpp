// Celery (Debian python3-celery 5.2) with its Redis broker under test: `apply_async` hands the
// order off; each worker is a `celery worker` with a prefork pool of `concurrency` children.
// By default a task is acknowledged when a pool child takes it, so a job whose worker was
// SIGKILLed is gone; with `acks_late` the message stays unacknowledged in the broker and kombu
// restores it once `visibility_timeout` has passed; `task_reject_on_worker_lost` requeues it at
// once when only a pool child dies (system/frameworks/celery/qsim_celery.py).
#include "framework.h"

namespace qsim::sim {

std::unique_ptr<Architecture> make_celery(const Scenario& s) {
  FrameworkSpec spec;
  FrameworkOptions o(s, "celery", spec);
  const bool acks_late = o.flag("acks_late", false);
  const double visibility_s = o.wall_s("visibility_timeout", 3600, 1, true,
                                       "kombu's Redis transport restores unacknowledged messages by whole seconds");
  spec.config = {
      {"concurrency", o.integer("concurrency", 1)},
      {"acks_late", acks_late},
      {"task_reject_on_worker_lost", o.flag("task_reject_on_worker_lost", false)},
      {"visibility_timeout_s", visibility_s},
      {"prefetch_multiplier", o.integer("prefetch_multiplier", 4)},
      {"max_retries", o.integer("max_retries", 3)},
      // The adapter retries with its own countdown in fractional seconds (Celery's autoretry
      // would truncate retry_backoff to whole seconds); a countdown reaches the pool up to ~1 s late.
      {"retry_backoff_s", o.wall_s("retry_backoff", 0, 0)},
      {"retry_backoff_max_s", o.wall_s("retry_backoff_max", 600, 0.001)},
      {"retry_jitter", false},
  };
  spec.configuration["retry_jitter"] = "false (the harness's, for repeatable runs; Celery's default is true)";
  spec.explains = {
      {"stuck",
       acks_late ? "a late-acknowledged task whose worker was SIGKILLed stays unacknowledged in the broker; kombu "
                   "restores it once visibility_timeout has passed, but only when a consumer starts or on its restore "
                   "timer (about every 100 s of real time: QoS.restore_visible), after this run; the order stays "
                   "where its worker left it; a task requeued after its pool child died waits behind the backlog and may "
                   "still be on its way when the run ends"
                 : "Celery acknowledges a task when a worker receives it (task_acks_late is false by default), so a "
                   "task whose worker was SIGKILLed is gone and the order stays where the worker left it"},
      {"duplicate_deliveries",
       "with acks_late, a message not acknowledged within visibility_timeout is delivered again, also while its "
       "first worker is only paused, and both run it; or a retry ran after an error that struck once the work was "
       "done"},
      {"failed_visible", "its retries were used up, or the error was permanent: the order is dead with its reason"},
  };
  // An unacknowledged message comes back once its visibility timeout has passed and a restore
  // runs: when a consumer starts, then about every 100 s of real time (kombu's QoS.restore_visible
  // on every 10th run of a 10 s timer).
  if (acks_late) spec.recovery_wall_ms = (visibility_s + 100) * 1e3;
  const std::string py = "/usr/bin/python3", script = frameworks_dir() + "/celery/qsim_celery.py";
  spec.handoff_command = {py, script, "handoff"};
  spec.worker_command = {py, script, "worker"};
  spec.startup_timeout_s = 60;
  return make_framework_architecture(std::move(spec));
}

}  // namespace qsim::sim
