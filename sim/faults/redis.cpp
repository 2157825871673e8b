// The redis family: restart_redis. The run's private redis-server is SIGKILLed and started
// again after a while, with the persistence the scenario asks for (none: everything is gone).
#include "family.h"

#include <fmt/format.h>

namespace qsim::sim::faults {

namespace {

class Redis final : public Family {
public:
  std::vector<std::string> kinds() const override { return {"restart_redis"}; }

  void read(const std::string&, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    RedisFault p;
    read_when(r, f);
    p.down_s = r.duration("down_for", false, 0);
    p.persistence = r.get("persistence", false) ? r.one_of("persistence", {"none", "everysec", "always"}) : "none";
    f.params = std::move(p);
  }

  void plan_timed(const Fault& f, std::size_t index, Stream& rng, double horizon_s, FaultPlan& out) const override {
    plan_at_or_every(f, index, "", rng, horizon_s, out);
  }

  void fire(const Fault& f, const Firing&, LiveTarget& live) const override {
    const auto& p = std::get<RedisFault>(f.params);
    live.restart_redis(p.down_s, p.persistence);
  }

  void fire(const Fault& f, const Firing&, ModelTarget& model) const override {
    const auto& p = std::get<RedisFault>(f.params);
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
    if (auto* p = f.as<RedisFault>()) persistence = p->persistence;
  return persistence;
}

}  // namespace qsim::sim
