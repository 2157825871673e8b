// The trace-file reader: finite, non-negative arrival times, or a ScenarioError naming the line.
#include "fuzz.h"
#include "qsim/sim/workload.h"

#include <cmath>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    for (double t : qsim::sim::read_trace(in, 1000, "fuzz.json", "trace.txt"))
      if (!std::isfinite(t) || t < 0) qsim::fuzz::violated("arrival " + std::to_string(t));
  } catch (const qsim::sim::ScenarioError& e) {
    if (std::string(e.what()).find("line ") == std::string::npos) qsim::fuzz::violated("an error without a line");
  }
  return 0;
}
