// The fault schedule a scenario describes, made concrete from its seed — before anything runs,
// so that the same scenario and seed always give the same timeline (stage-triggered kills are
// the exception: they fire when a target is seen in its stage, which the run decides).
//
// Randomness comes from the "faults" stream (timed firings, victims) and the "webhook-faults"
// stream (what happens to each order's payment), never from the arrival or duration streams:
// adding a fault does not move the arrival trace.
#pragma once

#include "qsim/sim/scenario.h"
#include "qsim/sim/workload.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qsim::sim {

// One timed firing of kill_process, pause_process, restart_redis or poison_job.
struct Firing {
  double t_s = 0;
  std::size_t fault = 0;     // index into Scenario::faults
  Fault::Kind kind = Fault::Kind::kill_process;
  std::string target;        // as written (worker, worker-3, finalize, ...)
  std::uint64_t pick = 0;    // seeded choice among the target's live instances
  int count = 1;             // victims (processes, poison jobs) at this moment
};

// The extra requests the payment provider sends for one order, besides its genuine delivery.
struct WebhookExtra {
  enum class Kind { duplicate, replay, forge_signature, forge_body, late } kind = Kind::duplicate;
  std::size_t order = 0;
  double at_s = 0;           // simulated send time
  double skew_s = 0;         // late: timestamp offset (negative: in the future); replay: age
};

struct FaultPlan {
  std::vector<Firing> firings;           // sorted by time
  std::vector<WebhookExtra> webhooks;    // sorted by time
};

// `arrivals_s` is the workload's arrival trace; `horizon_s` bounds `every` without an `until`.
FaultPlan plan_faults(const Scenario& s, const std::vector<double>& arrivals_s, double horizon_s);

// The fault plan for a planned workload: `every` faults without an `until` run over the
// arrivals and two of the longest jobs after the last.
FaultPlan plan_faults(const Scenario& s, const Plan& plan);

std::string to_string(WebhookExtra::Kind k);

}  // namespace qsim::sim
