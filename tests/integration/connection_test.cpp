// The Redis connection against a live private server: binary safety, distinguishable
// outcomes, reconnect after the server comes back, scripts by SHA with NOSCRIPT reload.
#include "live_redis.h"

#include <gtest/gtest.h>

#include <memory>

using namespace std::chrono_literals;
using namespace qsim;

class ConnectionTest : public ::testing::Test {
protected:
  void SetUp() override { QSIM_REQUIRE_REDIS(); }
  redis::Endpoint ep() { return testkit::live_redis().endpoint(); }
};

TEST_F(ConnectionTest, ArgvIsBinarySafe) {
  redis::Connection c(ep());
  std::string key = "bin:" + testkit::unique_queue_name();
  std::string value("a\0b\r\n%s %d \xff", 12);
  ASSERT_TRUE(c.command({"SET", key, value}).ok());
  auto r = c.command({"GET", key});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.reply.str, value);
  EXPECT_EQ(r.reply.str.size(), 12u);
}

TEST_F(ConnectionTest, ServerErrorCarriesItsTextAndKeepsTheConnection) {
  redis::Connection c(ep());
  auto r = c.command({"INCR", "k", "extra"});
  EXPECT_EQ(r.status, redis::Status::server_error);
  EXPECT_NE(r.error.find("wrong number of arguments"), std::string::npos) << r.error;
  EXPECT_TRUE(c.connected()) << "a server error is an answer, not a broken connection";
  EXPECT_TRUE(c.command({"PING"}).ok());
  EXPECT_EQ(c.connects(), 1u);
}

TEST_F(ConnectionTest, TimeoutIsDistinctAndDropsTheContext) {
  redis::Connection c(ep(), {500ms, 100ms});
  auto r = c.command({"DEBUG", "SLEEP", "0.4"});
  EXPECT_EQ(r.status, redis::Status::timeout) << r.error;
  EXPECT_FALSE(c.connected()) << "a context is never reused after an error";
  std::this_thread::sleep_for(400ms);  // let the server finish its sleep
  auto again = c.command({"PING"});
  EXPECT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(c.connects(), 2u);
}

TEST_F(ConnectionTest, BlockingCommandGetsItsOwnTimeout) {
  redis::Connection c(ep(), {500ms, 100ms});
  auto r = c.command({"BLPOP", "nothing:" + testkit::unique_queue_name(), "0.3"}, 1000ms);
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.reply.is_nil());
  EXPECT_TRUE(c.command({"PING"}).ok());
  EXPECT_EQ(c.connects(), 1u);
}

