// The clock family: skew_clock. One component's wall clock runs ahead or behind for a window,
// through libfaketime preloaded into the process (the run starts it so, and the injector writes
// the offset into the file libfaketime reads on every call). The queue's leases and delays are
// Redis server time, so they must not notice; what a skewed clock breaks is the webhook
// signatures' timestamp window, which the report counts.
#include "family.h"

#include <fmt/format.h>

namespace qsim::sim::faults {

namespace {

class Clock final : public Family {
public:
  std::vector<std::string> kinds() const override { return {"skew_clock"}; }

  void read(const std::string&, JsonReader& r, const FaultReadContext& ctx, Fault& f) const override {
    ClockFault c;
    c.target = read_process_target(r, ctx);
    if (r.get("ahead", false) == nullptr && r.get("behind", false) == nullptr)
      r.fail(r.path(), "exactly one of \"ahead\" or \"behind\" (how far the clock is off, in real time)");
    if (r.get("ahead", false) && r.get("behind", false)) r.fail(r.at("behind"), "exactly one of \"ahead\" or \"behind\"");
    c.offset_s = r.get("ahead", false) ? r.duration("ahead", true, 0, true) : -r.duration("behind", true, 0, true);
    read_window(r, f);
    f.params = std::move(c);
  }

  // A window, not a firing: the injector follows clock_offsets() as time goes on. The model asks
  // signature_refused() where a signed request is made (a payment, a worker's call of finalize).
};

}  // namespace

const Family& clock_family() {
  static const Clock family;
  return family;
}

}  // namespace qsim::sim::faults
