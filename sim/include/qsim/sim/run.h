// `sim run` as a library: run a scenario's architectures against real components on a live
// Redis and get back everything the report says. Another project's test can do
//
//   auto s = qsim::sim::load_scenario("scenarios/100_orders.json");
//   auto r = qsim::sim::run_scenario(s, {});
//   EXPECT_EQ(r.find("queue")->checker.lost, 0);
//
// What one architecture's run is, in order:
//   1. its processes: the simulated world, the finalize service, the payment intake and the
//      workers, each an OS process under a Supervisor (restart after restart_delay);
//   2. a probe: orders paid one at a time to idle workers, at a speedup low enough that the
//      pickup is not inflated by scaling (queue: 1; polling: poll interval = 100 ms of wall time);
//   3. the workload: every order of the scenario's arrival trace, paid by the load generator
//      (the payment provider: signed webhooks, retried on non-2xx or no answer) at its simulated
//      time, until every order is completed, failed or dead, or a generous deadline passes;
//   4. an idle window: nothing arrives; the store queries and Redis commands made meanwhile are
//      scaled to an idle simulated day;
//   5. the record: every order's stage times (Redis server time), the world's call log, the
//      queue's counters and INFO commandstats; the checker's verdict over them.
// Architectures run one after the other on the same arrival trace and seed, each under its
// own key tag, so their Redis commands can be told apart.
//
// Times in results are simulated seconds from the workload's start. Stage times are stamped
// by Redis in milliseconds, so the resolution is speedup / 1000 simulated seconds.
#pragma once

#include "qsim/sim/faults.h"
#include "qsim/sim/scenario.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace qsim::sim {

// Redis unreachable, a component would not start: exit code 3.
class InfraError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The run was cancelled (RunOptions::cancel); everything it started has been stopped.
class Cancelled : public std::runtime_error {
public:
  Cancelled() : std::runtime_error("cancelled") {}
};

// Exact order statistics (nearest rank), never averaged across buckets.
struct Percentiles {
  std::size_t count = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};
Percentiles percentiles(std::vector<double> values);

struct OrderRecord {
  std::string id;
  double arrival_s = 0;                  // scheduled, from the arrival trace
  double download_plan_s = 0, upload_plan_s = 0;
  int webhook_attempts = 0;              // provider deliveries until a 2xx (0: never sent)
  bool payment_accepted = false;
  std::string status;                    // final
  std::string error;
  std::map<std::string, double> stages_s;  // status -> simulated time it was (last) entered
  int downloads_ok = 0, download_calls = 0, grants = 0, mails = 0;  // from the world's call log
};

struct CheckerResult {
  long long orders = 0;                  // paid (the provider's webhook was accepted)
  long long completed = 0;
  long long failed_visible = 0;          // failed or dead, with the reason on the order
  long long lost = 0;                    // accepted payment, but the store shows no payment
  long long stuck = 0;                   // still in flight when the run ended
  long long duplicate_deliveries = 0;    // successful downloads beyond the first, per order
  long long duplicate_effects = 0;       // grants and e-mails beyond the first, per order
  long long missing_effects = 0;         // completed orders without their grant or e-mail
  long long undelivered_payments = 0;    // the provider gave up on the webhook
  long long crashes = 0;                 // component exits during the workload not caused by a kill
};

// One injected fault, as it happened.
struct FaultEvent {
  double t_s = 0;
  std::string kind, target, detail;
};

// A worker killed while it held an order: when (and whether) someone else picked the order up.
struct KillRecovery {
  double kill_t_s = 0;
  std::string worker, order;
  std::optional<double> redelivered_after_s;  // none: never (stuck, or finished by the victim)
};

struct SeriesPoint {
  double t_s = 0;
  int depth = 0;  // paid, not picked up
  int busy = 0;   // picked up, not finished
};

