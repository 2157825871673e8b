// `sim plan`: a capacity plan from the model. For every arrival rate and worker count in the
// scenario's `plan`, the queue architecture is modelled with Poisson arrivals at that rate and
// the scenario's stage durations and failures (faults left out), and the table says:
// utilisation, wait (payment to pickup) and end-to-end percentiles, peak backlog, makespan,
// cost; the smallest worker count that meets the SLO at each rate and the headroom it leaves;
// the knee of each worker count (the highest rate with a stable backlog); and, beside the
// model, Erlang C (M/M/c): exact where the scenario is M/M/c-like (exponential service),
// otherwise the M/M/c approximation with the same mean service, marked as such.
//
// Stable: utilisation below 0.99 and a peak backlog under 5 % of the simulated orders (a backlog
// that grows for the whole run is not a queue that keeps up).
#pragma once

#include "qsim/sim/model.h"
#include "qsim/sim/scenario.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qsim::sim {

// Throws ScenarioError when the scenario has no `plan`.
nlohmann::json plan_capacity(const Scenario& s);

std::string render_plan_markdown(const nlohmann::json& plan);
std::string render_plan_html(const nlohmann::json& plan);
// plan.json, plan.md, plan.html as asked; returns the paths written.
std::vector<std::string> write_plan(const nlohmann::json& plan, const std::string& dir, const std::vector<std::string>& formats);

}  // namespace qsim::sim
