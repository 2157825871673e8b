// The Worker runtime in-process against a live Redis: handler outcomes (an unavailable store
// not counted as an attempt), malformed payloads, the burial of a crash loop, graceful shutdown
// with and without a deadline hand-back.
#include "eventually.h"
#include "live_redis.h"
#include "qsim/queue/worker.h"

#include <gtest/gtest.h>

#include <charconv>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;

class WorkerTest : public testkit::LiveQueueTest {
protected:
  queue::WorkerOptions options() {
    queue::WorkerOptions o;
    o.worker_id = "test-worker";
    o.lease = 2000ms;
    o.reaper_tick = 100ms;
    o.idle_wait = 100ms;
    o.backoff = {20ms, 2.0, 100ms, 0.0};
    return o;
  }
  // Thread-safe: a worker's hook may read a status while the test polls one, and both go through
  // the fixture's one connection (unguarded, the two once corrupted hiredis's reply buffers:
  // "free(): invalid pointer" in a fresh-clone CI run).
  queue::JobStatus status(const std::string& id) {
    std::lock_guard lock(status_mu_);
    return q->status(id).value.value_or(queue::JobStatus{});
  }

private:
  std::mutex status_mu_;
};

TEST_F(WorkerTest, MalformedAndOversizedPayloadsAreDeadLetteredAndTheWorkerKeepsGoing) {
  auto o = options();
  o.queue.max_payload_bytes = 64;
  queue::Worker w(testkit::live_redis().endpoint(), name, o);
  std::atomic<long long> sum{0};
  std::thread t([&] {
    w.run([&](const queue::Job& job, queue::JobContext&) {
      long long v = 0;
      auto [p, ec] = std::from_chars(job.payload.data(), job.payload.data() + job.payload.size(), v);
      if (ec != std::errc() || p != job.payload.data() + job.payload.size())
        throw queue::MalformedPayload("expected an integer, got '" + job.payload.substr(0, 16) + "'");
      sum += v;
    });
  });
  auto a = q->enqueue("40");
  auto bad = q->enqueue("forty");
  auto big = q->enqueue(std::string(100, '1'));
  auto b = q->enqueue("2");
  ASSERT_TRUE(testkit::eventually([&] { return q->counters().value.acked == 2 && q->counters().value.dead == 2; }, 10s));
  w.request_stop();
  t.join();
  EXPECT_EQ(sum.load(), 42);
  EXPECT_EQ(status(bad.value.id).state, queue::JobState::dead);
  EXPECT_EQ(status(bad.value.id).last_error, "permanent failure: malformed payload: expected an integer, got 'forty'");
  EXPECT_EQ(status(big.value.id).last_error, "payload too large: 100 bytes, limit 64");
  EXPECT_EQ(status(a.value.id).state, queue::JobState::done);
  EXPECT_EQ(status(b.value.id).state, queue::JobState::done);
}

TEST_F(WorkerTest, TransientErrorsAreRetriedWithBackoffUntilSuccess) {
  queue::Worker w(testkit::live_redis().endpoint(), name, options());
  std::atomic<int> calls{0};
  std::thread t([&] {
    w.run([&](const queue::Job&, queue::JobContext&) {
      if (++calls < 3) throw std::runtime_error("connection refused");
    });
  });
  auto e = q->enqueue("x");
  ASSERT_TRUE(testkit::eventually([&] { return status(e.value.id).state == queue::JobState::done; }, 10s));
  w.request_stop();
  t.join();
  auto s = status(e.value.id);
  EXPECT_EQ(s.attempts, 3);
  EXPECT_EQ(q->counters().value.retried, 2);
  std::vector<std::string> states;
  for (auto& h : s.history) states.push_back(h.state);
  EXPECT_EQ(states, (std::vector<std::string>{"ready", "active", "failed", "ready", "active", "failed", "ready",
                                              "active", "done"}));
  // backoff 20ms then 40ms (no jitter): each retry waited at least its delay
  EXPECT_GE(s.history[3].at_ms - s.history[2].at_ms, 20);
  EXPECT_GE(s.history[6].at_ms - s.history[5].at_ms, 40);
}

