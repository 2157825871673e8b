#include "qsim/store/task_store.h"
#include "qsim/queue/admin.h"

#include "../queue/scripts.h"

namespace qsim::store {

namespace {

using queue::scripts::Part;

constexpr const char* kStatusNames[] = {"created",   "paid",      "processing", "downloading", "uploading",
                                        "finalizing", "completed", "failed",     "dead"};

// Every store script: ARGV[1] base "P:{T}:", ARGV[2] component; KEYS end with store_queries.
constexpr const char* kCount = R"lua(
local base = ARGV[1]
redis.call('HINCRBY', KEYS[#KEYS], ARGV[2], 1)
local function now_s()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
)lua";

redis::Script store_script(const char* body) { return redis::Script(std::string(kCount) + body); }

// KEYS: order, queries. ARGV: base component id email course_url amount
const redis::Script& create_script() {
  static const redis::Script s = store_script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = now_s()
redis.call('HSET', KEYS[1], 'id', ARGV[3], 'email', ARGV[4], 'course_url', ARGV[5], 'amount', ARGV[6],
           'status', 'created', 't_created', now, 'attempts', '0')
redis.call('ZADD', base .. 'status:created', now, ARGV[3])
return 1
)lua");
  return s;
}

// KEYS: order, queries
const redis::Script& get_script() {
  static const redis::Script s = store_script("return redis.call('HGETALL', KEYS[1])\n");
  return s;
}

// KEYS: order, queries. ARGV: base component id to worker error from...
constexpr const char* kTransition = R"lua(
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return 0 end
local allowed = false
for i = 7, #ARGV do if ARGV[i] == cur then allowed = true end end
if not allowed then return 0 end
local id, to, now = ARGV[3], ARGV[4], now_s()
redis.call('HSET', KEYS[1], 'status', to, 't_' .. to, now)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'worker', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
redis.call('ZREM', base .. 'status:' .. cur, id)
redis.call('ZADD', base .. 'status:' .. to, now, id)
return 1
)lua";  // (the frameworks' smoke tests read kCount and kTransition from this file)

const redis::Script& transition_script() {
  static const redis::Script s = store_script(kTransition);
  return s;
}

// KEYS: order, queries. ARGV: base component id worker from... -> {1, ms since paid (-1: no
// payment time)} or {0, -1}. A worker's pick-up: to processing and straight on to downloading
// (nothing happens between the two), both times recorded, one round trip.
const redis::Script& pick_up_script() {
  static const redis::Script s = store_script(R"lua(
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {0, -1} end
local allowed = false
for i = 5, #ARGV do if ARGV[i] == cur then allowed = true end end
if not allowed then return {0, -1} end
local id, now = ARGV[3], now_s()
redis.call('HSET', KEYS[1], 'status', 'downloading', 't_processing', now, 't_downloading', now, 'worker', ARGV[4])
redis.call('ZREM', base .. 'status:' .. cur, id)
redis.call('ZADD', base .. 'status:downloading', now, id)
local paid = redis.call('HGET', KEYS[1], 't_paid')
if not paid then return {1, -1} end
return {1, tonumber(now) - tonumber(paid)}
)lua");
  return s;
}

// KEYS: status:paid, queries. ARGV: base component worker -> order id or false
const redis::Script& claim_script() {
  static const redis::Script s = store_script(R"lua(
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if not first[1] then return false end
local id, now = first[1], now_s()
local ok = base .. 'order:' .. id
redis.call('HSET', ok, 'status', 'processing', 't_processing', now, 'worker', ARGV[3])
redis.call('HINCRBY', ok, 'attempts', 1)
redis.call('ZREM', KEYS[1], id)
redis.call('ZADD', base .. 'status:processing', now, id)
return id
)lua");
  return s;
}

// KEYS: status:<s>, queries
const redis::Script& count_script() {
  static const redis::Script s = store_script("return redis.call('ZCARD', KEYS[1])\n");
  return s;
}

// KEYS: the queue's first 10, order, txn, queries.
// ARGV: base component order_id txn amount mode(queue|polling) max_attempts
// -> {outcome, order_id, job_id}
const redis::Script& accept_script() {
  static const redis::Script s = queue::scripts::compose(
      {Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::enqueue}, R"lua(
redis.call('HINCRBY', KEYS[13], ARGV[2], 1)
local id, txn, amount, mode = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local prior = redis.call('HGET', KEYS[12], txn)
if prior then
  return {'duplicate', prior, redis.call('HGET', base .. 'order:' .. prior, 'job') or ''}
end
local o = redis.call('HMGET', KEYS[11], 'status', 'amount')
if not o[1] then return {'unknown_order', id, ''} end
if o[2] ~= amount then return {'amount_mismatch', id, ''} end
if o[1] ~= 'created' then return {'already_paid', id, ''} end
local now = now_ms()
local now_s = fmt('%d', now)
redis.call('HSET', KEYS[11], 'status', 'paid', 't_paid', now_s, 'txn', txn)
redis.call('ZREM', base .. 'status:created', id)
redis.call('ZADD', base .. 'status:paid', now_s, id)
redis.call('HSET', KEYS[12], txn, id)
local job = ''
if mode == 'queue' then
  job = enqueue_job(id, 'default', 0, 'order:' .. id, ARGV[7], now)
  redis.call('HSET', KEYS[11], 'job', job)
end
return {'accepted', id, job}
)lua");
  return s;
}

// KEYS: the queue's first 10, order, queries. ARGV: base component order_id max_attempts mode(queue|polling)
// -> {outcome, job_id}
const redis::Script& requeue_script() {
  static const redis::Script s = queue::scripts::compose(
      {Part::now, Part::hist, Part::bury, Part::lease, Part::push_ready, Part::enqueue, Part::revive}, R"lua(
redis.call('HINCRBY', KEYS[12], ARGV[2], 1)
local id, mode = ARGV[3], ARGV[5]
local o = redis.call('HMGET', KEYS[11], 'status', 'job')
local st, job = o[1], o[2] or ''
if not st then return {'unknown_order', ''} end
if st == 'completed' then return {'completed', job} end
if st == 'created' then return {'not_paid', ''} end
local jk = base .. 'job:' .. job
local jstate = false
if mode == 'queue' and job ~= '' then jstate = redis.call('HGET', jk, 'state') end
local live = jstate and jstate ~= 'dead' and jstate ~= 'done'
-- In flight (processing .. finalizing): refused while its job waits or runs, and always for the
-- polling worker (nothing tells whether it still holds the order). With its job dead or gone
-- (purged, or a crash loop whose burial could not be recorded) nothing will ever move it.
if st ~= 'paid' and st ~= 'failed' and st ~= 'dead' and (mode ~= 'queue' or live) then return {'in_flight', job} end
if live then
  -- its job waits or runs: a paid order is on its way; a failed or dead one beside a live job
  -- is being retried already
  if st == 'paid' then return {'already_queued', job} end
  return {'in_flight', job}
end
if mode ~= 'queue' and st == 'paid' then return {'already_queued', ''} end
local now = now_ms()
local now_s = fmt('%d', now)
if st ~= 'paid' then
  redis.call('HSET', KEYS[11], 'status', 'paid', 't_requeued', now_s)
  redis.call('ZREM', base .. 'status:' .. st, id)
  redis.call('ZADD', base .. 'status:paid', now_s, id)
end
redis.call('HINCRBY', KEYS[11], 'requeues', 1)
if mode ~= 'queue' then return {'requeued', ''} end
if jstate == 'dead' and revive(job, now) then return {'requeued', job} end
-- no job (purged, or never enqueued), a finished one, or a dead one whose record cannot be
-- revived: a new job, under the order's unique key
local uniq = 'order:' .. id
redis.call('HDEL', KEYS[9], uniq)
job = enqueue_job(id, 'default', 0, uniq, ARGV[4], now)
redis.call('HSET', KEYS[11], 'job', job)
return {'requeued', job}
)lua");
  return s;
}

template <class T>
queue::Expected<T> fail_with(const queue::Expected<redis::Reply>& r) {
  return {r.status, r.error, T{}};
}

}  // namespace

