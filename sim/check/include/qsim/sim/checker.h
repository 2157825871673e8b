// The checker: the verdict on one architecture's run, from its recorded history alone.
//
// A live run and the model both record the same History (per order: the provider's deliveries
// and whether one was acknowledged, the store's transitions, every call the world received; the
// calls for orders the workload never had; the fault events), and check() is a pure function of
// it. Statistics (percentiles, timeline, drain, recovery) are computed apart, in stats.h.
#pragma once

#include "qsim/sim/results.h"

#include <span>

namespace qsim::sim {

struct History {
  std::span<const OrderRecord> orders;
  std::span<const StrayCall> stray_calls;
  std::span<const FaultEvent> faults;
};

History history_of(const ArchResult& r);

// The verdict. `crashes` is not the history's to tell (the supervisor counts exits): 0 here.
CheckerResult check(const History& h);
// check()'s verdict on one order, added to `ck`: for a caller that checks orders one at a time
// and keeps none (the model's sweeps). check() is this over the history's orders, then its
// stray calls.
void check_order(CheckerResult& ck, const OrderRecord& o);

// Fills downloads_ok, download_calls, grants and mails from o.calls.
void tally_calls(OrderRecord& o);

// The statuses an order can end a run in, as the checker reads them.
bool in_flight(const std::string& status);   // paid processing downloading uploading finalizing
bool finished(const std::string& status);    // completed failed dead
bool forgotten(const std::string& status);   // missing (no record) or created (the store shows no payment)

}  // namespace qsim::sim
