#include "qsim/queue/keys.h"
#include "qsim/queue/queue.h"
#include "qsim/redis/connection.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

using namespace qsim;

namespace {
// The part of a key Redis Cluster hashes: the first {...} with something inside.
std::string hash_tag(const std::string& key) {
  auto open = key.find('{');
  if (open == std::string::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}
}  // namespace

TEST(Keys, EveryKeyCarriesTheQueueHashTag) {
  queue::Keys k("orders", "qsim");
  EXPECT_EQ(k.base(), "qsim:{orders}:");
  std::vector<std::string> all = {k.ready(queue::Priority::high), k.ready(queue::Priority::normal),
                                  k.ready(queue::Priority::low), k.delayed(), k.active(), k.handed(), k.dead(), k.stats(),
                                  k.unique(), k.idle(), k.inbox("w1"), k.seq(), k.reaper_lock(), k.job("17"),
                                  k.periodic("nightly")};
  for (const auto& key : all) EXPECT_EQ(hash_tag(key), "orders") << key;
  EXPECT_EQ(k.ready(queue::Priority::normal), "qsim:{orders}:ready:default");
  EXPECT_EQ(k.job("17"), "qsim:{orders}:job:17");
}

TEST(Keys, PrefixSeparatesRuns) {
  EXPECT_EQ(queue::Keys("q", "run42").stats(), "run42:{q}:stats");
}

TEST(Keys, RejectsNamesThatWouldBreakTheTag) {
  EXPECT_THROW(queue::Keys("a{b}", "p"), std::invalid_argument);
  EXPECT_THROW(queue::Keys("", "p"), std::invalid_argument);
}

TEST(Keys, PriorityNames) {
  EXPECT_EQ(queue::to_string(queue::Priority::normal), "default");
  EXPECT_EQ(queue::priority_from_string("high"), queue::Priority::high);
  EXPECT_THROW(queue::priority_from_string("urgent"), std::invalid_argument);
}

TEST(Endpoint, ParsesUrls) {
  auto e = redis::Endpoint::parse("redis://127.0.0.1:7001");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 7001);
  EXPECT_EQ(redis::Endpoint::parse("localhost:6390").port, 6390);
  EXPECT_EQ(redis::Endpoint::parse("unix:///tmp/r.sock").unix_socket, "/tmp/r.sock");
  EXPECT_THROW(redis::Endpoint::parse("redis://h:0"), std::invalid_argument);
  EXPECT_THROW(redis::Endpoint::parse("redis://:hunter2@127.0.0.1:6379"), std::invalid_argument) << "no password in argv";
  EXPECT_THROW(redis::Endpoint::parse("redis://user:pw@127.0.0.1:6379"), std::invalid_argument);
  EXPECT_THROW(redis::Endpoint::parse("redis://127.0.0.1:6379/2"), std::invalid_argument) << "not silently database 0";
  EXPECT_EQ(redis::Endpoint::parse("redis://127.0.0.1:6379/").port, 6379);
  try {
    (void)redis::Endpoint::parse("redis://:hunter2@127.0.0.1:6379");
  } catch (const std::invalid_argument& refusal) {
    EXPECT_EQ(std::string(refusal.what()).find("hunter2"), std::string::npos) << "the refusal does not repeat it";
  }
  EXPECT_THROW(redis::Endpoint::parse("h:99999"), std::invalid_argument);
  EXPECT_THROW(redis::Endpoint::parse("h:12ab"), std::invalid_argument);
}

TEST(Endpoint, TakesAUserButNeverAPassword) {
  auto e = redis::Endpoint::parse("redis://payment_intake@127.0.0.1:7001");
  EXPECT_EQ(e.user, "payment_intake");
  EXPECT_EQ(e.port, 7001);
  EXPECT_TRUE(e.password.empty());
  e.password = "s3cret";
  EXPECT_EQ(e.to_string(), "redis://payment_intake@127.0.0.1:7001") << "the user is shown, the password never";
  EXPECT_EQ(redis::Endpoint::parse("worker@localhost:6390").user, "worker");
  EXPECT_THROW(redis::Endpoint::parse("redis://@127.0.0.1:7001"), std::invalid_argument) << "an empty user";
  auto s = redis::Endpoint::parse("redis+sentinel://queue_worker@127.0.0.1:26379/qsim");
  EXPECT_EQ(s.user, "queue_worker");
  EXPECT_EQ(s.to_string(), "redis+sentinel://queue_worker@127.0.0.1:26379/qsim");
  EXPECT_EQ(redis::Endpoint::parse("redis://127.0.0.1:7001").user, "");
}

