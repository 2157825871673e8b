#include "qsim/sim/stats.h"

#include "qsim/sim/checker.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace qsim::sim {

StageTimes::StageTimes(std::initializer_list<std::pair<std::string_view, double>> times) : StageTimes() {
  for (const auto& [status, t] : times) (*this)[status] = t;
}

std::size_t StageTimes::index(std::string_view status) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == status) return i;
  return kNames.size();
}

const double* StageTimes::get(std::string_view status) const {
  const auto i = index(status);
  return i < kNames.size() && t_[i] != kAbsent ? &t_[i] : nullptr;
}

double StageTimes::at(std::string_view status) const {
  if (const double* t = get(status)) return *t;
  throw std::out_of_range("the order never entered " + std::string(status));
}

double& StageTimes::operator[](std::string_view status) {
  const auto i = index(status);
  if (i >= kNames.size()) throw std::out_of_range("not an order status: " + std::string(status));
  return t_[i];
}

bool StageTimes::operator==(const StageTimes& o) const { return t_ == o.t_; }

std::map<std::string, double> StageTimes::to_map() const {
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (t_[i] != kAbsent) out.emplace(kNames[i], t_[i]);
  return out;
}

namespace {

// An order's time with a worker: from its (last) pickup to its end, when it has ended
struct Busy {
  double from;
  std::optional<double> to;
};
std::optional<Busy> busy_of(const OrderRecord& o) {
  const double* picked = o.stages_s.get("processing");
  if (!picked) return std::nullopt;
  Busy b{*picked, std::nullopt};
  for (const char* st : {"completed", "failed", "dead"})
    if (o.status == st)
      if (const double* t = o.stages_s.get(st)) b.to = std::max(*picked, *t);
  return b;
}

}  // namespace

std::vector<SeriesPoint> timeline_of(const std::vector<OrderRecord>& orders, double end_s, int& peak_depth) {
  struct Change {
    double t;
    int depth, busy;
  };
  std::vector<Change> changes;
  for (const auto& o : orders) {
    const double* paid = o.stages_s.get("paid");
    if (!paid) continue;
    changes.push_back({*paid, +1, 0});
    if (auto busy = busy_of(o)) {
      changes.push_back({std::max(*paid, busy->from), -1, +1});
      if (busy->to) changes.push_back({*busy->to, 0, -1});
    }
  }
  std::sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) { return a.t < b.t; });
  int level = 0;
  peak_depth = 0;
  for (const auto& ch : changes) peak_depth = std::max(peak_depth, level += ch.depth);
  std::vector<SeriesPoint> out;
  const int samples = 300;
  int depth = 0, busy = 0;
  std::size_t c = 0;
  for (int k = 0; k <= samples; ++k) {
    double t = end_s * k / samples;
    while (c < changes.size() && changes[c].t <= t) {
      depth += changes[c].depth;
      busy += changes[c].busy;
      ++c;
    }
    out.push_back({t, depth, busy});
  }
  return out;
}

std::vector<LoadPoint> load_series(const std::vector<LoadSample>& samples, const std::vector<OrderRecord>& orders,
                                   int workers, std::size_t max_points) {
  // one window between each two readings; a counter that went down was reset: no rate there
  std::vector<LoadPoint> windows;
  for (std::size_t i = 0; i + 1 < samples.size(); ++i) {
    const LoadSample &a = samples[i], &b = samples[i + 1];
    LoadPoint p;
    p.t_s = a.t_s;
    p.dt_s = b.t_s - a.t_s;
    if (p.dt_s > 0) {
      if (b.redis_commands >= a.redis_commands)
        p.redis_commands_per_s = static_cast<double>(b.redis_commands - a.redis_commands) / p.dt_s;
      if (b.store_queries >= a.store_queries)
        p.store_queries_per_s = static_cast<double>(b.store_queries - a.store_queries) / p.dt_s;
    }
    windows.push_back(p);
  }
  if (windows.empty()) return windows;
  // busy worker time per window: each order from its pickup to its end
  const double last = samples.back().t_s;
  std::vector<double> busy(windows.size(), 0);
  for (const auto& o : orders) {
    const auto b = busy_of(o);
    if (!b) continue;
    const double end = b->to.value_or(last);
    auto first = std::upper_bound(windows.begin(), windows.end(), b->from,
                                  [](double t, const LoadPoint& p) { return t < p.t_s + p.dt_s; });
    for (auto it = first; it != windows.end() && it->t_s < end; ++it)
      busy[static_cast<std::size_t>(it - windows.begin())] +=
          std::max(0.0, std::min(end, it->t_s + it->dt_s) - std::max(b->from, it->t_s));
  }
  for (std::size_t i = 0; i < windows.size(); ++i)
    if (windows[i].dt_s > 0 && workers > 0) windows[i].worker_utilisation = busy[i] / (windows[i].dt_s * workers);
  return merge_load(windows, max_points);
}

