// Payment intake: the payment provider's webhook.
//
//   POST /webhooks/payment   body {"order_id": "...", "amount": <integer>, "txn_id": "..."}
//                            headers X-Qsim-Timestamp, X-Qsim-Signature (security/signature.h)
//
// Checks, in order: body size, headers, signature (constant time), timestamp window, JSON shape,
// then one atomic store script (store/task_store.h): known order, amount, transaction seen
// before. A first delivery pays the order and, in queue mode, enqueues its job in the same
// script. A repeated delivery of the same transaction answers 200 with the same result and
// changes nothing (providers retry until they see a 2xx).
//
// Every answer has its own `result` word and counter:
//   200 accepted | 200 duplicate | 401 missing_headers | 400 malformed_headers | 401 bad_signature
//   | 401 stale_timestamp | 401 future_timestamp | 400 malformed_body | 413 body_too_large
//   | 404 unknown_order | 422 amount_mismatch | 409 already_paid | 503 store_unavailable
//
// Thread-safety: handle() and counters() may be called from many threads (the HTTP server's
// pool); store calls are serialised on one Redis connection.
#pragma once

#include "qsim/redis/connection.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace qsim::components {

struct PaymentIntakeOptions {
  std::string queue = "orders";  // the queue's name, also the store's tag
  std::string prefix = "qsim";
  bool queue_mode = true;        // false: the legacy flow (status change only; the poller finds it)
  std::chrono::seconds window{300};
  std::size_t max_body_bytes = 64 * 1024;
  int max_attempts = 3;
};

struct WebhookResponse {
  int status = 500;
  std::string result;  // the counter's label
  std::string body;    // JSON
};

class PaymentIntake {
public:
  PaymentIntake(redis::Endpoint redis, PaymentIntakeOptions options, std::string secret);
  ~PaymentIntake();

  // `now` is the receiver's Unix time in seconds.
  WebhookResponse handle(std::optional<std::string_view> timestamp, std::optional<std::string_view> signature,
                         std::string_view body, std::int64_t now);
  // A rejection decided outside handle() (the HTTP layer's own size limit), counted the same way.
  WebhookResponse reject_too_large(std::size_t bytes);

  std::map<std::string, long long> counters() const;
  // Prometheus text: payment_webhooks_total{result="..."} and store queries.
  std::string metrics() const;

private:
  WebhookResponse answer(int status, std::string result, std::string detail = {}, std::string order = {},
                         std::string job = {});

  struct State;
  std::unique_ptr<State> state_;
  PaymentIntakeOptions options_;
  std::string secret_;
};

// Serves PaymentIntake over HTTP on 127.0.0.1:port (also GET /health, GET /metrics) until
// stop() is called from another thread or a signal handler's thread. Returns false if the port
// could not be bound.
class PaymentIntakeServer {
public:
  explicit PaymentIntakeServer(PaymentIntake& intake);
  ~PaymentIntakeServer();
  bool listen(const std::string& host, int port);
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsim::components
