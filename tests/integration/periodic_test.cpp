// Periodic jobs fire exactly once per period with several schedulers racing.
#include "live_redis.h"
#include "qsim/queue/periodic.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;

TEST(Periodic, ExactlyOncePerPeriodWithFourSchedulers) {
  QSIM_REQUIRE_REDIS();
  auto name = testkit::unique_queue_name();
  const auto period = 100;
  std::atomic<bool> stop{false};
  std::atomic<int> fired{0};
  std::vector<std::thread> schedulers;
  for (int s = 0; s < 4; ++s)
    schedulers.emplace_back([&] {
      redis::Connection c(testkit::live_redis().endpoint());
      queue::Queue q(c, name);
      queue::PeriodicScheduler sched(q, {{"tick", queue::Schedule::parse("@every 100ms"), "payload"}});
      while (!stop.load()) {
        auto r = sched.tick();
        if (r.ok()) fired += r.value;
        std::this_thread::sleep_for(3ms);
      }
    });
  std::this_thread::sleep_for(1550ms);
  stop = true;
  for (auto& t : schedulers) t.join();

  redis::Connection c(testkit::live_redis().endpoint());
  queue::Queue q(c, name);
  auto counters = q.counters().value;
  EXPECT_EQ(counters.enqueued, fired.load());
  // ~15 periods in 1.55 s; the first call only initialises
  EXPECT_GE(fired.load(), 12);
  EXPECT_LE(fired.load(), 16);
  // one job per period: created times fall in distinct 100 ms slots
  std::map<std::int64_t, int> per_slot;
  for (long long id = 1; id <= counters.enqueued; ++id) {
    auto s = q.status(std::to_string(id)).value;
    ASSERT_TRUE(s.has_value());
    per_slot[s->created_ms / period]++;
  }
  for (auto& [slot, n] : per_slot) EXPECT_EQ(n, 1) << "slot " << slot;
  auto fired_in_redis = c.command({"HGET", q.keys().periodic("tick"), "fired"});
  EXPECT_EQ(fired_in_redis.reply.as_integer(), fired.load());
}
