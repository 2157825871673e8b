// What a run (live or model) produced, typed: per architecture the checker's counts, the
// latency and throughput figures, the timeline, the fault events and the per-order records.
// Every report format is made from these (through report_json). Plain values; no behaviour.
#pragma once

#include "qsim/sim/fault.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::sim {

// Exact order statistics (nearest rank), never averaged across buckets.
struct Percentiles {
  std::size_t count = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};

// One call the world received: which API, under which idempotency key, its answer, and whether
// it applied an effect (a grant or an e-mail is applied once per key; a download "applies"
// when it succeeds).
enum class Api : std::uint8_t { download, upload, grant, mail, other };
Api api_from(std::string_view name);  // other for a name the world does not serve
std::string_view to_string(Api api);

struct EffectCall {
  Api api = Api::other;
  std::string key;  // the idempotency key the caller sent (the model leaves it empty)
  int status = 0;   // 200, 503, 400 ...
  bool applied = false;
};

// When an order (last) entered each status the store knows, in simulated seconds: one slot per
// status, so that a model sweep of millions of orders builds its records without allocating.
class StageTimes {
public:
  static constexpr std::array<std::string_view, 9> kNames{"created",    "paid",      "processing",
                                                           "downloading", "uploading", "finalizing",
                                                           "completed",  "failed",    "dead"};
  StageTimes() { t_.fill(kAbsent); }
  StageTimes(std::initializer_list<std::pair<std::string_view, double>> times);
  std::size_t count(std::string_view status) const { return get(status) != nullptr; }
  const double* get(std::string_view status) const;  // null: never entered (or not a status)
  double at(std::string_view status) const;           // std::out_of_range if never entered
  double& operator[](std::string_view status);        // std::out_of_range for a name not in kNames
  static bool known(std::string_view status) { return index(status) < kNames.size(); }
  bool operator==(const StageTimes& o) const;
  std::map<std::string, double> to_map() const;       // the entered ones, by name

private:
  static std::size_t index(std::string_view status);  // kNames.size() if unknown
  static constexpr double kAbsent = -1e300;
  std::array<double, kNames.size()> t_;
};

// One order's history: what the provider delivered and was answered, the store's transitions
// (each status with the simulated time it was last entered) and every call the world received
// for it. The checker reads only this; the counts at the end are tallied from `calls`
// (tally_calls) for the report.
struct OrderRecord {
  std::string id;
  double arrival_s = 0;                  // scheduled, from the arrival trace
  double download_plan_s = 0, upload_plan_s = 0;
  int webhook_attempts = 0;              // provider deliveries until a 2xx (0: never sent)
  bool payment_accepted = false;         // a delivery was answered 2xx: payment acknowledged
  std::string status;                    // final, as the store has it ("missing": no record)
  std::string error;
  StageTimes stages_s;                   // status -> simulated time it was (last) entered
  std::vector<EffectCall> calls;         // in the order the world received them
  int downloads_ok = 0, download_calls = 0, grants = 0, mails = 0;  // tallied from calls
};

// A call to the world naming an order the workload never had (an unexpected effect, if applied).
struct StrayCall {
  std::string order;
  EffectCall call;
};

// The checker's verdict. Every paid order (payment acknowledged) is exactly one of completed,
// failed_visible, stuck, lost, or forgotten by the store after its effects were applied (then
// it counts as orphaned); the other fields count across orders. Definitions: check() in
// check/checker.cpp.
struct CheckerResult {
  long long orders = 0;                  // paid: the provider's webhook was answered 2xx
  long long completed = 0;
  long long failed_visible = 0;          // failed or dead, with the reason on the order
  long long lost = 0;                    // paid, no effect, and the store shows no payment
  long long stuck = 0;                   // still in flight when the run ended
  long long duplicate_deliveries = 0;    // successful downloads beyond the first, per order (work done again)
  long long duplicate_effect_calls = 0;  // grant or mail calls after that effect was applied, applied or not
  long long duplicate_effects = 0;       // grants and e-mails applied beyond the first, per order
  long long missing_effects = 0;         // completed orders without their grant or e-mail
  long long orphaned_effects = 0;        // orders with a grant or e-mail applied that are not completed
  long long unexpected_effects = 0;      // effects applied for an order that was never paid
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

// Load over one window of a live workload (the model has no Redis). Rates are per simulated
// second: what the same system would see at real speed. The harness's own commands are not
// counted. A rate is absent (negative) in a window in which Redis restarted or could not be read.
struct LoadPoint {
  double t_s = 0, dt_s = 0;  // the window's start and length, simulated
  double redis_commands_per_s = -1, store_queries_per_s = -1;
  double worker_utilisation = 0;  // busy worker time / (workers x the window)
};

struct ArchResult {
  std::string name;
  int workers = 0;
  double speedup = 0, resolution_s = 0;  // live runs: this architecture's (the scenario's unless it sets its own)
  double wall_s = 0;                     // the workload phase
  double host_steal_share = 0;           // CPU time the hypervisor took (/proc/stat steal), start to end
  double makespan_s = 0, wait_first_s = 0, wait_last_s = 0, throughput_per_h = 0;
  Percentiles e2e_s, pickup_s;
  // Per stage, of each completed order's last attempt: downloading -> uploading -> finalizing ->
  // completed (summarize() with its timeline; sweeps leave them empty).
  Percentiles download_stage_s, upload_stage_s, finalize_stage_s;
  double p_wait = 0;                     // share of completed orders that waited for a worker
  Percentiles probe_pickup_s;
  double probe_speedup = 1, probe_resolution_s = 0;
  std::string probe_method;
  long long store_queries = 0;           // by the architecture's components, workload phase
  std::map<std::string, long long> store_queries_by_component;
  double idle_window_s = 0;              // simulated
  double store_queries_per_idle_day = 0, redis_commands_per_idle_day = 0;
  long long redis_commands = 0;          // INFO commandstats delta, the harness's own excluded
  long long redis_oom_errors = 0;        // commands Redis refused with OOM (INFO errorstats), workload
  long long redis_misconf_errors = 0;    // writes Redis refused with MISCONF (its AOF could not be written), workload
  long long redis_evicted_keys = 0;      // keys Redis evicted to make room (INFO stats), workload
  // the payment provider's deliveries the intake refused, by the intake's "result" (stale_timestamp,
  // store_unavailable, ...; no_answer when nothing came back); each was delivered again
  std::map<std::string, long long> payment_refusals;
  long long harness_commands = 0;
  std::map<std::string, long long> redis_commands_by_name;
  long long retries = 0, dead_letters = 0, recoveries = 0;
  Percentiles overhead_s;                // measured work time minus planned, per completed order
  CheckerResult checker;
  std::vector<SeriesPoint> timeline;
  std::vector<LoadPoint> load;           // live runs: Redis commands, store queries, utilisation over time
  std::vector<OrderRecord> orders;
  std::vector<StrayCall> stray_calls;    // world calls for orders the workload never had
  std::vector<std::string> notes;        // how figures were obtained, clamped settings
  // The configuration that ran (a framework's options as scenario values and as they reached it)
  std::map<std::string, std::string> configuration;
  // Each non-zero loss or duplicate in a sentence tied to the architecture's documented behaviour
  std::vector<std::string> explanations;

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

}  // namespace qsim::sim
