#include "qsim/components/payment_intake.h"

#include "qsim/components/http_client.h"
#include "qsim/pool.h"
#include "qsim/queue/queue.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"

#include <nlohmann/json.hpp>

#include <set>

namespace qsim::components {

std::optional<Payment> parse_payment_body(std::string_view body, std::string& why) {
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

namespace {
// A handler's own Redis connection, and the store and queue over it.
struct StoreLink {
  StoreLink(const redis::Endpoint& ep, const PaymentIntakeOptions& o)
      : conn(ep), store(conn, o.queue, "payment_intake", o.prefix), queue(conn, o.queue, queue::QueueConfig{o.prefix}) {}
  redis::Connection conn;
  store::TaskStore store;
  queue::Queue queue;
};
}  // namespace

// Handlers run on the HTTP server's threads at once: each leases a store link (and, handing
// off, a kept-alive client of the framework's enqueue server) for its request.
struct PaymentIntake::State {
  State(const redis::Endpoint& ep, const PaymentIntakeOptions& o)
      : stores([ep, o] { return std::make_unique<StoreLink>(ep, o); }),
        handoff([o] { return std::make_unique<HttpClient>("127.0.0.1", o.handoff_port, o.handoff_timeout); }) {}
  Pool<StoreLink> stores;
  Pool<HttpClient> handoff;
  std::mutex handoff_mu;  // guards handing_off: the orders whose hand-off is in flight here
  std::set<std::string> handing_off;
};

namespace {
std::vector<std::string> intake_results() {
  auto r = guard_results();
  r.insert(r.end(), {"accepted", "duplicate", "malformed_body", "unknown_order", "amount_mismatch", "already_paid",
                     "store_unavailable", "handoff_failed", "not_replicated"});
  return r;
}
}  // namespace

PaymentIntake::PaymentIntake(redis::Endpoint redis, PaymentIntakeOptions options, std::string secret)
    : state_(std::make_unique<State>(redis, options)), options_(std::move(options)), secret_(std::move(secret)),
      counters_(intake_results()) {}

PaymentIntake::~PaymentIntake() = default;

WebhookResponse PaymentIntake::handle(std::optional<std::string_view> timestamp, std::optional<std::string_view> signature,
                                      std::string_view body, std::int64_t now) {
  if (auto rejected = guard_signed_request(counters_, secret_, timestamp, signature, body, now, options_.window,
                                           options_.max_body_bytes))
    return *rejected;
  std::string why;
  auto p = parse_payment_body(body, why);
  if (!p) return counters_.answer(400, "malformed_body", why);

  queue::Expected<store::PaymentResult> r;
  {
    auto link = state_->stores.acquire();
    r = link->store.accept_payment(p->order_id, p->txn_id, p->amount, options_.queue_mode ? &link->queue : nullptr,
                                   options_.max_attempts);
    // A duplicate is waited for too: its first delivery may have been answered 503 unconfirmed.
    // WAIT waits for this connection's latest write, and the script always writes (its query
    // count), so a duplicate's WAIT covers the first delivery's write as well.
    if (r && options_.wait_replicas > 0 &&
        (r.value.outcome == store::PaymentOutcome::accepted || r.value.outcome == store::PaymentOutcome::duplicate)) {
      auto w = link->conn.command({"WAIT", std::to_string(options_.wait_replicas), std::to_string(options_.wait_timeout.count())},
                                  options_.wait_timeout + std::chrono::milliseconds(1000));
      if (!w || w.reply.integer < options_.wait_replicas)
        return counters_.answer(503, "not_replicated",
                                w ? std::to_string(w.reply.integer) + " of " + std::to_string(options_.wait_replicas) +
                                        " replicas confirmed within " + std::to_string(options_.wait_timeout.count()) + " ms"
                                  : "WAIT: " + w.error,
                                {{"order_id", p->order_id}});
    }
  }
  if (!r) return counters_.answer(503, "store_unavailable", std::string(redis::to_string(r.status)) + ": " + r.error);
  if (options_.handoff_port > 0 && (r.value.outcome == store::PaymentOutcome::accepted ||
                                    (r.value.outcome == store::PaymentOutcome::duplicate && r.value.job_id.empty()))) {
    bool paid = r.value.outcome == store::PaymentOutcome::accepted;
    if (!paid) {  // a retried delivery: hand off again only while the order waits, with no job recorded
      auto o = state_->stores.acquire()->store.get(r.value.order_id);
      if (!o) return counters_.answer(503, "store_unavailable", o.error);
      paid = o.value && o.value->status == store::OrderStatus::paid && o.value->job_id.empty();
    }
    if (paid) {
      // One hand-off of an order at a time: a copy of the webhook that arrives meanwhile (a
      // duplicate, the provider's retry) is answered 503 and delivered again later.
      {
        std::lock_guard lock(state_->handoff_mu);
        if (!state_->handing_off.insert(r.value.order_id).second)
          return counters_.answer(503, "handoff_failed", "a hand-off of this order is in flight",
                                  {{"order_id", r.value.order_id}});
      }
      auto err = hand_off(r.value.order_id, r.value.job_id);
      {
        std::lock_guard lock(state_->handoff_mu);
        state_->handing_off.erase(r.value.order_id);
      }
      if (!err.empty()) return counters_.answer(503, "handoff_failed", err, {{"order_id", r.value.order_id}});
    }
  }
  const std::vector<std::pair<std::string, std::string>> ids{{"order_id", r.value.order_id}, {"job_id", r.value.job_id}};
  switch (r.value.outcome) {
    case store::PaymentOutcome::accepted: return counters_.answer(200, "accepted", {}, ids);
    case store::PaymentOutcome::duplicate: return counters_.answer(200, "duplicate", {}, ids);
    case store::PaymentOutcome::unknown_order: return counters_.answer(404, "unknown_order", {}, {{"order_id", p->order_id}});
    case store::PaymentOutcome::amount_mismatch:
      return counters_.answer(422, "amount_mismatch", {}, {{"order_id", p->order_id}});
    case store::PaymentOutcome::already_paid:
      return counters_.answer(409, "already_paid", "a different transaction paid this order", {{"order_id", p->order_id}});
  }
  return counters_.answer(503, "store_unavailable", "unknown outcome");
}

std::string PaymentIntake::hand_off(const std::string& order_id, std::string& job_id) {
  auto r = state_->handoff.acquire()->post("/enqueue", nlohmann::json{{"order_id", order_id}}.dump());
  if (!r.ok()) return "hand-off: " + (r.answered() ? "HTTP " + std::to_string(r.status) + " " + r.body : r.error);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("job_id") || !j["job_id"].is_string() || j["job_id"].get<std::string>().empty())
    return "hand-off: the answer has no job_id: " + r.body.substr(0, 200);
  job_id = j["job_id"].get<std::string>();
  auto set = state_->stores.acquire()->store.set_job(order_id, job_id);
  if (!set) return "store: recording the job id: " + set.error;
  return {};
}

void PaymentIntake::mount(HttpService& http) {
  mount_signed_webhook(http, "/webhooks/payment", counters_, "payment_webhooks_total", "Payment webhook deliveries by result.",
                       [this](auto ts, auto sig, auto body, auto now) { return handle(ts, sig, body, now); });
}

}  // namespace qsim::components