struct ArchResult {
  std::string name;
  int workers = 0;
  double speedup = 0, resolution_s = 0;  // live runs: this architecture's (the scenario's unless it sets its own)
  double wall_s = 0;                     // the workload phase
  double host_steal_share = 0;           // CPU time the hypervisor took (/proc/stat steal), start to end
  double makespan_s = 0, wait_first_s = 0, wait_last_s = 0, throughput_per_h = 0;
  Percentiles e2e_s, pickup_s;
  double p_wait = 0;                     // share of completed orders that waited for a worker
  Percentiles probe_pickup_s;
  double probe_speedup = 1, probe_resolution_s = 0;
  std::string probe_method;
  long long store_queries = 0;           // by the architecture's components, workload phase
  std::map<std::string, long long> store_queries_by_component;
  double idle_window_s = 0;              // simulated
  double store_queries_per_idle_day = 0, redis_commands_per_idle_day = 0;
  long long redis_commands = 0;          // INFO commandstats delta, the harness's own excluded
  long long harness_commands = 0;
  std::map<std::string, long long> redis_commands_by_name;
  long long retries = 0, dead_letters = 0, recoveries = 0;
  Percentiles overhead_s;                // measured work time minus planned, per completed order
  CheckerResult checker;
  std::vector<SeriesPoint> timeline;
  std::vector<OrderRecord> orders;
  std::vector<std::string> notes;        // how figures were obtained, clamped settings

  // faults and recovery
  std::vector<FaultEvent> faults;
  std::map<std::string, long long> fault_counts;  // kind -> fired
  std::vector<KillRecovery> kills;
  Percentiles recovery_s;                // kill -> redelivery of the held order
  double recovery_bound_s = 0;           // lease + one reaper tick (queue), simulated
  int peak_backlog = 0;
  double drain_s = 0;                    // longest time from a fault (or a spike's end) to an empty backlog
  double retry_amplification = 0;        // download attempts per completed order
  std::map<std::string, long long> dead_letters_by_reason;
  std::map<std::string, std::map<std::string, long long>> webhooks;  // extra kind -> answer -> count
  long long duplicate_jobs = 0;          // jobs enqueued beyond one per paid order
  long long forged_accepted = 0;         // forged, replayed or late webhooks answered 2xx
  std::map<std::string, std::map<std::string, long long>> network;  // proxy link -> connections, resets, bytes
};

struct RunResult {
  std::string kind = "run";             // run | model
  std::uint64_t events = 0;             // model: events processed
  std::string scenario, file, redis;
  std::uint64_t seed = 0;
  double speedup = 1, resolution_s = 0, wall_s = 0;
  double host_steal_share = 0;          // CPU time the hypervisor took during the run (/proc/stat steal)
  std::string replay_command;
  std::vector<double> arrivals_s;
  FaultPlan fault_plan;                 // the timed firings and webhook extras, before the run
  std::vector<ArchResult> results;
  const ArchResult* find(std::string_view arch) const;
};

struct Progress {
  std::string arch, phase;  // phase: starting | probe | workload | idle | collecting
  double sim_s = 0, sim_expected_s = 0;
  long long done = 0, total = 0;
};

struct RunOptions {
  std::optional<std::string> redis_url;      // none: a private redis-server
  std::optional<std::uint64_t> seed;         // override the scenario's
  std::optional<double> speedup;
  std::vector<std::string> architectures;    // empty: every one the scenario names
  std::string bin_dir;                       // component executables; empty: beside this program
  std::string log_dir;                       // keep the components' stderr here; empty: a temporary folder
  bool probe = true;
  int probe_orders = 50;
  std::function<void(const Progress&)> on_progress;
  const std::atomic<bool>* cancel = nullptr; // set it (e.g. from a signal handler) to stop
};

// Throws ScenarioError (bad scenario or options), InfraError, Cancelled.
RunResult run_scenario(Scenario scenario, const RunOptions& options = {});

// From r.orders (status, stage times, effects, payment accepted): the checker's counts,
// makespan, waits, latency percentiles, throughput and the depth/busy timeline. Shared by
// the live run and the model.
void summarize(ArchResult& r, double first_arrival_s, double last_arrival_s);
// The longest time from a fault (or a spike's end) to an empty backlog, from r.timeline.
void compute_drain(ArchResult& r, const Scenario& s);
std::vector<SeriesPoint> timeline_of(const std::vector<OrderRecord>& orders, double end_s, int& peak_depth);

// The planned stage durations of every order, drawn from the scenario's seed.
struct Plan {
  std::vector<double> arrivals_s, download_s, upload_s;
};
Plan make_plan(const Scenario& s);

// The fault plan for those orders: `every` faults without an `until` run over the arrivals and
// two of the longest jobs after the last.
FaultPlan plan_faults(const Scenario& s, const Plan& plan);

// The architectures a run or a model covers: `requested`, or every one the scenario names.
// ScenarioError("--arch") for one the scenario does not have.
std::vector<std::string> architectures_of(const Scenario& s, const std::vector<std::string>& requested);

}  // namespace qsim::sim
