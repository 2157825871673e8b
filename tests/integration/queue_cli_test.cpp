// qsim-queue, the operator's command line, run as a process against a live Redis: what it
// shows (stats with in-flight leases and live workers, a job's history, dead letters by reason,
// orders by status), what it does (requeue the dead, pause and resume, purge, re-enqueue an
// order) and its exit codes.
#include "eventually.h"
#include "live_redis.h"
#include "qsim/queue/worker.h"
#include "qsim/store/task_store.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
namespace bp = boost::process;
using json = nlohmann::json;

namespace {

struct Ran {
  int code = -1;
  std::string out, err;
  json j() const { return json::parse(out); }
};

class QueueCli : public testkit::LiveQueueTest {
protected:
  void SetUp() override {
    LiveQueueTest::SetUp();
    if (HasFatalFailure()) return;
    store = std::make_unique<store::TaskStore>(*conn, name, "test");
  }
  Ran cli(std::vector<std::string> args, const std::string& redis = "") {
    std::vector<std::string> full{"--redis", redis.empty() ? testkit::live_redis().endpoint().to_string() : redis,
                                  "--queue", name};
    full.insert(full.end(), args.begin(), args.end());
    bp::ipstream out, err;
    bp::child c(QSIM_QUEUE_CLI_EXE, bp::args(full), bp::std_out > out, bp::std_err > err);
    Ran r;
    std::string line;
    while (std::getline(out, line)) r.out += line + "\n";
    while (std::getline(err, line)) r.err += line + "\n";
    c.wait();
    r.code = c.exit_code();
    return r;
  }
  queue::Job reserve_one(std::chrono::milliseconds lease = 30s) {
    auto r = q->reserve(1, "w1", lease);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.value.jobs.size(), 1u);
    return r.value.jobs.empty() ? queue::Job{} : r.value.jobs[0];
  }
  // An order paid with its job enqueued, as the intake does it.
  std::string paid_order(const std::string& id) {
    EXPECT_TRUE(store->create({id, id + "@example.com", "https://courses.example/" + id, 100}).value);
    auto p = store->accept_payment(id, "T" + id, 100, q.get());
    EXPECT_TRUE(p.ok()) << p.error;
    return p.value.job_id;
  }

  std::unique_ptr<store::TaskStore> store;
};

}  // namespace

