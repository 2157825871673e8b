#include "qsim/components/order_job.h"

#include "qsim/components/webhook.h"
#include "qsim/security/signature.h"

#include <nlohmann/json.hpp>

namespace qsim::components {

using store::OrderStatus;

const std::vector<OrderStatus>& in_flight_statuses() {
  static const std::vector<OrderStatus> statuses{OrderStatus::paid, OrderStatus::processing, OrderStatus::downloading,
                                                 OrderStatus::uploading, OrderStatus::finalizing};
  return statuses;
}

OrderJob::OrderJob(store::TaskStore& store, StageEndpoints endpoints, std::string worker_id)
    : store_(&store), endpoints_(std::move(endpoints)), worker_id_(std::move(worker_id)),
      world_("127.0.0.1", endpoints_.world_port, endpoints_.timeout),
      finalize_("127.0.0.1", endpoints_.finalize_port, endpoints_.timeout) {}

void OrderJob::call_world(const char* api, const std::string& order) {
  auto r = world_.post(std::string("/api/") + api,
                       nlohmann::json{{"order_id", order}, {"key", std::string(api) + ":" + order}}.dump());
  if (r.ok()) return;
  throw StageError(r.transient(), std::string(api) + ": " + (r.answered() ? "HTTP " + std::to_string(r.status) : r.error));
}

void OrderJob::finalize(const std::string& order_id) {
  std::string body = nlohmann::json{{"order_id", order_id}}.dump();
  auto ts = unix_now();
  auto r = finalize_.post("/webhooks/finalize", body,
                          {{std::string(security::kTimestampHeader), std::to_string(ts)},
                           {std::string(security::kSignatureHeader), security::sign(endpoints_.finalize_secret, ts, body)}});
  if (r.ok()) return;
  std::string why = "finalize: " + (r.answered() ? "HTTP " + std::to_string(r.status) + " " + r.body : r.error);
  const std::string result = answer_result(r.body);
  if ((r.status == 503 && result == "store_unavailable") ||
      (r.status == 401 && (result == "stale_timestamp" || result == "future_timestamp")))
    throw Unavailable(why);
  throw StageError(r.transient(), why);
}

StageTimes OrderJob::run(const std::string& order_id) {
  auto move = [&](std::vector<OrderStatus> from, OrderStatus to) {
    auto r = store_->transition(order_id, std::move(from), to, worker_id_);
    if (!r) throw Unavailable("store: " + r.error);
    return r.value;
  };
  // A stage that another delivery of the same order moved on meanwhile (this one was paused past
  // its lease, or is that other delivery's predecessor): stop here, before finalize, and let the
  // queue decide (a stale delivery's retry is refused with its lease).
  auto forward = [&](OrderStatus from, OrderStatus to) {
    if (!move({from}, to))
      throw Superseded("store: order '" + order_id + "' left " + std::string(store::to_string(from)) +
                       " meanwhile: another delivery of it has taken it over");
  };
  // Start again from processing: the download lives on the worker that made it, so a
  // redelivery downloads again. Except from finalizing: the upload is done and finalize only
  // needs the order, so the order is never pulled back from under a finalize call in flight.
  static const std::vector<OrderStatus> restartable{OrderStatus::paid, OrderStatus::processing,
                                                    OrderStatus::downloading, OrderStatus::uploading};
  // The common case (a paid order) costs one query, which also moves it on to downloading; the
  // order is read only when it would not move.
  for (int look = 0;; ++look) {
    std::optional<long long> since_paid_ms;
    auto picked = store_->pick_up(order_id, restartable, worker_id_, &since_paid_ms);  // on to downloading
    if (!picked) throw Unavailable("store: " + picked.error);
    if (picked.value) {
      if (on_pickup && since_paid_ms) on_pickup(static_cast<double>(*since_paid_ms) / 1000.0);
      break;
    }
    auto order = store_->get(order_id);
    if (!order) throw Unavailable("store: " + order.error);
    if (!order.value) throw StageError(false, "no order '" + order_id + "' in the task store");
    if (order.value->status == OrderStatus::completed) return {};  // redelivered after finalize: done
    if (order.value->status == OrderStatus::finalizing) {
      finalize(order_id);
      return {};
    }
    if (look == 1)  // try once more: it may have moved between the two queries
      throw StageError(false, "order '" + order_id + "' is " + std::string(store::to_string(order.value->status)) +
                                  ", not payable work");
  }
  StageTimes t;
  auto timed = [](auto&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  t.download_s = timed([&] { call_world("download", order_id); });
  forward(OrderStatus::downloading, OrderStatus::uploading);
  t.upload_s = timed([&] { call_world("upload", order_id); });
  forward(OrderStatus::uploading, OrderStatus::finalizing);
  finalize(order_id);
  return t;
}

}  // namespace qsim::components
