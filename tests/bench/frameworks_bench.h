// The frameworks under test, benchmarked beside qsim's engine on the same private Redis: each
// framework's own no-op drain throughput and its enqueue-to-start pickup latency, through the
// benchmark mode of its adapter (system/frameworks/README.md, "Benchmark mode").
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qsim::bench {

struct FrameworkConfig {
  std::string label;  // e.g. "1 process, concurrency 1"
  int processes = 1;
  nlohmann::json config = nlohmann::json::object();  // QSIM_CONFIG
  int jobs = 2000;    // jobs in the drain: enough for a few seconds at this configuration
};

struct Framework {
  std::string name;
  std::vector<std::string> command;  // the adapter, without its subcommand
  FrameworkConfig one;               // one worker process at concurrency 1
  std::vector<FrameworkConfig> best; // candidates for its best configuration on this machine
};

// The four frameworks, their adapters found under `frameworks_dir`.
std::vector<Framework> frameworks(const std::string& frameworks_dir);

// Jobs per second between 10 % and 90 % of a pre-filled queue drained by `cfg`'s workers.
double framework_drain_jobs_per_s(int redis_port, const Framework& fw, const FrameworkConfig& cfg, int run,
                                  const std::string& log_dir);
// Enqueue-to-start latencies (us) of `jobs` no-op jobs at `rate` per second to one idle worker
// process at concurrency 1.
std::vector<double> framework_pickup_us(int redis_port, const Framework& fw, int jobs, double rate, int run,
                                        const std::string& log_dir);

}  // namespace qsim::bench
