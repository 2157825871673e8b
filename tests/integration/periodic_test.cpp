// Periodic jobs fire exactly once per period with several schedulers racing.
#include "live_redis.h"
#include "qsim/queue/periodic.h"

#include <gtest/gtest.h>

#include <algorithm>
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
  // one job per period: each job records the fire time it was for; they are distinct periods
  // (independent of how late any scheduler got round to firing; a stalled scheduler skips
  // missed periods, like cron, so gaps may be several periods but never zero)
  std::vector<std::int64_t> slots;
  for (long long id = 1; id <= counters.enqueued; ++id) {
    auto slot = c.command({"HGET", q.keys().job(std::to_string(id)), "periodic_slot"}).reply.as_integer();
    ASSERT_TRUE(slot.has_value()) << "job " << id;
    slots.push_back(*slot);
  }
  std::sort(slots.begin(), slots.end());
  for (size_t i = 1; i < slots.size(); ++i) {
    EXPECT_GT(slots[i], slots[i - 1]) << "two jobs for one period";
    EXPECT_EQ((slots[i] - slots[i - 1]) % period, 0) << "slot " << slots[i];
  }
  auto fired_in_redis = c.command({"HGET", q.keys().periodic("tick"), "fired"});
  EXPECT_EQ(fired_in_redis.reply.as_integer(), fired.load());
}
