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
//      pickup is not inflated by scaling (queue: 1; polling: poll interval = 40 ms of wall time);
//   3. the workload: every order of the scenario's arrival trace, paid by the load generator
//      (the payment provider: signed webhooks, retried on non-2xx or no answer) at its simulated
//      time, until every order is completed, failed or dead, or a generous deadline passes;
//   4. an idle window: nothing arrives; the store queries and Redis commands made meanwhile are
//      scaled to an idle simulated day;
//   5. the record: every order's stage times (Redis server time), the world's call log, the
//      queue's counters and INFO commandstats; the checker's verdict over them.
// Architectures run one after the other on the same arrival trace and seed, each under its
// own key tag, so their Redis commands can be told apart; or side by side (RunOptions), each on
// a private redis-server of its own.
//
// Times in results are simulated seconds from the workload's start. Stage times are stamped
// by Redis in milliseconds, so the resolution is speedup / 1000 simulated seconds.
#pragma once

#include "qsim/redis/connection.h"
#include "qsim/sim/results.h"
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
  // Every architecture at the same time, each with its own private redis-server (not with
  // redis_url); else one after the other on one server, each under its own key tag.
  std::optional<bool> side_by_side;         // none: the scenario's `side_by_side`
  // The private Redis with ACLs, a user per component (or the scenario's `redis_acl`). With
  // redis_url naming a user instead, every component connects as that user.
  bool redis_acl = false;
  bool probe = true;
  int probe_orders = 50;
  std::function<void(const Progress&)> on_progress;
  // An architecture's services are up: its Redis, key prefix and queue (the task store's tag);
  // `queue_engine`: the queue is qsim's own (a framework's is its own format). For a dashboard.
  std::function<void(const std::string& arch, const redis::Endpoint&, const std::string& prefix,
                     const std::string& queue, bool queue_engine)>
      on_services_up;
  std::function<void(const std::string& arch, const FaultEvent&)> on_fault;  // as each fires
  const std::atomic<bool>* cancel = nullptr; // set it (e.g. from a signal handler) to stop
};

// Throws ScenarioError (bad scenario or options), InfraError, Cancelled.
RunResult run_scenario(Scenario scenario, const RunOptions& options = {});

}  // namespace qsim::sim
