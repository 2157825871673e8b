// The process family: kill_process and pause_process. A process of the architecture under test
// (a worker, the payment intake, finalize) is SIGKILLed or SIGSTOPped at a time, every period,
// or (kill_process) whenever one is seen in a stage of an order's life.
#include "family.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace qsim::sim::faults {

namespace {

bool is_worker_stage(const std::string& stage) { return stage == "download" || stage == "upload" || stage == "after_effects"; }
bool is_late_stage(const std::string& stage) { return stage == "after_grant" || stage == "after_effects"; }

class Process final : public Family {
public:
  std::vector<std::string> kinds() const override { return {"kill_process", "pause_process"}; }

  void read(const std::string& kind, JsonReader& r, const FaultReadContext& ctx, Fault& f) const override {
    ProcessFault p;
    p.kill = kind == "kill_process";
    p.target = read_process_target(r, ctx);
    const bool instance = p.target.rfind("worker-", 0) == 0;
    read_when(r, f, p.kill ? &p.stage : nullptr);
    if (p.stage == "after_grant" && p.target != "finalize")
      r.fail(r.at("target"), "finalize (it is finalize that stands between the grant and the e-mail)");
    if (p.stage == "handoff" && p.target != "payment_intake")
      r.fail(r.at("target"), "payment_intake (it is the intake that hands a paid order to a framework)");
    if (is_worker_stage(p.stage) && p.target != "worker" && !instance)
      r.fail(r.at("target"), "a worker (only workers download, upload and wait for finalize)");
    if (!p.kill) p.for_s = r.duration("for", true, 0, true);
    if (p.kill && r.get("process", false)) {
      p.process = r.one_of("process", {"worker", "job"});
      if (p.target == "payment_intake" || p.target == "finalize")
        r.fail(r.at("process"), "only a worker's kill chooses its process (worker or job)");
    }
    f.params = std::move(p);
  }

  void plan_timed(const Fault& f, std::size_t index, Stream& rng, double horizon_s, FaultPlan& out) const override {
    const auto& p = std::get<ProcessFault>(f.params);
    if (p.stage.empty()) plan_at_or_every(f, index, p.target, rng, horizon_s, out);  // a stage fires when seen
  }

  void fire(const Fault& f, const Firing& firing, LiveTarget& live) const override {
    const auto& p = std::get<ProcessFault>(f.params);
    auto names = live.instances(firing.target);
    if (names.empty()) {
      live.log(f.kind, firing.target, "skipped: no such process here");
      return;
    }
    for (int k = 0; k < std::min<int>(firing.count, static_cast<int>(names.size())); ++k) {
      const auto& victim = names[(firing.pick + static_cast<std::uint64_t>(k)) % names.size()];
      if (p.kill) live.kill(victim, "", p.process == "job");
      else live.pause(victim, p.for_s);
    }
  }

  // A kill after the grant or after the effects needs the world to hold that answer a moment,
  // long enough for the injector to see the call and kill its caller('s caller).
  bool shapes_world(const Fault& f, double t, int fired) const override {
    const auto& p = std::get<ProcessFault>(f.params);
    return p.kill && is_late_stage(p.stage) && f.window_holds(t) && fired < f.count;
  }
  void shape_world(const Fault& f, WorldState& w) const override {
    w.apis[std::get<ProcessFault>(f.params).stage == "after_grant" ? "grant" : "mail"].hold = true;
  }

  void fire(const Fault& f, const Firing& firing, ModelTarget& model) const override {
    const auto& p = std::get<ProcessFault>(f.params);
    if (firing.target == "payment_intake" || firing.target == "finalize") {
      model.log(firing.target, p.stage == "after_grant" ? "between the grant and the e-mail: the worker's call fails"
                                                        : "not modelled: the provider and the worker retry through it");
      return;
    }
    const int workers = model.workers();
    for (int k = 0; k < firing.count; ++k) {
      const int w = firing.target == "worker"
                        ? static_cast<int>((firing.pick + static_cast<std::uint64_t>(k)) % static_cast<std::uint64_t>(workers))
                        : std::atoi(firing.target.c_str() + 7);
      if (w < workers) model.stop_worker(w, p.kill, p.for_s);
    }
  }

  // after_grant: finalize dies between the grant and the e-mail, so the worker's finalize call
  // fails (transient) and the attempt is retried; after_effects: the worker dies once the
  // effects are done, before its ack (the order is complete; the worker restarts); download,
  // upload: the live injector sees the worker in the stage within moments.
  void kill_attempt(std::uint64_t seed, const Fault& f, std::size_t index, ModelAttempt& a, int& fired) const override {
    const auto& p = std::get<ProcessFault>(f.params);
    if (!p.kill || p.stage.empty() || fired >= f.count) return;
    const std::string worker = fmt::format("worker-{}", a.worker);
    if (is_late_stage(p.stage)) {
      if (!a.succeeds || !f.window_holds(a.end_s)) return;
      if (keyed_draw(seed, "stage-kill", a.order, static_cast<int>(index)) >= f.probability) return;
      ++fired;
      if (p.stage == "after_grant") a.succeeds = false;
      a.kills.push_back({a.end_s, index, p.stage == "after_grant" ? "finalize" : worker, true});
    } else if ((p.stage == "download" || p.stage == "upload") && !a.finalize_only) {
      // As the injector looks: at the stage's start, or when the window opens on it in progress
      const double begins = p.stage == "download" ? a.start_s : a.start_s + a.download_s;
      const double ends = begins + (p.stage == "download" ? a.download_s : a.upload_s);
      const double at = std::max(begins, f.from_s);
      if (!f.window_holds(at) || at >= a.end_s || (at > begins && at >= ends)) return;
      if (p.target != "worker" && p.target != worker) return;
      if (keyed_draw(seed, "stage-kill", a.order, static_cast<int>(index)) >= f.probability) return;
      ++fired;
      a.kills.push_back({at, index, worker, false});
    }
  }
};

}  // namespace

const Family& process_family() {
  static const Process family;
  return family;
}

}  // namespace qsim::sim::faults
