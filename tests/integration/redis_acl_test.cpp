// Least privilege in Redis (security/redis_acl.h) against a private server with ACLs: every
// component's user can do its work (the intake enqueues and hands a job to an idle worker without
// any right on the active set), a user acting outside its rights gets an error that names it, and
// a component process denied a right it needs stops with exit 77.
#include "live_redis.h"
#include "service_process.h"

#include "qsim/security/redis_acl.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace std::chrono_literals;
using namespace qsim;
using security::RedisRole;

namespace {

const char* kPrefix = "acltest";

class RedisAclTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    sim::RedisServerOptions o;
    for (auto role : security::redis_roles()) {
      const std::string user(security::to_string(role));
      passwords_[user] = "pw-" + user + "-" + security::random_hex(8);
      o.acl_users.push_back(security::redis_acl_line(user, passwords_[user], security::redis_acl_rules(role, kPrefix)));
    }
    server_ = new sim::RedisServer(o);
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static redis::Endpoint as(RedisRole role) {
    redis::Endpoint e = server_->endpoint();
    e.user = std::string(security::to_string(role));
    e.password = passwords_[e.user];
    return e;
  }

  static sim::RedisServer* server_;
  static std::map<std::string, std::string> passwords_;
};

sim::RedisServer* RedisAclTest::server_ = nullptr;
std::map<std::string, std::string> RedisAclTest::passwords_;

TEST(RedisAclRules, NameOnlyThePrefixAndEscapeGlobCharacters) {
  EXPECT_EQ(security::glob_escape("a*b?c[d]e\\f"), "a\\*b\\?c\\[d\\]e\\\\f");
  const std::string intake = security::redis_acl_rules(RedisRole::payment_intake, "p");
  EXPECT_NE(intake.find("~p:{*}:handed"), std::string::npos) << intake;
  EXPECT_EQ(intake.find("active"), std::string::npos) << intake;
  EXPECT_EQ(intake.find("+@all"), std::string::npos) << intake;
  const std::string poller = security::redis_acl_rules(RedisRole::polling_worker, "p");
  EXPECT_EQ(poller.find("ready"), std::string::npos) << poller;
  EXPECT_EQ(poller.find("job:"), std::string::npos) << poller;
  const std::string line = security::redis_acl_line("u", "secret", "~x +get");
  EXPECT_EQ(line.rfind("user u on #", 0), 0u) << line;
  EXPECT_EQ(line.find("secret"), std::string::npos) << "an ACL file holds a hash, never the password";
}

TEST_F(RedisAclTest, TheIntakeHandsAJobToAnIdleWorkerWithoutTouchingTheActiveSet) {
  redis::Connection worker_conn(as(RedisRole::queue_worker)), intake_conn(as(RedisRole::payment_intake));
  queue::Queue worker_q(worker_conn, "handoff", queue::QueueConfig{kPrefix});
  queue::Queue intake_q(intake_conn, "handoff", queue::QueueConfig{kPrefix});
  store::TaskStore shop(intake_conn, "handoff", "shop", kPrefix);
  store::TaskStore intake(intake_conn, "handoff", "intake", kPrefix);

  // the worker finds nothing and registers as idle
  auto idle = worker_q.ack_and_reserve({}, 1, "w1", 5000ms, {false, 5000ms});
  ASSERT_TRUE(idle.ok()) << idle.error;
  ASSERT_TRUE(idle.value.registered_idle);

  ASSERT_TRUE(shop.create({"o1", "a@example.com", "https://courses.example/1", 100}).ok());
  auto paid = intake.accept_payment("o1", "txn-1", 100, &intake_q, 3);
  ASSERT_TRUE(paid.ok()) << paid.error;
  ASSERT_EQ(paid.value.outcome, store::PaymentOutcome::accepted);

  // leased straight into the worker's inbox, its token in the hand-off set
  auto job = worker_q.wait_for_work("w1", 2000ms);
  ASSERT_TRUE(job.ok()) << job.error;
  ASSERT_TRUE(job.value.has_value()) << "the job was handed to the idle worker";
  EXPECT_TRUE(worker_conn.command({"ZSCORE", worker_q.keys().handed(), job.value->lease_token}).reply.as_integer());
  EXPECT_TRUE(worker_conn.command({"ZSCORE", worker_q.keys().active(), job.value->lease_token}).reply.is_nil());

  // the first heartbeat moves the lease to active; the ack finds it there
  auto beat = worker_q.heartbeat({*job.value}, 5000ms);
  ASSERT_TRUE(beat.ok()) << beat.error;
  EXPECT_TRUE(beat.value.at(0));
  EXPECT_TRUE(worker_conn.command({"ZSCORE", worker_q.keys().handed(), job.value->lease_token}).reply.is_nil());
  EXPECT_TRUE(worker_conn.command({"ZSCORE", worker_q.keys().active(), job.value->lease_token}).reply.as_integer());
  auto acked = worker_q.ack({*job.value});
  ASSERT_TRUE(acked.ok()) << acked.error;
  EXPECT_EQ(acked.value, 1);
}

