// The world family: fail_download, fail_upload, fail_grant, fail_mail, slow_world. While a
// window holds, the simulated world (the source of downloads and uploads, the grant and mail
// APIs) fails a share of an API's calls, transiently or for good, or answers slower.
#include "family.h"

#include <algorithm>

namespace qsim::sim::faults {

namespace {

const char* const kApis[] = {"download", "upload", "grant", "mail"};  // ModelAttempt::stages' order

class World final : public Family {
public:
  std::vector<std::string> kinds() const override {
    return {"fail_download", "fail_upload", "fail_grant", "fail_mail", "slow_world"};
  }

  void read(const std::string& kind, JsonReader& r, const FaultReadContext&, Fault& f) const override {
    WorldFault p;
    if (kind == "slow_world") {
      p.factor = r.number("factor", 0, 1000, true, 1, true);
      read_window(r, f);
    } else {
      p.api = kind.substr(5);  // fail_<api>
      f.probability = r.number("probability", 0, 1);
      read_window(r, f);
      if (auto t = r.flag("transient")) p.transient = *t;
    }
    f.params = std::move(p);
  }

  bool shapes_world(const Fault& f, double t, int) const override { return f.window_holds(t); }
  void shape_world(const Fault& f, WorldState& w) const override {
    const auto& p = std::get<WorldFault>(f.params);
    if (p.api.empty()) {
      w.latency_factor *= p.factor;
    } else {
      auto& api = w.apis[p.api];
      api.fail_probability = f.probability;
      api.transient = p.transient;
    }
  }

  void shape_attempt(const Fault& f, ModelAttempt& a) const override {
    if (!f.window_holds(a.start_s)) return;
    const auto& p = std::get<WorldFault>(f.params);
    if (p.api.empty()) {
      a.slow *= p.factor;
      return;
    }
    for (std::size_t i = 0; i < 4; ++i)
      if (p.api == kApis[i]) a.stages[i] = {f.probability, p.transient};
  }
};

}  // namespace

const Family& world_family() {
  static const World family;
  return family;
}

}  // namespace qsim::sim::faults

namespace qsim::sim {

double max_latency_factor(const std::vector<Fault>& faults) {
  double slow = 1;
  for (const auto& f : faults)
    if (auto* p = f.as<WorldFault>(); p && p->api.empty()) slow = std::max(slow, p->factor);
  return slow;
}

}  // namespace qsim::sim
