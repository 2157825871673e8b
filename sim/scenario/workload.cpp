#include "qsim/sim/workload.h"

#include "qsim/queue/backoff.h"

#include <cstdio>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

namespace qsim::sim {


double sample_s(const Distribution& d, Stream& rng) {
  switch (d.kind) {
    case Distribution::Kind::constant: return d.a_s;
    case Distribution::Kind::uniform: return d.a_s + (d.b_s - d.a_s) * rng.uniform();
    case Distribution::Kind::normal: return std::max(0.0, d.a_s + d.b_s * rng.normal());
    case Distribution::Kind::lognormal: return d.a_s * std::exp(d.sigma * rng.normal());
    case Distribution::Kind::exponential: return rng.exponential(1.0 / d.a_s);
    case Distribution::Kind::empirical:
      return d.values_s[static_cast<std::size_t>(rng.uniform() * static_cast<double>(d.values_s.size()))];
  }
  return 0;
}

std::vector<double> read_trace(std::istream& in, std::size_t n, const std::string& scenario_file,
                               const std::string& trace_name) {
  std::vector<double> out;
  std::string line;
  int lineno = 0;
  while (out.size() < n && std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    auto d = parse_duration_s(line);
    if (!d) {
      char* end = nullptr;
      double v = std::strtod(line.c_str(), &end);
      // strtod also reads "nan", "inf" and hex floats: an arrival is a finite, non-negative time
      // in decimal seconds
      if (end == line.c_str() || *end != '\0' || line.find_first_not_of("0123456789.eE+-") != std::string::npos ||
          !std::isfinite(v) || v < 0)
        throw ScenarioError(scenario_file, "$.orders.arrival.file",
                            trace_name + " line " + std::to_string(lineno) + ": expected seconds or a duration");
      d = v;
    }
    if (!std::isfinite(*d))
      throw ScenarioError(scenario_file, "$.orders.arrival.file",
                          trace_name + " line " + std::to_string(lineno) + ": expected a finite time");
    out.push_back(*d);
  }
  return out;
}

std::vector<double> arrival_times_s(const Scenario& s) {
  const Arrival& a = s.arrival;
  Stream rng(s.seed, "arrivals");
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(s.orders));
  const auto n = static_cast<std::size_t>(s.orders);
  switch (a.kind) {
    case Arrival::Kind::burst:
      out.assign(n, a.at_s);
      break;
    case Arrival::Kind::constant:
      for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<double>(i) * 3600.0 / a.rate_per_h);
      break;
    case Arrival::Kind::poisson: {
      double t = 0;
      for (std::size_t i = 0; i < n; ++i) out.push_back(t += rng.exponential(a.rate_per_h / 3600.0));
      break;
    }
    case Arrival::Kind::ramp:
    case Arrival::Kind::spike: {
      // Poisson with a time-varying rate, by thinning against its maximum.
      auto rate_per_s = [&](double t) {
        if (a.kind == Arrival::Kind::ramp)
          return (t >= a.over_s ? a.to_per_h : a.from_per_h + (a.to_per_h - a.from_per_h) * t / a.over_s) / 3600.0;
        return (t >= a.at_s && t < a.at_s + a.over_s ? a.spike_per_h : a.rate_per_h) / 3600.0;
      };
      double max_rate = (a.kind == Arrival::Kind::ramp ? std::max(a.from_per_h, a.to_per_h)
                                                        : std::max(a.rate_per_h, a.spike_per_h)) / 3600.0;
      double t = 0;
      while (out.size() < n) {
        t += rng.exponential(max_rate);
        if (rng.uniform() * max_rate < rate_per_s(t)) out.push_back(t);
      }
      break;
    }
    case Arrival::Kind::trace: {
      auto path = std::filesystem::path(a.trace_file);
      if (path.is_relative()) path = std::filesystem::path(s.file).parent_path() / path;
      std::ifstream in(path);
      if (!in) throw ScenarioError(s.file, "$.orders.arrival.file", "cannot read the trace '" + path.string() + "'");
      out = read_trace(in, n, s.file, path.string());
      if (out.size() < n)
        throw ScenarioError(s.file, "$.orders.count",
                            "the trace '" + path.string() + "' has " + std::to_string(out.size()) + " arrivals, fewer than " +
                                std::to_string(n) + " orders");
      break;
    }
  }
  // a trace may come in any order; the generated kinds are sorted already (a pass, not a sort)
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  return out;
}

Plan make_plan(const Scenario& s) {
  Plan p;
  p.arrivals_s = arrival_times_s(s);
  Stream rng(s.seed, "durations");
  p.download_s.reserve(p.arrivals_s.size());
  p.upload_s.reserve(p.arrivals_s.size());
  for (std::size_t i = 0; i < p.arrivals_s.size(); ++i) {
    p.download_s.push_back(sample_s(s.download, rng));
    p.upload_s.push_back(sample_s(s.upload, rng));
  }
  return p;
}

std::string order_id(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "order-%05zu", i);
  return buf;
}

FaultPlan plan_faults(const Scenario& s, const std::vector<double>& arrivals_s, double horizon_s) {
  return plan_faults(s.seed, s.faults, arrivals_s, horizon_s);
}

FaultPlan plan_faults(const Scenario& s, const Plan& plan) {
  double longest = 0;
  for (std::size_t i = 0; i < plan.download_s.size(); ++i) longest = std::max(longest, plan.download_s[i] + plan.upload_s[i]);
  return plan_faults(s, plan.arrivals_s, plan.arrivals_s.back() + 2 * longest);
}

}  // namespace qsim::sim
