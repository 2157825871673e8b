// Reconnect backoff with a manual clock: a dead server costs one connect attempt per backoff
// window, and the window doubles up to its cap. No server needed: port 1 on loopback refuses.
#include "qsim/redis/connection.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using namespace qsim;

TEST(ConnectionBackoff, FailsFastInsideTheWindowAndDoublesUpToTheCap) {
  ManualClock clock;
  redis::ConnectionOptions o{100ms, 100ms, 50ms, 200ms};
  redis::Connection c({"127.0.0.1", 1, {}}, o, clock);

  auto first = c.command({"PING"});
  EXPECT_EQ(first.status, redis::Status::connection_lost);
  EXPECT_NE(first.error.find("connect to"), std::string::npos) << first.error;

  auto inside = c.command({"PING"});
  EXPECT_EQ(inside.status, redis::Status::connection_lost);
  EXPECT_NE(inside.error.find("backoff"), std::string::npos) << "no new attempt inside the window: " << inside.error;

  clock.advance(50ms);  // window 1 over: a real attempt, window doubles to 100ms
  EXPECT_NE(c.command({"PING"}).error.find("connect to"), std::string::npos);
  clock.advance(99ms);
  EXPECT_NE(c.command({"PING"}).error.find("backoff"), std::string::npos);
  clock.advance(1ms);
  EXPECT_NE(c.command({"PING"}).error.find("connect to"), std::string::npos);  // window now 200ms (cap)
  clock.advance(200ms);
  EXPECT_NE(c.command({"PING"}).error.find("connect to"), std::string::npos);  // still 200ms: capped
  clock.advance(199ms);
  EXPECT_NE(c.command({"PING"}).error.find("backoff"), std::string::npos);
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(c.connects(), 0u);
}
