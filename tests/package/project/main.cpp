// Loads a scenario, runs the model, and asserts on the verdict: what a project that embeds qsim
// through find_package(qsim) would write. Exit 0 when the verdict passes and says what it should.
#include "qsim/sim/model.h"
#include "qsim/sim/report.h"
#include "qsim/sim/scenario.h"
#include "qsim/sim/verdict.h"

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer SCENARIO.json\n";
    return 2;
  }
  const auto scenario = qsim::sim::load_scenario(argv[1]);
  const auto result = qsim::sim::run_model(scenario);
  auto report = qsim::sim::report_json(result, scenario);
  const auto gates = qsim::sim::gate_set(scenario, {"polling", "queue"}, {qsim::sim::parse_gate("queue.lost == 0")});
  const bool passed = qsim::sim::judge(report, gates, {});
  const auto* queue = result.find("queue");
  std::cout << "verdict: " << (passed ? "passed" : "failed") << "; gates " << report["gates"].size()
            << "; queue completed " << (queue ? queue->checker.completed : -1) << "\n";
  return passed && queue && queue->checker.completed == scenario.orders && report["gates"].size() > 1 ? 0 : 1;
}
