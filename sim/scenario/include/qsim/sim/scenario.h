// Scenario files: what `sim` runs. JSON, validated strictly before anything starts: unknown
// keys, wrong types and out-of-range values are ScenarioError naming the file, the JSON path
// and what was expected. The published schema, scenarios/schema.json, is enforced first (it is
// compiled into the library, see schema_check.h); the loader then checks what a schema cannot
// say (one key's range depending on another, worker numbers, trace files, gate metrics).
//
// Durations are strings with a unit: "250ms", "10s", "55m", "1.5h". All times in a scenario are
// simulated time; `speedup` maps them onto wall time.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::sim {

class ScenarioError : public std::runtime_error {
public:
  ScenarioError(const std::string& file, const std::string& path, const std::string& expected)
      : std::runtime_error(file + ": " + path + ": " + expected), file_(file), path_(path) {}
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

private:
  std::string file_, path_;
};

// "55m" -> 3300.0 seconds. nullopt if not "<non-negative number><ms|s|m|h>".
std::optional<double> parse_duration_s(std::string_view text);

struct Distribution {
  enum class Kind { constant, uniform, normal, lognormal, exponential, empirical } kind = Kind::constant;
  double a_s = 0, b_s = 0;       // constant: value; uniform: min,max; normal: mean,stddev; lognormal: median;
                                 // exponential: mean
  double sigma = 0;              // lognormal shape
  std::vector<double> values_s;  // empirical
};

struct Arrival {
  enum class Kind { burst, constant, poisson, ramp, spike, trace } kind = Kind::burst;
  double at_s = 0;                       // burst start; spike start
  double rate_per_h = 0;                 // constant, poisson; spike base
  double from_per_h = 0, to_per_h = 0;   // ramp
  double over_s = 0;                     // ramp length; spike length
  double spike_per_h = 0;
  std::string trace_file;
};

struct PollingArch {
  int workers = 1;
  double poll_interval_s = 10;
  std::optional<double> speedup;  // this architecture's own; none: the scenario's
};

struct QueueArch {
  int workers = 10;
  int attempts = 3;
  enum class Backoff { exponential, constant } backoff = Backoff::exponential;
  double backoff_base_s = 30;
  double lease_s = 120;
  double restart_delay_s = 10;
  std::optional<double> speedup;  // this architecture's own; none: the scenario's
};

// A queue framework under test (rq, celery, bullmq, sidekiq) or any worker through the protocol
// of system/frameworks/README.md (external). Its own options stay as written (the schema checks
// them; the architecture in arch/ turns them into the configuration that runs).
struct FrameworkArch {
  std::string kind;               // rq | celery | bullmq | sidekiq | external
  int workers = 10;               // worker processes
  double restart_delay_s = 10;    // before the supervisor restarts a dead worker
  std::optional<double> speedup;  // this architecture's own; none: the scenario's
  nlohmann::json options = nlohmann::json::object();  // the rest of its section
  bool configured = false;        // false: not in the scenario, defaults and the queue's worker count
};

// The frameworks an architecture section may name, in report order.
const std::vector<std::string>& framework_kinds();

