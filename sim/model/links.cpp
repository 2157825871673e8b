#include "links.h"

#include <algorithm>
#include <cassert>

namespace qsim::sim::model_links {

Links::Links(const std::vector<Fault>& faults) {
  static_assert(kLinks == 8);
  std::vector<double> changes;
  for (const auto& f : faults) {
    if (link_of(f).empty() || f.at_s) continue;  // a reset at a moment is a firing
    any_ = true;
    changes.push_back(f.from_s);
    if (std::isfinite(f.until_s)) changes.push_back(f.until_s);
  }
  std::sort(changes.begin(), changes.end());
  changes.erase(std::unique(changes.begin(), changes.end()), changes.end());
  const auto& names = network_links();
  assert(names.size() == kLinks);
  for (std::size_t l = 0; l < kLinks; ++l) states_[l].push_back({-INFINITY, LinkState{}});
  for (double t : changes) {
    auto now = link_states(faults, t);
    for (std::size_t l = 0; l < kLinks; ++l) {
      const LinkState& s = now.at(names[l]).first;
      if (!(s == states_[l].back().second)) states_[l].push_back({t, s});
    }
  }
}

Links::States::const_iterator Links::state(Link l, double t) const {
  const auto& v = states_[l];
  return std::prev(std::upper_bound(v.begin(), v.end(), t, [](double x, const auto& p) { return x < p.first; }));
}

const LinkState& Links::at(Link l, double t) const { return state(l, t)->second; }

double Links::deliver(Link l, double t, double bytes) const {
  if (!any_) return t;
  auto it = state(l, t);
  while (it->second.blackhole) {  // held until it lifts (a blackhole always does: the schema says so)
    if (std::next(it) == states_[l].end()) return INFINITY;
    ++it;
    t = it->first;
  }
  const LinkState& s = it->second;
  return t + s.latency_s + s.jitter_s / 2 + (s.bytes_per_s > 0 ? bytes / s.bytes_per_s : 0);
}

Exchange Links::exchange(Link l, double t, double serve_s, double timeout_s, double draw, double bytes) const {
  Exchange x;
  if (resets(l, t, draw)) {
    x.end_s = t;
    x.failed = true;
    return x;
  }
  x.served_s = deliver(l, t, bytes);
  const double back = deliver(l, x.served_s + serve_s);
  if (back - t > timeout_s) {
    x.end_s = t + timeout_s;
    x.failed = x.timed_out = true;
    return x;
  }
  x.end_s = back;
  return x;
}

}  // namespace qsim::sim::model_links