std::vector<LoadPoint> merge_load(const std::vector<LoadPoint>& windows, std::size_t max_points) {
  std::vector<LoadPoint> out;
  if (windows.empty() || max_points == 0) return out;
  const std::size_t group = (windows.size() + max_points - 1) / max_points;
  for (std::size_t a = 0; a < windows.size(); a += group) {
    LoadPoint m;
    m.t_s = windows[a].t_s;
    double commands = 0, queries = 0, busy = 0;
    bool commands_ok = true, queries_ok = true;
    for (std::size_t i = a; i < std::min(windows.size(), a + group); ++i) {
      const LoadPoint& w = windows[i];
      m.dt_s += w.dt_s;
      if (w.dt_s > 0) {  // a window of no length has no rate and weighs nothing
        commands_ok = commands_ok && w.redis_commands_per_s >= 0;
        queries_ok = queries_ok && w.store_queries_per_s >= 0;
      }
      commands += std::max(0.0, w.redis_commands_per_s) * w.dt_s;
      queries += std::max(0.0, w.store_queries_per_s) * w.dt_s;
      busy += w.worker_utilisation * w.dt_s;
    }
    if (m.dt_s > 0) {
      if (commands_ok) m.redis_commands_per_s = commands / m.dt_s;
      if (queries_ok) m.store_queries_per_s = queries / m.dt_s;
      m.worker_utilisation = busy / m.dt_s;
    }
    out.push_back(m);
  }
  return out;
}

OrderSummary::OrderSummary(std::size_t orders) : first_done_(INFINITY), last_done_(-INFINITY) {
  e2e_.reserve(orders);
  pickup_.reserve(orders);
  overhead_.reserve(orders);
}

void OrderSummary::add(const OrderRecord& o) {
  Effects tally;  // the summary reads only the download calls: the record's tally, as the report shows it
  tally.download_calls = o.download_calls;
  const OrderFacts f = facts_of(o, tally);
  add(f);
  if (!stages_ || !o.payment_accepted || f.outcome != Outcome::completed) return;
  const double end = f.end_s;
  const double *dl = o.stages_s.get("downloading"), *ul = o.stages_s.get("uploading"), *fin = o.stages_s.get("finalizing");
  if (dl && ul && *ul >= *dl) download_stage_.push_back(*ul - *dl);
  if (ul && fin && *fin >= *ul) upload_stage_.push_back(*fin - *ul);
  if (fin && end >= *fin) finalize_stage_.push_back(end - *fin);
}

void OrderSummary::add(const OrderFacts& o) {
  download_calls_ += o.effects.download_calls;
  if (!o.payment_accepted || (o.outcome != Outcome::completed && o.outcome != Outcome::failed)) return;
  const double end = o.end_s;
  last_end_ = std::max(last_end_, end);
  if (o.outcome != Outcome::completed) return;
  completed_++;
  const double paid = o.paid_s;
  e2e_.push_back(end - paid);
  if (o.picked) {
    pickup_.push_back(o.picked_s - paid);
    overhead_.push_back(end - o.picked_s - o.download_plan_s - o.upload_plan_s);
  }
  if (end < first_done_) {
    first_done_ = end;
    wait_first_s_ = end - paid;
  }
  if (end > last_done_) {
    last_done_ = end;
    wait_last_s_ = end - paid;
  }
}

void OrderSummary::finish(ArchResult& r, double first_arrival_s) {
  if (completed_ > 0) {
    r.wait_first_s = wait_first_s_;
    r.wait_last_s = wait_last_s_;
  }
  r.makespan_s = std::max(0.0, last_end_ - first_arrival_s);
  r.throughput_per_h = r.makespan_s > 0 ? static_cast<double>(completed_) / (r.makespan_s / 3600) : 0;
  r.retry_amplification = completed_ ? static_cast<double>(download_calls_) / static_cast<double>(completed_) : 0;
  // p_wait first: percentiles() takes the vectors (moved, not copied: a million-order sweep's
  // copies cost more than the selection)
  r.p_wait = pickup_.empty() ? 0
                             : static_cast<double>(std::count_if(pickup_.begin(), pickup_.end(), [](double p) { return p > 1e-9; })) /
                                   static_cast<double>(pickup_.size());
  r.e2e_s = percentiles(std::move(e2e_));
  r.pickup_s = percentiles(std::move(pickup_));
  r.download_stage_s = percentiles(std::move(download_stage_));
  r.upload_stage_s = percentiles(std::move(upload_stage_));
  r.finalize_stage_s = percentiles(std::move(finalize_stage_));
  r.overhead_s = percentiles(std::move(overhead_));
}

void summarize(ArchResult& r, double first_arrival_s, double last_arrival_s, bool timeline) {
  OrderSummary sum(r.orders.size());
  sum.stages_ = timeline;
  for (const auto& o : r.orders) sum.add(o);
  const double last_end = sum.last_end_;
  sum.finish(r, first_arrival_s);
  if (timeline) r.timeline = timeline_of(r.orders, std::max(last_end, last_arrival_s), r.peak_backlog);
}

