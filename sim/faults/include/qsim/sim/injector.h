// The fault injector: carries out a FaultPlan against one architecture's running processes,
// from outside the components, as the fault families (fault.h) direct — signals through the Supervisor, the private redis-server's
// process, the simulated world's configuration, the queue (poison jobs) and extra webhook
// requests from the payment provider. Every fault it fires is logged with its simulated time.
//
// Two threads: one fires timed and stage-triggered faults and keeps the world's configuration
// in step with the fault windows; one sends the provider's extra webhooks (duplicates,
// replays, forgeries, late deliveries) at their planned times.
#pragma once

#include "qsim/redis/connection.h"
#include "qsim/sim/fault_proxy.h"
#include "qsim/sim/fault.h"
#include "qsim/sim/redis_server.h"
#include "qsim/sim/results.h"
#include "qsim/sim/scenario.h"
#include "qsim/sim/supervisor.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qsim::sim::detail {

struct InjectorContext {
  const Scenario* scenario = nullptr;
  const FaultPlan* plan = nullptr;
  std::string arch;
  // The architecture runs on qsim's queue engine: a worker's order is the job it holds a lease
  // on, and poison jobs reach it. Else a worker's order is the in-flight one stamped with its id.
  bool leases = false;
  // The payment intake hands paid orders to a framework's client in a second step (the
  // kill_process stage "handoff" applies).
  bool handoff = false;
  Supervisor* supervisor = nullptr;
  RedisServer* server = nullptr;          // null with --redis: restart_redis is refused earlier
  std::function<void()> restart_redis;    // starts `server` again on a thread that outlives the run
  RedisServer* replica = nullptr;         // failover_redis: the replica Sentinel promotes when `server` dies
  std::function<void(int)> rejoin_redis;  // failover_redis: starts `server` again, a replica of the port given
  FaultProxy* replication = nullptr;      // failover_redis: the replica's link to `server`, link "replication"
  int replication_port = 0;               // the replica's upstream: that link's port on the proxy
  redis::Endpoint endpoint;
  std::string prefix, tag;
  std::map<std::string, int> processes;   // instance name (worker-0, payment_intake, ...) -> handle
  std::map<std::string, std::string> worker_ids;  // instance name -> the worker id it stamps on orders
  int world_port = 0, intake_port = 0;  // intake_port: the provider's way in (through the proxy, if any)
  FaultProxy* proxy = nullptr;           // set when the scenario has network faults
  std::map<std::string, std::string> clock_files;  // instance -> the offset file its libfaketime reads
  std::string payment_secret;
  std::chrono::steady_clock::time_point t0;
  double speedup = 1;
  // the world's configuration for time t, given how often each stage fault has fired
  std::function<void(double sim_t, const std::vector<int>& stage_fired)> reconfigure_world;
  std::function<std::string(std::size_t)> order_id;
  std::function<std::string(std::size_t)> payment_body;
  std::function<void(const FaultEvent&)> on_fault;  // as each fires (from the injector's threads)
};

class Injector {
public:
  explicit Injector(InjectorContext c);
  ~Injector();
  void start();
  void stop();                      // joins; resumes anything it paused
  bool webhooks_done() const { return webhooks_done_; }
  std::vector<int> stage_fired() const;

  // results, valid after stop()
  std::vector<FaultEvent> events;
  std::map<std::string, long long> counts;
  std::vector<KillRecovery> kills;
  // With a Sentinel: the failovers it made that no failover_redis asked for (at least this
  // many; read from its config epoch at stop()).
  int unplanned_failovers = 0;
  std::map<std::string, std::map<std::string, long long>> webhooks;
  long long forged_accepted = 0, poison_enqueued = 0;

private:
  class Live;  // the families' LiveTarget over this injector and one connection
  double sim_now() const;
  std::chrono::microseconds wall(double sim_s) const;  // a simulated duration in wall time
  void log(const std::string& kind, const std::string& target, const std::string& detail, bool count = true);
  void faults_loop();
  void webhooks_loop();
  void fire(const Firing& f, redis::Connection& c);
  // job_only: the processes the worker runs its jobs in, not the worker (Fault::process "job").
  void kill(const std::string& instance, const std::string& why, redis::Connection& c, bool job_only = false);
  std::vector<std::string> held_by(const std::string& worker_id, redis::Connection& c);
  std::map<std::string, std::string> leased(redis::Connection& c);
  void stage_faults(redis::Connection& c, std::size_t& calls_seen);
  void network_faults(double now);
  void run_due(redis::Connection& c, bool all);
  void clock_faults(double now, redis::Connection& c);
  void failover(double lag_s, double down_after_s);  // failover_redis, on failover_thread_
  void count_unplanned_failovers();
  int failovers_asked_ = 0;  // SENTINEL FAILOVERs Sentinel took (failover_thread_; read after it)
  bool sentinel_read_ = false;

  InjectorContext c_;
  std::atomic<bool> stop_{false}, webhooks_done_{false};
  mutable std::mutex mu_;
  std::vector<int> stage_fired_;
  std::map<std::string, std::vector<bool>> network_active_;  // link -> which network faults hold
  std::map<std::string, double> clock_now_;                  // skew_clock target -> offset now, s
  std::vector<std::map<std::string, bool>> stage_seen_;
  // (order, worker id) -> Redis's clock (ms) when that worker was killed holding that order
  std::map<std::pair<std::string, std::string>, long long> killed_holding_ms_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, int>> resume_;  // SIGCONT due, handle
  // what ends a fault window on Redis (fill_redis_memory), and when; faults thread only
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::function<void(redis::Connection&)>>> later_;
  std::thread faults_thread_, webhooks_thread_, failover_thread_;
};

}  // namespace qsim::sim::detail
