// The fault families (sim/faults/): every kind is declared once and reaches the loader, the
// schema, the live run and the model through its family alone.
#include "qsim/sim/fault.h"
#include "qsim/sim/schema_check.h"
#include "qsim/sim/scenario.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

using namespace qsim::sim;

namespace {

Fault fault(const std::string& text, int workers = 4) {
  auto j = nlohmann::json::parse(text);
  return read_fault(JsonReader(j, "$.faults[0]", "test.json"), FaultReadContext{workers});
}

// What a family asked of the live run.
struct FakeLive final : LiveTarget {
  std::vector<std::string> workers{"worker-0", "worker-1", "worker-2"};
  std::vector<std::string> calls;
  std::vector<std::string> payloads;
  long long sent = 0;
  std::vector<std::string> instances(const std::string& target) override {
    if (target == "worker") return workers;
    if (std::find(workers.begin(), workers.end(), target) != workers.end() || target == "finalize") return {target};
    return {};
  }
  void kill(const std::string& i, const std::string&, bool job_only) override {
    calls.push_back("kill " + i + (job_only ? " job" : ""));
  }
  void pause(const std::string& i, double for_s) override { calls.push_back("pause " + i + " " + std::to_string(int(for_s))); }
  void restart_redis(double down_s, const std::string& p) override {
    calls.push_back("restart " + std::to_string(int(down_s)) + " " + p);
  }
  void fill_redis_memory(double full_s, const std::string& policy) override {
    calls.push_back("fill " + std::to_string(int(full_s)) + " " + policy);
  }
  void fill_disk(double full_s) override { calls.push_back("fill_disk " + std::to_string(int(full_s))); }
  void failover_redis(double lag_s, double down_after_s) override {
    calls.push_back("failover " + std::to_string(int(lag_s)) + " " + std::to_string(int(down_after_s)));
  }
  void reset_connections(const std::string& link) override { calls.push_back("reset " + link); }
  void skew_clock(const std::string& instance, double offset_s) override {
    calls.push_back("skew " + instance + " " + std::to_string(int(offset_s)));
  }
  void enqueue_jobs(int count, std::string (*payload)(long long)) override {
    for (int k = 0; k < count; ++k) payloads.push_back(payload(sent++));
  }
  void log(const std::string& kind, const std::string& target, const std::string& detail) override {
    calls.push_back("log " + kind + " " + target + ": " + detail);
  }
};

// What a family asked of the model.
struct FakeModel final : ModelTarget {
  bool is_queue = true;
  std::vector<std::string> calls;
  int workers() const override { return 3; }
  bool queue() const override { return is_queue; }
  void stop_worker(int w, bool kill, double for_s) override {
    calls.push_back((kill ? "kill " : "pause ") + std::to_string(w) + " " + std::to_string(int(for_s)));
  }
  void redis_down(double down_s, bool wipe) override {
    calls.push_back("down " + std::to_string(int(down_s)) + (wipe ? " wipe" : ""));
  }
  void redis_refuses_writes(double for_s, bool disk) override {
    calls.push_back("refuse writes " + std::to_string(int(for_s)) + (disk ? " disk" : " memory"));
  }
  void redis_restarted(double down_s, bool wipe) override {
    calls.push_back("restart " + std::to_string(int(down_s)) + (wipe ? " wipe" : ""));
  }
  void failover_redis(double lag_s, double down_after_s) override {
    calls.push_back("failover " + std::to_string(int(lag_s)) + " " + std::to_string(int(down_after_s)));
  }
  void reset_connections(const std::string& link) override { calls.push_back("reset " + link); }
  void dead_letter(int jobs) override { calls.push_back("dead " + std::to_string(jobs)); }
  void log(const std::string& target, const std::string& detail) override { calls.push_back("log " + target + ": " + detail); }
};

}  // namespace

