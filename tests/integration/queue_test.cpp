// The queue engine's operations against a live private Redis, one at a time.
#include "live_redis.h"
#include "qsim/queue/queue.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
using queue::Priority;

class QueueTest : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    q = std::make_unique<queue::Queue>(*conn, testkit::unique_queue_name());
  }
  queue::Job reserve_one(std::chrono::milliseconds lease = 30s, std::string_view worker = "w1") {
    auto r = q->reserve(1, worker, lease);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.value.jobs.size(), 1u);
    return r.value.jobs.empty() ? queue::Job{} : r.value.jobs[0];
  }
  queue::JobStatus status(const std::string& id) {
    auto s = q->status(id);
    EXPECT_TRUE(s.ok()) << s.error;
    EXPECT_TRUE(s.value.has_value()) << id;
    return s.value.value_or(queue::JobStatus{});
  }
  queue::Counters counters() { return q->counters().value; }

  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<queue::Queue> q;
};

TEST_F(QueueTest, EnqueueReserveAckLifecycleWithHistory) {
  auto e = q->enqueue("hello");
  ASSERT_TRUE(e.ok()) << e.error;
  EXPECT_TRUE(e.value.created);
  EXPECT_EQ(status(e.value.id).state, queue::JobState::ready);

  auto job = reserve_one(30s, "worker-7");
  EXPECT_EQ(job.id, e.value.id);
  EXPECT_EQ(job.payload, "hello");
  EXPECT_EQ(job.attempt, 1);
  auto active = status(job.id);
  EXPECT_EQ(active.state, queue::JobState::active);
  EXPECT_EQ(active.worker, "worker-7");

  auto acked = q->ack({job});
  ASSERT_TRUE(acked.ok());
  EXPECT_EQ(acked.value, 1);
  auto done = status(job.id);
  EXPECT_EQ(done.state, queue::JobState::done);
  ASSERT_EQ(done.history.size(), 3u);
  EXPECT_EQ(done.history[0].state, "ready");
  EXPECT_EQ(done.history[1].state, "active");
  EXPECT_EQ(done.history[1].worker, "worker-7");
  EXPECT_EQ(done.history[2].state, "done");
  EXPECT_LE(done.history[0].at_ms, done.history[1].at_ms);
  EXPECT_LE(done.history[1].at_ms, done.history[2].at_ms);
  EXPECT_NEAR(static_cast<double>(done.history[2].at_ms), static_cast<double>(testkit::server_ms(*conn)), 5000.0);

  auto c = counters();
  EXPECT_EQ(c.enqueued, 1);
  EXPECT_EQ(c.reserved, 1);
  EXPECT_EQ(c.acked, 1);
  EXPECT_EQ(q->ack({job}).value, 0) << "a second ack of the same reservation changes nothing";
  EXPECT_EQ(counters().acked, 1);
}

TEST_F(QueueTest, UniqueKeyCreatesOneJob) {
  queue::EnqueueOptions o;
  o.unique_key = "txn-123";
  auto first = q->enqueue("a", o);
  auto second = q->enqueue("b", o);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_TRUE(first.value.created);
  EXPECT_FALSE(second.value.created);
  EXPECT_EQ(first.value.id, second.value.id);
  EXPECT_EQ(counters().enqueued, 1);
  EXPECT_EQ(q->ready_count().value, 1);
  EXPECT_EQ(status(first.value.id).payload, "a");
}

TEST_F(QueueTest, UniqueKeyUnderConcurrentEnqueues) {
  std::vector<std::thread> threads;
  std::vector<std::string> ids(8);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      redis::Connection c(testkit::live_redis().endpoint());
      queue::Queue mine(c, q->keys().queue());
      queue::EnqueueOptions o;
      o.unique_key = "same";
      ids[static_cast<size_t>(t)] = mine.enqueue("x", o).value.id;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  EXPECT_EQ(counters().enqueued, 1);
}

