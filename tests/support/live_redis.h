// The integration tier's Redis: one private redis-server per test binary, started on first use
// on a free loopback port in a temporary directory, stopped at exit. If it cannot start, every
// test that asks for it fails with the reason; nothing is skipped.
#pragma once

#include "qsim/queue/queue.h"
#include "qsim/redis/connection.h"
#include "qsim/sim/redis_server.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

namespace qsim::testkit {

// Throws RedisStartError (with the server's log tail) when the server cannot start.
sim::RedisServer& live_redis();

// A queue name unique to the running test, so tests never see each other's keys.
std::string unique_queue_name();

// Redis server time in milliseconds (TIME), the clock every lease and transition is stamped with.
inline std::int64_t server_ms(redis::Connection& c) {
  auto t = c.command({"TIME"});
  return *t.reply.elements.at(0).as_integer() * 1000 + *t.reply.elements.at(1).as_integer() / 1000;
}

// Path of a helper program built next to the test binaries.
std::string helper_path(const std::string& name);

}  // namespace qsim::testkit

#define QSIM_REQUIRE_REDIS()                                                        \
  do {                                                                              \
    try {                                                                           \
      ::qsim::testkit::live_redis();                                                \
    } catch (const std::exception& e) {                                             \
      FAIL() << "private redis-server could not start: " << e.what();              \
    }                                                                               \
  } while (0)

namespace qsim::testkit {

// A test on a queue of its own on the live Redis: `q` over `conn`, named `name`.
class LiveQueueTest : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    name = unique_queue_name();
    conn = std::make_unique<redis::Connection>(live_redis().endpoint());
    q = std::make_unique<queue::Queue>(*conn, name);
  }
  std::string name;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<queue::Queue> q;
};

}  // namespace qsim::testkit
