// The finalize service: the worker's last call for an order.
//
//   POST /webhooks/finalize   body {"order_id": "..."}, signed like the payment webhook with its
//                             own secret (QSIM_FINALIZE_SECRET / QSIM_FINALIZE_SECRET_FILE)
//
// Grants the customer access (world's permission API) and sends the e-mail (world's mail API),
// then marks the order completed — exactly once per order, also under concurrent duplicate calls
// and when killed between the two effects: each external call carries a stable idempotency key
// ("grant:<order>", "mail:<order>") that the APIs honour, and completion is a compare-and-set on
// the order's status (finalizing -> completed), so a retry repeats calls but never effects.
//
// Results (each counted): 200 completed | 200 duplicate (already completed) | 404 unknown_order
// | 409 wrong_state (not finalizing) | 503 world_unavailable (retry) | 422 world_rejected (a
// permanent failure of an external API) | 400 malformed_body | 503 store_unavailable, plus the
// guard's rejections (components/webhook.h).
#pragma once

#include "qsim/components/http_service.h"
#include "qsim/components/webhook.h"
#include "qsim/redis/connection.h"
#include "qsim/security/signature.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace qsim::components {

struct FinalizeOptions {
  std::string queue = "orders";  // the store's tag
  std::string prefix = "qsim";
  std::chrono::seconds window = security::kSignatureWindow;
  std::size_t max_body_bytes = 16 * 1024;
  std::string world_host = "127.0.0.1";
  int world_port = 8890;
  std::chrono::milliseconds world_timeout{10'000};
};

// The order id of a finalize webhook's body ({"order_id": non-empty string}); nullopt otherwise.
std::optional<std::string> parse_finalize_body(std::string_view body);

class FinalizeService {
public:
  FinalizeService(redis::Endpoint redis, FinalizeOptions options, std::string secret);
  ~FinalizeService();
  WebhookResponse handle(std::optional<std::string_view> timestamp, std::optional<std::string_view> signature,
                         std::string_view body, std::int64_t now);
  // Routes: POST /webhooks/finalize, GET /health, GET /metrics.
  void mount(HttpService& http);
  WebhookCounters& counters() { return counters_; }

private:
  struct State;
  std::unique_ptr<State> state_;
  FinalizeOptions options_;
  std::string secret_;
  WebhookCounters counters_;
};

}  // namespace qsim::components