TEST(Endpoint, FromUrlTakesTheUsersPasswordFromTheEnvironmentOrAFile) {
  ::unsetenv("QSIM_REDIS_SECRET");
  ::unsetenv("QSIM_REDIS_SECRET_FILE");
  EXPECT_TRUE(redis::Endpoint::from_url("redis://127.0.0.1:7001").password.empty()) << "no user, no password needed";
  EXPECT_THROW(redis::Endpoint::from_url("redis://u@127.0.0.1:7001"), std::runtime_error) << "a user without a password";
  ::setenv("QSIM_REDIS_SECRET", "from-env", 1);
  EXPECT_EQ(redis::Endpoint::from_url("redis://u@127.0.0.1:7001").password, "from-env");
  ::unsetenv("QSIM_REDIS_SECRET");
  const std::string file = "/tmp/qsim-redis-secret-test";
  { std::ofstream(file) << "from-file\n"; }
  ::setenv("QSIM_REDIS_SECRET_FILE", file.c_str(), 1);
  EXPECT_EQ(redis::Endpoint::from_url("redis://u@127.0.0.1:7001").password, "from-file");
  ::unsetenv("QSIM_REDIS_SECRET_FILE");
  std::remove(file.c_str());
}

TEST(Endpoint, DeniedErrorsAreToldApart) {
  EXPECT_TRUE(redis::is_denied("NOPERM this user has no permissions to run the 'flushall' command"));
  EXPECT_TRUE(redis::is_denied("ERR Error running script (call to f_1): @user_script:3: NOPERM this user has no "
                               "permissions to access one of the keys used as arguments"));
  EXPECT_TRUE(redis::is_denied("WRONGPASS invalid username-password pair or user is disabled."));
  EXPECT_TRUE(redis::is_denied("NOAUTH Authentication required."));
  EXPECT_FALSE(redis::is_denied("OOM command not allowed when used memory > 'maxmemory'."));
  EXPECT_FALSE(redis::is_denied("READONLY You can't write against a read only replica."));
}

TEST(Endpoint, ParsesSentinelUrls) {
  auto e = redis::Endpoint::parse("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/qsim");
  ASSERT_EQ(e.sentinels.size(), 2u);
  EXPECT_EQ(e.sentinels[1], (std::pair<std::string, int>{"127.0.0.1", 26380}));
  EXPECT_EQ(e.master, "qsim");
  EXPECT_EQ(e.to_string(), "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/qsim");
  EXPECT_EQ(redis::Endpoint::parse(e.to_string()).to_string(), e.to_string()) << "it passes to a component unchanged";
  EXPECT_THROW(redis::Endpoint::parse("redis+sentinel://127.0.0.1:26379"), std::invalid_argument) << "no master name";
  EXPECT_THROW(redis::Endpoint::parse("redis+sentinel://127.0.0.1:26379/"), std::invalid_argument);
  EXPECT_THROW(redis::Endpoint::parse("redis+sentinel://127.0.0.1/qsim"), std::invalid_argument) << "no port";
  EXPECT_THROW(redis::Endpoint::parse("redis+sentinel://:pw@127.0.0.1:26379/qsim"), std::invalid_argument);
}

TEST(Script, ShaIsSha1OfTheSource) {
  // SHA1("return 1"), as Redis computes it for SCRIPT LOAD
  EXPECT_EQ(redis::Script("return 1").sha(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(Reply, IntegerFromStringOrInteger) {
  redis::Reply r;
  r.type = redis::Reply::Type::string;
  r.str = "42";
  EXPECT_EQ(r.as_integer(), 42);
  r.str = "4x";
  EXPECT_FALSE(r.as_integer());
  r.type = redis::Reply::Type::integer;
  r.integer = -3;
  EXPECT_EQ(r.as_integer(), -3);
}

TEST(HandedJob, DecodesInboxEntriesAndRejectsMalformedOnes) {
  auto j = queue::decode_handed_job(std::string("17\n17:3\n2\n5\nhigh\npay\nload\0x", 27));
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(j->id, "17");
  EXPECT_EQ(j->lease_token, "17:3");
  EXPECT_EQ(j->attempt, 2);
  EXPECT_EQ(j->max_attempts, 5);
  EXPECT_EQ(j->priority, queue::Priority::high);
  EXPECT_EQ(j->payload, std::string("pay\nload\0x", 10)) << "the payload keeps newlines and NULs";
  EXPECT_FALSE(queue::decode_handed_job("17\n17:3\n2\n5\n"));
  EXPECT_FALSE(queue::decode_handed_job("17\n17:3\nx\n5\nhigh\n"));
  EXPECT_FALSE(queue::decode_handed_job("17\n17:3\n2\n5\nurgent\n"));
  // found by fuzz_handed_job (tests/fuzz/regressions/handed_job/): no id, no token, negative counts
  EXPECT_FALSE(queue::decode_handed_job("\n717\n1\n3\nhigh\n28\n7\n"));
  EXPECT_FALSE(queue::decode_handed_job("17\n\n1\n3\nhigh\n"));
  EXPECT_FALSE(queue::decode_handed_job("17\n17:3\n-1\n3\nhigh\n"));
}
