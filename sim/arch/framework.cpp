#include "framework.h"

#include "qsim/sim/redis_server.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace qsim::sim {

std::string frameworks_dir() {
  if (const char* d = std::getenv("QSIM_FRAMEWORKS_DIR"); d && *d) return d;
  return QSIM_SOURCE_FRAMEWORKS_DIR;
}

namespace {

std::string seconds_text(double s) {
  if (s >= 1) return fmt::format("{:g} s", std::round(s * 1000) / 1000);
  return fmt::format("{:g} ms", std::round(s * 1e6) / 1000);
}

}  // namespace

FrameworkOptions::FrameworkOptions(const Scenario& s, const std::string& kind, FrameworkSpec& spec)
    : s_(s), f_(s.framework(kind)), spec_(spec), speedup_(s.speedup_of(kind)) {
  spec.name = kind;
  spec.workers = f_.workers;
  spec.restart_delay_s = f_.restart_delay_s;
}

const nlohmann::json* FrameworkOptions::raw(const std::string& key) const {
  auto it = f_.options.find(key);
  return it == f_.options.end() ? nullptr : &*it;
}

void FrameworkOptions::record(const std::string& key, std::string text) {
  spec_.configuration[key] = std::move(text) + (raw(key) ? "" : " (default)");
}

void FrameworkOptions::fail(const std::string& key, const std::string& why) const {
  throw ScenarioError(s_.file, "$.architectures." + f_.kind + "." + key, why);
}

double FrameworkOptions::wall_s(const std::string& key, double fallback_s, double floor_wall_s, bool whole_seconds,
                                const std::string& why_floor) {
  double sim_s = fallback_s;
  if (const auto* v = raw(key)) {
    auto d = v->is_string() ? parse_duration_s(v->get<std::string>()) : std::nullopt;
    if (!d) fail(key, "expected a duration such as \"30s\" or \"2m\"");
    sim_s = *d;
  }
  double wall = sim_s / speedup_;
  double ran = std::max(wall, floor_wall_s);
  if (whole_seconds && ran > 0) ran = std::max(1.0, std::ceil(ran - 1e-9));  // 0 stays 0: "at once"
  std::string text = fmt::format("{} simulated = {} wall", seconds_text(sim_s), seconds_text(wall));
  if (ran > wall * (1 + 1e-9) || ran < wall * (1 - 1e-9)) {
    text += fmt::format("; ran as {} wall = {} simulated", seconds_text(ran), seconds_text(ran * speedup_));
    spec_.notes.push_back(fmt::format("{}: {} {} of simulated time is {} of wall time at speedup {:g}; it ran as {} "
                                      "({} of simulated time){}",
                                      f_.kind, key, seconds_text(sim_s), seconds_text(wall), speedup_,
                                      seconds_text(ran), seconds_text(ran * speedup_),
                                      why_floor.empty() ? "" : ": " + why_floor));
  }
  record(key, std::move(text));
  return ran;
}

long long FrameworkOptions::integer(const std::string& key, long long fallback) {
  long long v = fallback;
  if (const auto* j = raw(key)) {
    if (!j->is_number_integer()) fail(key, "expected an integer");
    v = j->get<long long>();
  }
  record(key, std::to_string(v));
  return v;
}

bool FrameworkOptions::flag(const std::string& key, bool fallback) {
  bool v = fallback;
  if (const auto* j = raw(key)) {
    if (!j->is_boolean()) fail(key, "expected true or false");
    v = j->get<bool>();
  }
  record(key, v ? "true" : "false");
  return v;
}

std::string FrameworkOptions::text(const std::string& key, const std::string& fallback) {
  std::string v = fallback;
  if (const auto* j = raw(key)) {
    if (!j->is_string()) fail(key, "expected a string");
    v = j->get<std::string>();
  }
  record(key, v);
  return v;
}

namespace {

class FrameworkArchitecture : public Architecture {
public:
  explicit FrameworkArchitecture(FrameworkSpec spec) : spec_(std::move(spec)), handoff_port_(free_loopback_port()) {}

  std::string name() const override { return spec_.name; }
  int workers() const override { return spec_.workers; }
  // The hand-off goes through the fault proxy's intake_handoff link when there is one: a delay
  // there widens the window between the store's paid and the enqueue.
  std::vector<std::string> intake_args(ArchEnv& env) const override {
    return {"--mode", "handoff", "--handoff-port", std::to_string(env.via("intake_handoff", handoff_port_))};
  }
  bool hands_off() const override { return true; }

