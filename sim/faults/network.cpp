// The network family: delay_network, reset_connections, blackhole, limit_bandwidth. Each acts
// on one link between processes, which the run routes through its TCP fault proxy: latency and
// jitter, resets (every open connection at a moment, or each with a probability), a blackhole
// (bytes are held, and passed on once it lifts) and a bandwidth limit.
#include "family.h"

#include <algorithm>

namespace qsim::sim::faults {

namespace {

class Network final : public Family {
public:
  std::vector<std::string> kinds() const override {
    return {"delay_network", "reset_connections", "blackhole", "limit_bandwidth"};
  }

  void read(const std::string& kind, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    NetworkFault p;
    p.link = r.one_of("link", network_links());
    if (kind == "delay_network") {
      p.latency_s = r.duration("latency");
      p.jitter_s = r.duration("jitter", false, 0);
      read_window(r, f);
    } else if (kind == "limit_bandwidth") {
      p.bytes_per_s = r.number("bytes_per_s", 1, 1e12);
      read_window(r, f);
    } else if (kind == "blackhole") {
      // A blackhole must lift: at + for, or a window with an end. Named at the fault, as the
      // schema's oneOf does.
      const bool span = r.has("at") && r.has("for");
      if (span == r.has("until")) r.fail(r.path(), "exactly one of \"at\" and \"for\", or \"until\" (when the blackhole lifts)");
      if (span) {
        f.from_s = r.duration("at");
        f.until_s = f.from_s + r.duration("for", true, 0, true);
      } else {
        read_window(r, f);
      }
    } else {  // reset_connections
      if (r.has("at") == r.has("probability")) r.fail(r.path(), "exactly one of \"at\" or \"probability\"");
      if (r.has("at")) {
        f.at_s = r.duration("at");
        f.count = 1;
      } else {
        f.probability = r.number("probability", 0, 1);
        read_window(r, f);
      }
    }
    f.params = std::move(p);
  }

  // reset_connections at a moment is a firing; the rest are windows (link_states).
  void plan_timed(const Fault& f, std::size_t index, Stream& rng, double horizon_s, FaultPlan& out) const override {
    if (f.at_s) plan_at_or_every(f, index, std::get<NetworkFault>(f.params).link, rng, horizon_s, out);
  }
  void fire(const Fault&, const Firing& firing, LiveTarget& live) const override { live.reset_connections(firing.target); }

  void shape_link(const Fault& f, LinkState& s) const override {
    const auto& p = std::get<NetworkFault>(f.params);
    if (f.kind == "delay_network") {
      s.latency_s += p.latency_s;
      s.jitter_s += p.jitter_s;
    } else if (f.kind == "limit_bandwidth") {
      s.bytes_per_s = s.bytes_per_s > 0 ? std::min(s.bytes_per_s, p.bytes_per_s) : p.bytes_per_s;
    } else if (f.kind == "blackhole") {
      s.blackhole = true;
    } else {
      s.reset_probability = std::max(s.reset_probability, f.probability);
    }
  }
  // The model: a reset at a moment here; the windows shape each exchange over the link
  // (model/links.h).
  void fire(const Fault&, const Firing& firing, ModelTarget& model) const override { model.reset_connections(firing.target); }
};

}  // namespace

const Family& network_family() {
  static const Network family;
  return family;
}

}  // namespace qsim::sim::faults

namespace qsim::sim {

const std::vector<std::string>& network_links() {
  static const std::vector<std::string> links{"worker_redis",    "intake_redis",   "finalize_redis", "worker_world",
                                              "worker_finalize", "finalize_world", "provider_intake", "intake_handoff"};
  return links;
}

std::string link_of(const Fault& f) {
  auto* p = f.as<NetworkFault>();
  return p ? p->link : "";
}

}  // namespace qsim::sim