TEST_F(WorkerTest, AnUnavailableStoreDoesNotUseTheJobsAttempts) {
  queue::Worker w(testkit::live_redis().endpoint(), name, options());
  std::atomic<int> calls{0};
  std::thread t([&] {
    w.run([&](const queue::Job&, queue::JobContext&) {
      if (++calls <= 5) throw queue::Unavailable("store: OOM command not allowed when used memory > 'maxmemory'");
    });
  });
  queue::EnqueueOptions once;
  once.max_attempts = 2;  // five refusals of its store would have killed it twice over
  auto e = q->enqueue("x", once);
  ASSERT_TRUE(testkit::eventually([&] { return status(e.value.id).state == queue::JobState::done; }, 10s));
  w.request_stop();
  t.join();
  auto s = status(e.value.id);
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(w.stats().unavailable.load(), 5);
  EXPECT_EQ(q->counters().value.retried, 0) << "not retries of the job";
  int unavailable = 0;
  for (auto& h : s.history) unavailable += h.state == "unavailable";
  EXPECT_EQ(unavailable, 5);
}

TEST_F(WorkerTest, UncountedFailuresAreCappedThenCountAsTransient) {
  queue::EnqueueOptions once;
  once.max_attempts = 1;
  auto e = q->enqueue("x", once);
  for (int i = 0; i <= queue::kMaxUncountedFailures; ++i) {
    auto r = q->reserve(1, "test-worker", 5s);
    ASSERT_TRUE(r) << r.error;
    ASSERT_EQ(r.value.jobs.size(), 1u) << "reservation " << i;
    auto f = q->fail(r.value.jobs[0], "store down", queue::FailKind::unavailable, 0ms);
    ASSERT_TRUE(f) << f.error;
    EXPECT_EQ(f.value, i < queue::kMaxUncountedFailures ? queue::FailOutcome::retry_scheduled : queue::FailOutcome::dead)
        << "failure " << i;
  }
  EXPECT_EQ(status(e.value.id).state, queue::JobState::dead);
}

// Its one attempt's worker "died" holding it: reserved under a short lease that runs out.
// Returns once the reaper has sent it for burial.
static void lose_every_attempt(queue::Queue& q, const std::string& id, int attempts) {
  for (int i = 0; i < attempts; ++i) {
    auto r = q.reserve(1, "lost-worker", 50ms);
    ASSERT_TRUE(r) << r.error;
    ASSERT_EQ(r.value.jobs.size(), 1u);
    ASSERT_EQ(r.value.jobs[0].id, id);
    std::this_thread::sleep_for(150ms);  // lease and the previous reaper tick's lock both past
    ASSERT_TRUE(q.reap("reaper", 50ms).value.acted);
  }
}

TEST_F(WorkerTest, ACrashLoopIsBuriedThroughTheHookAndNeverRunAgain) {
  queue::EnqueueOptions o;
  o.max_attempts = 2;
  auto e = q->enqueue("kills its worker", o);
  lose_every_attempt(*q, e.value.id, 2);
  queue::Worker w(testkit::live_redis().endpoint(), name, options());
  std::atomic<int> runs{0};
  std::mutex mu;
  std::vector<std::string> hooked;
  std::thread t([&] {
    w.run([&](const queue::Job&, queue::JobContext&) { ++runs; },
          [&](const queue::Job& job, const std::string& reason) {
            std::lock_guard lock(mu);
            hooked.push_back(job.payload + " | " + reason);
          });
  });
  ASSERT_TRUE(testkit::eventually([&] { return status(e.value.id).state == queue::JobState::dead; }, 10s));
  w.request_stop();
  t.join();
  EXPECT_EQ(runs.load(), 0) << "a crash loop is not run a third time";
  EXPECT_EQ(hooked, (std::vector<std::string>{"kills its worker | lease expired on attempt 2 of 2: worker lost (crash loop)"}));
  EXPECT_EQ(w.stats().buried.load(), 1);
  EXPECT_EQ(status(e.value.id).last_error, "lease expired on attempt 2 of 2: worker lost (crash loop)");
}

TEST_F(WorkerTest, ABurialWhoseHookIsRefusedIsTriedAgainWithoutBuryingTheJob) {
  queue::EnqueueOptions o;
  o.max_attempts = 1;
  auto e = q->enqueue("x", o);
  lose_every_attempt(*q, e.value.id, 1);
  // its uncounted budget already spent (an earlier store outage): a burial is handed back all the same
  ASSERT_TRUE(conn->command({"HSET", q->keys().job(e.value.id), "uncounted", std::to_string(queue::kMaxUncountedFailures)}));
  queue::Worker w(testkit::live_redis().endpoint(), name, options());
  std::atomic<int> calls{0};
  std::atomic<bool> dead_while_refused{false};
  std::thread t([&] {
    w.run([](const queue::Job&, queue::JobContext&) {},
          [&](const queue::Job&, const std::string&) {
            if (status(e.value.id).state == queue::JobState::dead) dead_while_refused = true;
            if (++calls <= 3) throw queue::Unavailable("store: OOM command not allowed when used memory > 'maxmemory'");
          });
  });
  ASSERT_TRUE(testkit::eventually([&] { return status(e.value.id).state == queue::JobState::dead; }, 10s));
  w.request_stop();
  t.join();
  EXPECT_EQ(calls.load(), 4);
  EXPECT_FALSE(dead_while_refused.load()) << "the job stayed alive until its loss could be recorded";
  EXPECT_EQ(w.stats().unavailable.load(), 3);
  EXPECT_EQ(w.stats().buried.load(), 1);
  EXPECT_EQ(status(e.value.id).last_error, "lease expired on attempt 1 of 1: worker lost (crash loop)");
}

