#include "qsim/sim/architecture.h"
#include "qsim/sim/checker.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <mutex>

namespace qsim::sim {

std::unique_ptr<Architecture> make_polling(const Scenario& s);  // polling.cpp
std::unique_ptr<Architecture> make_queue(const Scenario& s);    // queue.cpp
std::unique_ptr<Architecture> make_rq(const Scenario& s);       // rq.cpp
std::unique_ptr<Architecture> make_celery(const Scenario& s);   // celery.cpp
std::unique_ptr<Architecture> make_bullmq(const Scenario& s);   // bullmq.cpp
std::unique_ptr<Architecture> make_sidekiq(const Scenario& s);  // sidekiq.cpp
std::unique_ptr<Architecture> make_external(const Scenario& s); // external.cpp

namespace {

// Every architecture qsim ships, one line each.
std::map<std::string, ArchitectureFactory> builtin_architectures() {
  return {
      {"polling", make_polling},
      {"queue", make_queue},
      {"rq", make_rq},
      {"celery", make_celery},
      {"bullmq", make_bullmq},
      {"sidekiq", make_sidekiq},
      {"external", make_external},
  };
}

struct Registry {
  std::mutex mu;
  std::map<std::string, ArchitectureFactory> factories = builtin_architectures();
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_architecture(const std::string& name, ArchitectureFactory factory) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.factories[name] = std::move(factory);
}

bool architecture_registered(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  return r.factories.count(name) > 0;
}

std::unique_ptr<Architecture> make_architecture(const std::string& name, const Scenario& s) {
  ArchitectureFactory f;
  {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : r.factories) known.push_back(k);
      throw ScenarioError("--arch", "$", fmt::format("unknown architecture '{}' (known: {})", name, fmt::join(known, ", ")));
    }
    f = it->second;
  }
  return f(s);
}

std::optional<double> picked_up_again_after(const KillRecovery& k, const OrderRecord& order) {
  const double* picked = order.stages_s.get("processing");
  if (picked && *picked > k.kill_t_s) return *picked - k.kill_t_s;
  return std::nullopt;
}

std::vector<std::string> explain_counts(const ArchResult& r, const std::map<std::string, std::string>& why) {
  const auto& c = r.checker;
  // Kills whose order never came back and ended stuck (still in flight) or gone (neither in
  // flight nor finished), in the checker's terms: the rest of the stuck or lost orders were not
  // held by a killed worker.
  long long held_stuck = 0, held_lost = 0;
  for (const auto& k : r.kills) {
    if (k.redelivered_after_s) continue;
    for (const auto& o : r.orders) {
      if (o.id != k.order) continue;
      if (in_flight(o.status)) ++held_stuck;
      else if (!finished(o.status)) ++held_lost;
    }
  }
  const std::vector<std::pair<std::string, long long>> counts{
      {"lost", c.lost},
      {"stuck", c.stuck},
      {"failed_visible", c.failed_visible},
      {"duplicate_deliveries", c.duplicate_deliveries},
      {"duplicate_effect_calls", c.duplicate_effect_calls},
      {"duplicate_effects", c.duplicate_effects},
      {"missing_effects", c.missing_effects},
      {"orphaned_effects", c.orphaned_effects},
      {"undelivered_payments", c.undelivered_payments}};
  // Lost is the same for every architecture: the store forgot an order whose payment it had
  // acknowledged, and only Redis forgets.
  auto reasons = why;
  const bool evicted = r.redis_evicted_keys > 0;
  reasons.emplace("lost", "the payment was acknowledged but the store forgot the order (" +
                              (evicted ? fmt::format("Redis evicted {} keys while its memory was full", r.redis_evicted_keys)
                                       : std::string("a Redis restart without persistence")) +
                              ")");
  reasons.emplace("undelivered_payments",
                  std::string("the payment provider gave up after 10 deliveries the intake did not accept") +
                      (evicted ? ": an order evicted before its payment came is unknown to the intake" : ""));
  std::vector<std::string> out;
  for (const auto& [name, n] : counts) {
    if (n == 0) continue;
    auto it = reasons.find(name);
    if (it == reasons.end()) continue;
    std::string held;
    const long long held_by_killed = name == "stuck" ? held_stuck : name == "lost" ? held_lost : 0;
    if (held_by_killed > 0)
      held = fmt::format(" ({} held by a worker when it was killed, and never picked up again)", held_by_killed);
    out.push_back(fmt::format("{} {}{}: {}", name, n, held, it->second));
  }
  return out;
}

std::vector<std::string> live_architectures(const Scenario& s, const std::vector<std::string>& requested) {
  if (requested.empty()) return architectures_of(s, {});
  for (const auto& a : requested) {
    const bool known = architecture_registered(a);
    try {
      (void)make_architecture(a, s);
    } catch (const ScenarioError& e) {
      if (!known) throw;  // unknown: the error lists the known ones
      throw ScenarioError("--arch", "$", fmt::format("architecture '{}' cannot run this scenario: {}", a, e.what()));
    }
  }
  return requested;
}

}  // namespace qsim::sim
