// The fault families' registry and the dispatch of fault.h's free functions to them.
#include "family.h"

#include "qsim/security/signature.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace qsim::sim {

namespace faults {

namespace {
// In the order of Fault::params' alternatives.
const std::vector<const Family*>& families() {
  static const std::vector<const Family*> all{&process_family(), &redis_family(), &poison_family(), &webhook_family(),
                                              &world_family(),   &network_family(), &clock_family()};
  return all;
}
}  // namespace

const Family& family_of(const Fault& f) { return *families().at(f.params.index()); }

void read_window(JsonReader& r, Fault& f) {
  f.from_s = r.duration("from", false, 0);
  f.until_s = r.duration("until", false, 1e300);
  if (f.until_s <= f.from_s) r.fail(r.at("until"), "expected a time after \"from\"");
}

void read_probability(JsonReader& r, Fault& f) { f.probability = r.number("probability", 0, 1, false, 1); }

void read_when(JsonReader& r, Fault& f, std::string* stage) {
  if (!stage && r.get("stage", false)) r.fail(r.at("stage"), "no \"stage\" here: only kill_process fires at a stage");
  int given = (r.get("at", false) != nullptr) + (r.get("every", false) != nullptr) +
              (stage && r.get("stage", false) != nullptr);
  if (given != 1)
    r.fail(r.path(), stage ? "exactly one of \"at\", \"every\" or \"stage\"" : "exactly one of \"at\" or \"every\"");
  if (r.get("at", false)) f.at_s = r.duration("at");
  if (r.get("every", false)) {
    f.every_s = r.duration("every", true, 0, true);
    read_window(r, f);
    read_probability(r, f);
  }
  if (stage && r.get("stage", false)) {
    *stage = r.one_of("stage", {"download", "upload", "after_grant", "after_effects", "handoff"});
    read_window(r, f);
    read_probability(r, f);
  }
  f.count = r.integer("count", 1, 1'000'000, false, f.every_s ? 0 : 1);
}

std::string read_process_target(JsonReader& r, const FaultReadContext& ctx) {
  std::string target = r.str("target");
  const bool instance = target.rfind("worker-", 0) == 0;
  if (target != "worker" && target != "payment_intake" && target != "finalize" && !instance)
    r.fail(r.at("target"), "expected worker, worker-<n>, payment_intake or finalize; got \"" + target + "\"");
  if (instance) {
    const std::string n = target.substr(7);
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 6 ||
        std::stoi(n) >= ctx.workers)
      r.fail(r.at("target"), "a worker that exists: worker-0 .. worker-" + std::to_string(ctx.workers - 1) +
                                 "; got \"" + target + "\"");
  }
  return target;
}

void plan_at_or_every(const Fault& f, std::size_t index, const std::string& target, Stream& rng, double horizon_s,
                      FaultPlan& out) {
  auto pick = [&] { return static_cast<std::uint64_t>(rng.uniform() * 1e9); };
  if (f.at_s) {
    out.firings.push_back({*f.at_s, index, f.kind, target, pick(), f.count});
    return;
  }
  if (!f.every_s) return;
  const double end = std::min(f.until_s, horizon_s);
  int fired = 0;
  for (double t = f.from_s + *f.every_s; t <= end && (f.count == 0 || fired < f.count); t += *f.every_s) {
    const double u = rng.uniform();
    const auto p = pick();
    if (u < f.probability) {
      out.firings.push_back({t, index, f.kind, target, p, 1});
      ++fired;
    }
  }
}

}  // namespace faults

using faults::family_of;

const std::vector<std::string>& fault_kinds() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> out;
    for (const auto* fam : faults::families())
      for (auto& k : fam->kinds()) out.push_back(k);
    return out;
  }();
  return all;
}

Fault read_fault(JsonReader r, const FaultReadContext& ctx) {
  Fault f;
  f.kind = r.one_of("kind", fault_kinds());
  for (const auto* fam : faults::families()) {
    auto kinds = fam->kinds();
    if (std::find(kinds.begin(), kinds.end(), f.kind) != kinds.end()) fam->read(f.kind, r, ctx, f);
  }
  r.done();
  return f;
}

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

FaultPlan plan_faults(std::uint64_t seed, const std::vector<Fault>& faults, const std::vector<double>& arrivals_s,
                      double horizon_s) {
  FaultPlan plan;
  Stream rng(seed, "faults");
  for (std::size_t i = 0; i < faults.size(); ++i) family_of(faults[i]).plan_timed(faults[i], i, rng, horizon_s, plan);
  std::stable_sort(plan.firings.begin(), plan.firings.end(),
                   [](const Firing& a, const Firing& b) { return a.t_s < b.t_s; });
  Stream web(seed, "webhook-faults");
  for (std::size_t o = 0; o < arrivals_s.size(); ++o)
    for (const auto& f : faults) family_of(f).plan_order(f, o, arrivals_s[o], web, plan);
  std::stable_sort(plan.webhooks.begin(), plan.webhooks.end(),
                   [](const WebhookExtra& a, const WebhookExtra& b) { return a.at_s < b.at_s; });
  return plan;
}

