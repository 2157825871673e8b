// The checker over hand-written histories: one per category, then several combined.
#include "qsim/sim/architecture.h"
#include "qsim/sim/checker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qsim::sim {
namespace {

EffectCall dl(int status = 200) { return {Api::download, "dl", status, status == 200}; }
EffectCall grant(bool applied = true) { return {Api::grant, "g", 200, applied}; }
EffectCall mail(bool applied = true) { return {Api::mail, "m", 200, applied}; }

OrderRecord order(std::string status, std::vector<EffectCall> calls, bool acknowledged = true) {
  static int n = 0;
  OrderRecord o;
  o.id = "order-" + std::to_string(n++);
  o.payment_accepted = acknowledged;
  o.webhook_attempts = 1;
  o.status = std::move(status);
  if (acknowledged && o.status != "created" && o.status != "missing") o.stages_s["paid"] = 1;
  if (o.status == "completed" || o.status == "failed" || o.status == "dead") o.stages_s[o.status] = 5;
  o.calls = std::move(calls);
  return o;
}

CheckerResult check_of(const std::vector<OrderRecord>& orders, const std::vector<StrayCall>& stray = {}) {
  return check(History{orders, stray, {}});
}

TEST(Checker, CompletedWithBothEffects) {
  auto ck = check_of({order("completed", {dl(), grant(), mail()})});
  EXPECT_EQ(ck.orders, 1);
  EXPECT_EQ(ck.completed, 1);
  EXPECT_EQ(ck.lost + ck.stuck + ck.failed_visible + ck.missing_effects + ck.orphaned_effects, 0);
  EXPECT_EQ(ck.duplicate_deliveries + ck.duplicate_effects + ck.duplicate_effect_calls, 0);
}

TEST(Checker, LostIsAcknowledgedWithNoEffectAndNoVisibleFailure) {
  EXPECT_EQ(check_of({order("missing", {})}).lost, 1);
  EXPECT_EQ(check_of({order("created", {dl()})}).lost, 1) << "a download is work, not an effect";
}

TEST(Checker, StuckIsStillInFlight) {
  for (const char* s : {"paid", "processing", "downloading", "uploading", "finalizing"}) {
    auto ck = check_of({order(s, {})});
    EXPECT_EQ(ck.stuck, 1) << s;
    EXPECT_EQ(ck.lost, 0) << s;
  }
}

TEST(Checker, VisiblyFailedOrDead) {
  auto ck = check_of({order("failed", {dl(503)}), order("dead", {dl(400)})});
  EXPECT_EQ(ck.failed_visible, 2);
  EXPECT_EQ(ck.lost, 0);
}

TEST(Checker, DuplicateDeliveriesAreWorkDoneAgain) {
  auto ck = check_of({order("completed", {dl(), dl(503), dl(), dl(), grant(), mail()})});
  EXPECT_EQ(ck.duplicate_deliveries, 2) << "three successful downloads, one of them needed";
  EXPECT_EQ(ck.duplicate_effects, 0);
}

TEST(Checker, DuplicateEffectCallsApartFromDuplicateEffects) {
  // the world deduplicated the second grant (idempotency key) but applied a second mail
  auto ck = check_of({order("completed", {dl(), grant(), grant(false), mail(), mail(true)})});
  EXPECT_EQ(ck.duplicate_effect_calls, 2);
  EXPECT_EQ(ck.duplicate_effects, 1);
}

TEST(Checker, ARetryAfterAFailedGrantIsNoDuplicate) {
  auto ck = check_of({order("completed", {dl(), {Api::grant, "g", 503, false}, grant(), mail()})});
  EXPECT_EQ(ck.duplicate_effect_calls, 0);
  EXPECT_EQ(ck.duplicate_effects, 0);
}

TEST(Checker, MissingEffectsAreCompletedWithoutGrantOrMail) {
  auto ck = check_of({order("completed", {dl(), grant()}), order("completed", {dl()})});
  EXPECT_EQ(ck.completed, 2);
  EXPECT_EQ(ck.missing_effects, 2);
}

TEST(Checker, OrphanedEffectsAreAppliedOnAnOrderNotCompleted) {
  auto ck = check_of({order("finalizing", {dl(), grant(), mail()}), order("dead", {dl(), grant()}),
                      order("missing", {dl(), grant(), mail()})});
  EXPECT_EQ(ck.orphaned_effects, 3);
  EXPECT_EQ(ck.stuck, 1);
  EXPECT_EQ(ck.failed_visible, 1);
  EXPECT_EQ(ck.lost, 0) << "the store forgot it, but the customer was served";
}

TEST(Checker, UnexpectedEffectsAreForAnOrderNeverPaid) {
  auto never_paid = order("created", {grant()}, false);
  auto ck = check_of({never_paid}, {{"order-nobody", grant()}, {"order-nobody", {Api::download, "", 200, true}}});
  EXPECT_EQ(ck.unexpected_effects, 2) << "the never-paid order's grant and the stray grant; a download is no effect";
  EXPECT_EQ(ck.orders, 0);
  EXPECT_EQ(ck.undelivered_payments, 1);
}

TEST(Checker, UndeliveredPaymentIsNotAnOrder) {
  auto ck = check_of({order("created", {}, false)});
  EXPECT_EQ(ck.undelivered_payments, 1);
  EXPECT_EQ(ck.orders + ck.lost, 0);
}

TEST(Checker, CategoriesCombine) {
  std::vector<OrderRecord> h{
      order("completed", {dl(), dl(), grant(), grant(false), mail()}),  // duplicate delivery + effect call
      order("completed", {dl(), mail()}),                               // missing grant
      order("missing", {}),                                             // lost
      order("processing", {dl()}),                                      // stuck
      order("dead", {dl(400)}),                                         // visible
      order("uploading", {dl(), grant()}),                              // stuck and orphaned
      order("created", {}, false),                                      // undelivered
  };
  auto ck = check_of(h, {{"order-x", mail()}});
  EXPECT_EQ(ck.orders, 6);
  EXPECT_EQ(ck.completed, 2);
  EXPECT_EQ(ck.lost, 1);
  EXPECT_EQ(ck.stuck, 2);
  EXPECT_EQ(ck.failed_visible, 1);
  EXPECT_EQ(ck.completed + ck.lost + ck.stuck + ck.failed_visible, ck.orders);
  EXPECT_EQ(ck.duplicate_deliveries, 1);
  EXPECT_EQ(ck.duplicate_effect_calls, 1);
  EXPECT_EQ(ck.duplicate_effects, 0);
  EXPECT_EQ(ck.missing_effects, 1);
  EXPECT_EQ(ck.orphaned_effects, 1);
  EXPECT_EQ(ck.unexpected_effects, 1);
  EXPECT_EQ(ck.undelivered_payments, 1);
}

TEST(Checker, TallyCountsForTheReport) {
  auto o = order("completed", {dl(503), dl(), grant(), grant(false), mail()});
  tally_calls(o);
  EXPECT_EQ(o.download_calls, 2);
  EXPECT_EQ(o.downloads_ok, 1);
  EXPECT_EQ(o.grants, 1);
  EXPECT_EQ(o.mails, 1);
}

TEST(Explanations, LostAndUndeliveredPaymentsNameWhatForgotThem) {
  ArchResult r;
  r.checker.lost = 2;
  r.checker.undelivered_payments = 3;
  auto restart = explain_counts(r, {});
  ASSERT_EQ(restart.size(), 2u);
  EXPECT_NE(restart[0].find("lost 2: "), std::string::npos);
  EXPECT_NE(restart[0].find("a Redis restart without persistence"), std::string::npos) << restart[0];
  EXPECT_NE(restart[1].find("undelivered_payments 3: the payment provider gave up"), std::string::npos) << restart[1];

  r.redis_evicted_keys = 67;
  auto evicted = explain_counts(r, {{"stuck", "never said: stuck is 0"}});
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_NE(evicted[0].find("Redis evicted 67 keys while its memory was full"), std::string::npos) << evicted[0];
  EXPECT_NE(evicted[1].find("evicted before its payment came"), std::string::npos) << evicted[1];

  auto own = explain_counts(r, {{"lost", "an architecture's own sentence"}});
  EXPECT_EQ(own[0], "lost 2: an architecture's own sentence");
}

}  // namespace
}  // namespace qsim::sim
