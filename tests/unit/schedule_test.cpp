#include "qsim/queue/periodic.h"

#include <gtest/gtest.h>

using qsim::queue::Schedule;

namespace {
// 2026-11-21 06:30:00 UTC (a Saturday)
constexpr std::int64_t kSat0630 = 1795242600LL * 1000;
constexpr std::int64_t kMin = 60'000;
}  // namespace

TEST(Schedule, EveryAlignsToPeriodMultiples) {
  auto s = Schedule::parse("@every 250ms");
  EXPECT_EQ(s.next_after(0), 250);
  EXPECT_EQ(s.next_after(249), 250);
  EXPECT_EQ(s.next_after(250), 500) << "strictly after";
  EXPECT_EQ(Schedule::parse("@every 10s").next_after(12'345), 20'000);
  EXPECT_EQ(Schedule::parse("@every 1h").next_after(1), 3'600'000);
}

TEST(Schedule, EveryMinute) {
  auto s = Schedule::parse("* * * * *");
  EXPECT_EQ(s.next_after(kSat0630), kSat0630 + kMin);
  EXPECT_EQ(s.next_after(kSat0630 + 1), kSat0630 + kMin);
}

TEST(Schedule, StepsRangesAndLists) {
  EXPECT_EQ(Schedule::parse("*/15 * * * *").next_after(kSat0630), kSat0630 + 15 * kMin);
  EXPECT_EQ(Schedule::parse("0 7 * * *").next_after(kSat0630), kSat0630 + 30 * kMin);
  EXPECT_EQ(Schedule::parse("5,40 6 * * *").next_after(kSat0630), kSat0630 + 10 * kMin);
  EXPECT_EQ(Schedule::parse("0 9-17/4 * * *").next_after(kSat0630), kSat0630 + 150 * kMin);  // 09:00
  // daily at 06:00: tomorrow
  EXPECT_EQ(Schedule::parse("0 6 * * *").next_after(kSat0630), kSat0630 + (24 * 60 - 30) * kMin);
}

TEST(Schedule, WeekdaysAndMonthDays) {
  // Monday 00:00 -> 2026-11-23
  EXPECT_EQ(Schedule::parse("0 0 * * 1").next_after(kSat0630), kSat0630 + (2 * 24 * 60 - 6 * 60 - 30) * kMin);
  // Sunday written as 7 equals 0
  EXPECT_EQ(Schedule::parse("0 0 * * 7").next_after(kSat0630), Schedule::parse("0 0 * * 0").next_after(kSat0630));
  // first of the month at midnight -> 2026-12-01
  EXPECT_EQ(Schedule::parse("0 0 1 * *").next_after(kSat0630), 1796083200LL * 1000);
  // both day fields restricted: either matches (the 1st, or any Monday) -> Monday comes first
  EXPECT_EQ(Schedule::parse("0 0 1 * 1").next_after(kSat0630), Schedule::parse("0 0 * * 1").next_after(kSat0630));
  // Feb 29 exists in 2028
  auto leap = Schedule::parse("0 0 29 2 *").next_after(kSat0630);
  EXPECT_EQ(leap, 1835395200LL * 1000);
}

TEST(Schedule, BadSpecsSayWhy) {
  for (const char* bad : {"", "* * * *", "61 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *",
                          "@every", "@every 10", "@every 0s", "@every 5d", "5-1 * * * *"}) {
    try {
      (void)Schedule::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("schedule '"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)Schedule::parse("0 0 31 2 *").next_after(kSat0630), std::invalid_argument);
}
