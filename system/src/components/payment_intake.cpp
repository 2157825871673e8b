#include "qsim/components/payment_intake.h"

#include "qsim/queue/queue.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace qsim::components {

namespace {

// The shape the provider must send; the error says where and why.
struct Payment {
  std::string order_id, txn_id;
  long long amount = 0;
};

std::optional<Payment> parse_payment(std::string_view body, std::string& why) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return why = "body is not valid JSON", std::nullopt;
  if (!j.is_object()) return why = "body must be a JSON object", std::nullopt;
  Payment p;
  auto str = [&](const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
      why = std::string("$.") + key + ": expected a non-empty string";
      return false;
    }
    out = it->get<std::string>();
    return true;
  };
  if (!str("order_id", p.order_id) || !str("txn_id", p.txn_id)) return std::nullopt;
  auto a = j.find("amount");
  if (a == j.end() || !a->is_number_integer() || a->get<long long>() < 0)
    return why = "$.amount: expected a non-negative integer", std::nullopt;
  p.amount = a->get<long long>();
  return p;
}

}  // namespace

struct PaymentIntake::State {
  explicit State(const redis::Endpoint& ep, const PaymentIntakeOptions& o)
      : conn(ep), store(conn, o.queue, "payment_intake", o.prefix), queue(conn, o.queue, queue::QueueConfig{o.prefix}) {}
  std::mutex mu;  // guards conn, store, queue
  redis::Connection conn;
  store::TaskStore store;
  queue::Queue queue;
  mutable std::mutex counters_mu;
  std::map<std::string, long long> counters;
};

PaymentIntake::PaymentIntake(redis::Endpoint redis, PaymentIntakeOptions options, std::string secret)
    : state_(std::make_unique<State>(redis, options)), options_(std::move(options)), secret_(std::move(secret)) {
  // Every result word exists from the start, so /metrics shows zeros rather than nothing.
  for (const char* r : {"accepted", "duplicate", "missing_headers", "malformed_headers", "bad_signature",
                        "stale_timestamp", "future_timestamp", "malformed_body", "body_too_large", "unknown_order",
                        "amount_mismatch", "already_paid", "store_unavailable"})
    state_->counters[r] = 0;
}

PaymentIntake::~PaymentIntake() = default;

WebhookResponse PaymentIntake::answer(int status, std::string result, std::string detail, std::string order,
                                      std::string job) {
  {
    std::lock_guard lock(state_->counters_mu);
    state_->counters[result]++;
  }
  nlohmann::json j{{"result", result}};
  if (!detail.empty()) j["detail"] = detail;
  if (!order.empty()) j["order_id"] = order;
  if (!job.empty()) j["job_id"] = job;
  return {status, std::move(result), j.dump()};
}

WebhookResponse PaymentIntake::reject_too_large(std::size_t bytes) {
  return answer(413, "body_too_large",
                std::to_string(bytes) + " bytes, limit " + std::to_string(options_.max_body_bytes));
}

WebhookResponse PaymentIntake::handle(std::optional<std::string_view> timestamp, std::optional<std::string_view> signature,
                                      std::string_view body, std::int64_t now) {
  if (body.size() > options_.max_body_bytes) return reject_too_large(body.size());
  switch (security::verify(secret_, timestamp, signature, body, now, options_.window)) {
    case security::Verdict::ok: break;
    case security::Verdict::missing_headers:
      return answer(401, "missing_headers", "X-Qsim-Timestamp and X-Qsim-Signature are required");
    case security::Verdict::malformed_headers: return answer(400, "malformed_headers");
    case security::Verdict::bad_signature: return answer(401, "bad_signature");
    case security::Verdict::stale: return answer(401, "stale_timestamp", "older than the accepted window");
    case security::Verdict::future: return answer(401, "future_timestamp", "ahead of the accepted window");
  }
  std::string why;
  auto p = parse_payment(body, why);
  if (!p) return answer(400, "malformed_body", why);

  queue::Expected<store::PaymentResult> r;
  {
    std::lock_guard lock(state_->mu);
    r = state_->store.accept_payment(p->order_id, p->txn_id, p->amount, options_.queue_mode ? &state_->queue : nullptr,
                                     options_.max_attempts);
  }
  if (!r) return answer(503, "store_unavailable", std::string(redis::to_string(r.status)) + ": " + r.error);
  switch (r.value.outcome) {
    case store::PaymentOutcome::accepted: return answer(200, "accepted", {}, r.value.order_id, r.value.job_id);
    case store::PaymentOutcome::duplicate: return answer(200, "duplicate", {}, r.value.order_id, r.value.job_id);
    case store::PaymentOutcome::unknown_order: return answer(404, "unknown_order", {}, p->order_id);
    case store::PaymentOutcome::amount_mismatch: return answer(422, "amount_mismatch", {}, p->order_id);
    case store::PaymentOutcome::already_paid:
      return answer(409, "already_paid", "a different transaction paid this order", p->order_id);
  }
  return answer(500, "store_unavailable", "unknown outcome");
}

std::map<std::string, long long> PaymentIntake::counters() const {
  std::lock_guard lock(state_->counters_mu);
  return state_->counters;
}

std::string PaymentIntake::metrics() const {
  std::string out = "# HELP payment_webhooks_total Payment webhook deliveries by result.\n"
                    "# TYPE payment_webhooks_total counter\n";
  for (const auto& [result, n] : counters())
    out += "payment_webhooks_total{result=\"" + result + "\"} " + std::to_string(n) + "\n";
  return out;
}

struct PaymentIntakeServer::Impl {
  explicit Impl(PaymentIntake& i) : intake(i) {}
  PaymentIntake& intake;
  httplib::Server server;
};

PaymentIntakeServer::PaymentIntakeServer(PaymentIntake& intake) : impl_(std::make_unique<Impl>(intake)) {
  auto& srv = impl_->server;
  auto header = [](const httplib::Request& req, std::string_view name) -> std::optional<std::string_view> {
    auto it = req.headers.find(std::string(name));
    if (it == req.headers.end()) return std::nullopt;
    return std::string_view(it->second);
  };
  // httplib refuses bodies past this itself; up to it, handle() answers and counts.
  srv.set_payload_max_length(16 * 1024 * 1024);
  srv.Post("/webhooks/payment", [this, header](const httplib::Request& req, httplib::Response& res) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto r = impl_->intake.handle(header(req, security::kTimestampHeader), header(req, security::kSignatureHeader), req.body,
                                  now);
    res.status = r.status;
    res.set_content(r.body, "application/json");
  });
  srv.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(impl_->intake.metrics(), "text/plain; version=0.0.4");
  });
  // Errors httplib produces on its own (its size limit) are answered and counted like ours.
  srv.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours already
    if (res.status == 413) {
      auto r = impl_->intake.reject_too_large(req.body.size());
      res.set_content(r.body, "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }));
}

PaymentIntakeServer::~PaymentIntakeServer() = default;

bool PaymentIntakeServer::listen(const std::string& host, int port) { return impl_->server.listen(host.c_str(), port); }

void PaymentIntakeServer::stop() { impl_->server.stop(); }

}  // namespace qsim::components
