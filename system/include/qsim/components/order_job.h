// The work for one paid order, shared by the queue worker and the legacy polling worker:
//
//   processing -> downloading (world: download) -> uploading (world: upload)
//              -> finalizing (finalize service, signed) -> completed (set by finalize)
//
// Re-entrant: a redelivered order starts again from processing (the download lives on the
// worker that made it; the world's download and upload are keyed by order), except that an order
// found finalizing is only finalized again (finalize is idempotent) and an order already
// completed is done. A delivery that finds its order moved on by another delivery of it (it was
// paused past its lease) stops before finalize with a transient error. Failures are StageError, transient (no answer, 5xx: worth retrying) or
// permanent (4xx).
//
// Thread-safety: one OrderJob per thread.
#pragma once

#include "qsim/components/http_client.h"
#include "qsim/store/task_store.h"

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace qsim::components {

class StageError : public std::runtime_error {
public:
  StageError(bool transient, const std::string& what) : std::runtime_error(what), transient_(transient) {}
  bool transient() const { return transient_; }

private:
  bool transient_;
};

// Another delivery of the same order has moved it on meanwhile: transient, and not the order's
// failure (a stale delivery must not mark the order dead under the one that holds it now).
// Something the job cannot do without refused it for a reason that says nothing about the order:
// the task store, or finalize's, refused or could not be reached (Redis out of memory, or down),
// or finalize found the signature's time outside its window (one of the two clocks is wrong).
// The queue worker retries it without counting an attempt.
class Unavailable : public StageError {
public:
  explicit Unavailable(const std::string& what) : StageError(true, what) {}
};

class Superseded : public StageError {
public:
  explicit Superseded(const std::string& what) : StageError(true, what) {}
};

struct StageEndpoints {
  int world_port = 8890;
  int finalize_port = 8880;
  std::string finalize_secret;
  std::chrono::milliseconds timeout{30'000};
};

struct StageTimes {
  double download_s = 0, upload_s = 0;
};

// Paid, or any stage a worker may have left the order in: where a (re)delivered job may find it.
const std::vector<store::OrderStatus>& in_flight_statuses();

class OrderJob {
public:
  OrderJob(store::TaskStore& store, StageEndpoints endpoints, std::string worker_id);
  // Runs the stages; returns their durations. Throws StageError.
  StageTimes run(const std::string& order_id);
  // Called when run() picks an order up (moves it to processing), with the seconds since it was
  // paid: the queue worker's queue-wait histogram, at no extra store query.
  std::function<void(double)> on_pickup;

private:
  void call_world(const char* api, const std::string& order);
  void finalize(const std::string& order);
  store::TaskStore* store_;
  StageEndpoints endpoints_;
  std::string worker_id_;
  HttpClient world_, finalize_;
};

}  // namespace qsim::components
