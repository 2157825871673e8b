// The redis family, faults of the run's private redis-server itself.
//   restart_redis      SIGKILLed and started again after a while, with the persistence the
//                      scenario asks for (none: everything is gone)
//   fill_redis_memory  its memory full for a while, with a policy (noeviction: maxmemory half
//                      of what is in use, and every write that needs memory fails with OOM; an
//                      evicting policy: maxmemory what is in use, and keys go, whichever the
//                      policy picks), then restored
//   fill_disk          its disk full for a while: the AOF directory is a small tmpfs (root
//                      only) that a filler file fills; Redis refuses writes (MISCONF) until
//                      the filler is removed
//   failover_redis     the run's Redis is a primary with a replica and a Sentinel; the primary
//                      is SIGKILLed and, down_after later, Sentinel promotes the replica. Replication is
//                      asynchronous: with a replica_lag, the replica is cut off that long
//                      before the kill, and whatever the primary acknowledged meanwhile is gone
#include "family.h"

namespace qsim::sim::faults {

namespace {

class Redis final : public Family {
public:
  std::vector<std::string> kinds() const override {
    return {"restart_redis", "fill_redis_memory", "fill_disk", "failover_redis"};
  }

  void read(const std::string& kind, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    RedisFault p;
    // One replica: a second failover would find none to promote.
    if (kind == "failover_redis" && !r.get("at", false))
      r.fail(r.at("at"), "missing (required): failover_redis fires once, at a given time; there is one replica to promote");
    read_when(r, f);
    if (kind == "failover_redis") {
      if (f.count > 1) r.fail(r.at("count"), "failover_redis fires once: there is one replica to promote");
      p.lag_s = r.duration("replica_lag", false, 0);
      p.down_after_s = r.duration("down_after", false, p.down_after_s);
      f.params = std::move(p);
      return;
    }
    if (kind != "restart_redis") p.full_s = r.duration("for", true, 0, true);  // fill_redis_memory, fill_disk
    if (kind == "fill_redis_memory") {
      p.policy = r.get("policy", false) ? r.one_of("policy", {"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
                                                              "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"})
                                        : "noeviction";
    } else if (kind == "restart_redis") {
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
    if (f.kind == "fill_disk") return live.fill_disk(p.full_s);
    if (f.kind == "failover_redis") return live.failover_redis(p.lag_s, p.down_after_s);
    live.restart_redis(p.down_s, p.persistence);
  }

  void fire(const Fault& f, const Firing&, ModelTarget& model) const override {
    const auto& p = std::get<RedisFault>(f.params);
    if (f.kind == "fill_redis_memory") {
      model.log("redis", "memory full, policy " + p.policy + (p.policy == "noeviction" ? "" : " (evictions not modelled)"));
      if (p.policy == "noeviction") return model.redis_refuses_writes(p.full_s, false);
      // Which keys an evicting policy drops, the model does not say: as for a Redis that is
      // down and keeps its data.
      return model.redis_down(p.full_s, false);
    }
    if (f.kind == "failover_redis") return model.failover_redis(p.lag_s, p.down_after_s);  // (which logs it)
    if (f.kind == "fill_disk") {
      model.log("redis", "disk full");
      return model.redis_refuses_writes(p.full_s, true);
    }
    model.log("redis", "persistence " + p.persistence);
    model.redis_restarted(p.down_s, p.persistence == "none");  // without persistence, whatever was not done is gone
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
  bool disk = false;
  for (const auto& f : faults) {
    if (auto* p = f.as<RedisFault>(); p && f.kind == "restart_redis") persistence = p->persistence;
    disk = disk || f.kind == "fill_disk";
  }
  // A full disk shows only to a Redis that writes an AOF, and with appendfsync always a failed
  // write makes Redis exit: everysec, where it refuses writes (MISCONF) and retries.
  if (disk && (persistence.empty() || persistence == "none")) return "everysec";
  return persistence;
}

std::size_t redis_disk_bytes(const std::vector<Fault>& faults) {
  for (const auto& f : faults)
    if (f.kind == "fill_disk") return 32u << 20;
  return 0;
}

bool redis_failover(const std::vector<Fault>& faults) {
  for (const auto& f : faults)
    if (f.kind == "failover_redis") return true;
  return false;
}

std::string private_redis_fault(const std::vector<Fault>& faults) {
  for (const auto& f : faults)
    if (f.as<RedisFault>()) return f.kind;
  return {};
}

}  // namespace qsim::sim
