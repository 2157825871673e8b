#include "qsim/components/finalize_service.h"

#include "qsim/components/http_client.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"

#include <nlohmann/json.hpp>

#include "qsim/pool.h"

namespace qsim::components {

namespace {
// A handler's own Redis connection and the store over it.
struct StoreLink {
  StoreLink(const redis::Endpoint& ep, const FinalizeOptions& o) : conn(ep), store(conn, o.queue, "finalize", o.prefix) {}
  redis::Connection conn;
  store::TaskStore store;
};
}  // namespace

// Handlers run on the HTTP server's threads at once: each leases a store link and a kept-alive
// client of the world, so no request waits for another's Redis round trip or opens a socket.
struct FinalizeService::State {
  State(const redis::Endpoint& ep, const FinalizeOptions& o)
      : stores([ep, o] { return std::make_unique<StoreLink>(ep, o); }),
        world([o] { return std::make_unique<HttpClient>(o.world_host, o.world_port, o.world_timeout); }) {}
  Pool<StoreLink> stores;
  Pool<HttpClient> world;
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

  auto link = state_->stores.acquire();
  auto o = link->store.get(order);
  if (!o) return counters_.answer(503, "store_unavailable", o.error, ids);
  if (!o.value) return counters_.answer(404, "unknown_order", {}, ids);
  if (o.value->status == store::OrderStatus::completed) return counters_.answer(200, "duplicate", {}, ids);
  if (o.value->status != store::OrderStatus::finalizing)
    return counters_.answer(409, "wrong_state", "order is " + std::string(store::to_string(o.value->status)), ids);

  auto world = state_->world.acquire();
  for (const char* api : {"grant", "mail"}) {
    std::string key = std::string(api) + ":" + order;
    auto r = world->post(std::string("/api/") + api, nlohmann::json{{"order_id", order}, {"key", key}}.dump());
    if (r.transient())
      return counters_.answer(503, "world_unavailable",
                              std::string(api) + ": " + (r.answered() ? std::to_string(r.status) : r.error), ids);
    if (!r.ok()) return counters_.answer(422, "world_rejected", std::string(api) + ": " + std::to_string(r.status), ids);
  }
  auto moved = link->store.transition(order, {store::OrderStatus::finalizing}, store::OrderStatus::completed);
  if (!moved) return counters_.answer(503, "store_unavailable", moved.error, ids);
  // Lost the compare-and-set: a concurrent call completed it first; our effects were no-ops.
  return moved.value ? counters_.answer(200, "completed", {}, ids) : counters_.answer(200, "duplicate", {}, ids);
}

void FinalizeService::mount(HttpService& http) {
  mount_signed_webhook(http, "/webhooks/finalize", counters_, "finalize_webhooks_total", "Finalize webhook calls by result.",
                       [this](auto ts, auto sig, auto body, auto now) { return handle(ts, sig, body, now); });
}

}  // namespace qsim::components