TEST_F(WorkerTest, WithoutAHookACrashLoopIsBuriedAtOnce) {
  queue::EnqueueOptions o;
  o.max_attempts = 1;
  auto e = q->enqueue("x", o);
  lose_every_attempt(*q, e.value.id, 1);
  queue::Worker w(testkit::live_redis().endpoint(), name, options());
  std::atomic<int> runs{0};
  std::thread t([&] { w.run([&](const queue::Job&, queue::JobContext&) { ++runs; }); });
  ASSERT_TRUE(testkit::eventually([&] { return status(e.value.id).state == queue::JobState::dead; }, 10s));
  w.request_stop();
  t.join();
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(w.stats().buried.load(), 1);
}

TEST_F(WorkerTest, GracefulShutdownFinishesTheCurrentJob) {
  auto o = options();
  o.shutdown_deadline = 3000ms;
  queue::Worker w(testkit::live_redis().endpoint(), name, o);
  std::atomic<bool> in_handler{false};
  std::thread t([&] {
    w.run([&](const queue::Job&, queue::JobContext&) {
      in_handler = true;
      std::this_thread::sleep_for(300ms);
    });
  });
  auto e = q->enqueue("x");
  auto e2 = q->enqueue("y");
  ASSERT_TRUE(testkit::eventually([&] { return in_handler.load(); }, 10s));
  w.request_stop();
  t.join();
  EXPECT_EQ(status(e.value.id).state, queue::JobState::done);
  EXPECT_EQ(status(e2.value.id).state, queue::JobState::ready) << "nothing new reserved after stop";
}

TEST_F(WorkerTest, GracefulShutdownHandsBackAJobThatOverrunsTheDeadline) {
  auto o = options();
  o.shutdown_deadline = 200ms;
  queue::Worker w(testkit::live_redis().endpoint(), name, o);
  std::atomic<bool> in_handler{false};
  std::atomic<bool> saw_lost{false};
  std::thread t([&] {
    w.run([&](const queue::Job&, queue::JobContext& ctx) {
      in_handler = true;
      // a long job that checks in now and then, like a chunked download
      for (int i = 0; i < 300 && !ctx.lease_lost(); ++i) std::this_thread::sleep_for(10ms);
      saw_lost = ctx.lease_lost();
    });
  });
  auto e = q->enqueue("long");
  ASSERT_TRUE(testkit::eventually([&] { return in_handler.load(); }, 10s));
  auto stop_at = std::chrono::steady_clock::now();
  w.request_stop();
  t.join();
  auto took = std::chrono::steady_clock::now() - stop_at;
  EXPECT_LT(took, 1500ms) << "stopped within deadline plus a little";
  EXPECT_TRUE(saw_lost.load());
  auto s = status(e.value.id);
  EXPECT_EQ(s.state, queue::JobState::ready) << "handed back to the queue";
  EXPECT_EQ(s.attempts, 0) << "a hand-back does not use an attempt";
  EXPECT_EQ(q->counters().value.released, 1);
  EXPECT_EQ(q->counters().value.acked, 0);
}

TEST_F(WorkerTest, BatchedWorkerAcksEverything) {
  auto o = options();
  o.batch = 16;
  queue::Worker w(testkit::live_redis().endpoint(), name, o);
  std::atomic<int> n{0};
  std::thread t([&] { w.run([&](const queue::Job&, queue::JobContext&) { ++n; }); });
  std::vector<std::string> payloads(500, "p");
  ASSERT_TRUE(q->enqueue_many(payloads).ok());
  ASSERT_TRUE(testkit::eventually([&] { return q->counters().value.acked == 500; }, 10s));
  w.request_stop();
  t.join();
  EXPECT_EQ(n.load(), 500);
  EXPECT_EQ(q->counters().value.reserved, 500);
}