TEST_F(ConnectionTest, ConnectionLostThenReconnectsWhenTheServerReturns) {
  sim::RedisServer own;  // our own server: this test kills it
  own.start();
  redis::Connection c(own.endpoint(), {200ms, 500ms, 10ms, 100ms});
  ASSERT_TRUE(c.command({"SET", "k", "v"}).ok());
  own.kill();
  auto lost = c.command({"GET", "k"});
  EXPECT_EQ(lost.status, redis::Status::connection_lost) << lost.error;
  EXPECT_FALSE(c.connected());
  own.start();  // same port, same directory
  redis::Result back;
  for (int i = 0; i < 100 && !(back = c.command({"PING"})).ok(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(back.ok()) << back.error;
  EXPECT_EQ(c.connects(), 2u);
}

// A primary, its replica and a Sentinel watching them, each a private server; `via` finds the
// primary through the Sentinel.
struct SentinelSet {
  SentinelSet() {
    primary.start();
    replica = std::make_unique<sim::RedisServer>(options([&](auto& o) { o.replica_of = primary.port(); }));
    replica->start();
    sentinel = std::make_unique<sim::RedisServer>(options([&](auto& o) { o.sentinel_of = primary.port(); }));
    sentinel->start();
    via.sentinels = {{"127.0.0.1", sentinel->port()}};
    via.master = sim::kSentinelMaster;
  }
  template <class F>
  static sim::RedisServerOptions options(F set) {
    sim::RedisServerOptions o;
    set(o);
    return o;
  }
  sim::RedisServer primary;
  std::unique_ptr<sim::RedisServer> replica, sentinel;
  redis::Endpoint via;
};

// Sentinel discovery: the connection asks a real Sentinel where the primary is, and after the
// primary is SIGKILLed and the replica promoted, its next connect lands on the promoted one.
TEST_F(ConnectionTest, FollowsTheSentinelToThePromotedReplica) {
  SentinelSet set;
  sim::RedisServer &primary = set.primary, &replica = *set.replica, &sentinel = *set.sentinel;
  redis::Connection c(set.via, {200ms, 1000ms, 10ms, 100ms});
  ASSERT_TRUE(c.command({"SET", "k", "before"}).ok());
  auto w = c.command({"WAIT", "1", "5000"});
  ASSERT_TRUE(w.ok()) << w.error;
  ASSERT_EQ(w.reply.integer, 1) << "the replica has the write";
  // The Sentinel must know the replica before the primary dies, or it has none to promote.
  redis::Connection s(sentinel.endpoint());
  for (int i = 0; i < 500; ++i) {
    auto r = s.command({"SENTINEL", "REPLICAS", sim::kSentinelMaster});
    if (r.ok() && !r.reply.elements.empty()) break;
    std::this_thread::sleep_for(20ms);
  }

  primary.kill();
  redis::Result write;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!(write = c.command({"SET", "k2", "after"})).ok() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(write.ok()) << "no write reached a promoted replica within 30 s: " << write.error;
  auto role = c.command({"ROLE"});
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role.reply.elements.at(0).str, "master");
  auto info = c.command({"INFO", "server"});
  EXPECT_NE(info.reply.str.find("tcp_port:" + std::to_string(replica.port())), std::string::npos) << "on the promoted replica";
  auto old = c.command({"GET", "k"});
  EXPECT_EQ(old.reply.str, "before") << "what was replicated before the failover survives it";
  EXPECT_GE(c.connects(), 2u);
}

TEST_F(ConnectionTest, LeavesAPrimaryDemotedWhileAliveForTheOneTheSentinelNames) {
  // A forced failover (SENTINEL FAILOVER) promotes the replica and turns the old primary, still
  // running, into its replica: a connection that stayed on it is answered READONLY, drops it, and
  // its next command asks the Sentinel again.
  SentinelSet set;
  sim::RedisServer &primary = set.primary, &replica = *set.replica, &sentinel = *set.sentinel;
  redis::Connection c(set.via, {200ms, 1000ms, 10ms, 100ms});
  ASSERT_TRUE(c.command({"SET", "k", "before"}).ok());
  ASSERT_EQ(c.command({"WAIT", "1", "5000"}).reply.integer, 1);
  redis::Connection s(sentinel.endpoint());
  EXPECT_EQ(sim::sentinel_config_epoch(s, sim::kSentinelMaster), 0) << "no failover yet";
  EXPECT_EQ(sim::sentinel_config_epoch(s, "nobody"), std::nullopt);
  bool failing_over = false;
  for (int i = 0; i < 500 && !failing_over; ++i) {  // it needs to know the replica first
    failing_over = s.command({"SENTINEL", "FAILOVER", sim::kSentinelMaster}).ok();
    if (!failing_over) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(failing_over);
  redis::Connection old(primary.endpoint());
  for (int i = 0; i < 1500; ++i) {  // until the old primary, alive, is a replica
    auto role = old.command({"ROLE"});
    if (role.ok() && role.reply.elements.at(0).str == "slave") break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(old.command({"ROLE"}).reply.elements.at(0).str, "slave");
  EXPECT_EQ(sim::sentinel_config_epoch(s, sim::kSentinelMaster), 1) << "one failover: the harness's count of them";
  redis::Result write;
  int readonly = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!(write = c.command({"SET", "k2", "after"})).ok() && std::chrono::steady_clock::now() < deadline) {
    if (write.error.find("READONLY") != std::string::npos) ++readonly;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(write.ok()) << "still not on the promoted replica after 30 s: " << write.error;
  EXPECT_LE(readonly, 1) << "one READONLY answer, then the Sentinel was asked again";
  auto info = c.command({"INFO", "server"});
  EXPECT_NE(info.reply.str.find("tcp_port:" + std::to_string(replica.port())), std::string::npos) << "on the promoted replica";
  EXPECT_EQ(c.command({"GET", "k"}).reply.str, "before");
}

TEST_F(ConnectionTest, ScriptsRunBySha1AndReloadAfterScriptFlush) {
  redis::Connection c(ep());
  redis::Script s("return {KEYS[1], ARGV[1]}");
  auto first = c.eval(s, {"k1"}, {"a1"});
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.reply.elements.at(0).str, "k1");
  auto exists = c.command({"SCRIPT", "EXISTS", s.sha()});
  EXPECT_EQ(exists.reply.elements.at(0).integer, 1) << "loaded under its SHA";
  ASSERT_TRUE(c.command({"SCRIPT", "FLUSH"}).ok());
  auto again = c.eval(s, {"k2"}, {"a2"});
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(again.reply.elements.at(1).str, "a2");
}

TEST_F(ConnectionTest, PipelineReturnsEveryReplyInOrder) {
  redis::Connection c(ep());
  std::string key = "pipe:" + testkit::unique_queue_name();
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 100; ++i) cmds.push_back({"INCR", key});
  auto results = c.pipeline(cmds);
  ASSERT_EQ(results.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(results[static_cast<size_t>(i)].reply.integer, i + 1);
}

TEST_F(ConnectionTest, SpinModeGivesTheSameAnswersAndStillTimesOut) {
  redis::ConnectionOptions o;
  o.command_timeout = 100ms;
  o.spin_before_block = 200us;
  redis::Connection c(ep(), o);
  std::string key = "spin:" + testkit::unique_queue_name();
  for (int i = 0; i < 200; ++i) ASSERT_EQ(c.command({"INCR", key}).reply.integer, i + 1);
  redis::Script s("return ARGV[1]");
  EXPECT_EQ(c.eval(s, {}, {"x"}).reply.str, "x");
  auto slow = c.command({"DEBUG", "SLEEP", "0.3"});
  EXPECT_EQ(slow.status, redis::Status::timeout) << "the spin budget ends and the normal timeout applies";
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(c.command({"PING"}).ok());
}
