// The task store on a live Redis: records, status index, counted queries, and the atomic
// payment acceptance that pays an order and enqueues its job in one step.
#include "live_redis.h"
#include "qsim/store/task_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
using store::OrderStatus;
using store::PaymentOutcome;

class TaskStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    tag = testkit::unique_queue_name();
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    s = std::make_unique<store::TaskStore>(*conn, tag, "intake");
    q = std::make_unique<queue::Queue>(*conn, tag);
  }
  void create(const std::string& id, long long amount = 499'000) {
    auto r = s->create({id, id + "@example.com", "https://courses.example/" + id, amount});
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_TRUE(r.value);
  }
  std::string tag;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<store::TaskStore> s;
  std::unique_ptr<queue::Queue> q;
};

TEST_F(TaskStoreTest, RecordsTransitionsWithTimesAndAnIndex) {
  create("o-1");
  EXPECT_FALSE(s->create({"o-1", "x", "y", 1}).value) << "ids are unique";
  EXPECT_TRUE(s->transition("o-1", {OrderStatus::created}, OrderStatus::paid).value);
  EXPECT_FALSE(s->transition("o-1", {OrderStatus::created}, OrderStatus::paid).value) << "compare-and-set on status";
  EXPECT_TRUE(s->transition("o-1", {OrderStatus::paid}, OrderStatus::failed, "w1", "download: 404").value);
  auto o = s->get("o-1").value;
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status, OrderStatus::failed);
  EXPECT_EQ(o->fields.email, "o-1@example.com");
  EXPECT_EQ(o->fields.amount, 499'000);
  EXPECT_EQ(o->worker, "w1");
  EXPECT_EQ(o->last_error, "download: 404");
  ASSERT_TRUE(o->entered_ms.count("created") && o->entered_ms.count("paid") && o->entered_ms.count("failed"));
  EXPECT_LE(o->entered_ms["created"], o->entered_ms["paid"]);
  EXPECT_EQ(s->count(OrderStatus::failed).value, 1);
  EXPECT_EQ(s->count(OrderStatus::created).value, 0);
  EXPECT_FALSE(s->get("nope").value.has_value());
}

// A worker's pick-up: to processing and on to downloading in one query, which also says how long
// the order waited since its payment.
TEST_F(TaskStoreTest, APickUpMovesOnToDownloadingAndSaysHowLongAgoTheOrderWasPaid) {
  create("o-1");
  const std::vector<OrderStatus> restartable{OrderStatus::paid, OrderStatus::processing, OrderStatus::downloading,
                                             OrderStatus::uploading};
  std::optional<long long> waited = 7;
  EXPECT_FALSE(s->pick_up("o-1", restartable, "w1", &waited).value) << "not paid yet";
  EXPECT_FALSE(waited.has_value()) << "nothing moved";
  EXPECT_TRUE(s->transition("o-1", {OrderStatus::created}, OrderStatus::paid).value);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto moved = s->pick_up("o-1", restartable, "w1", &waited);
  ASSERT_TRUE(moved) << moved.error;
  EXPECT_TRUE(moved.value);
  ASSERT_TRUE(waited.has_value());
  const auto o = s->get("o-1").value;
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->status, OrderStatus::downloading);
  EXPECT_EQ(o->worker, "w1");
  ASSERT_TRUE(o->entered_ms.count("processing") && o->entered_ms.count("downloading"));
  EXPECT_EQ(o->entered_ms.at("processing"), o->entered_ms.at("downloading"));
  EXPECT_EQ(*waited, o->entered_ms.at("processing") - o->entered_ms.at("paid")) << "both by Redis's clock";
  EXPECT_GE(*waited, 25);
  EXPECT_EQ(s->count(OrderStatus::downloading).value, 1);
  EXPECT_EQ(s->count(OrderStatus::paid).value, 0);
  EXPECT_EQ(s->count(OrderStatus::processing).value, 0);
  EXPECT_TRUE(s->pick_up("o-1", restartable, "w2").value) << "a redelivery starts again from downloading";
  EXPECT_FALSE(s->pick_up("o-1", {OrderStatus::paid}, "w2").value);
}