  void start(ArchEnv& env) override {
    auto with = [&](std::map<std::string, std::string> e, const std::string& component, int health_port) {
      for (const auto& [k, v] : spec_.env) e[k] = v;
      e["QSIM_CONFIG"] = spec_.config.dump();
      e["QSIM_COMPONENT"] = component;
      e["QSIM_HEALTH_PORT"] = std::to_string(health_port);
      return e;
    };
    auto handoff_env = with(env.framework_env("intake_redis"), spec_.name + "_handoff", handoff_port_);
    handoff_env["QSIM_HANDOFF_PORT"] = std::to_string(handoff_port_);
    env.start(env.program("handoff", spec_.handoff_command, std::move(handoff_env), spec_.restart_delay_s));
    std::vector<std::pair<std::string, int>> health;
    for (int i = 0; i < spec_.workers; ++i) {
      const std::string instance = fmt::format("worker-{}", i);
      const std::string id = fmt::format("{}-w{}", spec_.name, i);
      const int port = free_loopback_port();
      auto e = with(env.framework_env("worker_redis"), spec_.name + "_worker", port);
      e["QSIM_WORKER_ID"] = id;
      handles_[instance] = env.start(env.program(instance, spec_.worker_command, std::move(e), spec_.restart_delay_s));
      ids_[instance] = id;
      health.emplace_back(instance, port);
    }
    // They start at once and come up together; a framework's start-up takes seconds.
    env.wait_healthy("handoff", handoff_port_, spec_.startup_timeout_s);
    for (const auto& [instance, port] : health) env.wait_healthy(instance, port, spec_.startup_timeout_s);
    for (const auto& n : spec_.notes) env.note(n);
    env.note(fmt::format("{}: the payment intake marks the order paid, then hands it to {}'s own client over "
                         "HTTP (system/frameworks/README.md); the two steps are not atomic: an intake that dies "
                         "between them leaves the order to the provider's retry, and one that dies after the "
                         "enqueue but before recording the job makes a second job for the order",
                         spec_.name, spec_.name));
  }

  ProbePlan probe_plan(int probe_orders) const override {
    return {1.0, 0.05,
            fmt::format("{} orders paid one at a time to idle workers at speedup 1 (the framework's hand-off and "
                        "pickup are real time), each after a random pause; resolution 1 ms",
                        probe_orders)};
  }

  // A framework's idle timers (blocking pops, heartbeats, schedulers) are real time: what it asks
  // of Redis in an idle day is counted at speedup 1.
  double idle_speedup(double) const override { return 1; }
  double idle_window_wall_s() const override { return 2; }
  std::string idle_speedup_reason(double) const override {
    return "a framework's idle timers (blocking pops, heartbeats, schedulers) are real time; its options stay as "
           "the workload ran them";
  }

  std::map<std::string, int> targets() const override { return handles_; }
  std::map<std::string, std::string> worker_ids() const override { return ids_; }
  double recovery_wall_ms() const override { return spec_.recovery_wall_ms; }

  // An order picked up again shows a later "processing".
  std::optional<double> redelivered_after(ArchEnv&, const KillRecovery& k, const OrderRecord& order,
                                          const std::string&) override {
    return picked_up_again_after(k, order);
  }

  std::vector<std::string> explain(const ArchResult& r) const override {
    auto why = spec_.explains;
    bool intake_killed = false;
    for (const auto& f : r.faults) intake_killed = intake_killed || (f.kind == "kill_process" && f.target == "payment_intake");
    if (intake_killed) {
      auto& d = why["duplicate_deliveries"];
      d += std::string(d.empty() ? "" : "; or ") +
           "the payment intake was killed after the framework's client enqueued the order but before the job was "
           "recorded (the hand-off is not atomic with the store's paid), and the provider's retry enqueued it again";
    }
    return explain_counts(r, why);
  }

  void collect(ArchEnv& env, ArchResult& r) override {
    r.configuration = spec_.configuration;
    r.configuration["workers"] = std::to_string(spec_.workers);
    r.configuration["speedup"] = fmt::format("{:g}", env.scenario().speedup);
    if (spec_.recovery_wall_ms > 0) r.recovery_bound_s = spec_.recovery_wall_ms / 1e3 * env.scenario().speedup;
  }

private:
  FrameworkSpec spec_;
  int handoff_port_;
  std::map<std::string, int> handles_;
  std::map<std::string, std::string> ids_;
};

}  // namespace

std::unique_ptr<Architecture> make_framework_architecture(FrameworkSpec spec) {
  return std::make_unique<FrameworkArchitecture>(std::move(spec));
}

}  // namespace qsim::sim
