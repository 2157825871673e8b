#include "qsim/components/finalize_service.h"

#include "qsim/components/http_client.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"

#include <nlohmann/json.hpp>

#include <mutex>

namespace qsim::components {

struct FinalizeService::State {
  State(const redis::Endpoint& ep, const FinalizeOptions& o) : conn(ep), store(conn, o.queue, "finalize", o.prefix) {}
  std::mutex mu;  // guards conn and store
  redis::Connection conn;
  store::TaskStore store;
};

namespace {
std::vector<std::string> finalize_results() {
  auto r = guard_results();
  r.insert(r.end(), {"completed", "duplicate", "unknown_order", "wrong_state", "world_unavailable", "world_rejected",
                     "malformed_body", "store_unavailable"});
  return r;
}
}  // namespace

FinalizeService::FinalizeService(redis::Endpoint redis, FinalizeOptions options, std::string secret)
    : state_(std::make_unique<State>(redis, options)), options_(std::move(options)), secret_(std::move(secret)),
      counters_(finalize_results()) {}

FinalizeService::~FinalizeService() = default;

std::optional<std::string> parse_finalize_body(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("order_id");
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
  return it->get<std::string>();
}

WebhookResponse FinalizeService::handle(std::optional<std::string_view> timestamp,
                                        std::optional<std::string_view> signature, std::string_view body,
                                        std::int64_t now) {
  if (auto rejected = guard_signed_request(counters_, secret_, timestamp, signature, body, now, options_.window,
                                           options_.max_body_bytes))
    return *rejected;
  auto parsed = parse_finalize_body(body);
  if (!parsed) return counters_.answer(400, "malformed_body", "$.order_id: expected a non-empty string");
  const std::string order = *parsed;
  const std::vector<std::pair<std::string, std::string>> ids{{"order_id", order}};

  auto load = [&] {
    std::lock_guard lock(state_->mu);
    return state_->store.get(order);
  };
  auto o = load();
  if (!o) return counters_.answer(503, "store_unavailable", o.error, ids);
  if (!o.value) return counters_.answer(404, "unknown_order", {}, ids);
  if (o.value->status == store::OrderStatus::completed) return counters_.answer(200, "duplicate", {}, ids);
  if (o.value->status != store::OrderStatus::finalizing)
    return counters_.answer(409, "wrong_state", "order is " + std::string(store::to_string(o.value->status)), ids);

  HttpClient world(options_.world_host, options_.world_port, options_.world_timeout);
  for (const char* api : {"grant", "mail"}) {
    std::string key = std::string(api) + ":" + order;
    auto r = world.post(std::string("/api/") + api, nlohmann::json{{"order_id", order}, {"key", key}}.dump());
    if (r.transient())
      return counters_.answer(503, "world_unavailable",
                              std::string(api) + ": " + (r.answered() ? std::to_string(r.status) : r.error), ids);
    if (!r.ok()) return counters_.answer(422, "world_rejected", std::string(api) + ": " + std::to_string(r.status), ids);
  }
  queue::Expected<bool> moved;
  {
    std::lock_guard lock(state_->mu);
    moved = state_->store.transition(order, {store::OrderStatus::finalizing}, store::OrderStatus::completed);
  }
  if (!moved) return counters_.answer(503, "store_unavailable", moved.error, ids);
  // Lost the compare-and-set: a concurrent call completed it first; our effects were no-ops.
  return moved.value ? counters_.answer(200, "completed", {}, ids) : counters_.answer(200, "duplicate", {}, ids);
}

void FinalizeService::mount(HttpService& http) {
  mount_signed_webhook(http, "/webhooks/finalize", counters_, "finalize_webhooks_total", "Finalize webhook calls by result.",
                       [this](auto ts, auto sig, auto body, auto now) { return handle(ts, sig, body, now); });
}

}  // namespace qsim::components
