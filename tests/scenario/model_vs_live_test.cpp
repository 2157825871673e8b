// The model against the live runs of the same scenarios: the reports ctest's scenario_run.<name>
// just wrote (fixtures), and run_model() on the same file, calibrated from that report as
// `sim model --calibrate` does (each attempt also pays the live run's measured overhead:
// hand-offs, store transitions, HTTP, finalize).
//
// Within 5 % on makespan and on payment-to-completion p95, for every scenario of the tier whose
// faults the model covers and whose live p95 repeats within that: the seeds' story, forged and
// late webhooks, the capacity plan's scenario, the hand-off window, the load spike, least
// privilege (p95 within 10 %), the two queue comparisons and poison jobs. On makespan (the restart's within 10 %) and the
// checker's counts for the world's failures, the Redis restarts (with and without persistence)
// and skewed clocks (whose p95 within 10 %), and the failovers (on makespan and counts). The
// network faults and a full disk or memory: p95 within the spread of many models' rolls.
// The others are in reports/BENCHMARKS.md with the reason (live p95 that varies more than 5 %
// between two runs, or faults the model does not cover: an evicting full memory).
#include "qsim/sim/model.h"
#include "qsim/sim/report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

struct Compared {
  nlohmann::json live;
  qsim::sim::RunResult model;
};

// `calibrate` false: a live run with no completed order has no overhead to calibrate with.
Compared compare(const std::string& name, bool calibrate = true) {
  const std::string live_path = std::string(QSIM_SCENARIO_REPORTS) + "/" + name + "/report.json";
  Compared c;
  c.live = qsim::sim::load_report(live_path);  // (written by ctest's scenario_run.<name>)
  qsim::sim::ModelOptions o;
  if (calibrate) o.calibration = qsim::sim::calibration_from_report(c.live, live_path);
  c.model = qsim::sim::run_model(qsim::sim::load_scenario(std::string(QSIM_SOURCE_DIR) + "/scenarios/" + name + ".json"), o);
  EXPECT_EQ(c.live["seed"], c.model.seed);
  return c;
}

// The makespan within `bound`, and p95 within `p95_bound` (none: not checked).
void agree(const std::string& name, double bound = 0.05, std::optional<double> p95_bound = 0.05) {
  const auto c = compare(name);
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    const double makespan = l["makespan_s"], live_p95 = l["e2e_s"]["p95"];
    EXPECT_NEAR(r.makespan_s / makespan, 1.0, bound) << name << " " << r.name << ": model " << r.makespan_s
                                                     << " s, live " << makespan << " s";
    if (p95_bound) {
      EXPECT_NEAR(r.e2e_s.p95 / live_p95, 1.0, *p95_bound) << name << " " << r.name << ": model p95 " << r.e2e_s.p95
                                                      << " s, live " << live_p95 << " s";
    }
  }
}

// Each figure of `n` models of the scenario, calibrated from its live run, each with its own
// rolls of what the live run leaves to chance (ModelOptions::rolls), by "<arch> <figure>".
using Spread = std::map<std::string, std::vector<double>>;
Spread rolled(const std::string& name, const nlohmann::json& live, std::uint64_t n) {
  Spread spread;
  qsim::sim::ModelOptions o;
  o.calibration = qsim::sim::calibration_from_report(live, name);
  const auto scenario = qsim::sim::load_scenario(std::string(QSIM_SOURCE_DIR) + "/scenarios/" + name + ".json");
  for (std::uint64_t rolls = 1; rolls <= n; ++rolls) {
    o.rolls = rolls;
    for (const auto& r : qsim::sim::run_model(scenario, o).results) {
      spread[r.name + " makespan"].push_back(r.makespan_s);
      spread[r.name + " p95"].push_back(r.e2e_s.p95);
      spread[r.name + " failed"].push_back(static_cast<double>(r.checker.failed_visible));
      spread[r.name + " retries"].push_back(static_cast<double>(r.retries));
      spread[r.name + " recoveries"].push_back(static_cast<double>(r.recoveries));
    }
  }
  for (auto& [figure, v] : spread) std::sort(v.begin(), v.end());
  return spread;
}

