#include "qsim/sim/faults.h"

#include "qsim/sim/workload.h"

#include <algorithm>
#include <cmath>

namespace qsim::sim {

std::string to_string(WebhookExtra::Kind k) {
  switch (k) {
    case WebhookExtra::Kind::duplicate: return "duplicate";
    case WebhookExtra::Kind::replay: return "replay";
    case WebhookExtra::Kind::forge_signature: return "forge_signature";
    case WebhookExtra::Kind::forge_body: return "forge_body";
    case WebhookExtra::Kind::late: return "late";
  }
  return "?";
}

FaultPlan plan_faults(const Scenario& s, const std::vector<double>& arrivals_s, double horizon_s) {
  FaultPlan plan;
  Stream rng(s.seed, "faults");
  for (std::size_t i = 0; i < s.faults.size(); ++i) {
    const Fault& f = s.faults[i];
    const bool timed = f.kind == Fault::Kind::kill_process || f.kind == Fault::Kind::pause_process ||
                       f.kind == Fault::Kind::restart_redis || f.kind == Fault::Kind::poison_job ||
                       (f.kind == Fault::Kind::reset_connections && f.at_s);
    if (!timed || !f.stage.empty()) continue;
    auto pick = [&] { return static_cast<std::uint64_t>(rng.uniform() * 1e9); };
    if (f.at_s) {
      plan.firings.push_back({*f.at_s, i, f.kind, f.link.empty() ? f.target : f.link, pick(), f.count});
      continue;
    }
    const double end = std::min(f.until_s, horizon_s);
    int fired = 0;
    for (double t = f.from_s + *f.every_s; t <= end && (f.count == 0 || fired < f.count); t += *f.every_s) {
      // draw for every opportunity, fired or not, so that one fault's outcome never shifts another's
      const double u = rng.uniform();
      const auto p = pick();
      if (u < f.probability) {
        plan.firings.push_back({t, i, f.kind, f.target, p, 1});
        ++fired;
      }
    }
  }
  std::stable_sort(plan.firings.begin(), plan.firings.end(),
                   [](const Firing& a, const Firing& b) { return a.t_s < b.t_s; });

  Stream web(s.seed, "webhook-faults");
  for (std::size_t o = 0; o < arrivals_s.size(); ++o) {
    const double t = arrivals_s[o];
    for (const Fault& f : s.faults) {
      using K = Fault::Kind;
      if (f.kind != K::duplicate_webhook && f.kind != K::replay_webhook && f.kind != K::forge_webhook &&
          f.kind != K::late_webhook)
        continue;
      const double u = web.uniform(), v = web.uniform();
      if (t < f.from_s || t > f.until_s || u >= f.probability) continue;
      switch (f.kind) {
        case K::duplicate_webhook: {
          int copies = f.copies_min + static_cast<int>(std::floor(v * (f.copies_max - f.copies_min + 1)));
          copies = std::min(copies, f.copies_max);
          for (int c = 0; c < copies; ++c)
            plan.webhooks.push_back({WebhookExtra::Kind::duplicate, o, t + web.uniform() * f.spread_s, 0});
          break;
        }
        case K::replay_webhook:
          plan.webhooks.push_back({WebhookExtra::Kind::replay, o, t + f.after_s, f.after_s});
          break;
        case K::forge_webhook:
          plan.webhooks.push_back({f.how == "tampered_body" ? WebhookExtra::Kind::forge_body
                                                            : WebhookExtra::Kind::forge_signature,
                                   o, t + v * 60, 0});
          break;
        case K::late_webhook:
          plan.webhooks.push_back({WebhookExtra::Kind::late, o, t + v * 60, f.skew_s});
          break;
        default:
          break;
      }
    }
  }
  std::stable_sort(plan.webhooks.begin(), plan.webhooks.end(),
                   [](const WebhookExtra& a, const WebhookExtra& b) { return a.at_s < b.at_s; });
  return plan;
}

FaultPlan plan_faults(const Scenario& s, const Plan& plan) {
  double longest = 0;
  for (std::size_t i = 0; i < plan.download_s.size(); ++i) longest = std::max(longest, plan.download_s[i] + plan.upload_s[i]);
  return plan_faults(s, plan.arrivals_s, plan.arrivals_s.back() + 2 * longest);
}

}  // namespace qsim::sim
