// Statistics over a run's per-order records, computed apart from the checker's verdict:
// percentiles, makespan, waits, throughput, the depth/busy timeline, drain and recovery.
#pragma once

#include "qsim/sim/results.h"
#include "qsim/sim/scenario.h"

#include <vector>

namespace qsim::sim {

// Exact order statistics (nearest rank), never averaged across buckets.
Percentiles percentiles(std::vector<double> values);

// From r.orders (status, stage times, payment accepted): makespan, waits, latency
// percentiles, throughput, p_wait, retry amplification (download calls per completed
// order) and the depth/busy timeline. Shared by the live run and the
// model. The checker's counts are check()'s (checker.h), not this.
// `timeline`: false skips the depth/busy timeline and the peak backlog (sweeps of millions).
void summarize(ArchResult& r, double first_arrival_s, double last_arrival_s, bool timeline = true);
// The longest time from a fault (or a spike's end) to an empty backlog, from r.timeline.
void compute_drain(ArchResult& r, const Scenario& s);
std::vector<SeriesPoint> timeline_of(const std::vector<OrderRecord>& orders, double end_s, int& peak_depth);

}  // namespace qsim::sim
