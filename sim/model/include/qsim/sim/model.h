// A discrete-event model of both architectures, driven by the same scenario files as `sim run`
// and answering in milliseconds: no Redis, no processes, a manual clock (the event queue's).
// Same scenario and seed, same result, bit for bit.
//
// What it models (all in simulated seconds):
//   both     the world fails a call exactly as the live world does (the draw keyed by the seed,
//            the API, the order and its earlier calls to that API; the failure rate and slowdown
//            holding when the call starts), so a scenario's failures are the live run's;
//   queue    W workers take paid orders first come first served the moment one is free (the
//            hand-off is instantaneous); a transient failure is retried after the scenario's
//            backoff, up to its attempts, then dead-lettered (a retry after a failed grant or
//            e-mail calls finalize alone); a permanent one is dead at once;
//            a killed worker's order comes back after the lease plus half a reaper tick (both
//            with the live run's wall-time floors), and the worker after restart_delay; a Redis
//            outage stops pickups (without persistence it loses every order not yet completed);
//            a restart fails every busy worker's next store command, and its job comes back
//            when the lease runs out; a payment refused meanwhile is delivered again on the
//            provider's schedule; poison jobs are dead letters;
//   both     a failover promotes the replica, after Sentinel's outage, with every order as it was
//            when the replica was cut off: what the primary acknowledged since is gone (a job
//            done again, an acknowledged payment lost, a poller's claim stuck); the intake that
//            waits for the replica refuses payments meanwhile (503 not_replicated);
//   polling  one poller, polling every interval while idle and one interval after each job;
//            any failure fails the order for good; a killed poller's order is stuck for good;
//            after a Redis restart or failover its next store command fails (and so the order
//            it holds: stuck if Redis is still away to hear so), and so does finalize's next
//            read of an order; it reconnects with the live client's backoff (50 ms doubling to
//            2 s of wall time, 250 ms through Sentinel);
//   both     a stage kill lands when the window opens on a stage in progress, as the injector
//            finds it, or at a later stage's start;
//   both     network faults (model/links.h), as the harness's proxy applies them to each link's
//            exchanges: a chunk pays a window's mean latency and its bytes at a bandwidth limit;
//            a blackhole holds it until it lifts, the client giving up after its timeout (the
//            worker's calls: the run's stage timeout; a payment: the intake's Redis command, 2 s,
//            and the provider, 5 s of wall time) while the server still acts once it gets it; a
//            reset with a probability fails an exchange unmade (drawn by the model: the rate is
//            the live run's, which exchanges is not); a reset at a moment on worker_redis fails
//            each busy worker's next store command of its own.
// Webhook faults do not change the model's outcome (the receivers dedupe): they are listed as
// not modelled.
//
// What the harness itself costs a live run (each attempt's hand-offs, store transitions and HTTP
// calls; a restart's reload) the model adds only when calibrated from a live report (Calibration,
// `sim model --calibrate REPORT.json`).
//
// The results are a RunResult like a live run's (kind "model"), so every report format and
// gate applies.
#pragma once

#include "qsim/sim/results.h"
#include "qsim/sim/scenario.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qsim::sim {

// What a live run pays that the model's architectures do not: per architecture, the simulated
// seconds each attempt spends outside the world's download and upload (the hand-offs, the store's
// transitions, the HTTP calls, finalize). Measured live: a report's overhead_s (a wall-clock cost
// of a few milliseconds, times the run's speedup), its mean when every order's overhead is one
// attempt's, else its median.
// A failover's timing (failover_redis), in simulated seconds: Sentinel's failover, from the end of
// the fault's down_after until it names the promoted replica, and from then until the old primary
// is back as its replica. Both are wall time in a live run (the outage is down_after + outage_s).
struct FailoverTimes {
  double outage_s = 0, rejoin_s = 0;
};

// A full memory or disk's timing (fill_redis_memory, fill_disk), in simulated seconds: from the
// firing until the fill holds (a filler file written, the probe writes refused), and beyond its
// `for` until it lifts (the filler removed).
struct FillTimes {
  double hold_s = 0, lift_s = 0;
};