void compute_drain(ArchResult& r, const Scenario& s) {
  std::vector<double> events;
  for (const auto& f : r.faults) events.push_back(f.t_s);
  if (s.arrival.kind == Arrival::Kind::spike) events.push_back(s.arrival.at_s + s.arrival.over_s);
  for (double e : events)
    for (const auto& p : r.timeline)
      if (p.t_s >= e && p.depth == 0) {
        r.drain_s = std::max(r.drain_s, p.t_s - e);
        break;
      }
}

double student_t_975(int df) {
  // exact to three decimals up to 30 degrees of freedom; beyond, the Cornish-Fisher expansion
  // around the normal quantile (error below 1e-4 there)
  static constexpr double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                     2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                     2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) throw std::invalid_argument("student_t_975: at least one degree of freedom");
  if (df <= 30) return table[df - 1];
  const double z = 1.959964, n = df;
  return z + (z * z * z + z) / (4 * n) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

Replicated replicated_95(const std::vector<double>& v) {
  Replicated m;
  m.n = v.size();
  if (v.empty()) return m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  m.ci_low = m.ci_high = m.pi_low = m.pi_high = m.mean;
  if (v.size() < 2) return m;
  double ss = 0;
  for (double x : v) ss += (x - m.mean) * (x - m.mean);
  const double n = static_cast<double>(v.size());
  m.stddev = std::sqrt(ss / (n - 1));
  const double t = student_t_975(static_cast<int>(v.size()) - 1);
  const double ci = t * m.stddev / std::sqrt(n), pi = t * m.stddev * std::sqrt(1 + 1 / n);
  m.ci_low = m.mean - ci;
  m.ci_high = m.mean + ci;
  m.pi_low = m.mean - pi;
  m.pi_high = m.mean + pi;
  return m;
}

namespace {

// A double's bits as an unsigned key in the same order as the numbers (NaN aside): negatives
// flipped whole, positives with the sign bit set.
std::uint64_t order_key(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b >> 63 ? ~b : b | (std::uint64_t{1} << 63);
}

}  // namespace

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  // Nearest rank, exactly as a full sort would give. The mean is summed in the values' order.
  auto rank_index = [&](double q) { return static_cast<std::size_t>(std::max(0.0, std::ceil(q * v.size()) - 1)); };
  const double qs[] = {0.50, 0.90, 0.95, 0.99};
  double* out[] = {&p.p50, &p.p90, &p.p95, &p.p99};
  double sum = 0;
  if (v.size() < 4096) {
    // few values: select each rank in turn; the ranks ascend, so each selection works on what
    // lies right of the last one
    for (double x : v) sum += x;
    auto from = v.begin();
    for (int k = 0; k < 4; ++k) {
      auto at = v.begin() + static_cast<std::ptrdiff_t>(rank_index(qs[k]));
      std::nth_element(from, at, v.end());
      *out[k] = *at;
      from = at;
    }
    p.max = *std::max_element(from, v.end());
  } else {
    // many (a sweep's million): one pass counts the values per bucket of their top 16 key bits
    // (16 buckets an octave), which tells each rank's bucket; a second pass gathers the values of
    // those buckets alone, and the rank is selected among them
    constexpr int kShift = 48;
    std::vector<std::uint32_t> count(std::size_t{1} << (64 - kShift), 0);
    double max = v.front();
    for (double x : v) {
      sum += x;
      if (max < x) max = x;
      ++count[order_key(x) >> kShift];
    }
    p.max = max;
    std::size_t rank[4], bucket[4], below[4];
    for (int k = 0; k < 4; ++k) rank[k] = rank_index(qs[k]);
    std::size_t seen = 0;
    for (std::size_t b = 0, k = 0; k < 4; seen += count[b], ++b)
      for (; k < 4 && rank[k] < seen + count[b]; ++k) bucket[k] = b, below[k] = seen;
    std::vector<double> in[4];  // the values of bucket[k], gathered once per distinct bucket
    int owner[4];               // whose gathering bucket[k] shares
    for (int k = 0; k < 4; ++k) {
      owner[k] = k;
      for (int j = 0; j < k; ++j)
        if (bucket[j] == bucket[k]) owner[k] = owner[j];
      if (owner[k] == k) in[k].reserve(count[bucket[k]]);
    }
    for (double x : v) {
      const std::size_t b = order_key(x) >> kShift;
      for (int k = 0; k < 4; ++k)
        if (owner[k] == k && b == bucket[k]) in[k].push_back(x);
    }
    for (int k = 0; k < 4; ++k) {
      auto& values = in[owner[k]];
      auto at = values.begin() + static_cast<std::ptrdiff_t>(rank[k] - below[k]);
      std::nth_element(values.begin(), at, values.end());
      *out[k] = *at;
    }
  }
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

const ArchResult* RunResult::find(std::string_view arch) const {
  for (const auto& r : results)
    if (r.name == arch) return &r;
  return nullptr;
}

}  // namespace qsim::sim
