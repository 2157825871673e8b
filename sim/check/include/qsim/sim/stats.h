// Statistics over a run's per-order records, computed apart from the checker's verdict:
// percentiles, makespan, waits, throughput, the depth/busy timeline, drain and recovery.
#pragma once

#include "qsim/sim/checker.h"
#include "qsim/sim/results.h"
#include "qsim/sim/scenario.h"

#include <vector>

namespace qsim::sim {

// Exact order statistics (nearest rank), never averaged across buckets.
Percentiles percentiles(std::vector<double> values);

// A value measured in independent replications: its mean with the two-sided 95 % confidence
// interval of the mean, and the two-sided 95 % prediction interval of one more replication
// (where the value of a run on a fresh seed falls), both with Student's t at n - 1 degrees of
// freedom. One value: both intervals are the value itself (no spread known).
struct Replicated {
  std::size_t n = 0;
  double mean = 0, stddev = 0;
  double ci_low = 0, ci_high = 0;  // the mean's
  double pi_low = 0, pi_high = 0;  // one more replication's
};
Replicated replicated_95(const std::vector<double>& values);
// The 97.5 % quantile of Student's t with `df` degrees of freedom (df >= 1).
double student_t_975(int df);

// From r.orders (status, stage times, payment accepted): makespan, waits, latency
// percentiles, throughput, p_wait, retry amplification (download calls per completed
// order) and the depth/busy timeline. Shared by the live run and the
// model. The checker's counts are check()'s (checker.h), not this.
// `timeline`: false skips the depth/busy timeline and the peak backlog (sweeps of millions).
void summarize(ArchResult& r, double first_arrival_s, double last_arrival_s, bool timeline = true);
// summarize() without the timeline, one order at a time, for a caller that makes its orders one
// by one and keeps none (the model's sweeps: a million records never exist at once). Orders
// added in the same order give exactly summarize()'s figures.
class OrderSummary {
public:
  explicit OrderSummary(std::size_t orders);
  void add(const OrderRecord& o);
  void add(const OrderFacts& o);  // the same, from what was read of a record (checker.h)
  void finish(ArchResult& r, double first_arrival_s);  // every figure but the timeline

private:
  std::vector<double> e2e_, pickup_, overhead_, download_stage_, upload_stage_, finalize_stage_;
  double first_done_, last_done_, last_end_ = 0, wait_first_s_ = 0, wait_last_s_ = 0;
  long long completed_ = 0, download_calls_ = 0;
  bool stages_ = false;  // the per-stage spans too (summarize's timeline)
  friend void summarize(ArchResult&, double, double, bool);
};
// The longest time from a fault (or a spike's end) to an empty backlog, from r.timeline.
void compute_drain(ArchResult& r, const Scenario& s);
// One reading of a live run's counters during the workload: simulated time, and the cumulative
// Redis commands and store queries made so far (the harness's own excluded). A counter that
// goes down between readings was reset (a Redis restart): that window's rate is absent.
struct LoadSample {
  double t_s = 0;
  long long redis_commands = 0, store_queries = 0;
};
// The windows between consecutive samples, merged into at most `max_points`, with each window's
// worker utilisation from the orders: each order busy from its (last) pickup to its end, or to
// the last sample while it has none.
std::vector<LoadPoint> load_series(const std::vector<LoadSample>& samples, const std::vector<OrderRecord>& orders,
                                   int workers, std::size_t max_points = 100);
// Consecutive windows merged into at most `max_points`, each figure weighted by its window's
// length; a rate absent in any part is absent in the whole (the reports' shorter tables).
std::vector<LoadPoint> merge_load(const std::vector<LoadPoint>& windows, std::size_t max_points);
std::vector<SeriesPoint> timeline_of(const std::vector<OrderRecord>& orders, double end_s, int& peak_depth);

}  // namespace qsim::sim
