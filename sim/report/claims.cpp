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

static void recovery_claims(json& out, const json& p, const json& q) {
  const auto& pk = p["kills"];
  const auto& qk = q["kills"];
  if (pk.empty() && qk.empty()) {
    out.push_back({{"claim", "recovery from a worker crash"}, {"architecture", "both"},
                   {"expected", "manual / automatic (~10 s)"},
                   {"measured", "not measured: this scenario kills no worker holding an order"}, {"holds", nullptr}});
  } else {
    long long never = 0;
    for (const auto& k : pk) never += k["redelivered_after_s"].is_null();
    out.push_back({{"claim", "recovery from a worker crash"}, {"architecture", "polling"}, {"expected", "manual"},
                   {"measured", fmt::format("{} of {} orders held by a killed worker never picked up again ({} stuck "
                                            "at the end)",
                                            never, pk.size(), p["checker"]["stuck"].get<long long>())},
                   {"holds", pk.empty() ? json(nullptr) : json(never == static_cast<long long>(pk.size()))}});
    double worst = q["recovery_s"]["max"], bound = q["recovery_bound_s"];
    long long q_never = 0;
    for (const auto& k : qk) q_never += k["redelivered_after_s"].is_null();
    out.push_back({{"claim", "recovery from a worker crash"}, {"architecture", "queue"},
                   {"expected", fmt::format("automatic, within lease + one reaper tick ({})", secs(bound))},
                   {"measured", fmt::format("{} orders redelivered, worst after {}; {} never", qk.size() - q_never,
                                            secs(worst), q_never)},
                   {"measured_value", worst},
                   {"holds", qk.empty() ? json(nullptr) : json(q_never == 0 && worst <= bound)}});
  }
  const long long q_retries = q["retries"], p_failed = p["checker"]["failed_visible"];
  if (q_retries == 0 && p_failed == 0) {
    out.push_back({{"claim", "failed-task retries"}, {"architecture", "both"},
                   {"expected", "manual / automatic (3 attempts)"},
                   {"measured", "not measured: no call failed in this scenario"}, {"holds", nullptr}});
  } else {
    out.push_back({{"claim", "failed-task retries"}, {"architecture", "polling"}, {"expected", "manual (none)"},
                   {"measured", fmt::format("{} orders failed for good, 0 retries", p_failed)},
                   {"holds", p["retries"] == 0}});
    out.push_back({{"claim", "failed-task retries"}, {"architecture", "queue"}, {"expected", "automatic (3 attempts)"},
                   {"measured", fmt::format("{} retries, {} dead letters", q_retries, q["dead_letters"].get<long long>())},
                   {"holds", q_retries > 0}});
  }
}

json claims(const json& report, const Scenario& s) {
  json out = json::array();
  const auto& res = report["results"];
  if (s.arrival.kind != Arrival::Kind::burst || !res.contains("polling") || !res.contains("queue") || !s.polling ||
      !s.queue)
    return out;
  const auto& p = res["polling"];
  const auto& q = res["queue"];
  auto ideal_p = ideal_schedule(p["orders"], p["workers"]);
  auto ideal_q = ideal_schedule(q["orders"], q["workers"]);
  auto within = [&](const std::string& claim, const std::string& arch, double expected, double measured,
                    double tolerance) {
    bool holds = std::abs(measured - expected) <= tolerance * expected;
    out.push_back({{"claim", claim},
                   {"architecture", arch},
                   {"expected", minutes(expected)},
                   {"expected_value", expected},
                   {"measured", minutes(measured)},
                   {"measured_value", measured},
                   {"tolerance", fmt::format("±{:g} %", tolerance * 100)},
                   {"holds", holds},
                   {"timing", true},
                   {"off_by_pct", expected != 0 ? (measured - expected) / expected * 100 : 0.0}});
  };
  within("time to finish all orders", "polling", ideal_p.makespan_s, p["makespan_s"], 0.05);
  within("time to finish all orders", "queue", ideal_q.makespan_s, q["makespan_s"], 0.05);
  within("first customer's wait", "polling", ideal_p.wait_first_s, p["wait_first_s"], 0.05);
  within("first customer's wait", "queue", ideal_q.wait_first_s, q["wait_first_s"], 0.05);
  within("last customer's wait", "polling", ideal_p.wait_last_s, p["wait_last_s"], 0.05);
  within("last customer's wait", "queue", ideal_q.wait_last_s, q["wait_last_s"], 0.05);

  const double interval = s.polling->poll_interval_s;
  const auto& pp = p["probe_pickup_s"];
  const auto& qp = q["probe_pickup_s"];
  if (pp["count"] > 0) {
    double mean = pp["mean"], mx = pp["max"];
    bool holds = mean >= 0.35 * interval && mean <= 0.65 * interval && mx <= 1.1 * interval;
    out.push_back({{"claim", "delay from payment to pickup (idle system)"},
                   {"architecture", "polling"},
                   {"expected", fmt::format("{:g}-{:g} s (mean about half the poll interval, at most the interval)",
                                            interval / 2, interval)},
                   {"measured", fmt::format("mean {}, p50 {}, max {}", secs(mean), secs(pp["p50"]), secs(mx))},
                   {"measured_value", mean},
                   {"tolerance", "mean within 35-65 % of the interval, max ≤ 110 %"},
                   {"holds", holds},
                   {"timing", true}});
  }
  if (qp["count"] > 0) {
    double p99 = qp["p99"];
    out.push_back({{"claim", "delay from payment to pickup (idle system)"},
                   {"architecture", "queue"},
                   {"expected", "< 1 s"},
                   {"measured", fmt::format("p50 {}, p99 {}, max {}", secs(qp["p50"]), secs(p99), secs(qp["max"]))},
                   {"measured_value", p99},
                   {"tolerance", "p99 < 1 s"},
                   {"holds", p99 < 1.0},
                   {"timing", true}});
  }
  const double per_day = 86'400 / interval;
  double measured_p = p["store_queries_per_idle_day"];
  out.push_back({{"claim", "DB queries per idle day"},
                 {"architecture", "polling"},
                 {"expected", fmt::format("{:.0f}", per_day)},
                 {"expected_value", per_day},
                 {"measured", fmt::format("{:.0f}", measured_p)},
                 {"measured_value", measured_p},
                 {"tolerance", "±1 %"},
                 {"holds", std::abs(measured_p - per_day) <= 0.01 * per_day},
                 {"timing", true},
                 {"off_by_pct", (measured_p - per_day) / per_day * 100}});
  double measured_q = q["store_queries_per_idle_day"];
  out.push_back({{"claim", "DB queries per idle day"},
                 {"architecture", "queue"},
                 {"expected", "~0 (~100)"},
                 {"expected_value", 0},
                 {"measured", fmt::format("{:.0f} (Redis commands: {:.0f}, the reaper's ticks and idle workers' "
                                          "blocking waits)",
                                          measured_q, q["redis_commands_per_idle_day"].get<double>())},
                 {"measured_value", measured_q},
                 {"tolerance", "≤ 100"},
                 {"holds", measured_q <= 100}});
  recovery_claims(out, p, q);
  return out;
}

}  // namespace qsim::sim
