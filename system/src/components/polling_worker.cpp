#include "qsim/components/polling_worker.h"

#include "qsim/store/task_store.h"

#include <thread>

namespace qsim::components {

PollingWorker::PollingWorker(PollingWorkerOptions options, Clock& clock) : options_(std::move(options)), clock_(&clock) {}

void PollingWorker::request_stop() noexcept { stop_.store(true); }

void PollingWorker::run() {
  redis::Connection conn(options_.redis);
  store::TaskStore store(conn, options_.queue, "polling_worker", options_.prefix);
  OrderJob job(store, options_.stages, options_.worker_id);
  auto& clock = *clock_;
  auto next = clock.now();
  while (!stop_.load()) {
    auto claimed = store.claim_oldest_paid(options_.worker_id);
    polls_++;
    next += options_.poll_interval;
    if (claimed && claimed.value) {
      try {
        (void)job.run(*claimed.value);
      } catch (const StageError& e) {
        // The legacy flaw: one error and the order has failed for good.
        (void)store.transition(*claimed.value,
                               {store::OrderStatus::processing, store::OrderStatus::downloading,
                                store::OrderStatus::uploading, store::OrderStatus::finalizing},
                               store::OrderStatus::failed, options_.worker_id, e.what());
      }
      next = clock.now() + options_.poll_interval;
    } else if (clock.now() > next + std::max<std::chrono::nanoseconds>(10 * options_.poll_interval,
                                                                        std::chrono::milliseconds(50))) {
      // Far behind (the process was paused): start afresh rather than catch up in a burst. A
      // shorter lag (a scheduling hiccup, large only when the interval is compressed to a
      // millisecond) is caught up, so that the number of polls stays exact.
      next = clock.now();
    }
    // Sleep until the deadline in short steps so that a stop is noticed promptly.
    while (!stop_.load() && clock.now() < next)
      clock.sleep_for(std::min<std::chrono::nanoseconds>(next - clock.now(), std::chrono::milliseconds(20)));
  }
}

}  // namespace qsim::components
