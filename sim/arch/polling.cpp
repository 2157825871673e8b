// The legacy polling architecture: the payment intake only marks the order paid; one
// qsim-polling-worker process asks the store for a paid order every poll interval while idle,
// and waits one interval after each job, as the seed documents' loop does. Nobody gives a
// killed poller's order back.
#include "qsim/sim/architecture.h"

#include <fmt/format.h>

#include <algorithm>

namespace qsim::sim {

namespace {

class PollingArchitecture : public Architecture {
public:
  explicit PollingArchitecture(PollingArch config) : p_(config) {}

  std::string name() const override { return "polling"; }
  int workers() const override { return p_.workers; }
  std::vector<std::string> intake_args(ArchEnv&) const override { return {"--mode", "polling"}; }

  // The poller starts with the probe, at the probe's interval.
  void start(ArchEnv&) override {}

  ProbePlan probe_plan(int probe_orders) const override {
    // The pickup is the poll interval: compress it to 40 ms of wall time (a 10 s interval at
    // speedup 250, 0.25 s per millisecond stamp), fine enough to see 5-10 s, with payments at
    // random phases of the poll cycle. Each probe order costs about one interval of wall time.
    const double speedup = std::max(1.0, p_.poll_interval_s / 0.04);
    return {speedup, p_.poll_interval_s / speedup,
            fmt::format("{} orders paid one at a time to the idle poller at speedup {:g} (poll interval {:g} ms of "
                        "wall time), each after a random pause so that payments fall at random phases of the poll "
                        "cycle; resolution {:g} s",
                        probe_orders, speedup, p_.poll_interval_s / speedup * 1e3, speedup / 1000.0)};
  }

  void enter(ArchEnv& env, Phase phase, double speedup) override {
    // The idle window restarts the poller only if its interval changes.
    if (phase == Phase::idle && speedup == env.scenario().speedup) return;
    start_poller(env, p_.poll_interval_s / speedup);
  }

  // At the workload's speedup the interval can be under a millisecond of wall time, and then an
  // idle count says how fast this machine can poll rather than what the loop does (a busy CI
  // machine polled 15 % too rarely at 0.5 ms). So the idle window runs the poller at an interval
  // of at least 4 ms of wall time: 500 polls in its 2 s window, the count exact to 0.2 %.
  double idle_speedup(double workload_speedup) const override {
    return std::min(workload_speedup, std::max(1.0, p_.poll_interval_s / 0.004));
  }
  double idle_window_wall_s() const override { return 2; }
  std::string idle_speedup_reason(double idle_speedup) const override {
    return fmt::format("the workers restarted at speedup {:g}, so that the count is their loop's and not this "
                       "machine's polling speed",
                       idle_speedup);
  }

  std::map<std::string, int> targets() const override { return {{"worker-0", poller_}}; }
  std::map<std::string, std::string> worker_ids() const override { return {{"worker-0", "poller"}}; }

  // An order picked up again would show a later "processing".
  std::optional<double> redelivered_after(ArchEnv&, const KillRecovery& k, const OrderRecord& order,
                                          const std::string&) override {
    return picked_up_again_after(k, order);
  }

  std::vector<std::string> explain(const ArchResult& r) const override {
    return explain_counts(
        r, {{"stuck", "nothing gives back an order the poller claimed and did not finish (the poller killed, or its "
                      "finish lost with a Redis that failed over or restarted): it stays in the status the poller left "
                      "it in, as the seed documents describe"},
            {"duplicate_effect_calls", "the poller called the world again for an order it had started (restarted, or "
                                       "after Redis lost its progress); the world's idempotency keys kept the effect "
                                       "single"}});
  }

private:
  void start_poller(ArchEnv& env, double interval_wall_s) {
    if (poller_ >= 0) env.stop(poller_);
    poller_ = env.start(env.component(
        "polling_worker", "qsim-polling-worker",
        {"--id", "poller", "--poll-interval-ms", fmt::format("{:.4f}", interval_wall_s * 1e3), "--world-port",
         std::to_string(env.via("worker_world", env.world_port())), "--finalize-port",
         std::to_string(env.via("worker_finalize", env.finalize_port())), "--stage-timeout-ms",
         std::to_string(env.stage_timeout_ms())},
        "worker_redis"));
  }

  PollingArch p_;
  int poller_ = -1;
};

}  // namespace

std::unique_ptr<Architecture> make_polling(const Scenario& s) {
  if (!s.polling) throw ScenarioError(s.file, "$.architectures", "the scenario does not configure polling");
  return std::make_unique<PollingArchitecture>(*s.polling);
}

}  // namespace qsim::sim