TEST_F(QueueTest, StrictPriorities) {
  queue::EnqueueOptions low, normal, high;
  low.priority = Priority::low;
  high.priority = Priority::high;
  for (int i = 0; i < 3; ++i) {
    (void)q->enqueue("low" + std::to_string(i), low);
    (void)q->enqueue("default" + std::to_string(i), normal);
    (void)q->enqueue("high" + std::to_string(i), high);
  }
  std::vector<std::string> order;
  for (int i = 0; i < 9; ++i) order.push_back(reserve_one().payload);
  EXPECT_EQ(order, (std::vector<std::string>{"high0", "high1", "high2", "default0", "default1", "default2", "low0",
                                             "low1", "low2"}));
  // and within one batch too
  for (int i = 0; i < 2; ++i) {
    (void)q->enqueue("L", low);
    (void)q->enqueue("H", high);
  }
  auto batch = q->reserve(4, "w", 30s);
  ASSERT_EQ(batch.value.jobs.size(), 4u);
  EXPECT_EQ(batch.value.jobs[0].payload, "H");
  EXPECT_EQ(batch.value.jobs[1].payload, "H");
  EXPECT_EQ(batch.value.jobs[2].payload, "L");
}

TEST_F(QueueTest, DelayedJobIsPromotedOnTime) {
  queue::EnqueueOptions o;
  o.delay = 300ms;
  auto e = q->enqueue("later", o);
  EXPECT_EQ(status(e.value.id).state, queue::JobState::delayed);
  auto early = q->reserve(1, "w", 30s);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early.value.jobs.empty());
  ASSERT_TRUE(early.value.next_due.has_value());
  EXPECT_GT(*early.value.next_due, 200ms);
  EXPECT_LE(*early.value.next_due, 300ms);
  std::this_thread::sleep_for(*early.value.next_due + 20ms);
  auto job = reserve_one();
  EXPECT_EQ(job.payload, "later");
  auto h = status(job.id).history;
  ASSERT_GE(h.size(), 3u);
  EXPECT_EQ(h[0].state, "delayed");
  EXPECT_EQ(h[1].state, "ready");
  EXPECT_GE(h[1].at_ms - h[0].at_ms, 300) << "not promoted before it was due";
  EXPECT_LE(h[1].at_ms - h[0].at_ms, 1000) << "promoted on time";
}