TEST_F(QueueCli, StatsShowWhatWaitsWhatRunsOnWhichWorkerAndWhatDied) {
  queue::EnqueueOptions high;
  high.priority = queue::Priority::high;
  (void)q->enqueue("a", high);
  (void)q->enqueue("b");
  (void)q->enqueue("c");
  queue::EnqueueOptions later;
  later.delay = 60s;
  (void)q->enqueue("d", later);
  queue::EnqueueOptions once;
  once.max_attempts = 1;
  auto doomed = q->enqueue("e", once);
  // a worker holding "a" in its handler, and a job it will kill
  queue::WorkerOptions o;
  o.worker_id = "busy-worker";
  o.idle_wait = 100ms;
  o.heartbeat_interval = 200ms;
  queue::Worker w(testkit::live_redis().endpoint(), name, o);
  std::atomic<bool> release{false};
  std::thread t([&] {
    w.run([&](const queue::Job& job, queue::JobContext& ctx) {
      if (job.payload == "e") throw queue::PermanentError("no such course");
      while (job.payload == "a" && !release && !ctx.stop_requested()) std::this_thread::sleep_for(10ms);
    });
  });
  ASSERT_TRUE(testkit::eventually([&] { return w.current_job() != ""; }, 5s));
  auto s = cli({"stats", "--json"});
  ASSERT_EQ(s.code, 0) << s.err;
  auto j = s.j();
  EXPECT_EQ(j["ready"]["default"], 3);
  EXPECT_EQ(j["ready"]["high"], 0);
  EXPECT_EQ(j["delayed"], 1);
  EXPECT_EQ(j["in_flight"], 1);
  ASSERT_EQ(j["in_flight_jobs"].size(), 1u);
  EXPECT_EQ(j["in_flight_jobs"][0]["worker"], "busy-worker");
  EXPECT_GT(j["in_flight_jobs"][0]["lease_remaining_ms"].get<long long>(), 0);
  EXPECT_LE(j["in_flight_jobs"][0]["lease_remaining_ms"].get<long long>(), 30'000);
  ASSERT_TRUE(testkit::eventually([&] { return cli({"stats", "--json"}).j()["workers"].size() == 1; }, 5s));
  j = cli({"stats", "--json"}).j();
  EXPECT_EQ(j["workers"][0]["id"], "busy-worker");
  EXPECT_TRUE(j["workers"][0]["alive"].get<bool>());
  EXPECT_EQ(j["workers"][0]["job"], j["in_flight_jobs"][0]["id"]) << "its current job";
  auto text = cli({"stats"});
  EXPECT_NE(text.out.find("busy-worker"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("in flight 1"), std::string::npos) << text.out;
  release = true;
  ASSERT_TRUE(testkit::eventually([&] { return cli({"stats", "--json"}).j()["dead"] == 1; }, 5s));
  w.request_stop();
  t.join();
  j = cli({"stats", "--json"}).j();
  EXPECT_EQ(j["counters"]["acked"], 3);
  EXPECT_TRUE(j["workers"].empty()) << "a worker that stopped cleanly says goodbye";
  auto job = cli({"job", doomed.value.id, "--json"});
  ASSERT_EQ(job.code, 0);
  EXPECT_EQ(job.j()["state"], "dead");
  EXPECT_EQ(job.j()["last_error"], "permanent failure: no such course");
  std::vector<std::string> states;
  const auto job_json = job.j();
  for (auto& h : job_json["history"]) states.push_back(h["state"]);
  EXPECT_EQ(states, (std::vector<std::string>{"ready", "active", "dead"}));
  EXPECT_EQ(cli({"job", "99999"}).code, 1) << "an unknown job";
}

TEST_F(QueueCli, DeadJobsAreListedByReasonAndRequeuedOnceWithTheirHistory) {
  std::vector<std::string> ids;
  for (const char* why : {"upload: HTTP 503", "upload: HTTP 503", "malformed payload"}) {
    queue::EnqueueOptions once;
    once.max_attempts = 1;
    ids.push_back(q->enqueue(why, once).value.id);
    auto j = reserve_one();
    ASSERT_EQ(q->fail(j, why, queue::FailKind::transient, 0ms).value, queue::FailOutcome::dead);
  }
  auto list = cli({"dead", "list", "--reason", "HTTP 503", "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  ASSERT_EQ(list.j().size(), 2u);
  EXPECT_EQ(list.j()[0]["reason"], "failed 1 of 1 attempts: upload: HTTP 503");
  EXPECT_EQ(cli({"dead", "list", "--limit", "1", "--json"}).j().size(), 1u);

  auto one = cli({"dead", "requeue", ids[2], "--json"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.j()["requeued"], json::array({ids[2]}));
  EXPECT_EQ(cli({"dead", "requeue", ids[2], "--json"}).j()["requeued"].size(), 0u) << "a second requeue does nothing";
  auto by_reason = cli({"dead", "requeue", "--reason", "HTTP 503", "--json"});
  EXPECT_EQ(by_reason.j()["requeued"].size(), 2u);
  auto c = q->counters().value;
  EXPECT_EQ(c.requeued, 3);
  EXPECT_TRUE(q->dead_ids().value.empty());
  auto again = reserve_one();
  EXPECT_EQ(again.attempt, 1) << "attempts start again";
  std::vector<std::string> states;
  const auto requeued = q->status(ids[2]).value;
  for (auto& h : requeued->history) states.push_back(h.state);
  EXPECT_EQ(states, (std::vector<std::string>{"ready", "active", "dead", "requeued", "active"})) << "history kept";
  EXPECT_EQ(cli({"dead", "requeue"}).code, 2) << "nothing named";
  EXPECT_EQ(cli({"dead", "requeue", "99999"}).code, 1) << "a named job that was not dead";
}

TEST_F(QueueCli, ADeadOrderJobIsRequeuedWithItsOrderAndAStuckOrderBesideADeadJobIsRecovered) {
  const std::string job = paid_order("o-1");
  auto j = reserve_one();
  ASSERT_TRUE(store->transition("o-1", {store::OrderStatus::paid}, store::OrderStatus::dead, "w1", "upload: HTTP 400").value);
  ASSERT_EQ(q->fail(j, "upload: HTTP 400", queue::FailKind::permanent, 0ms).value, queue::FailOutcome::dead);
  auto r = cli({"dead", "requeue", "--all", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.j()["requeued"], nlohmann::json::array({job}));
  EXPECT_EQ(r.j()["orders"][0]["order"], "o-1");
  EXPECT_EQ(store->get("o-1").value->status, store::OrderStatus::paid) << "the order comes back with its job";

  // an order left downloading beside a dead job (its burial never recorded): recovered
  const std::string job2 = paid_order("o-2");
  ASSERT_EQ(reserve_one().id, job) << "the requeued one first";
  auto j2 = reserve_one();
  ASSERT_EQ(j2.id, job2);
  ASSERT_TRUE(store->transition("o-2", {store::OrderStatus::paid}, store::OrderStatus::downloading, "w1").value);
  ASSERT_EQ(q->fail(j2, "lost", queue::FailKind::crash_loop, 0ms).value, queue::FailOutcome::dead);
  auto stuck = cli({"order", "requeue", "o-2", "--json"});
  ASSERT_EQ(stuck.code, 0) << stuck.err;
  EXPECT_EQ(stuck.j()["outcome"], "requeued");
  EXPECT_EQ(store->get("o-2").value->status, store::OrderStatus::paid);
  EXPECT_EQ(q->status(job2).value->state, queue::JobState::ready);
  EXPECT_EQ(cli({"order", "requeue", "o-2", "--polling"}).code, 0) << "paid: nothing to do for the poller either";
}

TEST_F(QueueCli, PausedWorkersReserveNothingUntilResumedAndPurgeKeepsWhatRunsAndDied) {
  queue::WorkerOptions o;
  o.worker_id = "pausable";
  o.idle_wait = 100ms;
  queue::Worker w(testkit::live_redis().endpoint(), name, o);
  std::atomic<int> done{0};
  std::thread t([&] { w.run([&](const queue::Job&, queue::JobContext&) { ++done; }); });
  (void)q->enqueue("before");
  ASSERT_TRUE(testkit::eventually([&] { return done == 1; }, 5s));
  ASSERT_EQ(cli({"pause"}).code, 0);
  EXPECT_TRUE(cli({"stats", "--json"}).j()["paused"].get<bool>());
  auto held = q->enqueue("while paused");
  std::this_thread::sleep_for(600ms);  // several of the worker's idle waits
  EXPECT_EQ(done.load(), 1) << "a paused queue hands nothing out";
  EXPECT_EQ(q->status(held.value.id).value->state, queue::JobState::ready);
  ASSERT_EQ(cli({"resume"}).code, 0);
  ASSERT_TRUE(testkit::eventually([&] { return done == 2; }, 5s));
  w.request_stop();
  t.join();

  auto running = q->enqueue("running");
  queue::EnqueueOptions once;
  once.max_attempts = 1;
  auto dead = q->enqueue("dead", once);
  ASSERT_EQ(reserve_one().id, running.value.id);
  auto d = reserve_one();
  ASSERT_EQ(d.id, dead.value.id);
  ASSERT_EQ(q->fail(d, "x", queue::FailKind::permanent, 0ms).value, queue::FailOutcome::dead);
  (void)q->enqueue("waiting 1");
  queue::EnqueueOptions later;
  later.delay = 60s;
  later.unique_key = "u1";
  (void)q->enqueue("waiting 2", later);
  EXPECT_EQ(cli({"purge"}).code, 2) << "purge asks for --yes";
  auto p = cli({"purge", "--yes", "--json"});
  ASSERT_EQ(p.code, 0) << p.err;
  auto s = cli({"stats", "--json"}).j();
  EXPECT_EQ(s["ready"]["default"].get<int>() + s["delayed"].get<int>(), 0);
  EXPECT_EQ(s["in_flight"], 1) << "what runs stays";
  EXPECT_EQ(s["dead"], 1) << "what died stays";
  EXPECT_EQ(p.j()["purged"], 2);
  EXPECT_EQ(q->counters().value.purged, 2);
  EXPECT_TRUE(q->enqueue("waiting 2 again", later).value.created) << "a purged job's unique key is free again";
}

TEST_F(QueueCli, AnOrderIsRequeuedOnlyWhenNobodyHoldsItAndTwiceIsHarmless) {
  // dead: its job's attempts used up, the order marked dead beside it
  const std::string dead_job = paid_order("o-dead");
  {
    auto j = reserve_one();
    ASSERT_EQ(j.id, dead_job);
    ASSERT_TRUE(store->transition("o-dead", {store::OrderStatus::paid}, store::OrderStatus::dead, "w1", "upload: HTTP 400").value);
    ASSERT_EQ(q->fail(j, "upload: HTTP 400", queue::FailKind::permanent, 0ms).value, queue::FailOutcome::dead);
  }
  auto r = cli({"order", "requeue", "o-dead", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.j()["outcome"], "requeued");
  EXPECT_EQ(r.j()["job"], dead_job) << "the same job, back from the dead letters";
  auto o = store->get("o-dead").value;
  EXPECT_EQ(o->status, store::OrderStatus::paid);
  EXPECT_TRUE(o->entered_ms.count("requeued"));
  EXPECT_EQ(q->status(dead_job).value->state, queue::JobState::ready);
  auto twice = cli({"order", "requeue", "o-dead", "--json"});
  EXPECT_EQ(twice.code, 0);
  EXPECT_EQ(twice.j()["outcome"], "already_queued") << "the second run does nothing";
  EXPECT_EQ(q->ready_count().value, 1);

  // in flight: a worker holds it
  auto j = reserve_one();
  ASSERT_TRUE(store->transition("o-dead", {store::OrderStatus::paid}, store::OrderStatus::downloading, "w1").value);
  auto busy = cli({"order", "requeue", "o-dead"});
  EXPECT_EQ(busy.code, 1);
  EXPECT_NE(busy.err.find("in flight"), std::string::npos) << busy.err;
  // completed
  ASSERT_TRUE(store->transition("o-dead", {store::OrderStatus::downloading}, store::OrderStatus::completed, "w1").value);
  EXPECT_EQ(cli({"order", "requeue", "o-dead"}).code, 1);
  (void)q->ack({j});

  // paid, its job purged: a new job under the order's unique key
  paid_order("o-lost");
  ASSERT_EQ(cli({"purge", "--yes"}).code, 0);
  auto lost = cli({"order", "requeue", "o-lost", "--json"});
  ASSERT_EQ(lost.code, 0) << lost.err;
  EXPECT_EQ(lost.j()["outcome"], "requeued");
  EXPECT_EQ(store->get("o-lost").value->job_id, lost.j()["job"].get<std::string>());
  EXPECT_EQ(q->status(lost.j()["job"].get<std::string>()).value->payload, "o-lost");

  // the polling architecture: a failed order goes back to paid, no job
  ASSERT_TRUE(store->create({"o-poll", "p@example.com", "https://courses.example/p", 100}).value);
  ASSERT_EQ(store->accept_payment("o-poll", "Tpoll", 100, nullptr).value.outcome, store::PaymentOutcome::accepted);
  ASSERT_TRUE(store->transition("o-poll", {store::OrderStatus::paid}, store::OrderStatus::failed, "poller", "download: HTTP 503").value);
  auto polled = cli({"order", "requeue", "o-poll", "--polling", "--json"});
  ASSERT_EQ(polled.code, 0) << polled.err;
  EXPECT_EQ(store->get("o-poll").value->status, store::OrderStatus::paid);
  auto paid = cli({"orders", "--status", "paid", "--json"}).j();
  std::vector<std::string> paid_ids;
  for (auto& e : paid) paid_ids.push_back(e["id"]);
  EXPECT_EQ(paid_ids, (std::vector<std::string>{"o-lost", "o-poll"}));
  auto shown = cli({"order", "o-poll", "--json"});
  EXPECT_EQ(shown.j()["status"], "paid");
  EXPECT_EQ(shown.j()["last_error"], "download: HTTP 503");

  ASSERT_TRUE(store->create({"o-new", "n@example.com", "https://courses.example/n", 100}).value);
  EXPECT_EQ(cli({"order", "requeue", "o-new"}).code, 1) << "never paid";
  EXPECT_EQ(cli({"order", "requeue", "no-such-order"}).code, 1);
  EXPECT_EQ(cli({"order", "no-such-order"}).code, 1);
  EXPECT_EQ(cli({"orders", "--status", "lost"}).code, 2) << "no such status";
}

TEST_F(QueueCli, ExitCodesForBadUsageAndAnUnreachableRedis) {
  EXPECT_EQ(cli({}).code, 2);
  EXPECT_EQ(cli({"frobnicate"}).code, 2);
  auto help = cli({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Examples:"), std::string::npos);
  auto secret = cli({"stats"}, "redis://:hunter2@127.0.0.1:6379");
  EXPECT_EQ(secret.code, 2);
  EXPECT_EQ(secret.err.find("hunter2"), std::string::npos) << secret.err;
  auto down = cli({"stats"}, "redis://127.0.0.1:1");
  EXPECT_EQ(down.code, 3) << down.err;
  EXPECT_NE(down.err.find("127.0.0.1:1"), std::string::npos) << down.err;
}
