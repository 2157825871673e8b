// The scenario loader: any text is a scenario or a ScenarioError naming a JSON path, nothing else
// (no other exception, no crash, no hang).
#include "fuzz.h"
#include "qsim/sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    auto s = qsim::sim::parse_scenario(j, "fuzz.json");
    if (s.orders < 1) qsim::fuzz::violated("a scenario with no orders was accepted");
  } catch (const qsim::sim::ScenarioError& e) {
    if (e.path().empty() || e.path()[0] != '$') qsim::fuzz::violated("an error without a JSON path: " + std::string(e.what()));
  }
  return 0;
}