// The live figure within the models' spread, widened by `margin` (a fraction) and `count_margin`;
// it prints where the live figure falls.
void within(const std::string& name, const Spread& spread, const std::string& arch, const std::string& what,
            double live, double margin, double count_margin = 0) {
  const auto& v = spread.at(arch + " " + what);
  const double below = static_cast<double>(std::lower_bound(v.begin(), v.end(), live) - v.begin()) / v.size();
  std::printf("%s %s %s: live %g (above %.0f %% of the models); %zu models %g to %g, median %g, 90 %% within %g to %g\n",
              name.c_str(), arch.c_str(), what.c_str(), live, 100 * below, v.size(), v.front(), v.back(), v[v.size() / 2],
              v[v.size() / 20], v[v.size() - 1 - v.size() / 20]);
  EXPECT_GE(live, v.front() * (1 - margin) - count_margin) << name << " " << arch << " " << what;
  EXPECT_LE(live, v.back() * (1 + margin) + count_margin) << name << " " << arch << " " << what;
}

// The payment deliveries the intake refused with store_unavailable.
double refused(const std::map<std::string, long long>& refusals) {
  const auto f = refusals.find("store_unavailable");
  return f == refusals.end() ? 0.0 : static_cast<double>(f->second);
}

}  // namespace

TEST(ModelVsLive, TheSeedsStory) { agree("100_orders"); }
TEST(ModelVsLive, DuplicateForgedAndLateWebhooks) { agree("duplicate_webhooks"); }
TEST(ModelVsLive, TheCapacityPlansScenario) { agree("capacity_plan"); }
TEST(ModelVsLive, TheHandOffWindow) { agree("handoff_window"); }
TEST(ModelVsLive, ALoadSpike) { agree("load_spike"); }
// Redis restarts among kills and a pause (every connection that lived through a restart fails on
// its next command: a busy worker's job comes back when its lease runs out)
// Its p95 within 10 %: the queue's live p95 was 688 to 699 s in five runs on a quiet machine and
// 737 s in a fresh-clone CI whose host took 8.7 % of the CPU (every late order picked up about 40
// simulated seconds later); the model, 670 to 693 s calibrated from each.
TEST(ModelVsLive, LeastPrivilege) { agree("least_privilege", 0.05, 0.10); }
TEST(ModelVsLive, TheQueuesCompared) { agree("queues_compared"); }
// Malformed jobs, each dead-lettered at no cost in the model. The engine measures a payload in
// place (HSTRLEN) before it leases it: a 2 MB one copied into the reserve script held Redis up
// for everyone, and the live queue's p95 was 3 to 13 % above the model's; 0 to 1.5 % since.
TEST(ModelVsLive, PoisonJobs) {
  agree("poison_jobs");
  const auto c = compare("poison_jobs");
  EXPECT_EQ(c.model.find("queue")->dead_letters, c.live["results"]["queue"]["dead_letters"].get<long long>());
}
TEST(ModelVsLive, TheQueuesComparedSafer) { agree("queues_compared_safer"); }

// Two restarts with their data kept: every job in flight at a restart comes back once, as live.
// Within 10 %, not 5: five live runs of this file took 398 to 437 s (which orders a restart
// catches mid-attempt, and so when their leases run out, depends on the run's timing); the
// calibrated model, 415 s. p95 is left out: 250 to 314 s in those runs.
TEST(ModelVsLive, TheRedisRestart) {
  agree("redis_restart_aof", 0.10, std::nullopt);
  const auto c = compare("redis_restart_aof");
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    EXPECT_EQ(r.checker.lost, 0) << r.name;
    if (r.name != "queue") continue;
    EXPECT_EQ(r.checker.completed, l["checker"]["completed"].get<long long>());
    EXPECT_NEAR(static_cast<double>(r.recoveries), l["recoveries"].get<double>(), 1);
  }
}