std::string_view to_string(OrderStatus s) { return kStatusNames[static_cast<int>(s)]; }

std::optional<OrderStatus> order_status_from_string(std::string_view s) {
  for (int i = 0; i < 9; ++i)
    if (s == kStatusNames[i]) return static_cast<OrderStatus>(i);
  return std::nullopt;
}

std::string_view to_string(PaymentOutcome o) {
  switch (o) {
    case PaymentOutcome::accepted: return "accepted";
    case PaymentOutcome::duplicate: return "duplicate";
    case PaymentOutcome::unknown_order: return "unknown_order";
    case PaymentOutcome::amount_mismatch: return "amount_mismatch";
    case PaymentOutcome::already_paid: return "already_paid";
  }
  return "unknown";
}

TaskStore::TaskStore(redis::Connection& conn, std::string_view tag, std::string component, std::string_view prefix)
    : conn_(&conn), keys_(tag, prefix), base_(keys_.base()), component_(std::move(component)) {}

queue::Expected<redis::Reply> TaskStore::run(const redis::Script& s, std::vector<std::string> keys,
                                             std::vector<std::string> args) {
  keys.push_back(base_ + "store_queries");
  args.insert(args.begin(), {base_, component_});
  redis::Result r = conn_->eval(s, keys, args);
  if (!r) return {r.status, r.error, {}};
  return {redis::Status::ok, {}, std::move(r.reply)};
}

