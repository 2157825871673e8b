#include "qsim/sim/report.h"

#include "internal.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>


namespace qsim::sim {

using namespace report_detail;

std::string render_junit(const json& rep) {
  std::ostringstream x;
  int failures = 0;
  for (const auto& g : rep["gates"]) failures += !g["passed"].get<bool>();
  const std::string suite = "sim." + rep["scenario"].get<std::string>();
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << fmt::format("<testsuites tests=\"{0}\" failures=\"{1}\">\n<testsuite name=\"{2}\" tests=\"{0}\" failures=\"{1}\" time=\"{3:.3f}\">\n",
                   rep["gates"].size(), failures, xml_escape(suite), rep["wall_s"].get<double>());
  for (const auto& g : rep["gates"]) {
    const std::string value = gate_value_text(g);
    x << fmt::format("  <testcase classname=\"{}\" name=\"{}\">", xml_escape(suite), xml_escape(g["name"]));
    if (!g["passed"].get<bool>())
      x << fmt::format("<failure message=\"{}\"/>",
                       xml_escape(fmt::format("{} = {}, expected {} {}", g["name"].get<std::string>(), value,
                                              g["op"].get<std::string>(), fmt_value(g["threshold"]))));
    x << "</testcase>\n";
  }
  x << "</testsuite>\n</testsuites>\n";
  return x.str();
}

}  // namespace qsim::sim
