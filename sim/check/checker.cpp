#include "qsim/sim/checker.h"

#include <algorithm>

namespace qsim::sim {

bool in_flight(const std::string& s) { return outcome_of(s) == Outcome::in_flight; }
bool finished(const std::string& s) {
  const auto o = outcome_of(s);
  return o == Outcome::completed || o == Outcome::failed;
}
bool forgotten(const std::string& s) { return outcome_of(s) == Outcome::forgotten; }

Api api_from(std::string_view name) {
  if (name == "download") return Api::download;
  if (name == "upload") return Api::upload;
  if (name == "grant") return Api::grant;
  if (name == "mail") return Api::mail;
  return Api::other;
}

std::string_view to_string(Api api) {
  switch (api) {
    case Api::download: return "download";
    case Api::upload: return "upload";
    case Api::grant: return "grant";
    case Api::mail: return "mail";
    case Api::other: break;
  }
  return "other";
}

History history_of(const ArchResult& r) { return {r.orders, r.stray_calls, r.faults}; }

Outcome outcome_of(std::string_view s) {
  if (s == "completed") return Outcome::completed;
  if (s == "failed" || s == "dead") return Outcome::failed;
  if (s == "paid" || s == "processing" || s == "downloading" || s == "uploading" || s == "finalizing")
    return Outcome::in_flight;
  return Outcome::forgotten;
}

Effects effects_of(const std::vector<EffectCall>& calls) {
  Effects e;
  for (const auto& c : calls) {
    if (c.api == Api::download) {
      e.download_calls++;
      e.downloads_ok += c.status == 200;
    } else if (c.api == Api::grant) {
      if (e.grants > 0) e.calls_after_grant++;
      e.grants += c.applied;
    } else if (c.api == Api::mail) {
      if (e.mails > 0) e.calls_after_mail++;
      e.mails += c.applied;
    }
  }
  return e;
}

OrderFacts facts_of(const OrderRecord& o) { return facts_of(o, effects_of(o.calls)); }

OrderFacts facts_of(const OrderRecord& o, const Effects& effects) {
  OrderFacts f;
  f.payment_accepted = o.payment_accepted;
  f.outcome = outcome_of(o.status);
  f.effects = effects;
  f.arrival_s = o.arrival_s;
  f.download_plan_s = o.download_plan_s;
  f.upload_plan_s = o.upload_plan_s;
  const double* paid = o.stages_s.get("paid");
  f.paid = o.payment_accepted || paid;
  f.paid_s = paid ? *paid : o.arrival_s;
  const double* ended = f.outcome == Outcome::completed || f.outcome == Outcome::failed ? o.stages_s.get(o.status) : nullptr;
  f.end_s = ended ? *ended : o.arrival_s;
  if (const double* picked = o.stages_s.get("processing")) f.picked = true, f.picked_s = *picked;
  return f;
}

void tally_calls(OrderRecord& o) {
  const Effects e = effects_of(o.calls);
  o.download_calls = e.download_calls;
  o.downloads_ok = e.downloads_ok;
  o.grants = e.grants;
  o.mails = e.mails;
}

void check_order(CheckerResult& ck, const OrderRecord& o) { check_order(ck, facts_of(o)); }

void check_order(CheckerResult& ck, const OrderFacts& o) {
  const Effects& e = o.effects;
  const bool any_effect = e.grants > 0 || e.mails > 0;
  // Never paid: the provider had no 2xx and the store never saw the payment.
  if (!o.payment_accepted) ck.undelivered_payments++;
  if (!o.paid) {
    if (any_effect) ck.unexpected_effects++;
    return;
  }
  if (!o.payment_accepted) return;  // paid in the store, but the provider was never told
  ck.orders++;
  ck.duplicate_deliveries += std::max(0, e.downloads_ok - 1);
  ck.duplicate_effect_calls += e.calls_after_grant + e.calls_after_mail;
  ck.duplicate_effects += std::max(0, e.grants - 1) + std::max(0, e.mails - 1);
  if (any_effect && o.outcome != Outcome::completed) ck.orphaned_effects++;
  switch (o.outcome) {
    case Outcome::completed:
      ck.completed++;
      if (e.grants < 1 || e.mails < 1) ck.missing_effects++;
      break;
    case Outcome::failed: ck.failed_visible++; break;
    case Outcome::in_flight: ck.stuck++; break;
    case Outcome::forgotten:
      if (!any_effect) ck.lost++;  // forgotten: acknowledged to the provider, no effect, no visible failure
      break;
  }
}

CheckerResult check(const History& h) {
  CheckerResult ck;
  for (const auto& o : h.orders) check_order(ck, o);
  for (const auto& s : h.stray_calls)
    if (s.call.applied && (s.call.api == Api::grant || s.call.api == Api::mail)) ck.unexpected_effects++;
  return ck;
}

}  // namespace qsim::sim