TEST_F(TaskStoreTest, EveryCallIsOneCountedQuery) {
  create("o-1");
  (void)s->get("o-1");
  (void)s->count(OrderStatus::paid);
  store::TaskStore poller(*conn, tag, "polling_worker");
  (void)poller.claim_oldest_paid("p1");
  auto counts = s->query_counts().value;
  EXPECT_EQ(counts["intake"], 3);
  EXPECT_EQ(counts["polling_worker"], 1);
}

TEST_F(TaskStoreTest, PollingClaimTakesTheOldestPaidOrderOnce) {
  for (auto id : {"a", "b", "c"}) create(id);
  for (auto id : {"b", "a"}) {
    ASSERT_EQ(s->accept_payment(id, std::string("T-") + id, 499'000, nullptr).value.outcome, PaymentOutcome::accepted);
    std::this_thread::sleep_for(2ms);  // distinct paid times
  }
  EXPECT_EQ(s->claim_oldest_paid("p1").value, "b");
  EXPECT_EQ(s->claim_oldest_paid("p1").value, "a");
  EXPECT_FALSE(s->claim_oldest_paid("p1").value.has_value());
  auto b = s->get("b").value;
  EXPECT_EQ(b->status, OrderStatus::processing);
  EXPECT_EQ(b->worker, "p1");
  EXPECT_EQ(b->attempts, 1);
  EXPECT_EQ(q->counters().value.enqueued, 0) << "polling mode enqueues nothing";
}

TEST_F(TaskStoreTest, PaymentPaysAndEnqueuesAtomically) {
  create("o-1");
  auto r = s->accept_payment("o-1", "T1", 499'000, q.get());
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value.outcome, PaymentOutcome::accepted);
  ASSERT_FALSE(r.value.job_id.empty());
  auto o = s->get("o-1").value;
  EXPECT_EQ(o->status, OrderStatus::paid);
  EXPECT_EQ(o->txn, "T1");
  EXPECT_EQ(o->job_id, r.value.job_id);
  auto job = q->reserve(1, "w", 30s).value.jobs.at(0);
  EXPECT_EQ(job.id, r.value.job_id);
  EXPECT_EQ(job.payload, "o-1");
}

TEST_F(TaskStoreTest, PaymentRejectionsChangeNothing) {
  create("o-1");
  EXPECT_EQ(s->accept_payment("o-404", "T1", 499'000, q.get()).value.outcome, PaymentOutcome::unknown_order);
  EXPECT_EQ(s->accept_payment("o-1", "T1", 1, q.get()).value.outcome, PaymentOutcome::amount_mismatch);
  EXPECT_EQ(s->get("o-1").value->status, OrderStatus::created);
  EXPECT_EQ(q->counters().value.enqueued, 0);
  ASSERT_EQ(s->accept_payment("o-1", "T1", 499'000, q.get()).value.outcome, PaymentOutcome::accepted);
  EXPECT_EQ(s->accept_payment("o-1", "T2", 499'000, q.get()).value.outcome, PaymentOutcome::already_paid)
      << "a second transaction for a paid order is a double charge, not a new job";
  EXPECT_EQ(q->counters().value.enqueued, 1);
}

TEST_F(TaskStoreTest, SamePaymentFiveTimesConcurrentlyGivesOneJobAndTheSameAnswer) {
  create("o-1");
  std::vector<store::PaymentResult> results(5);
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i)
    threads.emplace_back([&, i] {
      redis::Connection c(testkit::live_redis().endpoint());
      store::TaskStore mine(c, tag, "intake");
      queue::Queue mq(c, tag);
      results[static_cast<size_t>(i)] = mine.accept_payment("o-1", "T1", 499'000, &mq).value;
    });
  for (auto& t : threads) t.join();
  int accepted = 0;
  std::set<std::string> jobs;
  for (auto& r : results) {
    accepted += r.outcome == PaymentOutcome::accepted;
    EXPECT_TRUE(r.outcome == PaymentOutcome::accepted || r.outcome == PaymentOutcome::duplicate);
    jobs.insert(r.job_id);
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(jobs.size(), 1u) << "duplicates answer with the same job";
  EXPECT_EQ(q->counters().value.enqueued, 1);
}
