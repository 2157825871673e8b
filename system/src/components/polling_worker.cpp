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
  while (!stop_.load()) {
    auto claimed = store.claim_oldest_paid(options_.worker_id);
    polls_++;
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
    }
    // Sleep the poll interval in short steps so that a stop is noticed promptly.
    auto until = clock.now() + options_.poll_interval;
    while (!stop_.load() && clock.now() < until)
      clock.sleep_for(std::min<std::chrono::nanoseconds>(until - clock.now(), std::chrono::milliseconds(20)));
  }
}

}  // namespace qsim::components
