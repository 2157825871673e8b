// Payment intake: the payment provider's webhook.
//
//   POST /webhooks/payment   body {"order_id": "...", "amount": <integer>, "txn_id": "..."}
//                            headers X-Qsim-Timestamp, X-Qsim-Signature (security/signature.h)
//
// Checks, in order: body size, headers, signature (constant time), timestamp window
// (components/webhook.h), JSON shape, then one atomic store script (store/task_store.h): known
// order, amount, transaction seen before. A first delivery pays the order and, in queue mode,
// enqueues its job in the same script. In hand-off mode (a framework under test, issue #11) it
// then asks the framework's hand-off server to enqueue with the framework's own client
// (system/frameworks/README.md) and records the job id; that is a second step, not atomic with
// the first: a failed hand-off answers 503 handoff_failed, and the provider's retry, seen as a
// duplicate of a still-paid order with no job, hands it off again. A repeated delivery of the same transaction answers 200
// with the same result and changes nothing (providers retry until they see a 2xx).
//
// With wait_replicas (Redis replicated, failover_redis), the payment is acknowledged only once
// that many replicas have it (WAIT after the store script): Redis replicates asynchronously, and
// a primary that dies right after a 200 would take the payment with it. Unconfirmed, the intake
// answers 503 not_replicated and the provider delivers again, to the promoted replica if need be.
//
// Every answer has its own `result` word and counter:
//   200 accepted | 200 duplicate | 401 missing_headers | 400 malformed_headers | 401 bad_signature
//   | 401 stale_timestamp | 401 future_timestamp | 400 malformed_body | 413 body_too_large
//   | 404 unknown_order | 422 amount_mismatch | 409 already_paid | 503 store_unavailable
//   | 503 handoff_failed | 503 not_replicated
//
// Thread-safety: handle() may be called from many threads (the HTTP server's); each request
// leases a Redis connection of its own from a pool.
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

struct PaymentIntakeOptions {
  std::string queue = "orders";  // the queue's name, also the store's tag
  std::string prefix = "qsim";
  bool queue_mode = true;        // false: the legacy flow (status change only; the poller finds it)
  int handoff_port = 0;          // > 0 (with queue_mode false): hand paid orders to the server on this port
  std::chrono::milliseconds handoff_timeout{5000};
  std::chrono::seconds window = security::kSignatureWindow;
  std::size_t max_body_bytes = 64 * 1024;
  int max_attempts = 3;
  int wait_replicas = 0;                      // > 0: acknowledge a payment once this many replicas have it
  std::chrono::milliseconds wait_timeout{200};  // how long to wait for them before answering 503
};

// The body the provider must send, parsed; nullopt with `why` saying where and why (a JSON path).
struct Payment {
  std::string order_id, txn_id;
  long long amount = 0;
};
std::optional<Payment> parse_payment_body(std::string_view body, std::string& why);

class PaymentIntake {
public:
  PaymentIntake(redis::Endpoint redis, PaymentIntakeOptions options, std::string secret);
  ~PaymentIntake();

  // `now` is the receiver's Unix time in seconds.
  WebhookResponse handle(std::optional<std::string_view> timestamp, std::optional<std::string_view> signature,
                         std::string_view body, std::int64_t now);
  // Routes: POST /webhooks/payment, GET /health, GET /metrics.
  void mount(HttpService& http);
  WebhookCounters& counters() { return counters_; }

private:
  // Hands a paid order to the framework's hand-off server and records the job id it answers
  // (set in `job_id`); the error, or empty.
  std::string hand_off(const std::string& order_id, std::string& job_id);
  struct State;
  std::unique_ptr<State> state_;
  PaymentIntakeOptions options_;
  std::string secret_;
  WebhookCounters counters_;
};

}  // namespace qsim::components