TEST_F(RedisAclTest, AHandedJobIsAckedAndReapedFromTheHandOffSetToo) {
  redis::Connection worker_conn(as(RedisRole::queue_worker)), intake_conn(as(RedisRole::payment_intake));
  queue::Queue worker_q(worker_conn, "handed-ack", queue::QueueConfig{kPrefix});
  queue::Queue intake_q(intake_conn, "handed-ack", queue::QueueConfig{kPrefix});
  ASSERT_TRUE(worker_q.ack_and_reserve({}, 1, "w1", 5000ms, {false, 5000ms}).value.registered_idle);
  auto e1 = intake_q.enqueue("one");
  ASSERT_TRUE(e1.ok()) << e1.error;
  auto first = worker_q.wait_for_work("w1", 2000ms);
  ASSERT_TRUE(first.ok() && first.value.has_value());
  EXPECT_EQ(worker_q.ack({*first.value}).value, 1) << "acked straight from the hand-off set";

  // handed to a worker that takes it and dies before its first heartbeat: the reaper redelivers
  ASSERT_TRUE(worker_q.ack_and_reserve({}, 1, "w2", 100ms, {false, 5000ms}).value.registered_idle);
  ASSERT_TRUE(intake_q.enqueue("two").ok());
  auto second = worker_q.wait_for_work("w2", 2000ms);
  ASSERT_TRUE(second.ok() && second.value.has_value());
  std::this_thread::sleep_for(250ms);
  auto reaped = worker_q.reap("test", 1000ms);
  ASSERT_TRUE(reaped.ok()) << reaped.error;
  EXPECT_EQ(reaped.value.redelivered, 1);
  auto again = worker_q.reserve(1, "w3", 5000ms);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again.value.jobs.size(), 1u);
  EXPECT_EQ(again.value.jobs[0].payload, "two");
  EXPECT_EQ(again.value.jobs[0].attempt, 2);
}

TEST_F(RedisAclTest, TheIntakeIsDeniedTheActiveSetWithAnErrorNamingItsUser) {
  redis::Connection c(as(RedisRole::payment_intake));
  queue::Queue q(c, "denied", queue::QueueConfig{kPrefix});
  auto zadd = c.command({"ZADD", q.keys().active(), "1", "x:1"});
  EXPECT_EQ(zadd.status, redis::Status::server_error);
  EXPECT_TRUE(redis::is_denied(zadd.error)) << zadd.error;
  EXPECT_NE(zadd.error.find("user 'payment_intake'"), std::string::npos) << zadd.error;
  EXPECT_NE(zadd.error.find("ZADD"), std::string::npos) << zadd.error;
  // the engine's reservation declares the active set: refused before the script runs
  auto reserve = q.reserve(1, "intruder", 1000ms);
  EXPECT_FALSE(reserve.ok());
  EXPECT_TRUE(redis::is_denied(reserve.error)) << reserve.error;
  // nor any command outside its list, on any key
  auto keys = c.command({"KEYS", "*"});
  EXPECT_TRUE(redis::is_denied(keys.error)) << keys.error;
  auto flush = c.command({"FLUSHALL"});
  EXPECT_TRUE(redis::is_denied(flush.error)) << flush.error;
}

