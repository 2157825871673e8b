// The queue architecture: the payment intake stores the payment and enqueues the job in one
// Lua script; N qsim-queue-worker processes reserve jobs with a lease, and a reaper gives an
// expired lease's job back to the queue.
#include "qsim/sim/architecture.h"

#include "qsim/queue/queue.h"
#include "qsim/sim/redis_server.h"

#include <fmt/format.h>

#include <algorithm>

namespace qsim::sim {

namespace {

class QueueArchitecture : public Architecture {
public:
  QueueArchitecture(std::string name, QueueArch config) : name_(std::move(name)), q_(config) {}

  std::string name() const override { return name_; }
  int workers() const override { return q_.workers; }
  bool on_queue_engine() const override { return true; }

  std::vector<std::string> intake_args(ArchEnv&) const override {
    return {"--mode", "queue", "--max-attempts", std::to_string(q_.attempts)};
  }

  void start(ArchEnv& env) override {
    const double speedup = env.scenario().speedup;
    const double lease_ms = q_.lease_s / speedup * 1e3;
    lease_wall_ms_ = std::max(lease_ms, 250.0);
    if (lease_wall_ms_ > lease_ms)
      env.note(fmt::format("lease {:.0f} s simulated is {:.2f} ms of wall time; raised to 250 ms so that scheduling "
                           "hiccups on a loaded machine do not expire healthy leases",
                           q_.lease_s, lease_ms));
    reaper_wall_ms_ = std::max(50.0, lease_wall_ms_ / 4);
    const double backoff_ms = std::max(1.0, q_.backoff_base_s / speedup * 1e3);
    for (int i = 0; i < q_.workers; ++i) {
      const int port = free_loopback_port();
      const std::string instance = fmt::format("worker-{}", i);
      handles_[instance] = env.start_http(
          env.component(instance, "qsim-queue-worker",
                        {"--id", fmt::format("qw{}", i), "--health-port", std::to_string(port), "--world-port",
                         std::to_string(env.via("worker_world", env.world_port())), "--finalize-port",
                         std::to_string(env.via("worker_finalize", env.finalize_port())), "--lease-ms",
                         std::to_string(static_cast<long>(lease_wall_ms_)), "--reaper-tick-ms",
                         std::to_string(static_cast<long>(reaper_wall_ms_)), "--backoff-ms",
                         std::to_string(static_cast<long>(backoff_ms)), "--backoff-factor",
                         q_.backoff == QueueArch::Backoff::constant ? "1" : "2", "--stage-timeout-ms",
                         std::to_string(env.stage_timeout_ms())},
                        "worker_redis"),
          port);
      ids_[instance] = fmt::format("qw{}", i);
    }
  }

  ProbePlan probe_plan(int probe_orders) const override {
    // The hand-off does not shrink with speedup: measure it at speedup 1.
    return {1.0, 0.02,
            fmt::format("{} orders paid one at a time to idle workers at speedup 1 (the hand-off is real time and does "
                        "not shrink with speedup), each after a random pause; resolution 1 ms",
                        probe_orders)};
  }

  std::map<std::string, int> targets() const override { return handles_; }
  std::map<std::string, std::string> worker_ids() const override { return ids_; }
  double recovery_wall_ms() const override { return lease_wall_ms_ + reaper_wall_ms_; }

  // The job's own history says when the reaper gave it back ("redelivered").
  std::optional<double> redelivered_after(ArchEnv& env, const KillRecovery& k, const OrderRecord&,
                                          const std::string& job_id) override {
    if (job_id.empty()) return std::nullopt;
    auto st = env.queue().status(job_id);
    if (!st || !st.value) return std::nullopt;
    for (const auto& h : st.value->history)
      if (h.state == "redelivered" && env.sim_of_ms(h.at_ms) > k.kill_t_s) return env.sim_of_ms(h.at_ms) - k.kill_t_s;
    return std::nullopt;
  }

  std::vector<std::string> explain(const ArchResult& r) const override {
    return explain_counts(
        r, {{"duplicate_deliveries",
             "a worker paused past its lease (or cut off from Redis) loses the job to the reaper, which gives it to "
             "another worker; the store's transitions let one delivery move the order on, so work is repeated but no "
             "effect is applied twice"},
            {"duplicate_effect_calls",
             "a redelivered job called the world again with the same idempotency key; the world applied nothing twice"},
            {"stuck", "still in flight when the workload ended: a retry's backoff or a lease outlasted the run"},
            {"failed_visible", "its attempts were used up; the order is dead with its reason, and the job is in the "
                               "dead-letter queue"}});
  }

  void collect(ArchEnv& env, ArchResult& r) override {
    r.recovery_bound_s = recovery_wall_ms() / 1e3 * env.scenario().speedup;
  }

private:
  std::string name_;
  QueueArch q_;
  double lease_wall_ms_ = 0, reaper_wall_ms_ = 0;
  std::map<std::string, int> handles_;
  std::map<std::string, std::string> ids_;
};

}  // namespace

std::unique_ptr<Architecture> make_queue_architecture(std::string name, QueueArch config) {
  return std::make_unique<QueueArchitecture>(std::move(name), config);
}

std::unique_ptr<Architecture> make_queue(const Scenario& s) {
  if (!s.queue) throw ScenarioError(s.file, "$.architectures", "the scenario does not configure queue");
  return make_queue_architecture("queue", *s.queue);
}

}  // namespace qsim::sim