struct Calibration {
  std::map<std::string, double> attempt_overhead_s;  // by architecture (polling, queue)
  std::map<std::string, std::string> statistic;      // ... which figure of overhead_s: mean or p50
  // By architecture: how much longer than its down_for a Redis restart kept the store away (the
  // server's start, the reload of its data; the mean over the report's restarts, from the
  // "answering again ... s after the kill" its fault events give).
  std::map<std::string, double> restart_extra_s;
  // By architecture: the failover's timing, from its fault events (uncalibrated: 1.05 s and 0.1 s
  // of wall time at the scenario's speedup, as the live runs measure them).
  std::map<std::string, FailoverTimes> failover;
  // By architecture: when a fill_disk or fill_redis_memory held and lifted (the means over the
  // report's fills, from their fault events; uncalibrated: what the live runs of disk_full and
  // redis_memory_full measure).
  std::map<std::string, std::map<std::string, FillTimes>> fill;  // ... then by kind (fill_disk, fill_redis_memory)
  // When the poller picked up its first order, which gives its phase: when in its poll interval
  // it polls (uncalibrated: at 0, when the run starts).
  std::map<std::string, double> first_pickup_s;
  std::string source;                                // the report it was read from
};
// The calibration a live report gives (`sim model --calibrate REPORT.json`): ScenarioError, at
// `where`, for a model's report or one without a completed order in polling or queue.
Calibration calibration_from_report(const nlohmann::json& report, const std::string& where);

struct ModelOptions {
  std::vector<std::string> architectures;  // empty: every one in the scenario
  std::optional<std::uint64_t> seed;
  bool keep_orders = true;                 // false: only summaries (sweeps)
  // Which rolls decide what a live run leaves to chance: the network's resets with a
  // probability, the jitter of each retry's backoff, which idle worker takes each job, and the
  // heartbeat and reaper phases of a job a full disk strands. 0: the model's own resets, retries
  // on the plain schedule (no jitter), the first idle worker by index, the phases' means; any
  // other value rolls them afresh (a live run is one roll of many: ModelVsLive compares it with
  // the spread of many models).
  std::uint64_t rolls = 0;
  Calibration calibration;                 // none: the architectures' own costs alone
};

// The architectures a model run covers: polling and queue (`requested`, or those the scenario
// configures); a framework under test runs live only (ScenarioError if one is requested).
std::vector<std::string> model_architectures(const Scenario& s, const std::vector<std::string>& requested);

RunResult run_model(Scenario s, const ModelOptions& options = {});

// For a process that runs models of a million orders one after the other (`sim plan`, the
// benchmark): memory a run frees stays in the process for the next run. By default glibc maps
// each run's large vectors afresh and hands them back when freed, and the kernel's page faults
// then take about a tenth of a run. Call once, early in main(); a no-op without glibc.
void keep_freed_memory_for_reuse();

// The event engine, exposed for its benchmark: a binary heap of small events.
namespace des {
struct Event {
  double t;
  std::uint64_t seq;  // ties break in scheduling order: determinism
  std::uint32_t kind, a;
};
struct Later {  // the heap's order: a type, not a function pointer, so that it inlines
  bool operator()(const Event& a, const Event& b) const { return a.t > b.t || (a.t == b.t && a.seq > b.seq); }
};
// Inline: a model run calls both for every event, and they are a few instructions each.
class Engine {
public:
  void at(double t, std::uint32_t kind, std::uint32_t a = 0) {
    heap_.push_back({t, seq_++, kind, a});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
  }
  bool next(Event& e) {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    e = heap_.back();
    heap_.pop_back();
    now_ = e.t;
    ++processed_;
    return true;
  }
  double now() const { return now_; }
  std::uint64_t processed() const { return processed_; }
  void reserve(std::size_t n) { heap_.reserve(n); }
  // For events kept outside the heap (a sorted list merged in by the caller): their sequence
  // numbers are the first n, and the caller reports each one it processes with advance().
  void skip_seq(std::uint64_t n) { seq_ += n; }
  const double* peek_time() const { return heap_.empty() ? nullptr : &heap_.front().t; }
  void advance(double t) {
    now_ = t;
    ++processed_;
  }

private:
  std::vector<Event> heap_;
  std::uint64_t seq_ = 0, processed_ = 0;
  double now_ = 0;
};
}  // namespace des

// Erlang C for M/M/c: arrival rate lambda, service rate mu (per server), c servers.
struct ErlangC {
  double utilisation = 0;   // lambda / (c mu)
  double p_wait = 0;        // probability an arrival waits
  double mean_wait_s = 0;   // mean wait in queue
  bool stable = false;
};
ErlangC erlang_c(double lambda_per_s, double mu_per_s, int c);

}  // namespace qsim::sim
