// Sidekiq 6.4, the open-source edition (Debian ruby-sidekiq), under test: `perform_async` hands
// the order off; each worker is a `sidekiq` process with `concurrency` threads. It fetches with
// BRPOP (BasicFetch): the job leaves Redis when a thread takes it, so a job whose process was
// SIGKILLed is gone (a SIGTERM pushes unfinished jobs back; a SIGKILL cannot).
#include "framework.h"

namespace qsim::sim {

std::unique_ptr<Architecture> make_sidekiq(const Scenario& s) {
  FrameworkSpec spec;
  FrameworkOptions o(s, "sidekiq", spec);
  const long long retry = o.integer("retry", 25);
  spec.config = {
      {"concurrency", o.integer("concurrency", 1)},
      {"retry", retry},
      {"poll_interval_s", o.wall_s("poll_interval", 5, 0.05, false,
                                   "the scheduled-job poller needs a few polls per second at most")},
  };
  if (o.raw("retry_in")) spec.config["retry_in_s"] = o.wall_s("retry_in", 0, 0.001);
  else spec.configuration["retry_in"] = "Sidekiq's own formula, in real seconds (count^4 + 15 + jitter)";
  spec.explains = {
      {"stuck",
       "open-source Sidekiq fetches with BRPOP (BasicFetch): a job held by a SIGKILLed process is gone from Redis and "
       "nothing gives it back (Sidekiq Pro's super_fetch would); a job that raised while Redis was unreachable (the "
       "restart) could not be written to the retry set and is gone as well; and a retry that Sidekiq schedules in "
       "real seconds (count^4 + 15 s + jitter) comes after this run unless retry_in is set"},
      {"duplicate_deliveries",
       "Sidekiq has no lease, so a paused process keeps its job; a second run comes from a retry after an error that "
       "struck after the work was done, or from a second hand-off of the same order"},
      {"failed_visible", "its retries were used up (sidekiq_retries_exhausted): the order is dead with the last error"},
  };
  spec.handoff_command = {"ruby", frameworks_dir() + "/sidekiq/qsim_sidekiq.rb", "handoff"};
  spec.worker_command = {"ruby", frameworks_dir() + "/sidekiq/qsim_sidekiq.rb", "worker"};
  return make_framework_architecture(std::move(spec));
}

}  // namespace qsim::sim
