// sim: the harness's command line. Today: `sim validate SCENARIO.json...`. `sim run`, `model`,
// `plan`, `report` and `compare` arrive with their issues.
//
// Exit codes: 0 all good; 1 a gate failed; 2 bad input or usage; 3 infrastructure error.
#include "qsim/sim/scenario.h"

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

int validate(const std::vector<std::string>& files) {
  int bad = 0;
  for (const auto& f : files) {
    try {
      auto s = qsim::sim::load_scenario(f);
      std::cout << "ok: " << f << " (" << s.name << ", " << s.orders << " orders, architectures:"
                << (s.polling ? " polling" : "") << (s.queue ? " queue" : "") << ", " << s.gates.size() << " gates)\n";
    } catch (const qsim::sim::ScenarioError& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++bad;
    }
  }
  return bad == 0 ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sim: a simulation and test harness for queue behaviour"};
  app.require_subcommand(1);
  std::vector<std::string> files;
  auto* v = app.add_subcommand("validate", "check scenario files against scenarios/schema.json; exit 2 if any is invalid");
  v->add_option("files", files, "scenario files")->required()->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;  // usage errors are bad input
  }
  if (*v) return validate(files);
  return 2;
}
