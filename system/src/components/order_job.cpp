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

StageTimes OrderJob::run(const std::string& order_id) {
  auto move = [&](std::vector<OrderStatus> from, OrderStatus to) {
    auto r = store_->transition(order_id, std::move(from), to, worker_id_);
    if (!r) throw StageError(true, "store: " + r.error);
    return r.value;
  };
  auto order = store_->get(order_id);
  if (!order) throw StageError(true, "store: " + order.error);
  if (!order.value) throw StageError(false, "no order '" + order_id + "' in the task store");
  if (order.value->status == OrderStatus::completed) return {};  // redelivered after finalize: done
  if (!move(in_flight_statuses(), OrderStatus::processing))
    throw StageError(false, "order '" + order_id + "' is " + std::string(store::to_string(order.value->status)) +
                                ", not payable work");
  StageTimes t;
  auto timed = [](auto&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  (void)move({OrderStatus::processing}, OrderStatus::downloading);
  t.download_s = timed([&] { call_world("download", order_id); });
  (void)move({OrderStatus::downloading}, OrderStatus::uploading);
  t.upload_s = timed([&] { call_world("upload", order_id); });
  (void)move({OrderStatus::uploading}, OrderStatus::finalizing);

  std::string body = nlohmann::json{{"order_id", order_id}}.dump();
  auto ts = unix_now();
  auto r = finalize_.post("/webhooks/finalize", body,
                          {{std::string(security::kTimestampHeader), std::to_string(ts)},
                           {std::string(security::kSignatureHeader), security::sign(endpoints_.finalize_secret, ts, body)}});
  if (!r.ok())
    throw StageError(r.transient(), "finalize: " + (r.answered() ? "HTTP " + std::to_string(r.status) + " " + r.body : r.error));
  return t;
}

}  // namespace qsim::components
