// Helpers the report's parts share (private to sim/report/): number formatting, JSON lookups,
// escaping, the idealised schedule the claims compare with.
#pragma once

#include "qsim/html.h"
#include "qsim/sim/report.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qsim::sim::report_detail {

using json = nlohmann::json;

extern const std::vector<std::string> kCheckerFields;                            // checker fields, in report order
extern const std::vector<std::pair<std::string, std::string>> kComparisonRows;  // metric, label

json pct(const Percentiles& p);
std::optional<double> lookup(const json& node, const std::vector<std::string>& path);
std::vector<std::string> split(const std::string& s, char sep);

// The seeds' idealisation: W workers take orders first come first served, with no overhead.
struct Ideal {
  double makespan_s = 0, wait_first_s = 0, wait_last_s = 0;
};
Ideal ideal_schedule(const json& orders, int workers);

std::string minutes(double s);
std::string secs(double s);
std::string fmt_value(double v);
std::string xml_escape(const std::string& s);
bool compare(double v, const std::string& op, double t);
// A gate's measured value as the reports print it: the number, "no data" or "n/a".
std::string gate_value_text(const json& gate);
// "speedup 12000 (resolution 12 simulated s)", and each architecture that runs at its own
std::string speedup_text(const json& rep);

}  // namespace qsim::sim::report_detail