// The world's failures: the model draws exactly the live world's, so each architecture ends with
// the same orders completed and failed, after the same retries. The makespan agrees within 5 %;
// p95 is left out: the nearest rank of 30 orders was 201 to 261 s in four live runs
// (a retry waits for the reaper's tick, whose phase differs from run to run).
TEST(ModelVsLive, TheWorldsFailures) {
  agree("external_failures", 0.05, std::nullopt);
  const auto c = compare("external_failures");
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    EXPECT_EQ(r.checker.completed, l["checker"]["completed"].get<long long>()) << r.name;
    EXPECT_EQ(r.checker.failed_visible, l["checker"]["failed_visible"].get<long long>()) << r.name;
    EXPECT_EQ(r.dead_letters, l["dead_letters"].get<long long>()) << r.name;
    EXPECT_NEAR(static_cast<double>(r.retries), l["retries"].get<double>(), 1) << r.name;
  }
}

// Clocks set off by more than the signatures' 5-minute window: the intake refuses the provider's
// payments (delivered again on its schedule), finalize refuses the workers' calls (the queue's
// job comes back uncounted and finalizes alone; the poller fails the order). The makespan within
// 5 %, the same orders completed and failed. p95 within 10 %: three live runs of this file gave
// 296, 278 and 277 s for the queue (whether a payment arriving as a window opens or closes is
// refused, and where a refused finalize's jittered retries fall).
TEST(ModelVsLive, SkewedClocks) {
  agree("clock_skew", 0.05, 0.10);
  const auto c = compare("clock_skew");
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    EXPECT_EQ(r.checker.completed, l["checker"]["completed"].get<long long>()) << r.name;
    EXPECT_EQ(r.checker.failed_visible, l["checker"]["failed_visible"].get<long long>()) << r.name;
    EXPECT_GT(r.payment_refusals.count("stale_timestamp"), 0u) << r.name;
    EXPECT_GT(l["payment_refusals"].value("stale_timestamp", 0), 0) << r.name;
  }
}

// A restart without persistence forgets every order, finished ones too: nothing ends completed,
// the orders finished before it leave their effects orphaned, those paid and unfinished are lost.
// Uncalibrated (no live order completed). Lost and undelivered within one: an order arriving as
// Redis goes down is refused, or accepted and then forgotten, by a few milliseconds.
TEST(ModelVsLive, ARestartWithoutPersistence) {
  const auto c = compare("redis_restart_nopersist", false);
  for (const auto& r : c.model.results) {
    const auto& ck = c.live["results"][r.name]["checker"];
    EXPECT_EQ(r.checker.completed, ck["completed"].get<long long>()) << r.name;
    EXPECT_EQ(r.checker.orphaned_effects, ck["orphaned_effects"].get<long long>()) << r.name;
    EXPECT_NEAR(static_cast<double>(r.checker.lost), ck["lost"].get<double>(), 1) << r.name;
    EXPECT_NEAR(static_cast<double>(r.checker.undelivered_payments), ck["undelivered_payments"].get<double>(), 1)
        << r.name;
  }
}

