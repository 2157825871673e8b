// A fault family: the kinds it holds and, for each, the JSON form, the plan, the live action
// and the model action (see fault.h). Private to sim/faults/: the rest of the harness calls the
// free functions of fault.h, which dispatch here.
#pragma once

#include "qsim/sim/fault.h"

#include <string>
#include <vector>

namespace qsim::sim::faults {

class Family {
public:
  virtual ~Family() = default;
  virtual std::vector<std::string> kinds() const = 0;

  // JSON form: the kind's own keys (the reader has read "kind"); leaves the rest to done().
  virtual void read(const std::string& kind, JsonReader& r, const FaultReadContext& ctx, Fault& f) const = 0;

  // Plan: timed firings, drawn from the "faults" stream in the order of the scenario's faults.
  virtual void plan_timed(const Fault&, std::size_t /*index*/, Stream&, double /*horizon_s*/, FaultPlan&) const {}
  // Plan: what happens to one order's payment, from the "webhook-faults" stream.
  virtual void plan_order(const Fault&, std::size_t /*order*/, double /*arrival_s*/, Stream&, FaultPlan&) const {}

  // Live: a timed firing; the world and the links while a window holds.
  virtual void fire(const Fault&, const Firing&, LiveTarget&) const {}
  virtual bool shapes_world(const Fault&, double /*t*/, int /*stage_fired*/) const { return false; }
  virtual void shape_world(const Fault&, WorldState&) const {}
  virtual void shape_link(const Fault&, LinkState&) const {}

  // Model: a timed firing; an attempt before and after its draws.
  virtual void fire(const Fault&, const Firing& firing, ModelTarget& model) const { model.log(firing.target, "not modelled"); }
  virtual void shape_attempt(const Fault&, ModelAttempt&) const {}
  virtual void kill_attempt(std::uint64_t /*seed*/, const Fault&, std::size_t /*index*/, ModelAttempt&,
                            int& /*fired*/) const {}
};

// One per family file.
const Family& process_family();
const Family& redis_family();
const Family& poison_family();
const Family& webhook_family();
const Family& world_family();
const Family& network_family();
const Family& clock_family();

// The family of a fault: the one whose parameters it holds.
const Family& family_of(const Fault& f);

// Reading shared by the families.
void read_window(JsonReader& r, Fault& f);       // from, until
void read_probability(JsonReader& r, Fault& f);  // probability, default 1
// exactly one of at | every (| stage, where `stage` is given), then count
void read_when(JsonReader& r, Fault& f, std::string* stage = nullptr);
// "target": worker | worker-<n> (one that exists) | payment_intake | finalize
std::string read_process_target(JsonReader& r, const FaultReadContext& ctx);

// Planning shared by the timed kinds: `at` fires once with `count` victims; `every` draws each
// opportunity from `rng`, fired or not, so that one fault's outcome never shifts another's.
void plan_at_or_every(const Fault& f, std::size_t index, const std::string& target, Stream& rng, double horizon_s,
                      FaultPlan& out);

}  // namespace qsim::sim::faults
