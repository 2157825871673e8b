// The checker: the verdict on one architecture's run, from its recorded history alone.
//
// A live run and the model both record the same History (per order: the provider's deliveries
// and whether one was acknowledged, the store's transitions, every call the world received; the
// calls for orders the workload never had; the fault events), and check() is a pure function of
// it. Statistics (percentiles, timeline, drain, recovery) are computed apart, in stats.h.
#pragma once

#include "qsim/sim/results.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace qsim::sim {

struct History {
  std::span<const OrderRecord> orders;
  std::span<const StrayCall> stray_calls;
  std::span<const FaultEvent> faults;
};

History history_of(const ArchResult& r);

// The verdict. `crashes` is not the history's to tell (the supervisor counts exits): 0 here.
CheckerResult check(const History& h);
// An order's final status as the checker classes it.
enum class Outcome : std::uint8_t {
  completed,
  failed,     // failed or dead: a visible failure
  in_flight,  // paid processing downloading uploading finalizing
  forgotten,  // missing (no record), created (the store shows no payment), or no status
};
Outcome outcome_of(std::string_view status);

// What one order's calls did: the one walk over them that the checker and the report share.
struct Effects {
  int download_calls = 0, downloads_ok = 0, grants = 0, mails = 0;
  int calls_after_grant = 0, calls_after_mail = 0;  // calls made once the effect had been applied
};
Effects effects_of(const std::vector<EffectCall>& calls);

// All that the checker and the statistics (OrderSummary) read of one order. facts_of() reads
// them from a record; a caller that knows them without one (the model's sweeps: a million
// orders, no record, no status string) fills them itself and gets exactly the same verdict.
struct OrderFacts {
  bool payment_accepted = false;        // the provider's delivery was answered 2xx
  bool paid = false;                    // acknowledged, or the store has entered "paid"
  Outcome outcome = Outcome::forgotten;
  Effects effects;
  double arrival_s = 0, download_plan_s = 0, upload_plan_s = 0;
  double paid_s = 0;                    // when "paid" was entered; the arrival if never
  double end_s = 0;                     // when the final status was entered (if finished); else the arrival
  bool picked = false;                  // "processing" entered ...
  double picked_s = 0;                  // ... at this time
};
OrderFacts facts_of(const OrderRecord& o);
// The same, with effects the caller already has (or needs none of): the order's calls not walked.
OrderFacts facts_of(const OrderRecord& o, const Effects& effects);

// check()'s verdict on one order, added to `ck`: for a caller that checks orders one at a time
// and keeps none (the model's sweeps). check() is this over the history's orders, then its
// stray calls.
void check_order(CheckerResult& ck, const OrderRecord& o);
void check_order(CheckerResult& ck, const OrderFacts& o);

// Fills downloads_ok, download_calls, grants and mails from o.calls.
void tally_calls(OrderRecord& o);

// The statuses an order can end a run in, as the checker reads them.
bool in_flight(const std::string& status);   // paid processing downloading uploading finalizing
bool finished(const std::string& status);    // completed failed dead
bool forgotten(const std::string& status);   // missing (no record) or created (the store shows no payment)

}  // namespace qsim::sim
