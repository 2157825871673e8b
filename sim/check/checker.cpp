#include "qsim/sim/checker.h"

#include <algorithm>

namespace qsim::sim {

bool in_flight(const std::string& s) {
  return s == "paid" || s == "processing" || s == "downloading" || s == "uploading" || s == "finalizing";
}
bool finished(const std::string& s) { return s == "completed" || s == "failed" || s == "dead"; }
bool forgotten(const std::string& s) { return s == "missing" || s == "created" || s.empty(); }

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

namespace {

// What one order's calls did: the one walk over them that the checker and the report share.
struct Effects {
  int download_calls = 0, downloads_ok = 0, grants = 0, mails = 0;
  int calls_after_grant = 0, calls_after_mail = 0;  // calls made once the effect had been applied
};

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

}  // namespace

void tally_calls(OrderRecord& o) {
  const Effects e = effects_of(o.calls);
  o.download_calls = e.download_calls;
  o.downloads_ok = e.downloads_ok;
  o.grants = e.grants;
  o.mails = e.mails;
}

void check_order(CheckerResult& ck, const OrderRecord& o) {
  const Effects e = effects_of(o.calls);
  const bool any_effect = e.grants > 0 || e.mails > 0;
  // Never paid: the provider had no 2xx and the store never saw the payment.
  const bool paid = o.payment_accepted || o.stages_s.count("paid") > 0;
  if (!o.payment_accepted) ck.undelivered_payments++;
  if (!paid) {
    if (any_effect) ck.unexpected_effects++;
    return;
  }
  if (!o.payment_accepted) return;  // paid in the store, but the provider was never told
  ck.orders++;
  ck.duplicate_deliveries += std::max(0, e.downloads_ok - 1);
  ck.duplicate_effect_calls += e.calls_after_grant + e.calls_after_mail;
  ck.duplicate_effects += std::max(0, e.grants - 1) + std::max(0, e.mails - 1);
  if (any_effect && o.status != "completed") ck.orphaned_effects++;
  if (o.status == "completed") {
    ck.completed++;
    if (e.grants < 1 || e.mails < 1) ck.missing_effects++;
  } else if (finished(o.status)) {
    ck.failed_visible++;
  } else if (in_flight(o.status)) {
    ck.stuck++;
  } else if (!any_effect) {
    ck.lost++;  // forgotten: acknowledged to the provider, no effect, no visible failure
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
