// A queue framework under test (RQ, Celery, BullMQ, Sidekiq) or any worker through the protocol
// of system/frameworks/README.md: one hand-off server that enqueues with the framework's own
// client, and N worker processes that run the framework's own worker. What differs between
// frameworks is their commands, their options (FrameworkSpec::config, in wall units) and what
// they do with a job whose worker died; each has its file in arch/ that fills a FrameworkSpec.
#pragma once

#include "qsim/sim/architecture.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qsim::sim {

struct FrameworkSpec {
  std::string name;  // the architecture's name
  int workers = 1;
  double restart_delay_s = 10;
  std::vector<std::string> handoff_command, worker_command;
  std::map<std::string, std::string> env;        // added to the protocol's environment
  nlohmann::json config = nlohmann::json::object();  // QSIM_CONFIG: the options in wall units
  std::map<std::string, std::string> configuration;  // for the report: what ran, in both units
  std::vector<std::string> notes;                    // floors and what they mean
  // checker category -> why this framework does that, from its documented behaviour
  std::map<std::string, std::string> explains;
  double startup_timeout_s = 30;                     // a worker's /health must answer within this
  // Whether a job held by a killed worker comes back, and within how much wall time (0: it
  // does not, or not by a bound the harness can state).
  double recovery_wall_ms = 0;
};

// Reads a framework's options (its scenario section) into a spec: durations are simulated time,
// turned into wall seconds with the architecture's speedup and raised to the framework's floor,
// each recorded in the configuration with what really ran.
class FrameworkOptions {
public:
  // Also fills the spec's name, workers and restart delay from the scenario's section of `kind`
  // (or its defaults).
  FrameworkOptions(const Scenario& s, const std::string& kind, FrameworkSpec& spec);
  const FrameworkArch& section() const { return f_; }
  // A duration option (simulated seconds, default `fallback_s`) in wall seconds, at least
  // `floor_wall_s`, rounded up to whole seconds if `whole_seconds`.
  double wall_s(const std::string& key, double fallback_s, double floor_wall_s, bool whole_seconds = false,
                const std::string& why_floor = {});
  long long integer(const std::string& key, long long fallback);
  bool flag(const std::string& key, bool fallback);
  std::string text(const std::string& key, const std::string& fallback);
  const nlohmann::json* raw(const std::string& key) const;
  // ScenarioError at the section's path.
  [[noreturn]] void fail(const std::string& key, const std::string& why) const;
  double speedup() const { return speedup_; }

private:
  // The configuration entry of `key`: what ran, marked when it is the framework's default.
  void record(const std::string& key, std::string text);

  const Scenario& s_;
  const FrameworkArch f_;
  FrameworkSpec& spec_;
  double speedup_;
};

// The folder of the adapters: $QSIM_FRAMEWORKS_DIR, else the source tree's system/frameworks.
std::string frameworks_dir();

std::unique_ptr<Architecture> make_framework_architecture(FrameworkSpec spec);

}  // namespace qsim::sim
