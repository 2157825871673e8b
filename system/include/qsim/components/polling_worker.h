// The legacy architecture, faithfully, flaws included: every poll_interval one store query for
// the oldest paid order (claimed paid -> processing in that same query), then the same stages
// as the queue worker (OrderJob), one order at a time. Any error marks the order failed, with
// no retry. If the process dies mid-job the order stays where it was, for good: nothing else
// ever looks at it. Its store queries are counted under "polling_worker".
//
// Polls keep a fixed rate while idle (each deadline is the previous one plus the interval), so
// that a compressed interval of a millisecond still gives exactly one poll per interval; after a
// job it waits a whole interval, like the legacy loop's sleep after each task. After a long
// stall (over 10 intervals and 50 ms) it starts afresh instead of catching up.
//
// Its HTTP face, like the queue worker's (run(port) with a port):
//   GET /health   200 {"worker", "current_order", "last_redis_contact_ms", "status"}; 503 when
//                 Redis has not answered for longer than `unhealthy_after`
//   GET /metrics  polls_total, tasks_started_total, tasks_completed_total, tasks_failed_total,
//                 download_duration_seconds, worker_busy
#pragma once

#include "qsim/clock.h"
#include "qsim/components/order_job.h"
#include "qsim/redis/connection.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace qsim::components {

struct PollingWorkerOptions {
  redis::Endpoint redis;
  std::string queue = "orders";  // the task store's tag
  std::string prefix = "qsim";
  std::string worker_id = "poller";
  std::chrono::microseconds poll_interval{10'000'000};
  StageEndpoints stages;
  std::chrono::milliseconds unhealthy_after{10'000};
};

class PollingWorker {
public:
  explicit PollingWorker(PollingWorkerOptions options, Clock& clock = SystemClock::instance());
  ~PollingWorker();
  // Until request_stop(); serves /health and /metrics on 127.0.0.1:http_port (0: none).
  void run(int http_port = 0);
  void request_stop() noexcept;    // async-signal-safe
  long long polls() const { return polls_; }

private:
  struct Stats;
  void poll_loop();

  PollingWorkerOptions options_;
  Clock* clock_;
  std::atomic<bool> stop_{false};
  std::atomic<long long> polls_{0};
  std::unique_ptr<Stats> stats_;
};

}  // namespace qsim::components
