#include "qsim/sim/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

using namespace qsim::sim;

namespace {
Scenario base(Arrival::Kind kind, int orders, std::uint64_t seed = 42) {
  Scenario s;
  s.name = "t";
  s.seed = seed;
  s.orders = orders;
  s.arrival.kind = kind;
  return s;
}
}  // namespace

TEST(Workload, SameScenarioAndSeedGiveTheSameTrace) {
  auto s = base(Arrival::Kind::poisson, 1000);
  s.arrival.rate_per_h = 60;
  EXPECT_EQ(arrival_times_s(s), arrival_times_s(s));
  auto other = s;
  other.seed = 43;
  EXPECT_NE(arrival_times_s(s), arrival_times_s(other));
}

TEST(Workload, StreamsAreIndependent) {
  // Drawing durations must not move the arrivals: they are separate streams of one seed.
  auto s = base(Arrival::Kind::poisson, 100);
  s.arrival.rate_per_h = 60;
  auto before = arrival_times_s(s);
  Stream durations(s.seed, "durations");
  for (int i = 0; i < 1000; ++i) (void)durations.uniform();
  EXPECT_EQ(arrival_times_s(s), before);
  Stream a(7, "arrivals"), b(7, "durations");
  EXPECT_NE(a.uniform(), b.uniform());
}

TEST(Workload, BurstAndConstant) {
  auto burst = base(Arrival::Kind::burst, 100);
  burst.arrival.at_s = 30;
  auto t = arrival_times_s(burst);
  ASSERT_EQ(t.size(), 100u);
  EXPECT_EQ(t.front(), 30);
  EXPECT_EQ(t.back(), 30);
  auto constant = base(Arrival::Kind::constant, 5);
  constant.arrival.rate_per_h = 120;  // one every 30 s
  EXPECT_EQ(arrival_times_s(constant), (std::vector<double>{0, 30, 60, 90, 120}));
}

TEST(Workload, PoissonRateWithinTwoPercentOverManyArrivals) {
  auto s = base(Arrival::Kind::poisson, 200'000);
  s.arrival.rate_per_h = 3600;  // one a second on average
  auto t = arrival_times_s(s);
  double rate = static_cast<double>(t.size()) / t.back();
  EXPECT_NEAR(rate, 1.0, 0.02);
}

TEST(Workload, SpikeIsDenserInsideItsWindowAndRampGrows) {
  auto s = base(Arrival::Kind::spike, 20'000);
  s.arrival.rate_per_h = 600;    // 1 per 6 s
  s.arrival.spike_per_h = 6000;  // 10x
  s.arrival.at_s = 3600;
  s.arrival.over_s = 1800;
  auto t = arrival_times_s(s);
  auto count = [&](double from, double to) { return std::count_if(t.begin(), t.end(), [&](double x) { return x >= from && x < to; }); };
  double inside = static_cast<double>(count(3600, 5400)), before = static_cast<double>(count(1800, 3600));
  EXPECT_GT(inside / before, 8.0);
  EXPECT_LT(inside / before, 12.0);
  auto r = base(Arrival::Kind::ramp, 5000);
  r.arrival.from_per_h = 60;
  r.arrival.to_per_h = 600;
  r.arrival.over_s = 36'000;
  auto rt = arrival_times_s(r);
  auto first = std::count_if(rt.begin(), rt.end(), [](double x) { return x < 3600; });
  auto late = std::count_if(rt.begin(), rt.end(), [](double x) { return x >= 32'400 && x < 36'000; });
  EXPECT_GT(late, 4 * first) << "the rate grows along the ramp";
}

TEST(Workload, TraceFileRelativeToTheScenarioAndItsErrors) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "qsim_trace";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "arrivals.txt") << "# seconds or durations\n5\n1m\n2.5\n";
  auto s = base(Arrival::Kind::trace, 3);
  s.file = (dir / "scenario.json").string();
  s.arrival.trace_file = "arrivals.txt";
  EXPECT_EQ(arrival_times_s(s), (std::vector<double>{2.5, 5, 60}));
  s.orders = 4;
  EXPECT_THROW(arrival_times_s(s), ScenarioError) << "fewer arrivals than orders";
  std::ofstream(dir / "bad.txt") << "5\nsoon\n";
  s.arrival.trace_file = "bad.txt";
  s.orders = 2;
  try {
    (void)arrival_times_s(s);
    ADD_FAILURE();
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(Workload, StageDurationDistributions) {
  Stream rng(1, "durations");
  Distribution c;
  c.a_s = 3300;
  EXPECT_EQ(sample_s(c, rng), 3300);
  Distribution u{Distribution::Kind::uniform, 10, 20, 0, {}};
  Distribution n{Distribution::Kind::normal, 100, 10, 0, {}};
  Distribution l{Distribution::Kind::lognormal, 60, 0, 0.5, {}};
  Distribution e{Distribution::Kind::empirical, 0, 0, 0, {1, 2, 3}};
  double su = 0, sn = 0;
  std::vector<double> logs;
  std::set<double> seen;
  for (int i = 0; i < 20'000; ++i) {
    double x = sample_s(u, rng);
    ASSERT_GE(x, 10);
    ASSERT_LT(x, 20);
    su += x;
    sn += sample_s(n, rng);
    logs.push_back(sample_s(l, rng));
    seen.insert(sample_s(e, rng));
  }
  EXPECT_NEAR(su / 20'000, 15, 0.2);
  EXPECT_NEAR(sn / 20'000, 100, 0.5);
  std::nth_element(logs.begin(), logs.begin() + 10'000, logs.end());
  EXPECT_NEAR(logs[10'000], 60, 2) << "lognormal median";
  EXPECT_EQ(seen, (std::set<double>{1, 2, 3}));
}

// Found while writing the fuzz targets (tests/fuzz/): strtod reads "nan" and "inf", and 400
// digits overflow to infinity; neither is a time.
TEST(Trace, ATimeIsFiniteAndNotNegative) {
  auto read = [](const std::string& text) {
    std::istringstream in(text);
    return read_trace(in, 100, "s.json", "t.txt");
  };
  EXPECT_EQ(read("0\n1.5\n90s\n# comment\n\n2m\n"), (std::vector<double>{0, 1.5, 90, 120}));
  for (const char* bad : {"nan\n", "inf\n", "-1\n", "0x10\n", "1e400\n", "x\n"}) {
    try {
      read(std::string("1\n") + bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ScenarioError& e) {
      EXPECT_NE(std::string(e.what()).find("t.txt line 2"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(parse_duration_s(std::string(400, '9') + "s"));
  EXPECT_FALSE(parse_duration_s("1" + std::string(306, '0') + "h"));  // finite seconds, infinite hours
  EXPECT_EQ(*parse_duration_s("1.5m"), 90);
}