TEST_F(QueueTest, IdleWorkerIsHandedTheNextJobAlreadyLeased) {
  redis::Connection other(testkit::live_redis().endpoint());
  queue::Queue producer(other, q->keys().queue());
  auto idle = q->ack_and_reserve({}, 1, "idle-1", 30s, {false, 5000ms});
  ASSERT_TRUE(idle.ok()) << idle.error;
  EXPECT_TRUE(idle.value.jobs.empty());
  ASSERT_TRUE(idle.value.registered_idle);

  std::optional<queue::Job> got;
  std::atomic<std::int64_t> woke_at_us{-1};
  std::thread waiter([&] {
    auto w = q->wait_for_work("idle-1", 5000ms);
    woke_at_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (w.ok()) got = w.value;
  });
  std::this_thread::sleep_for(200ms);
  auto enq_at = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto e = producer.enqueue("wake");
  ASSERT_TRUE(e.ok());
  waiter.join();
  ASSERT_TRUE(got.has_value()) << "the blocked worker was not handed the job";
  EXPECT_EQ(got->id, e.value.id);
  EXPECT_EQ(got->payload, "wake");
  EXPECT_EQ(got->attempt, 1);
  EXPECT_LT(woke_at_us.load() - enq_at, 100'000) << "generous: about one round trip really";
  // handed over already leased to that worker (in the hand-off set, which the producer may
  // write, until the worker's first call about it), and counted as reserved
  auto s = q->status(e.value.id).value;
  EXPECT_EQ(s->state, queue::JobState::active);
  EXPECT_EQ(s->worker, "idle-1");
  EXPECT_TRUE(conn->command({"ZSCORE", q->keys().handed(), got->lease_token}).reply.as_integer().has_value());
  EXPECT_TRUE(conn->command({"ZSCORE", q->keys().active(), got->lease_token}).reply.is_nil());
  EXPECT_EQ(q->counters().value.reserved, 1);
  EXPECT_EQ(q->ready_count().value, 0);
  // the registration was consumed: the next job waits in the ready list
  auto e2 = producer.enqueue("second");
  EXPECT_EQ(q->ready_count().value, 1);
  EXPECT_EQ(q->ack_and_reserve({*got}, 1, "idle-1", 30s).value.jobs.at(0).id, e2.value.id);
}

TEST_F(QueueTest, HandOffRacingTheIdleTimeoutIsCollectedByTheNextReserve) {
  ASSERT_TRUE(q->ack_and_reserve({}, 1, "w", 30s, {false, 5000ms}).value.registered_idle);
  auto e = q->enqueue("raced");  // lands in the inbox; suppose the worker's BLPOP just timed out
  auto next = q->ack_and_reserve({}, 1, "w", 30s, {true, 5000ms});
  ASSERT_TRUE(next.ok()) << next.error;
  ASSERT_EQ(next.value.jobs.size(), 1u);
  EXPECT_EQ(next.value.jobs[0].id, e.value.id);
  EXPECT_EQ(next.value.jobs[0].payload, "raced");
  EXPECT_FALSE(next.value.registered_idle);
  EXPECT_EQ(conn->command({"LLEN", q->keys().inbox("w")}).reply.integer, 0);
}

TEST_F(QueueTest, JobHandedToAWorkerThatDiedIdleComesBackWithoutUsingAnAttempt) {
  // "ghost" registers as idle with a 100 ms lease and dies without ever reading its inbox
  ASSERT_TRUE(q->ack_and_reserve({}, 1, "ghost", 100ms, {false, 5000ms}).value.registered_idle);
  auto e = q->enqueue("orphan");
  EXPECT_EQ(q->status(e.value.id).value->worker, "ghost");
  std::this_thread::sleep_for(150ms);
  auto r = q->reap("reaper", 50ms);
  ASSERT_TRUE(r.value.acted);
  auto s = q->status(e.value.id).value;
  EXPECT_EQ(s->state, queue::JobState::ready);
  EXPECT_EQ(s->attempts, 0) << "the ghost never saw the job";
  EXPECT_EQ(conn->command({"LLEN", q->keys().inbox("ghost")}).reply.integer, 0) << "stale inbox entry removed";
  EXPECT_EQ(q->counters().value.released, 1);
  EXPECT_EQ(q->counters().value.redelivered, 0);
  EXPECT_EQ(reserve_one().attempt, 1);
}

TEST_F(QueueTest, HandOffPrefersTheFreshestIdleRegistration) {
  ASSERT_TRUE(q->ack_and_reserve({}, 1, "stale", 30s, {false, 1000ms}).value.registered_idle);
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(q->ack_and_reserve({}, 1, "fresh", 30s, {false, 1000ms}).value.registered_idle);
  auto e = q->enqueue("x");
  EXPECT_EQ(q->status(e.value.id).value->worker, "fresh");
}

TEST_F(QueueTest, ExpiredIdleRegistrationIsNotHandedWork) {
  ASSERT_TRUE(q->ack_and_reserve({}, 1, "gone", 30s, {false, 50ms}).value.registered_idle);
  std::this_thread::sleep_for(80ms);  // the worker died without deregistering
  (void)q->enqueue("x");
  EXPECT_EQ(q->ready_count().value, 1) << "not handed to a registration past its expiry";
  EXPECT_EQ(conn->command({"LLEN", q->keys().inbox("gone")}).reply.integer, 0);
}

TEST_F(QueueTest, LeaseDeadlineComesFromServerTimeAndHeartbeatExtendsIt) {
  (void)q->enqueue("x");
  auto before = testkit::server_ms(*conn);
  auto job = reserve_one(10'000ms);
  auto after = testkit::server_ms(*conn);
  auto score = [&] { return *conn->command({"ZSCORE", q->keys().active(), job.lease_token}).reply.as_integer(); };
  auto deadline = score();
  EXPECT_GE(deadline, before + 10'000);
  EXPECT_LE(deadline, after + 10'000);
  std::this_thread::sleep_for(20ms);
  auto hb = q->heartbeat({job}, 20'000ms);
  ASSERT_TRUE(hb.ok()) << hb.error;
  ASSERT_EQ(hb.value.size(), 1u);
  EXPECT_TRUE(hb.value[0]);
  EXPECT_GE(score(), deadline + 10'000);
  queue::Job stale = job;
  stale.lease_token = job.id + ":99";
  EXPECT_FALSE(q->heartbeat({stale}, 20'000ms).value.at(0));
}

TEST_F(QueueTest, TransientFailureRetriesWithBackoffThenDeadLetters) {
  queue::EnqueueOptions o;
  o.max_attempts = 2;
  auto e = q->enqueue("flaky", o);
  auto job = reserve_one();
  auto before = testkit::server_ms(*conn);
  auto f = q->fail(job, "download timed out", queue::FailKind::transient, 150ms);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.value, queue::FailOutcome::retry_scheduled);
  auto s = status(e.value.id);
  EXPECT_EQ(s.state, queue::JobState::failed);
  EXPECT_EQ(s.last_error, "download timed out");
  auto due = *conn->command({"ZSCORE", q->keys().delayed(), e.value.id}).reply.as_integer();
  EXPECT_GE(due, before + 150);
  EXPECT_LE(due, before + 150 + 1000);
  EXPECT_TRUE(q->reserve(1, "w", 30s).value.jobs.empty()) << "not before its backoff";
  std::this_thread::sleep_for(200ms);
  auto second = reserve_one();
  EXPECT_EQ(second.attempt, 2);
  auto f2 = q->fail(second, "download timed out again", queue::FailKind::transient, 150ms);
  EXPECT_EQ(f2.value, queue::FailOutcome::dead);
  auto dead = status(e.value.id);
  EXPECT_EQ(dead.state, queue::JobState::dead);
  EXPECT_EQ(dead.last_error, "failed 2 of 2 attempts: download timed out again");
  EXPECT_EQ(q->dead_ids().value, std::vector<std::string>{e.value.id});
  auto c = counters();
  EXPECT_EQ(c.retried, 1);
  EXPECT_EQ(c.dead, 1);
}

TEST_F(QueueTest, PermanentFailureDeadLettersAtOnce) {
  auto e = q->enqueue("bad");
  auto job = reserve_one();
  EXPECT_EQ(q->fail(job, "404 from storage", queue::FailKind::permanent, 1s).value, queue::FailOutcome::dead);
  auto s = status(e.value.id);
  EXPECT_EQ(s.state, queue::JobState::dead);
  EXPECT_EQ(s.last_error, "permanent failure: 404 from storage");
  EXPECT_EQ(s.attempts, 1);
}

TEST_F(QueueTest, ReaperRedeliversExpiredLeaseToTheFrontAndCountsIt) {
  (void)q->enqueue("first");
  (void)q->enqueue("second");
  auto job = reserve_one(100ms, "doomed");
  std::this_thread::sleep_for(150ms);
  auto r = q->reap("reaper-a", 50ms);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.value.acted);
  EXPECT_EQ(r.value.redelivered, 1);
  auto again = reserve_one(30s, "rescuer");
  EXPECT_EQ(again.id, job.id) << "an expired job goes to the front";
  EXPECT_EQ(again.attempt, 2);
  EXPECT_FALSE(q->ack({job}).value) << "the dead worker's late ack does not count";
  EXPECT_EQ(q->ack({again}).value, 1);
  auto c = counters();
  EXPECT_EQ(c.redelivered, 1);
  auto h = status(job.id).history;
  std::vector<std::string> states;
  for (auto& t : h) states.push_back(t.state);
  EXPECT_EQ(states, (std::vector<std::string>{"ready", "active", "redelivered", "active", "done"}));
}

TEST_F(QueueTest, OneReaperActsPerTick) {
  auto first = q->reap("a", 300ms);
  auto second = q->reap("b", 300ms);
  EXPECT_TRUE(first.value.acted);
  EXPECT_FALSE(second.value.acted);
  std::this_thread::sleep_for(320ms);
  EXPECT_TRUE(q->reap("b", 300ms).value.acted);
}

TEST_F(QueueTest, ACrashLoopIsHandedOutOnceMoreForBurialNotForAnotherRun) {
  queue::EnqueueOptions o;
  o.max_attempts = 2;
  auto e = q->enqueue("kills its worker", o);
  auto expire = [&](int attempt) {
    auto j = reserve_one(50ms);
    EXPECT_EQ(j.attempt, attempt);
    std::this_thread::sleep_for(80ms);
    std::this_thread::sleep_for(60ms);  // past the previous reaper tick's lock
    auto r = q->reap("r", 50ms);
    EXPECT_TRUE(r.value.acted);
    return r.value;
  };
  EXPECT_EQ(expire(1).redelivered, 1);
  auto last = expire(2);
  EXPECT_EQ(last.redelivered, 0);
  EXPECT_EQ(last.sent_for_burial, 1);
  EXPECT_EQ(last.dead, 0) << "not buried by the reaper, which cannot tell the job's owner";
  auto burial = reserve_one(30s, "undertaker");
  EXPECT_EQ(burial.id, e.value.id);
  EXPECT_EQ(burial.attempt, 3);
  EXPECT_TRUE(burial.for_burial());
  auto f = q->fail(burial, "lease expired on attempt 2 of 2: worker lost (crash loop)", queue::FailKind::crash_loop, 0ms);
  ASSERT_TRUE(f) << f.error;
  EXPECT_EQ(f.value, queue::FailOutcome::dead);
  auto s = status(e.value.id);
  EXPECT_EQ(s.state, queue::JobState::dead);
  EXPECT_EQ(s.last_error, "lease expired on attempt 2 of 2: worker lost (crash loop)") << "buried with its reason as given";
  auto c = counters();
  EXPECT_EQ(c.redelivered, 1);
  EXPECT_EQ(c.burials, 1);
  EXPECT_EQ(c.dead, 1);
}

TEST_F(QueueTest, ACrashLoopWhoseBurialDeliveryIsLostTooIsBuriedByTheReaper) {
  queue::EnqueueOptions o;
  o.max_attempts = 1;
  auto e = q->enqueue("kills its worker", o);
  for (int i = 0; i < 2; ++i) {  // its one attempt, then its burial delivery
    auto j = reserve_one(50ms);
    EXPECT_EQ(j.for_burial(), i == 1);
    std::this_thread::sleep_for(140ms);
    ASSERT_TRUE(q->reap("r", 50ms).value.acted);
  }
  auto s = status(e.value.id);
  EXPECT_EQ(s.state, queue::JobState::dead);
  EXPECT_EQ(s.last_error, "lease expired on attempt 1 of 1: worker lost (crash loop); its burial delivery was lost too");
  EXPECT_EQ(counters().dead, 1);
}

TEST_F(QueueTest, ReleaseHandsBackWithoutUsingAnAttempt) {
  (void)q->enqueue("a");
  (void)q->enqueue("b");
  auto job = reserve_one();
  EXPECT_TRUE(q->release(job).value);
  auto again = reserve_one();
  EXPECT_EQ(again.id, job.id);
  EXPECT_EQ(again.attempt, 1);
  EXPECT_FALSE(q->release(job).value) << "stale token";
  EXPECT_EQ(counters().released, 1);
}

TEST_F(QueueTest, OversizedAndRecordlessJobsAreDeadLetteredWithTheirReason) {
  redis::Connection c2(testkit::live_redis().endpoint());
  queue::QueueConfig small;
  small.max_payload_bytes = 1024;
  queue::Queue strict(c2, q->keys().queue(), small);
  auto big = q->enqueue(std::string(2048, 'x'));
  ASSERT_TRUE(conn->command({"RPUSH", q->keys().ready(Priority::normal), "no-such-job"}).ok());
  auto good = q->enqueue("fine");
  auto r = strict.reserve(3, "w", 30s);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.value.jobs.size(), 1u);
  EXPECT_EQ(r.value.jobs[0].id, good.value.id);
  EXPECT_EQ(status(big.value.id).last_error, "payload too large: 2048 bytes, limit 1024");
  EXPECT_EQ(status("no-such-job").last_error, "malformed job record: missing prio, attempts or max");
  EXPECT_EQ(q->dead_ids().value.size(), 2u);
}

TEST_F(QueueTest, OversizedJobIsDeadLetteredInsteadOfHandedToAnIdleWorker) {
  redis::Connection c2(testkit::live_redis().endpoint());
  queue::QueueConfig small;
  small.max_payload_bytes = 64;
  queue::Queue strict(c2, q->keys().queue(), small);
  ASSERT_TRUE(strict.ack_and_reserve({}, 1, "picky", 30s, {false, 5000ms}).value.registered_idle);
  auto big = q->enqueue(std::string(100, 'x'));
  auto s = q->status(big.value.id).value;
  EXPECT_EQ(s->state, queue::JobState::dead);
  EXPECT_EQ(s->last_error, "payload too large: 100 bytes, limit 64");
  EXPECT_EQ(conn->command({"LLEN", q->keys().inbox("picky")}).reply.integer, 0);
}

TEST_F(QueueTest, DamagedRecordOfAnExpiredJobIsDeadLetteredNotAScriptError) {
  auto e = q->enqueue("x");
  (void)reserve_one(50ms, "doomed");
  ASSERT_TRUE(conn->command({"HDEL", q->keys().job(e.value.id), "attempts"}).ok());  // damage it
  ASSERT_TRUE(q->ack_and_reserve({}, 1, "idle", 30s, {false, 5000ms}).value.registered_idle);
  std::this_thread::sleep_for(80ms);
  auto r = q->reap("r", 50ms);
  ASSERT_TRUE(r.ok()) << "the reaper must survive a damaged record: " << r.error;
  auto s = q->status(e.value.id).value;
  EXPECT_EQ(s->state, queue::JobState::dead);
  EXPECT_EQ(s->last_error, "malformed job record: missing prio, attempts or max");
}

TEST_F(QueueTest, EveryKeyOfTheQueueIsHashTagged) {
  queue::EnqueueOptions d;
  d.delay = 1h;
  d.unique_key = "u";
  (void)q->enqueue("a", d);
  (void)q->enqueue("b");
  auto j = reserve_one();
  (void)q->fail(j, "x", queue::FailKind::permanent, 0ms);
  (void)q->reap("r", 10ms);
  auto keys = conn->command({"KEYS", "*" + q->keys().queue() + "*"});
  ASSERT_GE(keys.reply.elements.size(), 8u);
  for (auto& k : keys.reply.elements) {
    if (k.str.rfind("ledger:", 0) == 0) continue;
    EXPECT_NE(k.str.find("{" + q->keys().queue() + "}"), std::string::npos) << k.str;
    EXPECT_EQ(k.str.find('{'), k.str.rfind('{')) << "exactly one tag: " << k.str;
  }
}

TEST_F(QueueTest, ResultsSurviveAServerScriptFlush) {
  (void)q->enqueue("a");
  ASSERT_TRUE(conn->command({"SCRIPT", "FLUSH"}).ok());
  EXPECT_EQ(reserve_one().payload, "a");
}
