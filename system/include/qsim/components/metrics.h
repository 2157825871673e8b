// Just enough Prometheus for the components: counters, gauges and fixed-bucket histograms,
// rendered in the text exposition format. Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace qsim::components {

class Histogram {
public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  std::string render(const std::string& name, const std::string& help) const;

private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<long long> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  long long count_ = 0;
};

std::string render_counter(const std::string& name, const std::string& help, long long value);
std::string render_gauge(const std::string& name, const std::string& help, double value);

}  // namespace qsim::components