queue::Expected<bool> TaskStore::create(const NewOrder& o) {
  auto r = run(create_script(), {base_ + "order:" + o.id}, {o.id, o.email, o.course_url, std::to_string(o.amount)});
  if (!r) return fail_with<bool>(r);
  return {redis::Status::ok, {}, r.value.integer == 1};
}

queue::Expected<std::optional<Order>> TaskStore::get(std::string_view id) {
  auto r = run(get_script(), {base_ + "order:" + std::string(id)}, {});
  if (!r) return fail_with<std::optional<Order>>(r);
  const auto& f = r.value.elements;
  if (f.empty()) return {redis::Status::ok, {}, std::nullopt};
  Order o;
  for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
    const auto& k = f[i].str;
    const auto& v = f[i + 1];
    if (k == "id") o.fields.id = v.str;
    else if (k == "email") o.fields.email = v.str;
    else if (k == "course_url") o.fields.course_url = v.str;
    else if (k == "amount") o.fields.amount = v.as_integer().value_or(0);
    else if (k == "status") o.status = order_status_from_string(v.str).value_or(OrderStatus::created);
    else if (k == "txn") o.txn = v.str;
    else if (k == "job") o.job_id = v.str;
    else if (k == "worker") o.worker = v.str;
    else if (k == "attempts") o.attempts = static_cast<int>(v.as_integer().value_or(0));
    else if (k == "error") o.last_error = v.str;
    else if (k.rfind("t_", 0) == 0) o.entered_ms[k.substr(2)] = v.as_integer().value_or(0);
  }
  return {redis::Status::ok, {}, std::move(o)};
}

queue::Expected<bool> TaskStore::transition(std::string_view id, std::vector<OrderStatus> from, OrderStatus to,
                                            std::string_view worker, std::string_view error) {
  std::vector<std::string> args{std::string(id), std::string(to_string(to)), std::string(worker), std::string(error)};
  for (auto f : from) args.emplace_back(to_string(f));
  auto r = run(transition_script(), {base_ + "order:" + std::string(id)}, std::move(args));
  if (!r) return fail_with<bool>(r);
  return {redis::Status::ok, {}, r.value.integer == 1};
}

queue::Expected<bool> TaskStore::pick_up(std::string_view id, const std::vector<OrderStatus>& from, std::string_view worker,
                                         std::optional<long long>* since_paid_ms) {
  std::vector<std::string> args{std::string(id), std::string(worker)};
  for (auto f : from) args.emplace_back(to_string(f));
  auto r = run(pick_up_script(), {base_ + "order:" + std::string(id)}, std::move(args));
  if (!r) return fail_with<bool>(r);
  const bool moved = r.value.elements.size() == 2 && r.value.elements[0].integer == 1;
  if (since_paid_ms) {
    since_paid_ms->reset();
    if (moved && r.value.elements[1].integer >= 0) *since_paid_ms = r.value.elements[1].integer;
  }
  return {redis::Status::ok, {}, moved};
}