// failover_redis: the replica is cut off for 6 minutes, then the primary is killed and Sentinel
// promotes the replica (the fault's down_after, 30 s, then about 1.05 s of wall time; calibrated
// from the run's fault events) with the store as it was at the cut. The makespan within 5 %, and
// what the checker counts within one, an order the provider gave up on counted with the
// completed ones. p95 is left out (the figures below are of runs before 2026-12-08, when Sentinel
// itself held the primary down after 500 ms of wall time):
// - an order arrives at the very instant of the cut (constant arrivals), and whether it reaches
//   the replica first is a millisecond's race. With the intake waiting for the replica, that
//   race moves the queue's p95 between two modes: 1,601 to 1,667 s in four live runs (the order
//   on the replica, as the model has it), 631 s in a fifth (refused, paid again after the
//   promotion). Without WAIT the race decides which order is lost: 1,661 to 1,810 s in five runs,
//   the model 1,682 s;
// - the orders paid during the lag are delivered nine or ten times before the promotion, at the
//   provider's limit of ten: in one run of five, three ran out of deliveries (57 completed, 3
//   never paid), where the model, like the other four runs, has all 60 paid.
void agree_on_a_failover(const std::string& name) {
  agree(name, 0.05, std::nullopt);
  const auto c = compare(name);
  for (const auto& r : c.model.results) {
    const auto& ck = c.live["results"][r.name]["checker"];
    const auto near = [&](const char* count, double model, double live) {
      EXPECT_NEAR(model, live, 1) << name << " " << r.name << " " << count;
    };
    near("completed or never paid", static_cast<double>(r.checker.completed + r.checker.undelivered_payments),
         ck["completed"].get<double>() + ck["undelivered_payments"].get<double>());
    for (const auto& [count, model] : {std::pair{"lost", r.checker.lost}, {"stuck", r.checker.stuck},
                                       {"failed_visible", r.checker.failed_visible},
                                       {"orphaned_effects", r.checker.orphaned_effects}})
      near(count, static_cast<double>(model), ck[count].get<double>());
  }
}
TEST(ModelVsLive, AFailoverWithTheIntakeWaitingForTheReplica) { agree_on_a_failover("redis_failover"); }
TEST(ModelVsLive, AFailoverWithAsynchronousReplication) { agree_on_a_failover("redis_failover_async"); }

// flaky_network: seven network faults on six links. What the proxy's windows decide, the model
// has as the live run has it: the intake's blackhole (every payment in it refused 503 once its
// Redis command times out, or held until it lifts and paid then), the blackhole before finalize
// (the held calls complete their orders as it lifts), the reset of the workers' Redis
// connections, the delays. Which world calls the 30 % resets hit, the model draws afresh: the
// live run is one roll of many. So the queue's makespan (the last orders paid as the intake's
// blackhole lifts) within 5 %, the same refusals and completions where no roll decides them,
// and every figure the rolls decide within the spread of 1,000 models with their own rolls
// (makespan and p95 within 5 % of it, for the run's timing).
TEST(ModelVsLive, AFlakyNetwork) {
  const auto c = compare("flaky_network");
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    // the payments in the intake's blackhole refused once each (a payment as it opens is a race)
    const auto live_refusals = l["payment_refusals"].get<std::map<std::string, long long>>();
    EXPECT_EQ(live_refusals.size(), 1u) << r.name;
    EXPECT_EQ(r.payment_refusals.size(), 1u) << r.name;
    EXPECT_GT(refused(live_refusals), 0) << r.name;
    EXPECT_NEAR(refused(r.payment_refusals), refused(live_refusals), 1) << r.name;
    for (const auto& [count, model] : {std::pair{"lost", r.checker.lost}, {"stuck", r.checker.stuck},
                                       {"orphaned_effects", r.checker.orphaned_effects},
                                       {"duplicate_effects", r.checker.duplicate_effects},
                                       {"missing_effects", r.checker.missing_effects}}) {
      EXPECT_EQ(model, 0) << r.name << " " << count;
      // within one live: the poller's finalize call held in the blackhole before finalize times
      // out 120 s after it, as finalize, given it as the blackhole lifts, completes the order
      // (about 8 s later, its calls of the world delayed): a race of a fraction of a second. In
      // one fresh-clone CI the poller failed the order first, leaving its grant and e-mail orphaned.
      EXPECT_NEAR(static_cast<double>(l["checker"][count].get<long long>()), static_cast<double>(model), 1)
          << r.name << " " << count;
    }
  }
  const auto& queue = c.model.results.at(1);
  ASSERT_EQ(queue.name, "queue");
  const auto& live_queue = c.live["results"]["queue"];
  EXPECT_EQ(queue.checker.completed, live_queue["checker"]["completed"].get<long long>());
  EXPECT_NEAR(queue.makespan_s / live_queue["makespan_s"].get<double>(), 1.0, 0.05);

  const Spread spread = rolled("flaky_network", c.live, 1000);
  for (const std::string arch : {"polling", "queue"}) {
    const auto& l = c.live["results"][arch];
    within("flaky_network", spread, arch, "makespan", l["makespan_s"].get<double>(), 0.05);
    within("flaky_network", spread, arch, "p95", l["e2e_s"]["p95"].get<double>(), 0.05);
    within("flaky_network", spread, arch, "failed", l["checker"]["failed_visible"].get<double>(), 0, 1);
    within("flaky_network", spread, arch, "retries", l["retries"].get<double>(), 0, 1);
    within("flaky_network", spread, arch, "recoveries", l["recoveries"].get<double>(), 0, 1);
  }
}

