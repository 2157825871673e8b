// RQ (Debian python3-rq 1.13) under test: `Queue.enqueue` hands the order off; each worker is an
// `rq` Worker (it forks a work horse per job) or a SimpleWorker (the job runs in the worker).
// A job whose worker (and horse) was SIGKILLed stays in the StartedJobRegistry until its
// registration expires; RQ then moves it to the FailedJobRegistry without a retry, so the order
// is never picked up again (system/frameworks/rq/qsim_rq.py says where in RQ's source).
#include "framework.h"

#include <fmt/format.h>

namespace qsim::sim {

std::unique_ptr<Architecture> make_rq(const Scenario& s) {
  FrameworkSpec spec;
  FrameworkOptions o(s, "rq", spec);
  const std::string worker_class = o.text("worker_class", "Worker");
  if (worker_class != "Worker" && worker_class != "SimpleWorker")
    o.fail("worker_class", "expected Worker or SimpleWorker, got \"" + worker_class + "\"");
  const long long retries = o.integer("retries", 0);
  if (retries < 0 || retries > 100) o.fail("retries", "expected an integer in [0, 100]");
  spec.config = {
      {"worker_class", worker_class},
      {"job_timeout_s", o.wall_s("job_timeout", 180, 1, true, "RQ's death penalty (SIGALRM) takes whole seconds")},
      {"retry_max", retries},
      {"retry_interval_s", retries > 0 ? o.wall_s("retry_interval", 0, 0, true,
                                                   "RQ schedules a delayed retry in whole seconds")
                                       : 0.0},
  };
  spec.explains = {
      {"stuck",
       "RQ leaves a job whose worker was SIGKILLed with its work horse in the StartedJobRegistry; only a registry "
       "clean-up fails or retries it, at a worker's start (too early: the entry has not expired yet) and then at most "
       "every 15 minutes of real time (StartedJobRegistry.cleanup, acquire_cleaning_lock), long after this run"},
      {"failed_visible",
       "its work horse died (seen at once by its worker: Worker.monitor_work_horse) or its job raised, with no "
       "retries left: RQ failed the job and the adapter moved the order to dead"},
      {"duplicate_deliveries",
       "with Retry, RQ enqueued the job again after its work horse died or it raised, and it ran again"},
  };
  spec.notes.push_back(
      "rq: a job held by a worker killed with its work horse is recovered only by RQ's registry clean-up, which "
      "runs at most every 15 minutes of real time, far longer than a run");
  const std::string py = "/usr/bin/python3", script = frameworks_dir() + "/rq/qsim_rq.py";
  spec.handoff_command = {py, script, "handoff"};
  spec.worker_command = {py, script, "worker"};
  return make_framework_architecture(std::move(spec));
}

}  // namespace qsim::sim