const std::string& TaskStore::transition_script_text() {
  static const std::string text = std::string(kCount) + kTransition;
  return text;
}

// KEYS: order, queries. ARGV: base component job
static const redis::Script& set_job_script() {
  static const redis::Script s = store_script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'job', ARGV[3])
return 1
)lua");
  return s;
}

queue::Expected<bool> TaskStore::set_job(std::string_view id, std::string_view job_id) {
  auto r = run(set_job_script(), {base_ + "order:" + std::string(id)}, {std::string(job_id)});
  if (!r) return fail_with<bool>(r);
  return {redis::Status::ok, {}, r.value.integer == 1};
}

queue::Expected<std::optional<std::string>> TaskStore::claim_oldest_paid(std::string_view worker) {
  auto r = run(claim_script(), {base_ + "status:paid"}, {std::string(worker)});
  if (!r) return fail_with<std::optional<std::string>>(r);
  if (r.value.is_nil()) return {redis::Status::ok, {}, std::nullopt};
  return {redis::Status::ok, {}, r.value.str};
}

queue::Expected<long long> TaskStore::count(OrderStatus s) {
  auto r = run(count_script(), {base_ + "status:" + std::string(to_string(s))}, {});
  if (!r) return fail_with<long long>(r);
  return {redis::Status::ok, {}, r.value.integer};
}

// The queue's first kEnqueueKeyCount keys, in its order, for the store's scripts that enqueue:
// the hand-off set in place of active, which they never touch (see queue/scripts.cpp), so that
// the payment intake's Redis user needs no right on the active set.
std::vector<std::string> TaskStore::queue_keys() const {
  return {keys_.ready(queue::Priority::high), keys_.ready(queue::Priority::normal), keys_.ready(queue::Priority::low),
          keys_.delayed(), keys_.handed(), keys_.dead(), keys_.stats(), keys_.idle(), keys_.unique(), keys_.seq()};
}

queue::Expected<PaymentResult> TaskStore::accept_payment(std::string_view order_id, std::string_view txn,
                                                         long long amount, queue::Queue* q, int max_attempts) {
  // The queue's first keys; in polling mode there is no queue and they are passed untouched.
  if (q && q->keys().base() != base_)
    return {redis::Status::server_error, "the queue and the store must share prefix and tag", {}};
  std::vector<std::string> keys = queue_keys();
  keys.push_back(base_ + "order:" + std::string(order_id));
  keys.push_back(base_ + "txn");
  auto r = run(accept_script(), std::move(keys),
               {std::string(order_id), std::string(txn), std::to_string(amount), q ? "queue" : "polling",
                std::to_string(max_attempts)});
  if (!r) return fail_with<PaymentResult>(r);
  const auto& v = r.value.elements;
  PaymentResult out;
  const auto& outcome = v.at(0).str;
  out.outcome = outcome == "accepted"          ? PaymentOutcome::accepted
                : outcome == "duplicate"       ? PaymentOutcome::duplicate
                : outcome == "amount_mismatch" ? PaymentOutcome::amount_mismatch
                : outcome == "already_paid"    ? PaymentOutcome::already_paid
                                               : PaymentOutcome::unknown_order;
  out.order_id = v.at(1).str;
  out.job_id = v.at(2).str;
  return {redis::Status::ok, {}, std::move(out)};
}

std::string_view to_string(RequeueOutcome o) {
  switch (o) {
    case RequeueOutcome::requeued: return "requeued";
    case RequeueOutcome::already_queued: return "already_queued";
    case RequeueOutcome::in_flight: return "in_flight";
    case RequeueOutcome::completed: return "completed";
    case RequeueOutcome::not_paid: return "not_paid";
    case RequeueOutcome::unknown_order: return "unknown_order";
  }
  return "unknown";
}

