// The redis family, faults of the run's private redis-server itself.
//   restart_redis      SIGKILLed and started again after a while, with the persistence the
//                      scenario asks for (none: everything is gone)
//   fill_redis_memory  its memory full for a while: maxmemory set to what is in use, with a
//                      policy (noeviction: every write that needs memory fails with OOM; an
//                      evicting policy: keys go, whichever the policy picks), then restored
#include "family.h"

#include <fmt/format.h>

namespace qsim::sim::faults {

namespace {

class Redis final : public Family {
public:
  std::vector<std::string> kinds() const override { return {"restart_redis", "fill_redis_memory"}; }

  void read(const std::string& kind, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    RedisFault p;
    read_when(r, f);
    if (kind == "fill_redis_memory") {
      p.full_s = r.duration("for", true, 0, true);
      p.policy = r.get("policy", false) ? r.one_of("policy", {"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                                                              "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"})
                                        : "noeviction";
    } else {
      p.down_s = r.duration("down_for", false, 0);
      p.persistence = r.get("persistence", false) ? r.one_of("persistence", {"none", "everysec", "always"}) : "none";
    }
    f.params = std::move(p);
  }

  void plan_timed(const Fault& f, std::size_t index, Stream& rng, double horizon_s, FaultPlan& out) const override {
    plan_at_or_every(f, index, "", rng, horizon_s, out);
  }

  void fire(const Fault& f, const Firing&, LiveTarget& live) const override {
    const auto& p = std::get<RedisFault>(f.params);
    if (f.kind == "fill_redis_memory") return live.fill_redis_memory(p.full_s, p.policy);
    live.restart_redis(p.down_s, p.persistence);
  }

  void fire(const Fault& f, const Firing&, ModelTarget& model) const override {
    const auto& p = std::get<RedisFault>(f.params);
    if (f.kind == "fill_redis_memory") {
      // Writes fail while it is full, so nothing moves: as for a Redis that is down and keeps
      // its data. Which keys an evicting policy drops, the model does not say.
      model.log("redis", "memory full, policy " + p.policy + (p.policy == "noeviction" ? "" : " (evictions not modelled)"));
      return model.redis_down(p.full_s, false);
    }
    model.log("redis", "persistence " + p.persistence);
    model.redis_down(p.down_s, p.persistence == "none");  // without persistence, whatever was not done is gone
  }
};

}  // namespace

const Family& redis_family() {
  static const Redis family;
  return family;
}

}  // namespace qsim::sim::faults

namespace qsim::sim {

std::string redis_persistence(const std::vector<Fault>& faults) {
  std::string persistence;
  for (const auto& f : faults)
    if (auto* p = f.as<RedisFault>(); p && f.kind == "restart_redis") persistence = p->persistence;
  return persistence;
}

std::string private_redis_fault(const std::vector<Fault>& faults) {
  for (const auto& f : faults)
    if (f.as<RedisFault>()) return f.kind;
  return {};
}

}  // namespace qsim::sim
