// An architecture under test: the processes that take a paid order from the payment intake to
// the finalize service. The live orchestrator (run/) runs every architecture through this one
// interface, phase by phase; it knows no architecture by name.
//
// What an architecture decides:
//   - what it starts: its workers, as supervised processes, through ArchEnv (start);
//   - how a paid order reaches it: the payment intake's mode and options (intake_args);
//   - the probe: the speedup it is measured at, and what the workload and idle phases run
//     (enter), e.g. the poller's interval;
//   - which processes a kill_process or pause_process target names (targets);
//   - what it reports beyond the common metrics (collect), including when a worker's held order
//     came back after a kill (recovery);
//   - how it stops (stop; the supervisor stops its processes in any case).
//
// To add one: a file in arch/ with a class implementing Architecture, its entry in
// scenarios/schema.json, and one line in builtin_architectures() (registry.cpp). A test can
// register one of its own with register_architecture().
//
// Thread-safety: an Architecture is used from the orchestrator's thread only.
#pragma once

#include "qsim/sim/results.h"
#include "qsim/sim/scenario.h"
#include "qsim/sim/supervisor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qsim::queue {
class Queue;
}

namespace qsim::sim {

// What the orchestrator offers an architecture while it runs.
class ArchEnv {
public:
  virtual ~ArchEnv() = default;
  virtual const Scenario& scenario() const = 0;  // its speedup is this architecture's
  // A process spec for one of the components in the bin folder, with the run's Redis (through
  // the fault proxy's `redis_link` when there is one), key tag, prefix and secrets.
  virtual ProcessSpec component(const std::string& name, const std::string& exe, std::vector<std::string> args,
                                const std::string& redis_link) = 0;
  // A process spec for a program outside the bin folder (a framework's worker, an external
  // command): `command` is looked up in PATH unless it names a path; its stderr goes to the
  // run's logs; `env` is added to the harness's environment.
  virtual ProcessSpec program(const std::string& name, std::vector<std::string> command,
                              std::map<std::string, std::string> env, double restart_delay_s) = 0;
  // The environment of system/frameworks/README.md for a process of a framework under test:
  // the run's Redis over `redis_link` (the fault proxy's when there is one), the queue name, the
  // store's base and transition script, the world's and finalize's URLs over the worker links,
  // the finalize secret and the stage timeout.
  virtual std::map<std::string, std::string> framework_env(const std::string& redis_link) = 0;
  // Starts it under the supervisor and waits until its /health on `port` answers (InfraError).
  virtual int start_http(ProcessSpec spec, int port) = 0;
  // Waits until GET /health on `port` answers 200 (InfraError after `timeout_s`, with the log of
  // the process `name`).
  virtual void wait_healthy(const std::string& name, int port, double timeout_s) = 0;
  // Starts it under the supervisor; InfraError if it exits at once.
  virtual int start(ProcessSpec spec) = 0;
  virtual void stop(int handle) = 0;
  // The port a caller uses to reach `upstream` over `link` (the fault proxy's when there is one).
  virtual int via(const std::string& link, int upstream) = 0;
  virtual int world_port() const = 0;
  virtual int finalize_port() const = 0;
  virtual long stage_timeout_ms() const = 0;     // a hung call to the world or finalize fails after this
  virtual void note(std::string text) = 0;       // goes into the report's notes
  // The run's queue (under this architecture's key tag), for what the engine reports.
  virtual queue::Queue& queue() = 0;
  // Redis server time (ms) -> simulated seconds from the workload's start.
  virtual double sim_of_ms(std::int64_t ms) const = 0;
};

struct ProbePlan {
  double speedup = 1;    // the probe's: low enough that the pickup is not inflated by scaling
  double gap_max_s = 0;  // wall seconds: the random pause before each payment is below this
  std::string method;    // how the probe was taken, for the report
};

enum class Phase { probe, workload, idle };

class Architecture {
public:
  virtual ~Architecture() = default;
  virtual std::string name() const = 0;
  virtual int workers() const = 0;
  // It runs on qsim's queue engine (under the run's key tag): a worker's order is the job it
  // holds a lease on, poison jobs reach it, and the engine's counters and dead letters are its.
  virtual bool on_queue_engine() const { return false; }
  // The payment intake's mode and options (a port it calls goes through env.via()).
  virtual std::vector<std::string> intake_args(ArchEnv& env) const = 0;
  // The intake hands a paid order to the architecture in a second step, not in the store's
  // payment script (a framework's client): the kill_process stage "handoff" applies.
  virtual bool hands_off() const { return false; }
  // Starts the workers (before the probe).
  virtual void start(ArchEnv& env) = 0;
  virtual ProbePlan probe_plan(int probe_orders) const = 0;
  // Entering a phase at `speedup` (the idle phase may run at a lower one: idle_speedup).
  virtual void enter(ArchEnv& env, Phase phase, double speedup) {
    (void)env, (void)phase, (void)speedup;
  }
  // The idle window's speedup (the workload's unless the architecture needs a slower one) and
  // its length in wall seconds.
  virtual double idle_speedup(double workload_speedup) const { return workload_speedup; }
  virtual double idle_window_wall_s() const { return 1; }
  // Why the idle window runs at a speedup of its own, for the report's note (when it does).
  virtual std::string idle_speedup_reason(double idle_speedup) const {
    (void)idle_speedup;
    return {};
  }
  // kill_process / pause_process targets: instance name (worker-0, ...) -> supervisor handle,
  // and the worker id each stamps on the orders it holds.
  virtual std::map<std::string, int> targets() const = 0;
  virtual std::map<std::string, std::string> worker_ids() const = 0;
  // The wall time within which an order held by a killed worker comes back (0: never).
  virtual double recovery_wall_ms() const { return 0; }
  // When a worker killed while it held k.order's job saw the order given back (simulated s
  // after the kill), or none.
  virtual std::optional<double> redelivered_after(ArchEnv& env, const KillRecovery& k, const OrderRecord& order,
                                                  const std::string& job_id) = 0;
  // Figures beyond the common ones, once the workload is over (r.checker is set).
  virtual void collect(ArchEnv& env, ArchResult& r) { (void)env, (void)r; }
  virtual void stop(ArchEnv& env) { (void)env; }
  // Each non-zero loss or duplicate of `r` (its checker is set) explained in a sentence tied to
  // the architecture's documented behaviour: explain_counts() with its sentences.
  virtual std::vector<std::string> explain(const ArchResult& r) const {
    (void)r;
    return {};
  }
};

// When an order held by a killed worker was picked up again, for an architecture without leases:
// its "processing" stamp after the kill (simulated s after it), or none.
std::optional<double> picked_up_again_after(const KillRecovery& k, const OrderRecord& order);

// "stuck 4: <why>" for every checker category of `r` that is not zero and has a sentence in
// `why` (keys: lost, stuck, failed_visible, duplicate_deliveries, duplicate_effect_calls,
// duplicate_effects, missing_effects, orphaned_effects, undelivered_payments); kills that were
// never given back are counted beside stuck and lost. Lost and undelivered payments have a
// sentence of their own that names Redis's evictions when there were any.
std::vector<std::string> explain_counts(const ArchResult& r, const std::map<std::string, std::string>& why);

using ArchitectureFactory = std::function<std::unique_ptr<Architecture>(const Scenario&)>;

// Registers (or replaces) an architecture by name: `sim run --arch NAME` and
// RunOptions::architectures then reach it. The factory throws ScenarioError when the scenario
// lacks what it needs.
void register_architecture(const std::string& name, ArchitectureFactory factory);
bool architecture_registered(const std::string& name);
std::unique_ptr<Architecture> make_architecture(const std::string& name, const Scenario& s);

// qsim's queue engine under `name` with the given configuration: a building block for variants
// (a test registers one with a single worker and no retries).
std::unique_ptr<Architecture> make_queue_architecture(std::string name, QueueArch config);

// The architectures a live run covers: `requested` (each registered), or every one the
// scenario configures. ScenarioError("--arch") otherwise.
std::vector<std::string> live_architectures(const Scenario& s, const std::vector<std::string>& requested);

}  // namespace qsim::sim