queue::Expected<std::pair<RequeueOutcome, std::string>> TaskStore::requeue(std::string_view order_id, queue::Queue* q,
                                                                          int max_attempts) {
  using Out = std::pair<RequeueOutcome, std::string>;
  if (q && q->keys().base() != base_) return {redis::Status::server_error, "the queue and the store must share prefix and tag", {}};
  std::vector<std::string> keys = queue_keys();
  keys.push_back(base_ + "order:" + std::string(order_id));
  auto r = run(requeue_script(), std::move(keys),
               {std::string(order_id), std::to_string(max_attempts), q ? "queue" : "polling"});
  if (!r) return fail_with<Out>(r);
  const auto& v = r.value.elements;
  const std::string& what = v.at(0).str;
  RequeueOutcome out = what == "requeued"         ? RequeueOutcome::requeued
                       : what == "already_queued" ? RequeueOutcome::already_queued
                       : what == "in_flight"      ? RequeueOutcome::in_flight
                       : what == "completed"      ? RequeueOutcome::completed
                       : what == "not_paid"       ? RequeueOutcome::not_paid
                                                  : RequeueOutcome::unknown_order;
  return {redis::Status::ok, {}, Out{out, v.at(1).str}};
}

queue::Expected<std::vector<OrderEntry>> TaskStore::list(OrderStatus status, std::size_t limit) {
  redis::Result r = conn_->command({"ZRANGE", base_ + "status:" + std::string(to_string(status)), "0",
                                    limit ? std::to_string(limit - 1) : "-1", "WITHSCORES"});
  if (!r) return {r.status, r.error, {}};
  std::vector<OrderEntry> out;
  const auto& e = r.reply.elements;
  for (std::size_t i = 0; i + 1 < e.size(); i += 2) out.push_back({e[i].str, e[i + 1].as_integer().value_or(0)});
  return {redis::Status::ok, {}, std::move(out)};
}

queue::Expected<std::int64_t> TaskStore::server_time_ms() {
  redis::Result r = conn_->command({"TIME"});
  if (!r) return {r.status, r.error, 0};
  return {redis::Status::ok, {}, r.reply.elements.at(0).as_integer().value_or(0) * 1000 +
                                     r.reply.elements.at(1).as_integer().value_or(0) / 1000};
}

queue::Expected<std::map<std::string, long long>> TaskStore::query_counts() {
  redis::Result r = conn_->command({"HGETALL", base_ + "store_queries"});  // reading the counters is not a store query
  if (!r) return {r.status, r.error, {}};
  std::map<std::string, long long> out;
  for (std::size_t i = 0; i + 1 < r.reply.elements.size(); i += 2)
    out[r.reply.elements[i].str] = r.reply.elements[i + 1].as_integer().value_or(0);
  return {redis::Status::ok, {}, std::move(out)};
}

queue::Expected<DeadRequeue> requeue_dead_jobs(TaskStore& store, queue::Queue& queue, const std::vector<std::string>& ids) {
  DeadRequeue out;
  std::vector<std::string> plain;
  for (const auto& id : ids) {
    auto s = queue.status(id);
    if (!s) return {s.status, "job " + id + ": " + s.error, {}};
    std::optional<Order> order;
    if (s.value && s.value->state == queue::JobState::dead) {
      auto o = store.get(s.value->payload);
      if (!o) return {o.status, "order " + s.value->payload + ": " + o.error, {}};
      order = std::move(o.value);
    }
    if (!order || order->job_id != id) {
      plain.push_back(id);
      continue;
    }
    auto r = store.requeue(s.value->payload, &queue);
    if (!r) return {r.status, "order requeue " + s.value->payload + ": " + r.error, {}};
    auto [outcome, job] = r.value;
    out.orders.push_back({id, s.value->payload, outcome});
    if (outcome == RequeueOutcome::requeued && job == id) out.requeued.push_back(id);
  }
  auto r = queue::QueueAdmin(queue).requeue_dead(plain);
  if (!r) return {r.status, "dead requeue: " + r.error, {}};
  for (auto& id : r.value) out.requeued.push_back(std::move(id));
  return {redis::Status::ok, {}, std::move(out)};
}

}  // namespace qsim::store