// One entry of the scenario's `faults` list. Which fields apply depends on the kind; the loader
// refuses the others. Times are simulated seconds from the workload's start.
//
//   when, for kill_process / pause_process / restart_redis / poison_job:
//     at      one moment; `count` victims (processes, poison jobs) at that moment
//     every   one firing per period within [from, until], each with `probability`;
//             `count` caps the firings (0: no cap)
//     stage   kill_process only: whenever a target is seen in the stage (download, upload:
//             a worker; after_grant: finalize between the grant and the e-mail; after_effects:
//             the worker whose order's grant and e-mail are done, before it acks; handoff: the
//             payment intake while a paid order has no framework job recorded yet), within
//             [from, until], each with `probability`, at most `count` (default 1)
//   webhook faults act on each order's payment with `probability`, for arrivals in [from, until];
//   world faults (fail_*, slow_world) and network faults hold within [from, until]
//   (blackhole also takes at + for; reset_connections at a time resets every open connection).
struct Fault {
  enum class Kind {
    kill_process, pause_process, restart_redis,
    duplicate_webhook, replay_webhook, forge_webhook, late_webhook,
    fail_download, fail_upload, fail_grant, fail_mail, slow_world,
    poison_job,
    delay_network, reset_connections, blackhole, limit_bandwidth
  } kind = Kind::kill_process;
  std::string name;           // the kind as written
  std::string target;         // kill/pause: worker | worker-<n> | payment_intake | finalize
  std::optional<double> at_s, every_s;
  std::string stage;          // download | upload | after_grant | after_effects | handoff
  // kill_process of a worker: "worker" (the process and everything it started, as when its
  // machine or container dies) or "job" (only the processes it runs its jobs in: RQ's work horse,
  // Celery's pool children; the worker itself where it has none)
  std::string process = "worker";
  double from_s = 0, until_s = 1e300;
  double probability = 1;
  int count = 0;
  double for_s = 0;           // pause_process: how long; restart_redis: how long Redis is down
  std::string persistence = "none";  // restart_redis: none | everysec | always
  bool transient = true;      // fail_*
  double factor = 1;          // slow_world: latency multiplier
  int copies_min = 1, copies_max = 1;  // duplicate_webhook
  double spread_s = 0;        // duplicate_webhook: copies within this long after the original
  double after_s = 360;       // replay_webhook: re-sent this long after (past the 5-minute window)
  double skew_s = 600;        // late_webhook: timestamp this far off (negative: in the future)
  std::string how = "bad_signature";  // forge_webhook: bad_signature | tampered_body
  // network faults, on one link through the fault proxy, within [from, until]
  std::string link;           // worker_redis intake_redis finalize_redis worker_world worker_finalize
                              // finalize_world provider_intake
  double latency_s = 0, jitter_s = 0, bytes_per_s = 0;
};

// The links a run can route through its fault proxy.
const std::vector<std::string>& network_links();

struct Gate {
  std::string metric;
  std::string op;  // <= < >= > ==
  double threshold = 0;
  std::string text;  // as written
};

// `plan`: what `sim plan` sweeps with the model (queue architecture, Poisson arrivals).
struct PlanSpec {
  std::string slo_metric = "e2e_p95";  // e2e_p50|p90|p95|p99 (payment to completion), pickup_p50|...
  double slo_max_s = 0;
  std::vector<int> workers;
  std::vector<double> rates_per_h;
  int orders = 20'000;                 // simulated orders per point
  std::optional<double> cost_per_worker_hour;
};

struct Scenario {
  std::string file;
  std::string name;
  std::uint64_t seed = 1;
  double speedup = 1;
  bool side_by_side = false;  // the architectures at once, each on its own private Redis
  int orders = 1;
  Arrival arrival;
  Distribution download, upload;
  double fail_download = 0, fail_upload = 0, fail_grant = 0, fail_mail = 0;
  std::optional<PollingArch> polling;
  std::optional<QueueArch> queue;
  std::map<std::string, FrameworkArch> frameworks;  // by kind, those the scenario configures
  std::vector<Fault> faults;
  std::vector<Gate> gates;
  std::optional<PlanSpec> plan;

  // The speedup `arch` runs at: its own, else the scenario's.
  double speedup_of(std::string_view arch) const {
    if (arch == "polling") return (polling ? polling->speedup : std::nullopt).value_or(speedup);
    if (arch == "queue") return (queue ? queue->speedup : std::nullopt).value_or(speedup);
    auto f = frameworks.find(std::string(arch));
    return (f != frameworks.end() ? f->second.speedup : std::nullopt).value_or(speedup);
  }
  // The framework's section, or its defaults with the queue's worker count when the scenario
  // does not configure it (every scenario runs with --arch rq, ...).
  FrameworkArch framework(const std::string& kind) const;
};

// "<= 650m" or ">= 9" for `metric`; ScenarioError(file, path, ...) if it is neither.
Gate parse_gate_condition(const std::string& metric, const std::string& condition, const std::string& file,
                          const std::string& path);

// Schema, then the loader's own checks. A schema violation is one ScenarioError whose path() is
// the first problem's and whose message lists every problem, one per line.
Scenario parse_scenario(const nlohmann::json& j, const std::string& file);
Scenario load_scenario(const std::string& path);  // reads, parses JSON, validates
// The loader's own checks alone, without the schema: for the test that keeps the two agreeing
// (both must refuse a broken file at the same path).
Scenario parse_scenario_without_schema(const nlohmann::json& j, const std::string& file);

// The architectures a run or a model covers: `requested`, or every one the scenario names.
// ScenarioError("--arch") for one the scenario does not have.
std::vector<std::string> architectures_of(const Scenario& s, const std::vector<std::string>& requested);

}  // namespace qsim::sim
