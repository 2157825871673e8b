// The task store: order records and their status transitions, in Redis, every query counted.
//
// Keys share the queue's base and hash tag, so that accepting a payment and enqueueing its job
// is one atomic script (a crash between the two can never leave a paid order without a job):
//
//   P:{T}:order:<id>      HASH  id email course_url amount status txn job worker attempts error
//                               and t_<status>: server ms the order entered each status
//   P:{T}:status:<status> ZSET  order id -> ms it entered that status (the status index; the
//                               polling worker's "oldest paid order" is its first member)
//   P:{T}:txn             HASH  provider transaction id -> order id (payment deduplication)
//   P:{T}:store_queries   HASH  component -> store queries it made (one per call below)
//
// Statuses: created -> paid -> processing -> downloading -> uploading -> finalizing -> completed,
// or failed / dead with a reason.
//
// Thread-safety: a TaskStore wraps one redis::Connection; one thread at a time.
#pragma once

#include "qsim/queue/queue.h"
#include "qsim/redis/connection.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qsim::store {

enum class OrderStatus { created, paid, processing, downloading, uploading, finalizing, completed, failed, dead };
std::string_view to_string(OrderStatus s);
std::optional<OrderStatus> order_status_from_string(std::string_view s);

struct NewOrder {
  std::string id;
  std::string email;
  std::string course_url;
  long long amount = 0;  // minor units (e.g. VND, cents)
};

struct Order {
  NewOrder fields;
  OrderStatus status = OrderStatus::created;
  std::map<std::string, std::int64_t> entered_ms;  // status name -> server ms
  std::string txn;
  std::string job_id;
  std::string worker;
  int attempts = 0;
  std::string last_error;
};

enum class PaymentOutcome {
  accepted,         // first delivery: the order is paid (and its job enqueued in queue mode)
  duplicate,        // this transaction was seen before: same answer, nothing changed
  unknown_order,
  amount_mismatch,
  already_paid,     // a different transaction already paid this order
};
std::string_view to_string(PaymentOutcome o);

struct PaymentResult {
  PaymentOutcome outcome = PaymentOutcome::unknown_order;
  std::string order_id;
  std::string job_id;  // queue mode
};

// What an operator's requeue of an order did (TaskStore::requeue).
enum class RequeueOutcome {
  requeued,        // back to paid, its job ready again (or, for the polling worker, waiting to be claimed)
  already_queued,  // paid with a job that waits or runs: nothing to do (a second requeue lands here)
  in_flight,       // a worker holds it: refused
  completed,       // refused: the customer has the course
  not_paid,        // refused: nobody paid for it
  unknown_order,
};
std::string_view to_string(RequeueOutcome o);

struct OrderEntry {
  std::string id;
  std::int64_t since_ms = 0;  // when it entered its status (server ms)
};

class TaskStore {
public:
  // `tag` is the queue's name (shared hash tag); `component` names who asks, for the query count.
  TaskStore(redis::Connection& conn, std::string_view tag, std::string component, std::string_view prefix = "qsim");

  queue::Expected<bool> create(const NewOrder& order);  // false: the id exists
  queue::Expected<std::optional<Order>> get(std::string_view id);
  // Moves the order to `to` if its status is one of `from`; records the time, and `worker` /
  // `error` when given. false: the order was not in any of `from` (or does not exist).
  queue::Expected<bool> transition(std::string_view id, std::vector<OrderStatus> from, OrderStatus to,
                                   std::string_view worker = {}, std::string_view error = {});
  // A worker's pick-up, one query: from any of `from` to processing and on to downloading (both
  // times recorded, stamped with `worker`). `since_paid_ms`: how long ago the order was paid, by
  // Redis's clock (unset when it did not move, or has no payment time).
  queue::Expected<bool> pick_up(std::string_view id, const std::vector<OrderStatus>& from, std::string_view worker,
                                std::optional<long long>* since_paid_ms = nullptr);
  // The legacy worker's single query: claim the oldest paid order (paid -> processing).
  queue::Expected<std::optional<std::string>> claim_oldest_paid(std::string_view worker);
  queue::Expected<long long> count(OrderStatus s);
  // The payment webhook's state change, atomic. With `queue`, the order's job (payload = the
  // order id, unique key "order:<id>") is enqueued in the same script.
  queue::Expected<PaymentResult> accept_payment(std::string_view order_id, std::string_view txn, long long amount,
                                                queue::Queue* queue, int max_attempts = 3);
  // Records the job a framework's client enqueued for the order (the hand-off, issue #11).
  queue::Expected<bool> set_job(std::string_view id, std::string_view job_id);
  // The runbook's manual re-enqueue, atomic and safe to run twice: a paid order without a live
  // job, a failed or dead one, or one left in flight beside a dead or missing job goes back to
  // paid (its payment time kept, t_requeued and a requeues count added) and its job is requeued
  // from the dead letters or enqueued anew. With no queue (the polling architecture) the order
  // only goes back to paid, where the poller claims it. Refuses completed and unpaid orders,
  // and in-flight ones whose job waits or runs (or, polling, any in flight).
  queue::Expected<std::pair<RequeueOutcome, std::string>> requeue(std::string_view order_id, queue::Queue* queue,
                                                                  int max_attempts = 3);
  // Orders in `status`, longest there first, at most `limit` (0: all). An operator's read: not counted.
  queue::Expected<std::vector<OrderEntry>> list(OrderStatus status, std::size_t limit = 0);
  queue::Expected<std::int64_t> server_time_ms();  // Redis TIME, the clock every stored time is on
  // Store queries per component, as counted in Redis.
  queue::Expected<std::map<std::string, long long>> query_counts();
  // The transition script's Lua text, for workers written in other languages
  // (system/frameworks/README.md: KEYS order, store_queries; ARGV base component id to worker
  // error from...).
  static const std::string& transition_script_text();
  std::string_view base() const { return base_; }

private:
  std::vector<std::string> queue_keys() const;
  queue::Expected<redis::Reply> run(const redis::Script& s, std::vector<std::string> keys, std::vector<std::string> args);

  redis::Connection* conn_;
  queue::Keys keys_;  // the queue layout under the same tag: the store's keys share its base
  std::string base_;
  std::string component_;
};

// The operator's requeue of dead jobs (`qsim-queue dead requeue`, the dashboard's button): a job
// that is its order's job goes back with its order (TaskStore::requeue: the order to paid), any
// other straight back to ready (QueueAdmin::requeue_dead). Safe to run twice: a job no longer
// dead is skipped.
struct DeadRequeue {
  struct WithOrder {
    std::string job, order;
    RequeueOutcome outcome;
  };
  std::vector<std::string> requeued;  // the jobs now ready again
  std::vector<WithOrder> orders;      // the jobs that went back with their order
};
queue::Expected<DeadRequeue> requeue_dead_jobs(TaskStore& store, queue::Queue& queue, const std::vector<std::string>& ids);

}  // namespace qsim::store
