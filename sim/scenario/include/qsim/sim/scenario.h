// Scenario files: what `sim` runs. JSON, validated strictly before anything starts: unknown
// keys, wrong types and out-of-range values are ScenarioError naming the file, the JSON path
// and what was expected. The published schema, scenarios/schema.json, is enforced first (it is
// compiled into the library, see schema_check.h); the loader then checks what a schema cannot
// say (one key's range depending on another, worker numbers, trace files, gate metrics).
//
// Durations are strings with a unit: "250ms", "10s", "55m", "1.5h". All times in a scenario are
// simulated time; `speedup` maps them onto wall time.
#pragma once

#include "qsim/sim/fault.h"
#include "qsim/sim/json_reader.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::sim {

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

// The `faults` list's entries: fault.h, their families: sim/faults/.

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
  int orders = 5'000;                  // simulated orders per replication
  int replications = 10;               // independent replications per point (seeds forked from the scenario's)
  std::optional<double> cost_per_worker_hour;
};

struct Scenario {
  std::string file;
  std::string name;
  std::uint64_t seed = 1;
  double speedup = 1;
  bool side_by_side = false;  // the architectures at once, each on its own private Redis
  bool redis_acl = false;     // a Redis user per component with only its rights (security/redis_acl.h)
  int orders = 1;
  Arrival arrival;
  Distribution download, upload;
  double fail_download = 0, fail_upload = 0, fail_grant = 0, fail_mail = 0;
  std::optional<PollingArch> polling;
  std::optional<QueueArch> queue;
  std::map<std::string, FrameworkArch> frameworks;  // by kind, those the scenario configures
  std::vector<Fault> faults;
  // The payment intake acknowledges a payment once this many replicas have it (WAIT): the remedy
  // for what an asynchronous failover loses (failover_redis).
  int intake_wait_replicas = 0;
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