void fire_live(const Fault& f, const Firing& firing, LiveTarget& live) { family_of(f).fire(f, firing, live); }

std::vector<bool> world_faults_active(const std::vector<Fault>& faults, double t, const std::vector<int>& stage_fired) {
  std::vector<bool> active(faults.size(), false);
  for (std::size_t i = 0; i < faults.size(); ++i)
    active[i] = family_of(faults[i]).shapes_world(faults[i], t, i < stage_fired.size() ? stage_fired[i] : 0);
  return active;
}

WorldState world_state(const std::vector<Fault>& faults, const std::vector<bool>& active) {
  WorldState w;
  for (std::size_t i = 0; i < faults.size(); ++i)
    if (i < active.size() && active[i]) family_of(faults[i]).shape_world(faults[i], w);
  return w;
}

std::map<std::string, std::pair<LinkState, std::vector<bool>>> link_states(const std::vector<Fault>& faults, double t) {
  std::map<std::string, std::pair<LinkState, std::vector<bool>>> links;
  for (const auto& l : network_links()) links[l] = {LinkState{}, std::vector<bool>(faults.size(), false)};
  for (std::size_t i = 0; i < faults.size(); ++i) {
    const auto link = link_of(faults[i]);
    // a reset at a moment is a firing, not a window
    if (link.empty() || faults[i].at_s || !faults[i].window_holds(t)) continue;
    auto& [state, holding] = links[link];
    holding[i] = true;
    family_of(faults[i]).shape_link(faults[i], state);
  }
  return links;
}

std::map<std::string, double> clock_offsets(const std::vector<Fault>& faults, double t) {
  std::map<std::string, double> out;
  for (const auto& f : faults)
    if (auto* c = f.as<ClockFault>()) out[c->target] += f.window_holds(t) ? c->offset_s : 0;
  return out;
}

namespace {

bool names(const ClockFault& c, const std::string& instance) {
  return c.target == instance || (c.target == "worker" && instance.rfind("worker-", 0) == 0);
}

}  // namespace

double clock_offset(const std::vector<Fault>& faults, double t, const std::string& instance) {
  double off = 0;
  for (const auto& f : faults)
    if (auto* c = f.as<ClockFault>(); c && f.window_holds(t) && names(*c, instance)) off += c->offset_s;
  return off;
}

bool signature_refused(const std::vector<Fault>& faults, double t, const std::string& sender,
                       const std::string& receiver) {
  const double apart = clock_offset(faults, t, sender) - clock_offset(faults, t, receiver);
  return std::abs(apart) > static_cast<double>(security::kSignatureWindow.count());
}

bool clock_skewed(const std::vector<Fault>& faults, const std::string& instance) {
  for (const auto& f : faults)
    if (auto* c = f.as<ClockFault>(); c && names(*c, instance)) return true;
  return false;
}

void fire_model(const Fault& f, const Firing& firing, ModelTarget& model) { family_of(f).fire(f, firing, model); }

void shape_attempt(const std::vector<Fault>& faults, ModelAttempt& a) {
  for (const auto& f : faults) family_of(f).shape_attempt(f, a);
}

void kill_attempt(std::uint64_t seed, const std::vector<Fault>& faults, ModelAttempt& a, std::vector<int>& stage_fired) {
  const bool succeeds = a.succeeds;
  for (std::size_t i = 0; i < faults.size(); ++i) family_of(faults[i]).kill_attempt(seed, faults[i], i, a, stage_fired[i]);
  // A worker killed during a stage ends the attempt there: no later stage of it is reached. A
  // kill of a later stage is dropped, and its fault keeps that firing for another attempt.
  double ended = INFINITY;
  for (const auto& k : a.kills)
    if (!k.after_end) ended = std::min(ended, k.t_s);
  if (ended == INFINITY) return;
  std::erase_if(a.kills, [&](const ModelAttempt::Kill& k) {
    const bool unreached = k.after_end || k.t_s > ended;
    if (unreached) stage_fired[k.fault]--;
    return unreached;
  });
  a.succeeds = succeeds;  // a dropped after_grant kill decides nothing: the worker's death ends the attempt
}

}  // namespace qsim::sim