TEST_F(RedisAclTest, ThePollerAndFinalizeWorkOnTheStoreAndCannotTouchTheQueue) {
  redis::Connection admin(server_->endpoint());
  store::TaskStore shop(admin, "poll", "shop", kPrefix);
  ASSERT_TRUE(shop.create({"p1", "a@example.com", "https://courses.example/1", 100}).ok());
  ASSERT_TRUE(shop.accept_payment("p1", "txn-p1", 100, nullptr, 1).ok());
  for (auto role : {RedisRole::polling_worker, RedisRole::finalize}) {
    redis::Connection c(as(role));
    queue::Queue q(c, "poll", queue::QueueConfig{kPrefix});
    auto enq = q.enqueue("nope");
    EXPECT_TRUE(redis::is_denied(enq.error)) << security::to_string(role) << ": " << enq.error;
    auto llen = c.command({"LLEN", q.keys().ready(queue::Priority::normal)});
    EXPECT_TRUE(redis::is_denied(llen.error)) << llen.error;
    auto txn = c.command({"HGETALL", q.keys().base() + "txn"});
    EXPECT_TRUE(redis::is_denied(txn.error)) << "the payment ledger is the intake's: " << txn.error;
  }
  redis::Connection poller_conn(as(RedisRole::polling_worker));
  store::TaskStore poller(poller_conn, "poll", "polling_worker", kPrefix);
  auto claimed = poller.claim_oldest_paid("poller");
  ASSERT_TRUE(claimed.ok()) << claimed.error;
  EXPECT_EQ(claimed.value, std::optional<std::string>("p1"));
}

TEST_F(RedisAclTest, BadCredentialsAndTheDefaultUserAreRefusedClearly) {
  redis::Endpoint wrong = as(RedisRole::finalize);
  wrong.password = "not-the-password";
  redis::Connection c(wrong, {500ms, 500ms, 10ms, 10ms});
  auto r = c.command({"PING"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("AUTH as user 'finalize'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("WRONGPASS"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("not-the-password"), std::string::npos) << "a password never appears in an error";

  redis::Connection anonymous(redis::Endpoint{"127.0.0.1", server_->port(), {}});
  auto a = anonymous.command({"PING"});
  EXPECT_TRUE(redis::is_denied(a.error)) << "nobody can be the default user: " << a.error;
}

TEST(RedisAclRestart, UsersAndTheirScriptsWritesOutliveARestartWithAof) {
  // The AOF holds each script's writes as MULTI/EXEC, replayed as the default user on start
  sim::RedisServerOptions o;
  o.appendonly = "always";
  const std::string password = security::random_hex(8);
  o.acl_users.push_back(security::redis_acl_line(
      "payment_intake", password, security::redis_acl_rules(RedisRole::payment_intake, kPrefix)));
  sim::RedisServer server(o);
  server.start();
  redis::Endpoint e = server.endpoint();
  e.user = "payment_intake";
  e.password = password;
  {
    redis::Connection c(e);
    queue::Queue q(c, "restart", queue::QueueConfig{kPrefix});
    ASSERT_TRUE(q.enqueue("kept").ok());
  }
  server.kill();
  server.start();
  redis::Connection admin(server.endpoint());
  queue::Queue q(admin, "restart", queue::QueueConfig{kPrefix});
  auto ready = q.ready_count();
  ASSERT_TRUE(ready.ok()) << ready.error;
  EXPECT_EQ(ready.value, 1) << "the enqueue survived the restart";
  redis::Connection again(e);
  EXPECT_TRUE(again.command({"PING"}).ok()) << "the user survived it too";
}

TEST_F(RedisAclTest, AComponentDeniedARightItNeedsStopsWithExit77) {
  // the queue worker's process connected as the poller's user: its first reservation is refused
  namespace bp = boost::process;
  const std::string log = (std::filesystem::temp_directory_path() / ("qsim-acl-" + security::random_hex(4) + ".log")).string();
  auto env = sim::child_environment({{"QSIM_FINALIZE_SECRET", "x"}, {"QSIM_REDIS_SECRET", passwords_["polling_worker"]}});
  const std::string url = "redis://polling_worker@127.0.0.1:" + std::to_string(server_->port());
  bp::child worker(QSIM_QUEUE_WORKER_EXE,
                   bp::args({"--redis", url, "--queue", "exit77", "--prefix", kPrefix, "--health-port",
                             std::to_string(sim::free_loopback_port())}),
                   env, bp::std_out > bp::null, bp::std_err > log, sim::die_with_parent);
  for (int i = 0; i < 100 && worker.running(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_FALSE(worker.running()) << "still running 5 s after Redis denied it";
  worker.wait();
  EXPECT_EQ(worker.exit_code(), redis::kDeniedExitCode);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("Redis denied user 'polling_worker'"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find(passwords_["polling_worker"]), std::string::npos) << "no secret in a log line";
  std::filesystem::remove(log);
}

}  // namespace
