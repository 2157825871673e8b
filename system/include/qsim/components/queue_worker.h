// The queue worker: a queue::Worker whose handler is OrderJob, plus its HTTP face.
//
//   GET /health   200 {"worker", "current_job", "last_redis_contact_ms"}; 503 when Redis has
//                 not answered for longer than `unhealthy_after`
//   GET /metrics  tasks_started_total, tasks_completed_total, tasks_failed_total,
//                 download_duration_seconds and queue_wait_seconds histograms,
//                 redis_queue_length, worker_busy
//
// A transient stage failure is retried by the queue with backoff; a permanent one, or the
// last attempt, marks the order dead with the reason before the queue dead-letters the job.
#pragma once

#include "qsim/components/order_job.h"
#include "qsim/queue/worker.h"

#include <memory>
#include <string>

namespace qsim::components {

struct QueueWorkerOptions {
  redis::Endpoint redis;
  std::string queue = "orders";
  std::string prefix = "qsim";
  queue::WorkerOptions worker;
  StageEndpoints stages;
  std::chrono::milliseconds unhealthy_after{10'000};
};

class QueueWorkerService {
public:
  explicit QueueWorkerService(QueueWorkerOptions options);
  ~QueueWorkerService();
  // Serves health and metrics on 127.0.0.1:port (0: none) and works until request_stop().
  void run(int http_port);
  void request_stop() noexcept;  // async-signal-safe

private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace qsim::components