TEST(FaultFamilies, EveryKindIsInTheSchemaAndEverySchemaKindHasAFamily) {
  std::set<std::string> schema;
  for (const auto& item : scenario_schema()["properties"]["faults"]["items"]["oneOf"])
    schema.insert(item["properties"]["kind"]["const"].get<std::string>());
  const std::set<std::string> families(fault_kinds().begin(), fault_kinds().end());
  EXPECT_EQ(families, schema);
  EXPECT_EQ(families.size(), fault_kinds().size()) << "a kind in two families";
}

TEST(FaultFamilies, EachKindHoldsItsFamilysParameters) {
  EXPECT_TRUE(fault(R"({"kind": "kill_process", "target": "worker", "at": "1m"})").as<ProcessFault>());
  EXPECT_TRUE(fault(R"({"kind": "restart_redis", "at": "1m"})").as<RedisFault>());
  EXPECT_TRUE(fault(R"({"kind": "poison_job", "at": "1m"})").as<PoisonFault>());
  EXPECT_TRUE(fault(R"({"kind": "late_webhook", "probability": 0.5})").as<WebhookFault>());
  EXPECT_TRUE(fault(R"({"kind": "slow_world", "factor": 2})").as<WorldFault>());
  EXPECT_TRUE(fault(R"({"kind": "blackhole", "link": "worker_redis", "at": "1m", "for": "1m"})").as<NetworkFault>());
  auto late = fault(R"({"kind": "late_webhook", "probability": 0.5, "skew": "10m", "future": true})");
  EXPECT_EQ(late.as<WebhookFault>()->skew_s, -600);
  try {
    fault(R"({"kind": "kill_process", "target": "worker-9", "at": "1m"})");
    FAIL() << "a worker that does not exist was accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.path(), "$.faults[0].target");
  }
}