// disk_full and redis_memory_full: Redis refuses writes for a minute, then for 30 s, and keeps
// its data. The model has what each live component meets (model.cpp, redis_refuses_writes):
// every store script refused, and the queue's own scripts refused with the disk full (a busy
// worker's job stranded until its lease runs out) but passing with the memory full (the job back
// uncounted after its backoff, the ready jobs cycling through the delayed set). The makespan
// within 5 %, what the checker counts within one, the recoveries within two (below), the refused payments within
// four (the live runs refuse 22 to 25: the provider's schedule against the window, in wall time). Which
// jobs a window catches turns on seconds of timing (the workers' pauses, the retries' jitter,
// the heartbeats' and the reaper's phases), and p95, the nearest rank of 24 orders, with it:
// three live runs of each file gave 310 to 359 s (disk) and 403 to 531 s (memory) for the queue.
// So p95 within the spread of 1,000 models with their own rolls of that timing, widened by 5 %.
// Recoveries turn on milliseconds of wall time at both edges of a window: the fresh-clone CI of
// 6e374a5 had 3 for disk_full's queue where every one of 100 rolls of the model has 5. There the
// filler's write (32 MiB, 15 ms of wall time) delayed order 1's finish by 3.6 simulated s, so
// that its worker's next pick-up was refused (uncounted) instead of stranded by the window; and
// order 13's move to uploading came 0.1 s after the disk was freed.
void agree_on_refused_writes(const std::string& name) {
  const auto c = compare(name);
  const Spread spread = rolled(name, c.live, 1000);
  for (const auto& r : c.model.results) {
    const auto& l = c.live["results"][r.name];
    const double makespan = l["makespan_s"];
    EXPECT_NEAR(r.makespan_s / makespan, 1.0, 0.05) << name << " " << r.name << ": model " << r.makespan_s
                                                    << " s, live " << makespan << " s";
    EXPECT_NEAR(static_cast<double>(r.recoveries), l["recoveries"].get<double>(), 2) << name << " " << r.name;
    const double live_refused = refused(l["payment_refusals"].get<std::map<std::string, long long>>());
    EXPECT_GT(live_refused, 0) << name << " " << r.name << ": the fault did not refuse the intake's writes";
    EXPECT_NEAR(refused(r.payment_refusals), live_refused, 4) << name << " " << r.name;
    // (the poller's order stuck or not turns on whether its claim falls just before the window)
    for (const auto& [count, model] : {std::pair{"completed", r.checker.completed}, {"lost", r.checker.lost},
                                       {"stuck", r.checker.stuck}, {"duplicate_effects", r.checker.duplicate_effects},
                                       {"missing_effects", r.checker.missing_effects}})
      EXPECT_NEAR(static_cast<double>(model), static_cast<double>(l["checker"][count].get<long long>()), 1)
          << name << " " << r.name << " " << count;
    within(name, spread, r.name, "p95", l["e2e_s"]["p95"].get<double>(), 0.05);
  }
}

TEST(ModelVsLive, AFullDisk) { agree_on_refused_writes("disk_full"); }
TEST(ModelVsLive, AFullMemory) { agree_on_refused_writes("redis_memory_full"); }

// ctest runs one comparison at a time (--gtest_filter): a filter that matches nothing (a renamed
// test) fails rather than passing empty.
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (::testing::UnitTest::GetInstance()->test_to_run_count() == 0) {
    std::fprintf(stderr, "qsim_model_live_tests: no test matched the filter\n");
    return 1;
  }
  return rc;
}