TEST(FaultFamilies, TheLiveActionIsTheFamilys) {
  FakeLive live;
  auto kill = fault(R"({"kind": "kill_process", "target": "worker", "at": "1m", "count": 2, "process": "job"})");
  fire_live(kill, Firing{60, 0, kill.kind, "worker", 4, 2}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"kill worker-1 job", "kill worker-2 job"}));  // pick 4 of 3, then the next

  live.calls.clear();
  auto pause = fault(R"({"kind": "pause_process", "target": "worker-7", "at": "1m", "for": "30s"})", 8);
  fire_live(pause, Firing{60, 0, pause.kind, "worker-7", 0, 1}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"log pause_process worker-7: skipped: no such process here"}));

  live.calls.clear();
  auto redis = fault(R"({"kind": "restart_redis", "at": "1m", "down_for": "20s", "persistence": "always"})");
  fire_live(redis, Firing{60, 0, redis.kind, "", 0, 1}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"restart 20 always"}));

  live.calls.clear();
  auto full = fault(R"({"kind": "fill_redis_memory", "at": "1m", "for": "45s"})");
  fire_live(full, Firing{60, 0, full.kind, "", 0, 1}, live);
  auto evicting = fault(R"({"kind": "fill_redis_memory", "every": "10m", "for": "1m", "policy": "allkeys-lru"})");
  fire_live(evicting, Firing{600, 0, evicting.kind, "", 0, 1}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"fill 45 noeviction", "fill 60 allkeys-lru"}));
  EXPECT_EQ(redis_persistence({redis, full}), "always") << "only restart_redis has a persistence";
  EXPECT_EQ(private_redis_fault({kill, full}), "fill_redis_memory");
  EXPECT_EQ(private_redis_fault({kill}), "");

  live.calls.clear();
  auto disk = fault(R"({"kind": "fill_disk", "at": "1m", "for": "30s"})");
  fire_live(disk, Firing{60, 0, disk.kind, "", 0, 1}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"fill_disk 30"}));
  EXPECT_EQ(private_redis_fault({kill, disk}), "fill_disk");
  EXPECT_EQ(redis_persistence({disk}), "everysec") << "a full disk shows only to a Redis writing an AOF, and not with always";
  EXPECT_EQ(redis_persistence({disk, redis}), "always") << "the restart's persistence, which the run then refuses";
  EXPECT_GT(redis_disk_bytes({disk}), 0u);
  EXPECT_EQ(redis_disk_bytes({full, redis}), 0u);
  for (const char* bad : {R"({"kind": "fill_disk", "at": "1m"})", R"({"kind": "fill_disk", "at": "1m", "for": "1m", "policy": "noeviction"})"}) {
    try {
      fault(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ScenarioError&) {
    }
  }
  live.calls.clear();
  auto failover = fault(R"({"kind": "failover_redis", "at": "1m", "replica_lag": "20s"})");
  fire_live(failover, Firing{60, 0, failover.kind, "", 0, 1}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"failover 20 30"}));  // Sentinel's default down-after, 30 s
  auto later = fault(R"({"kind": "failover_redis", "at": "1m", "down_after": "2m"})");
  fire_live(later, Firing{60, 0, later.kind, "", 0, 1}, live);
  EXPECT_EQ(live.calls.back(), "failover 0 120");
  EXPECT_EQ(private_redis_fault({kill, failover}), "failover_redis");
  EXPECT_TRUE(redis_failover({kill, failover}));
  EXPECT_FALSE(redis_failover({kill, redis, disk}));
  EXPECT_EQ(redis_persistence({failover}), "");
  for (const char* bad : {R"({"kind": "failover_redis", "every": "1m"})", R"({"kind": "failover_redis", "at": "1m", "count": 2})",
                          R"({"kind": "failover_redis", "at": "1m", "for": "1m"})"}) {
    try {
      fault(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ScenarioError&) {
    }
  }
  for (const char* bad : {R"({"kind": "fill_redis_memory", "at": "1m"})",
                          R"({"kind": "fill_redis_memory", "at": "1m", "for": "1m", "policy": "lru"})",
                          R"({"kind": "fill_redis_memory", "at": "1m", "for": "1m", "down_for": "1m"})"}) {
    try {
      fault(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ScenarioError&) {
    }
  }

  auto poison = fault(R"({"kind": "poison_job", "at": "1m", "count": 4})");
  fire_live(poison, Firing{60, 0, poison.kind, "", 0, 4}, live);
  ASSERT_EQ(live.payloads.size(), 4u);
  EXPECT_EQ(std::set<std::string>(live.payloads.begin(), live.payloads.end()).size(), 4u) << "four kinds of poison";
}

TEST(FaultFamilies, WindowsShapeTheWorldAndTheLinks) {
  std::vector<Fault> faults{
      fault(R"({"kind": "fail_grant", "probability": 0.2, "from": "10m", "until": "20m"})"),
      fault(R"({"kind": "fail_grant", "probability": 0.7, "transient": false, "from": "15m", "until": "20m"})"),
      fault(R"({"kind": "slow_world", "factor": 2, "until": "1h"})"),
      fault(R"({"kind": "slow_world", "factor": 3, "from": "30m", "until": "1h"})"),
      fault(R"({"kind": "kill_process", "target": "finalize", "stage": "after_grant", "count": 1})"),
      fault(R"({"kind": "delay_network", "link": "worker_redis", "latency": "100ms", "until": "1h"})"),
      fault(R"({"kind": "delay_network", "link": "worker_redis", "latency": "50ms", "jitter": "10ms", "until": "1h"})"),
      fault(R"({"kind": "limit_bandwidth", "link": "worker_redis", "bytes_per_s": 500, "until": "1h"})"),
      fault(R"({"kind": "limit_bandwidth", "link": "worker_redis", "bytes_per_s": 900, "until": "1h"})"),
      fault(R"({"kind": "reset_connections", "link": "worker_world", "at": "5m"})"),
  };
  auto w = world_state(faults, world_faults_active(faults, 16 * 60, {0, 0, 0, 0, 0}));
  EXPECT_EQ(*w.apis["grant"].fail_probability, 0.7);  // the later fault wins where two hold
  EXPECT_FALSE(w.apis["grant"].transient);
  EXPECT_TRUE(w.apis["grant"].hold);  // the after_grant kill has not fired yet
  EXPECT_EQ(w.latency_factor, 2);
  EXPECT_EQ(world_state(faults, world_faults_active(faults, 40 * 60, {0, 0, 0, 0, 0})).latency_factor, 6);
  EXPECT_FALSE(world_state(faults, world_faults_active(faults, 16 * 60, {0, 0, 0, 0, 1})).apis["grant"].hold)
      << "the hold ends once the kill has fired";
  EXPECT_EQ(max_latency_factor(faults), 3);

  auto links = link_states(faults, 60);
  const auto& redis = links.at("worker_redis").first;
  EXPECT_NEAR(redis.latency_s, 0.150, 1e-9);  // delays add up
  EXPECT_NEAR(redis.jitter_s, 0.010, 1e-9);
  EXPECT_EQ(redis.bytes_per_s, 500);  // the tighter limit
  EXPECT_EQ(links.at("worker_world").first, LinkState{}) << "a reset at a moment is a firing, not a window";
  FakeLive live;
  fire_live(faults[9], Firing{300, 9, faults[9].kind, "worker_world", 0, 1}, live);
  EXPECT_EQ(live.calls, (std::vector<std::string>{"reset worker_world"}));
}

TEST(FaultFamilies, ClockWindowsGiveEachTargetItsOffset) {
  std::vector<Fault> faults{
      fault(R"({"kind": "skew_clock", "target": "payment_intake", "ahead": "10m", "from": "1m", "until": "3m"})"),
      fault(R"({"kind": "skew_clock", "target": "worker", "behind": "6m", "from": "2m", "until": "4m"})"),
      fault(R"({"kind": "kill_process", "target": "worker", "at": "1m"})")};
  EXPECT_EQ(clock_offsets(faults, 30), (std::map<std::string, double>{{"payment_intake", 0}, {"worker", 0}}));
  EXPECT_EQ(clock_offsets(faults, 150), (std::map<std::string, double>{{"payment_intake", 600}, {"worker", -360}}));
  EXPECT_EQ(clock_offsets(faults, 200), (std::map<std::string, double>{{"payment_intake", 0}, {"worker", -360}}));
  EXPECT_TRUE(clock_skewed(faults, "payment_intake"));
  EXPECT_TRUE(clock_skewed(faults, "worker-2"));
  EXPECT_FALSE(clock_skewed(faults, "finalize"));
  EXPECT_FALSE(clock_skewed({faults[2]}, "worker-0"));
  for (const char* bad : {R"({"kind": "skew_clock", "target": "payment_intake"})",
                          R"({"kind": "skew_clock", "target": "payment_intake", "ahead": "1m", "behind": "1m"})",
                          R"({"kind": "skew_clock", "target": "redis", "ahead": "1m"})",
                          R"({"kind": "skew_clock", "target": "finalize", "ahead": "1m", "at": "1m"})"}) {
    try {
      fault(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ScenarioError&) {
    }
  }
}

TEST(FaultFamilies, TheModelActionIsTheFamilys) {
  FakeModel model;
  auto kill = fault(R"({"kind": "kill_process", "target": "worker", "at": "1m", "count": 2})");
  fire_model(kill, Firing{60, 0, kill.kind, "worker", 2, 2}, model);
  auto pause = fault(R"({"kind": "pause_process", "target": "worker-1", "at": "1m", "for": "5m"})");
  fire_model(pause, Firing{60, 0, pause.kind, "worker-1", 0, 1}, model);
  auto intake = fault(R"({"kind": "kill_process", "target": "payment_intake", "at": "1m"})");
  fire_model(intake, Firing{60, 0, intake.kind, "payment_intake", 0, 1}, model);
  auto redis = fault(R"({"kind": "restart_redis", "at": "1m", "down_for": "30s"})");
  fire_model(redis, Firing{60, 0, redis.kind, "", 0, 1}, model);
  auto poison = fault(R"({"kind": "poison_job", "at": "1m", "count": 3})");
  fire_model(poison, Firing{60, 0, poison.kind, "", 0, 3}, model);
  auto reset = fault(R"({"kind": "reset_connections", "link": "intake_redis", "at": "1m"})");
  fire_model(reset, Firing{60, 0, reset.kind, "intake_redis", 0, 1}, model);
  auto full = fault(R"({"kind": "fill_redis_memory", "at": "1m", "for": "40s", "policy": "allkeys-lru"})");
  fire_model(full, Firing{60, 0, full.kind, "", 0, 1}, model);
  auto oom = fault(R"({"kind": "fill_redis_memory", "at": "1m", "for": "30s"})");
  fire_model(oom, Firing{60, 0, oom.kind, "", 0, 1}, model);
  auto disk = fault(R"({"kind": "fill_disk", "at": "1m", "for": "20s"})");
  fire_model(disk, Firing{60, 0, disk.kind, "", 0, 1}, model);
  auto failover = fault(R"({"kind": "failover_redis", "at": "1m", "replica_lag": "90s"})");
  fire_model(failover, Firing{60, 0, failover.kind, "", 0, 1}, model);
  EXPECT_EQ(model.calls, (std::vector<std::string>{
                             "kill 2 0", "kill 0 0", "pause 1 300",
                             "log payment_intake: not modelled: the provider and the worker retry through it",
                             "log redis: persistence none", "restart 30 wipe", "dead 3", "log queue: 3 malformed jobs dead-lettered",
                             "reset intake_redis",
                             "log redis: memory full, policy allkeys-lru (evictions not modelled)", "down 40",
                             "log redis: memory full, policy noeviction", "refuse writes 30 memory",
                             "log redis: disk full", "refuse writes 20 disk",
                             "failover 90 30"}));

  // an attempt: world faults before the draws, stage kills after them
  std::vector<Fault> faults{fault(R"({"kind": "fail_upload", "probability": 0.5, "transient": false})"),
                            fault(R"({"kind": "slow_world", "factor": 4})"),
                            fault(R"({"kind": "kill_process", "target": "finalize", "stage": "after_grant", "probability": 1})"),
                            fault(R"({"kind": "kill_process", "target": "worker-1", "stage": "upload", "count": 5})")};
  ModelAttempt a;
  shape_attempt(faults, a);
  EXPECT_EQ(a.slow, 4);
  EXPECT_EQ(a.stages[1].fail_probability, 0.5);
  EXPECT_FALSE(a.stages[1].transient);
  a.order = "order-00001";
  a.worker = 1;
  a.start_s = 100;
  a.download_s = 10;
  a.end_s = 130;
  std::vector<int> fired(faults.size(), 0);
  kill_attempt(1, faults, a, fired);
  // worker-1 dies at its upload: the attempt never reaches finalize, so the after_grant kill is
  // dropped and keeps its one firing for another attempt (and decides nothing: the death does)
  EXPECT_TRUE(a.succeeds);
  ASSERT_EQ(a.kills.size(), 1u);
  EXPECT_EQ(a.kills[0].target, "worker-1");
  EXPECT_FALSE(a.kills[0].after_end);
  EXPECT_EQ(a.kills[0].t_s, 110);  // when the upload starts
  EXPECT_EQ(fired, (std::vector<int>{0, 0, 0, 1}));
  // worker-2's attempt reaches finalize, which dies between the grant and the e-mail
  a.worker = 2;
  a.succeeds = true;
  a.kills.clear();
  kill_attempt(1, faults, a, fired);
  EXPECT_FALSE(a.succeeds) << "finalize killed between the grant and the e-mail fails the attempt";
  ASSERT_EQ(a.kills.size(), 1u);
  EXPECT_EQ(a.kills[0].target, "finalize");
  EXPECT_TRUE(a.kills[0].after_end);
  EXPECT_EQ(fired, (std::vector<int>{0, 0, 1, 1}));
  a.succeeds = true;
  a.kills.clear();
  kill_attempt(1, faults, a, fired);  // count 1: the after_grant kill is spent
  EXPECT_TRUE(a.succeeds);
  EXPECT_TRUE(a.kills.empty());
  EXPECT_EQ(fired, (std::vector<int>{0, 0, 1, 1}));
}
