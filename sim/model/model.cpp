#include "qsim/sim/model.h"

#include "links.h"

#include "qsim/queue/backoff.h"
#include "qsim/queue/queue.h"

#include "qsim/sim/checker.h"
#include "qsim/sim/random.h"
#include "qsim/sim/stats.h"
#include "qsim/sim/workload.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <regex>
#include <tuple>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qsim::sim {

ErlangC erlang_c(double lambda, double mu, int c) {
  ErlangC r;
  const double a = lambda / mu;  // offered load in erlangs
  r.utilisation = a / c;
  r.stable = r.utilisation < 1;
  if (!r.stable) {
    r.p_wait = 1;
    r.mean_wait_s = INFINITY;
    return r;
  }
  // sum_{k<c} a^k/k!, and a^c/c!, computed by recurrence to stay finite for large c
  double term = 1, sum = 0;
  for (int k = 0; k < c; ++k) {
    sum += term;
    term *= a / (k + 1);
  }
  const double top = term / (1 - r.utilisation);
  r.p_wait = top / (sum + top);
  r.mean_wait_s = r.p_wait / (c * mu - lambda);
  return r;
}

namespace {

enum Kind : std::uint32_t {
  kArrive, kDone, kFailTransient, kFailPermanent, kRetry, kRedeliver, kFire, kWorkerUp, kRedisUp, kPoll, kStageKill,
  kFailFinalize,  // a transient failure of the grant or the e-mail: the order stays in finalizing
  kStale,         // a worker's next store command after a Redis restart fails (its connection is stale)
  kRefused,       // finalize refused the worker's signature (their clocks apart): the attempt does not count
  kClock,         // a skew_clock window opens or closes: logged as the live injector logs it
  kPayAgain,      // the provider delivers a refused payment again
  kFailover,      // failover_redis: the primary dies, and the replica Sentinel promotes has what it had at the cut
  kIntake,        // a delivery reaches the intake's script late (through a network fault): intake_pending_[a]
  kHeldFinalize,  // finalize acts on a call its worker gave up on (a network fault held it): order a completes
  kUnavailable,   // a queue worker's first store command failed (its connection was reset): the job comes back uncounted
  kWriteRefused,  // a busy worker's next store command meets Redis refusing writes (memory or disk full)
  kDiskFull,      // a fill_disk takes hold (its filler written): writes refused for refusal_for_s_[a]
  kMemoryFull,    // a fill_redis_memory takes hold
  kFinalizeDies,  // finalize killed after a grant (after_grant), just before that attempt's end: finalize_kills_[a]
};

// A requeue (kRetry, kRedeliver) scheduled after a failover: one scheduled before it is the dead
// primary's, and the promoted replica never had it (order indices stay below this bit).
constexpr std::uint32_t kAfterFailover = 1u << 31;

// The intake's WAIT for a replica, before it answers 503 not_replicated: the default of
// PaymentIntakeOptions::wait_timeout, which the harness does not change (wall seconds).
constexpr double kWaitReplicasTimeoutWall_s = 0.2;
// Uncalibrated, a failover's outage beyond the fault's down_after and the old primary's return as
// a replica, in wall seconds: Sentinel's failover once asked (SENTINEL FAILOVER, faults/injector.cpp)
// took about 1.05 s in the live runs of redis_failover_async; the old primary back in sync about
// 0.1 s later.
constexpr double kPromotionWall_s = 1.05, kRejoinWall_s = 0.1;

// A kill of finalize after a grant: how long after the grant the injector sees the held call and
// kills it (0.8 simulated s at 120× in a live run of worker_crash).
constexpr double kFinalizeKillReactionWall_s = 0.007;

constexpr const char* kApis[] = {"download", "upload", "grant", "mail"};  // ModelAttempt::stages' order

// The provider's deliveries of a payment before it gives up (20 ms apart, doubling to 1 s)
constexpr int kProviderDeliveries = 10;

// The clients' timeouts the network faults meet (wall seconds): a Redis command's (hiredis,
// redis::Connection's default), finalize's calls of the world, the provider's webhook. The
// workers' calls of the world and of finalize time out after the run's stage timeout
// (Model::stage_timeout_s_).
// When the live injector's full disk holds (a 32 MiB tmpfs filled, then probe writes until Redis
// refuses one: 11 to 15 ms in twelve fills of disk_full) and lifts beyond its `for` (the filler
// removed: about 8 ms), wall seconds. A full memory holds and lifts at once (CONFIG SET).
constexpr double kFillDiskHoldWall_s = 0.013, kFillDiskLiftWall_s = 0.008;
// A queue worker's pause after a failed reserve (queue/worker.cpp), wall seconds.
constexpr double kPauseAfterErrorWall_s = 0.05;
constexpr double kRedisCommandTimeoutWall_s = 2, kFinalizeWorldTimeoutWall_s = 10, kProviderTimeoutWall_s = 5;
// A payment webhook's request, headers and body, in bytes (about: what a bandwidth limit delays;
// the proxy passed 15,270 bytes both ways for flaky_network's 22 deliveries)
constexpr double kWebhookRequestBytes = 350;

constexpr std::uint32_t kGenShift = 1024;  // event payload: worker + kGenShift * generation

// An order's status in the model: the store's statuses, and "missing" (forgotten by a Redis
// restart without persistence). An enum, not a string: a sweep moves millions of orders.
enum class St : std::uint8_t { created, paid, processing, completed, failed, dead, missing, finalizing };
constexpr const char* kStatusNames[] = {"created", "paid",   "processing", "completed",
                                        "failed",  "dead",   "missing",    "finalizing"};
bool done(St s) { return s == St::completed || s == St::failed || s == St::dead; }

// 32 bytes: a sweep streams a million of them. Accepted is paid >= 0 (the model's intake
// accepts every payment it records).
struct OrderState {
  double paid = -1, pick = -1, end = -1;
  int attempts = 0;
  std::uint16_t downloads_ok = 0;  // saturates: only duplicate deliveries beyond 65,534 would be undercounted
  St status = St::created;
  bool accepted() const { return paid >= 0; }
  void download_ok() { downloads_ok += downloads_ok < UINT16_MAX; }
};
static_assert(sizeof(OrderState) <= 32);

// The last attempt's download and upload times (slowed by slow_world), for whole histories only:
// their records show the stages
struct AttemptWork {
  double dl = 0, ul = 0;
};

// An order's calls to the world so far, as the live world counts them (only when a call can
// fail or a worker be stopped: otherwise every order has one attempt, and its calls all succeed).
struct WorldCalls {
  std::uint16_t made[4] = {};  // per API (kApis): the calls made, so the next call's draw index
  std::uint16_t after_grant = 0, after_mail = 0;  // calls made once the effect had been applied
  bool granted = false, mailed = false;
};

// When a worker's attempt next talks to the store: its transitions to uploading and finalizing,
// and finalize (-inf: none, as for a retry of finalize alone).
struct AttemptTimes {
  double start = 0, uploading = -INFINITY, finalizing = -INFINITY, end = -INFINITY;
  bool reaches_finalize = false;  // the attempt calls finalize at `end` (else it fails before, and reports it at `end`)
  bool stale_at_finalize = false;  // a restart's stale connection fails finalize's own read of the order
  bool finalize_stale = false;     // the poller's: finalize's connection outlived a restart, and this attempt meets it
  Kind outcome = kDone;            // how it ends, as decided at its start (or since: finalize_killed)
  bool fails_for_good = false;     // ... the order's last (permanent, or its attempts spent): the worker marks it dead first
  bool store_fails = false;        // its next store command fails before its end (fail_attempt_at)
  // it ends in a failure, which the worker then reports to the store
  bool fails() const { return outcome != kDone; }
  std::uint64_t serial = 0;       // which attempt of the worker's this is (its stage kills name it)
};

// An attempt's calls, decided when it starts and counted once they are made: at its end, or
// those begun before its worker was stopped.
struct PendingCall {
  double t_s;
  std::uint8_t api;
  bool ok;
};

class Model final : public ModelTarget {
public:
  Model(const Scenario& s, const Plan& plan, const FaultPlan& faults, bool queue, bool keep_orders, double overhead_s,
        double restart_extra_s, const std::optional<FailoverTimes>& failover, std::map<std::string, FillTimes> fill,
        double poll_phase_s, std::uint64_t rolls)
      : s_(s), plan_(plan), faults_(faults), queue_(queue), keep_orders_(keep_orders), overhead_s_(overhead_s),
        restart_extra_s_(restart_extra_s), fill_(std::move(fill)), poll_phase_s_(poll_phase_s),
        failover_(failover.value_or(FailoverTimes{kPromotionWall_s * s.speedup, kRejoinWall_s * s.speedup})),
        workers_(queue ? s.queue->workers : 1), links_(s.faults) {
    // the per-order state reuses this thread's buffer: a million orders are 32 MB, which malloc
    // would map (and the kernel fault in) afresh for every run of a sweep
    o_.swap(order_buffer());
    o_.assign(plan.arrivals_s.size(), OrderState{});
    if (keep_orders_) work_.assign(plan.arrivals_s.size(), AttemptWork{});
    // no failure can be drawn and no fault shapes the world: no draw, and no call counted
    draw_failures_ = !s.faults.empty() || s.fail_download > 0 || s.fail_upload > 0 || s.fail_grant > 0 || s.fail_mail > 0;
    if (draw_failures_) {
      calls_.assign(plan.arrivals_s.size(), WorldCalls{});
      pending_.assign(static_cast<std::size_t>(workers_), {});
      pending_order_.assign(static_cast<std::size_t>(workers_), 0);
    }
    counted_.assign(plan.arrivals_s.size(), false);
    stage_fired_.assign(s.faults.size(), 0);
    for (const auto& f : s.faults) {
      has_stage_kills_ = has_stage_kills_ || f.stage_kill();
      clock_skews_ = clock_skews_ || f.as<ClockFault>();
    }
    wait_replicas_ = s.intake_wait_replicas > 0;
    net_ = links_.any();
    rolls_ = rolls;
    reset_stream_ = rolls == 0 ? "model-reset" : fmt::format("model-reset-{}", rolls);
    jitter_stream_ = fmt::format("model-jitter-{}", rolls);
    if (net_) {
      // the run's timeout of a worker's calls (run.cpp): four times the longest planned stage,
      // slowed as much as the scenario slows the world, and at least 2 s of wall time
      double longest = 0;
      for (std::size_t i = 0; i < plan.download_s.size(); ++i)
        longest = std::max({longest, plan.download_s[i], plan.upload_s[i]});
      stage_timeout_s_ = std::max(2.0 * s.speedup, 4 * max_latency_factor(s.faults) * longest);
    }
    reconnect_cap_s_ = (redis_failover(s.faults) ? 0.25 : 2.0) * s.speedup;  // (a failover's Redis is found through Sentinel)
    busy_.assign(static_cast<std::size_t>(workers_), -1);
    times_.assign(static_cast<std::size_t>(workers_), AttemptTimes{});
    voided_attempt_.assign(static_cast<std::size_t>(workers_), 0);
    gen_.assign(static_cast<std::size_t>(workers_), 0);
    up_.assign(static_cast<std::size_t>(workers_), true);
    store_stale_.assign(static_cast<std::size_t>(workers_), false);
    idle_ = workers_;
    // the heap holds what is in flight (attempts, retries, firings), not the arrivals
    e_.reserve(static_cast<std::size_t>(workers_) + faults.firings.size() + 64);
  }

  ArchResult run() {
    r_.name = queue_ ? "queue" : "polling";
    r_.workers = workers_;
    // The arrivals are a sorted list merged into the event stream rather than a million heap
    // entries: arrival i takes sequence number i, below every scheduled event's, so ties fall
    // exactly as if they had all been scheduled first.
    const std::size_t n = plan_.arrivals_s.size();
    e_.skip_seq(n);
    std::size_t next_arrival = 0;
    for (std::size_t f = 0; f < faults_.firings.size(); ++f) e_.at(faults_.firings[f].t_s, kFire, static_cast<std::uint32_t>(f));
    if (!queue_) e_.at(poll_phase_s_, kPoll, 0);
    for (std::size_t f = 0; f < s_.faults.size(); ++f)
      if (s_.faults[f].as<ClockFault>()) {
        e_.at(s_.faults[f].from_s, kClock, 0);
        if (s_.faults[f].until_s < 1e300) e_.at(s_.faults[f].until_s, kClock, 0);
      }
    des::Event ev{};
    while (true) {
      const double* top = e_.peek_time();
      if (next_arrival < n && (!top || plan_.arrivals_s[next_arrival] <= *top)) {
        const double t = plan_.arrivals_s[next_arrival];
        ev = {t, next_arrival, kArrive, static_cast<std::uint32_t>(next_arrival)};
        e_.advance(t);
        ++next_arrival;
      } else if (!e_.next(ev)) {
        break;
      }
      step(ev);
      // the poller polls forever: stop once every order has settled (or is stuck for good) and
      // the provider has nothing left to deliver (a forgotten order's payment is still refused)
      if (!queue_ && settled_ == o_.size() && ev.t >= std::max(last_fire(), kill_at_) && next_arrival == n &&
          paying_again_ == 0)
        break;
    }
    return finish();
  }

  ~Model() { o_.swap(order_buffer()); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  std::uint64_t events() const { return e_.processed(); }

private:
  double last_fire() const { return faults_.firings.empty() ? 0 : faults_.firings.back().t_s; }

  // A retry's delay: the workers' schedule, jittered as they jitter it (by up to a fifth, less)
  // when the model rolls (ModelOptions::rolls); without, the plain schedule.
  double retry_delay(std::uint32_t i, int attempt) {
    const double d = backoff(attempt);
    if (rolls_ == 0) return d;
    const int nth = jitter_draws_[i]++;  // one draw per retry, counted or not
    return d * (1 - queue::BackoffPolicy{}.jitter * keyed_draw(s_.seed, jitter_stream_, order_id(i), nth));
  }

  // Where in its period a periodic timer of the live run (the reaper's tick) falls for order i's
  // recovery: half-way, or rolled (ModelOptions::rolls).
  double phase_draw(std::uint32_t i, const char* what) {
    if (rolls_ == 0) return 0.5;
    return keyed_draw(s_.seed, jitter_stream_, fmt::format("{}:{}", what, order_id(i)), r_.recoveries);
  }

  double backoff(int attempt) const {  // the workers' schedule, without their jitter
    const auto& q = *s_.queue;
    const bool grows = q.backoff != QueueArch::Backoff::constant;
    return queue::backoff_delay(q.backoff_base_s, grows ? 2.0 : 1.0,
                                grows ? queue::kBackoffCapFactor * q.backoff_base_s : q.backoff_base_s, attempt);
  }

  // skew_clock: the signatures' window, between the provider (its clock true) and the intake, and
  // between worker w (the poller is not started with a skewed clock) and finalize.
  const char* intake_refuses(double t) const {
    if (!clock_skews_ || !signature_refused(s_.faults, t, "provider", "payment_intake")) return nullptr;
    // the intake's clock ahead: the provider's timestamp looks old to it
    return clock_offset(s_.faults, t, "payment_intake") > 0 ? "stale_timestamp" : "future_timestamp";
  }
  // Each skew_clock target whose offset changed now, on every instance it names, as the live
  // injector logs it (counted when a clock is set off; the poller is not started skewed).
  void log_clocks() {
    const double now = e_.now();
    for (const auto& [target, offset] : clock_offsets(s_.faults, now)) {
      auto [before, added] = clock_now_.try_emplace(target, 0.0);
      if (before->second == offset && (!added || offset == 0)) continue;
      before->second = offset;
      std::vector<std::string> instances;
      if (target == "worker")
        for (int w = 0; w < workers_; ++w) instances.push_back(fmt::format("worker-{}", w));
      else
        instances.push_back(target);
      for (const auto& instance : instances) {
        const bool worker = instance.rfind("worker-", 0) == 0;
        if (worker && std::stoi(instance.substr(7)) >= workers_) continue;  // none here
        const bool skewed = queue_ || !worker;
        const std::string detail = !skewed      ? "n/a: polling did not start it with libfaketime"
                                   : offset == 0 ? "clock on time again"
                                                 : fmt::format("clock {:g} s {}", std::abs(offset), offset > 0 ? "ahead" : "behind");
        r_.faults.push_back({now, "skew_clock", instance, detail});
        if (skewed && offset != 0) r_.fault_counts["skew_clock"]++;
      }
    }
  }

  bool finalize_refuses(int w, double t) const {
    return clock_skews_ && signature_refused(s_.faults, t, queue_ ? fmt::format("worker-{}", w) : "poller", "finalize");
  }

  // The failure rates and the slowdown holding at t (the scenario's, shaped by the windowed
  // faults: fail_*, slow_world), in attempt_.
  ModelAttempt& shaped_at(double t) {
    ModelAttempt& a = attempt_;
    a.slow = 1;
    a.stages[0] = {s_.fail_download, true};
    a.stages[1] = {s_.fail_upload, true};
    a.stages[2] = {s_.fail_grant, true};
    a.stages[3] = {s_.fail_mail, true};
    a.start_s = t;
    if (!s_.faults.empty()) shape_attempt(s_.faults, a);  // (a sweep has none: no loop at all)
    return a;
  }

  // Whether the world fails order i's call to `api` starting at t: exactly as the live world
  // decides (world.cpp), by the rate holding when the call starts and a draw keyed by the API, the
  // order and how many calls to that API the order made before. The call is counted when made.
  // `shaped` is shaped_at(t), which the caller has already.
  bool world_fails(std::uint32_t i, int api, double t, const ModelAttempt& shaped, bool& transient) {
    const auto& st = shaped.stages[api];
    transient = st.transient;
    const int nth = calls_[i].made[api];
    const bool fails = keyed_draw(s_.seed, kApis[api], std::string(kApis[api]) + ":" + order_id(i), nth) < st.fail_probability;
    pending_[current_worker_].push_back({t, static_cast<std::uint8_t>(api), !fails});
    return fails;
  }

  // ---- the network faults (model/links.h): what the components' exchanges meet on each link ----

  // The reset roll of order i's exchange `what` over `link`, on its nth try: the model's own
  // keyed draw (the proxy rolls from one stream in whatever order the exchanges come, so the
  // model agrees with it on the rate, not on which exchange).
  double reset_draw(model_links::Link link, std::uint32_t i, const char* what, int nth) const {
    if (!net_) return 1;
    return keyed_draw(s_.seed, reset_stream_, fmt::format("{}:{}:{}", network_links()[link], what, order_id(i)), nth);
  }

  // A Redis command and its answer over `link` (a blackhole holds it: its timeout is not modelled).
  double store_round_trip(model_links::Link link, double t) const { return links_.deliver(link, links_.deliver(link, t)); }

  // A worker has its job at t (queue: the hand-off's BLPOP answer; the poller: its claim), and
  // moves the order to processing: when it starts the download.
  double picked_up(double t) const {
    using model_links::worker_redis;
    t = queue_ ? links_.deliver(worker_redis, t) : store_round_trip(worker_redis, t);
    return store_round_trip(worker_redis, t);
  }

  // The current attempt's call of the world's `api` (download, upload) at t, which takes serve_s
  // there: over worker_world when network faults shape it (a reset fails it unmade; a blackhole
  // holds it, and the worker gives up after the stage timeout while the world still serves it
  // once the blackhole lifts). Moves t on to the answer (or the failure); true if it failed.
  bool call_world(std::uint32_t i, int api, double serve_s, const ModelAttempt& shaped, bool& transient, double& t) {
    if (!net_) {
      const bool fails = world_fails(i, api, t, shaped, transient);
      t += serve_s;
      return fails;
    }
    const auto x = links_.exchange(model_links::worker_world, t, serve_s, stage_timeout_s_,
                                   reset_draw(model_links::worker_world, i, kApis[api], o_[i].attempts));
    bool fails = x.failed;
    if (x.served()) fails = world_fails(i, api, x.served_s, shaped, transient) || fails;
    if (x.failed) transient = true;  // no answer: the worker retries
    t = x.end_s;
    return fails;
  }

  // The current attempt's call of finalize at t, over worker_finalize: finalize reads the order
  // (over finalize_redis), calls the grant and then the e-mail (over finalize_world; a failure
  // there is its 503 world_unavailable) and writes the completion. Returns when the worker has
  // finalize's answer, or gave up on it (outcome kFailFinalize, or kFailPermanent for a world's
  // permanent refusal); a call the worker gave up on that finalize still serves (a blackhole
  // held it) completes the order then (kHeldFinalize).
  double call_finalize(std::uint32_t i, double t, bool& transient, Kind& outcome) {
    using namespace model_links;
    const int nth = o_[i].attempts;
    if (links_.resets(worker_finalize, t, reset_draw(worker_finalize, i, "finalize", nth))) {
      outcome = kFailFinalize;
      return t;
    }
    double f = store_round_trip(finalize_redis, links_.deliver(worker_finalize, t));  // its read of the order
    bool ok = true;
    for (int api : {2, 3}) {
      const ModelAttempt& shaped = shaped_at(f);
      const auto x = links_.exchange(finalize_world, f, 0, kFinalizeWorldTimeoutWall_s * s_.speedup,
                                     reset_draw(finalize_world, i, kApis[api], nth));
      if (x.served() && world_fails(i, api, x.served_s, shaped, transient)) ok = false;
      if (x.failed) ok = false, transient = true;
      f = x.end_s;
      if (!ok) break;
    }
    const double completed = ok ? links_.deliver(finalize_redis, f) : f;
    const double answered = links_.deliver(worker_finalize, ok ? links_.deliver(finalize_redis, completed) : f);
    if (answered - t > stage_timeout_s_) {
      outcome = kFailFinalize;
      if (ok) e_.at(completed, kHeldFinalize, i);
      return t + stage_timeout_s_;
    }
    if (!ok) outcome = transient ? kFailFinalize : kFailPermanent;
    return answered;
  }

  // Order i's payment delivered at t, when a network fault holds on provider_intake or
  // intake_redis then: the webhook crosses provider_intake, the intake's one script crosses
  // intake_redis (a blackhole holds it: the intake answers 503 store_unavailable after the
  // command's timeout, and the held script still runs once it lifts). The provider gives up on an
  // answer after its timeout ("no_answer") and delivers again. False when no fault holds there:
  // the intake acts at t.
  bool deliver_payment(std::uint32_t i, double t) {
    using namespace model_links;
    if (links_.at(provider_intake, t) == LinkState{} && links_.at(intake_redis, t) == LinkState{}) return false;
    const auto tries = provider_tries_.find(i);
    const int nth = tries == provider_tries_.end() ? 0 : tries->second;
    if (links_.resets(provider_intake, t, reset_draw(provider_intake, i, "payment", nth))) {
      refuse_payment(i, "no_answer", t);
      return true;
    }
    const double got = links_.deliver(provider_intake, t, kWebhookRequestBytes);
    const auto x = links_.exchange(intake_redis, got, 0, kRedisCommandTimeoutWall_s * s_.speedup,
                                   reset_draw(intake_redis, i, "payment", nth));
    const double answered = links_.deliver(provider_intake, x.end_s);
    const double gives_up = t + kProviderTimeoutWall_s * s_.speedup;
    const bool no_answer = answered > gives_up;
    if (no_answer) refuse_payment(i, "no_answer", gives_up);
    else if (x.failed) refuse_payment(i, "store_unavailable", answered);
    if (x.served()) {
      intake_pending_.push_back({i, answered, no_answer || x.failed});
      ++paying_again_;
      e_.at(x.served_s, kIntake, static_cast<std::uint32_t>(intake_pending_.size() - 1));
    }
    return true;
  }

  // reset_connections at a moment. Over worker_redis: each worker's connections fail their next
  // command, so a busy worker's next store command of its own fails (queue: its failure report
  // too, and the job comes back when its lease runs out; the poller fails the order); an idle
  // worker reconnects at once. Over other links: not modelled.
  void reset_connections(const std::string& link) override {
    if (link != network_links()[model_links::worker_redis])
      return log(link, "not modelled: a reset at a moment is modelled on worker_redis only");
    log(link, "every open connection reset");
    const double now = e_.now();
    if (queue_)  // a worker with no store command of its own to come in this attempt: its next job's pick-up
      for (std::size_t w = 0; w < busy_.size(); ++w)
        store_stale_[w] = busy_[w] < 0 ? up_[w] : times_[w].uploading < now && times_[w].finalizing < now;
    fail_at_next_store_command(false);
    if (!queue_) poller_conn_.stale = poller_conn_.open;
  }

  // Counts worker w's pending calls begun by `until` (all of them at the attempt's end).
  void make_calls(std::size_t w, double until) {
    if (!draw_failures_) return;  // no call is counted (pending_ is empty)
    auto& pending = pending_[w];
    if (pending.empty()) return;
    auto& c = calls_[pending_order_[w]];
    for (const auto& call : pending) {
      if (call.t_s > until) break;
      if (c.made[call.api] < UINT16_MAX) c.made[call.api]++;
      if (call.api == 2) {
        if (c.granted) c.after_grant++;
        c.granted = c.granted || call.ok;
      } else if (call.api == 3) {
        if (c.mailed) c.after_mail++;
        c.mailed = c.mailed || call.ok;
      }
    }
    pending.clear();
  }

  // One attempt at order i on worker w: its duration and whether (and how) it fails. A retry of an
  // order left in finalizing (its grant or e-mail failed) calls finalize alone, as the live worker
  // does; any other attempt downloads, uploads and finalizes.
  void start(int w, std::uint32_t i) {
    auto& o = o_[i];
    const double now = e_.now();
    const bool finalize_only = o.status == St::finalizing;
    const std::size_t uw = static_cast<std::size_t>(w);
    // its store connection was reset while it had no job, or Redis refuses writes (its memory
    // full: the reserve passes, the pick-up does not): the pick-up fails
    const bool pick_up_fails = store_stale_[uw] || refusing(now);
    if (!finalize_only && !pick_up_fails) {
      o.pick = now;
      o.status = St::processing;
    }
    o.attempts++;
    double dl = 0, ul = 0;
    Kind outcome = kDone;
    double end = now;
    int moves = finalize_only ? 0 : 2;  // the attempt's own moves: to uploading, then to finalizing
    double to_uploading = -INFINITY, to_finalizing = -INFINITY;  // ... when it makes them
    bool finalize_stale = false;
    if (pick_up_fails) {
      store_stale_[uw] = false;
      outcome = kUnavailable;
      moves = 0;
    } else if (!draw_failures_) {  // nothing can fail and no fault shapes the world
      dl = plan_.download_s[i];
      ul = plan_.upload_s[i];
      end = now + dl + ul;
      to_uploading = now + dl;
      to_finalizing = now + dl + ul;
      if (overhead_s_ > 0) end += overhead_s_;
      o.download_ok();
    } else {
      current_worker_ = uw;
      pending_order_[uw] = i;
      bool transient = true;
      auto fail = [&](Kind transient_kind) { outcome = transient ? transient_kind : kFailPermanent; };
      if (!finalize_only) {
        if (net_) end = picked_up(end);
        const ModelAttempt& at_download = shaped_at(end);
        dl = plan_.download_s[i] * at_download.slow;
        if (call_world(i, 0, dl, at_download, transient, end)) fail(kFailTransient);
        moves = outcome == kDone;
        if (outcome == kDone) {
          o.download_ok();
          to_uploading = end;
          if (net_) end = store_round_trip(model_links::worker_redis, end);
          const ModelAttempt& at_upload = shaped_at(end);
          ul = plan_.upload_s[i] * at_upload.slow;
          if (call_world(i, 1, ul, at_upload, transient, end)) fail(kFailTransient);
          moves += outcome == kDone;
          if (outcome == kDone) {
            to_finalizing = end;
            if (net_) end = store_round_trip(model_links::worker_redis, end);
          }
        }
      }
      if (outcome == kDone) {
        end += overhead_s_;  // the harness's own costs, before finalize's calls
        if (finalize_refuses(w, end)) {
          outcome = kRefused;  // before any call of the world
        } else if (!queue_ && finalize_stale_) {
          // finalize's connection lived through a Redis restart: its first store command fails,
          // and it answers 503 store_unavailable before any call of the world (the poller then
          // fails the order). That uses the stale connection up once the attempt ends there.
          outcome = kRefused;
          finalize_stale = true;
        } else if (net_) {
          end = call_finalize(i, end, transient, outcome);
        } else {
          const ModelAttempt& at_finalize = shaped_at(end);
          for (int api : {2, 3})  // finalize: the grant, then the e-mail
            if (outcome == kDone && world_fails(i, api, end, at_finalize, transient)) fail(kFailFinalize);
        }
      }
    }
    if (keep_orders_ && !finalize_only) work_[i] = {dl, ul};
    const std::uint64_t serial = ++attempt_serial_;
    {
      auto& t = times_[uw];
      // (no move after a failed stage: the next store command is the failure's report)
      t = AttemptTimes{now, moves >= 1 ? to_uploading : -INFINITY, moves >= 2 ? to_finalizing : -INFINITY, end};
      t.reaches_finalize = finalize_only || outcome == kDone || outcome == kFailFinalize || outcome == kRefused;
      t.finalize_stale = finalize_stale;
      t.serial = serial;
    }
    // stage kills that land on this attempt
    // finalize dead when this attempt calls it (killed after a grant): decided before the stage
    // kills are drawn, so that none is drawn on a call that never reaches the world
    if (times_[uw].reaches_finalize && finalize_killed_at_ != INFINITY) {
      const auto dead = finalize_dead(end);
      if (dies_with_finalize(dead, outcome)) {
        drop_finalize_calls(uw, dead == FinalizeDead::refused);
        outcome = kFailFinalize;
      }
    }
    ModelAttempt& a = attempt_;
    a.kills.clear();
    if (has_stage_kills_) {
      a.start_s = now;
      a.order = order_id(i);
      a.worker = w;
      a.finalize_only = finalize_only;
      a.download_s = dl;
      a.upload_s = ul;
      a.end_s = end;
      a.succeeds = outcome == kDone;
      kill_attempt(s_.seed, s_.faults, a, stage_fired_);
      if (outcome == kDone && !a.succeeds) {  // finalize died between the grant and the e-mail (after_grant)
        outcome = kFailFinalize;
        drop_finalize_calls(uw, false);
        // every other call of finalize then dies with it (unless this attempt ends first)
        finalize_kills_.push_back({uw, serial});
        e_.at(std::nextafter(a.end_s, -INFINITY), kFinalizeDies, static_cast<std::uint32_t>(finalize_kills_.size() - 1));
      }
    }
    times_[uw].outcome = outcome;
    times_[uw].fails_for_good =
        outcome == kFailPermanent || (queue_ && outcome == kFailTransient && o.attempts >= s_.queue->attempts);
    busy_[uw] = static_cast<int>(i);
    --idle_;  // every caller starts an idle worker
    e_.at(end, outcome, static_cast<std::uint32_t>(w) + kGenShift * gen_[uw]);
    // those after the attempt's end come after its own end event (the effects come first), then
    // those during it
    for (bool after_end : {true, false})
      for (const auto& k : a.kills)
        if (k.after_end == after_end) {
          stage_kills_.push_back({k.t_s, k.fault, s_.faults[k.fault].kind, k.target, 0, 1});
          stage_kill_attempt_.push_back({uw, serial, after_end});
          e_.at(k.t_s, kStageKill, static_cast<std::uint32_t>(stage_kills_.size() - 1));
        }
  }

  // finalize killed between a grant and its e-mail (after_grant) at t: every worker's call of it
  // dies with it. The world held each grant's answer (so that the injector sees the call), so a
  // call that reached finalize before the kill has its grant applied and no e-mail; one while it
  // is down, until the supervisor's restart, is refused before any call of the world.
  enum class FinalizeDead { no, held, refused };
  FinalizeDead finalize_dead(double t) const {
    if (t < finalize_killed_at_) return FinalizeDead::no;
    if (t <= finalize_killed_at_ + kFinalizeKillReactionWall_s * s_.speedup) return FinalizeDead::held;
    return t <= finalize_back_at_ ? FinalizeDead::refused : FinalizeDead::no;
  }
  // An attempt whose call of finalize meets it so, decided to end as `outcome`, fails there
  // instead: refused whatever it drew; held, unless it fails anyway.
  static bool dies_with_finalize(FinalizeDead dead, Kind outcome) {
    return dead == FinalizeDead::refused || (dead == FinalizeDead::held && outcome == kDone);
  }
  // (at kFinalizeDies: the attempt whose grant it was, `by`, still runs, so the kill comes)
  void finalize_killed(double t, std::size_t by) {
    finalize_killed_at_ = t;
    finalize_back_at_ = t + kFinalizeKillReactionWall_s * s_.speedup + (s_.queue ? s_.queue->restart_delay_s : 10);
    // the other workers whose attempt calls finalize then: they fail at their end (a failed
    // store command or a kill of their own before it comes first)
    for (std::size_t w = 0; w < busy_.size(); ++w) {
      auto& t_w = times_[w];
      if (w == by || busy_[w] < 0 || !t_w.reaches_finalize || t_w.store_fails) continue;
      const auto dead = finalize_dead(t_w.end);
      if (!dies_with_finalize(dead, t_w.outcome)) continue;
      bool killed_first = false;
      for (std::size_t k = 0; k < stage_kill_attempt_.size(); ++k)
        killed_first = killed_first || (stage_kill_attempt_[k].worker == w && stage_kill_attempt_[k].serial == t_w.serial &&
                                        !stage_kill_attempt_[k].after_end && stage_kills_[k].t_s >= e_.now());
      if (killed_first) continue;
      drop_finalize_calls(w, dead == FinalizeDead::refused);
      t_w.outcome = kFailFinalize;  // (not for good, as for the attempt whose grant it was: start())
      voided_attempt_[w] = t_w.serial;  // its kills after its effects never come
      gen_[w]++;                        // its own end comes as a failure
      e_.at(t_w.end, kFailFinalize, static_cast<std::uint32_t>(w) + kGenShift * gen_[w]);
    }
  }
  // An attempt's calls of finalize's that do not happen: the e-mail, and the grant too
  void drop_finalize_calls(std::size_t w, bool grant_too) {
    if (!draw_failures_) return;
    auto& p = pending_[w];
    if (!p.empty() && p.back().api == 3) p.pop_back();
    if (grant_too && !p.empty() && p.back().api == 2) p.pop_back();
  }

  void dispatch() {
    const double now = e_.now();
    if (idle_ == 0 || now < redis_down_until_) return;
    std::uint32_t i = 0;
    // which idle worker a job goes to: the first by index, or (rolls) from a rolled one on: live,
    // whichever worker's wait the hand-off finds first
    const int first = rolls_ == 0 ? 0
                                  : static_cast<int>(keyed_draw(s_.seed, jitter_stream_, "dispatch", dispatches_++) * workers_) % workers_;
    for (int k = 0; k < workers_ && !ready_.empty(); ++k) {
      const int w = (first + k) % workers_;
      const auto uw = static_cast<std::size_t>(w);
      // (a full disk: a worker's reserve is refused, and it tries again 50 ms later)
      if (up_[uw] && busy_[uw] < 0 && (reserve_refused_until_.empty() || now >= reserve_refused_until_[uw]) && next_ready(i))
        start(w, i);
    }
  }

  // The next ready job's order; false when none is left. A job whose order finalize completed
  // while it waited (a call its worker had given up on) is acknowledged at once.
  bool next_ready(std::uint32_t& i) {
    while (!ready_.empty()) {
      i = ready_.front();
      ready_.pop_front();
      if (!done(o_[i].status)) return true;
    }
    return false;
  }

  void finish_attempt(std::uint32_t payload, Kind kind) {
    const auto w = payload % kGenShift;
    if (payload / kGenShift != gen_[w] || busy_[w] < 0) return;  // a killed worker's attempt
    const auto i = static_cast<std::uint32_t>(busy_[w]);
    busy_[w] = -1;
    idle_ += up_[w];
    auto& o = o_[i];
    const double now = e_.now();
    // every call it made, those a network fault held past its end too (the world still serves them)
    make_calls(w, INFINITY);
    if (times_[w].finalize_stale) finalize_stale_ = false;  // finalize's first read since the restart failed
    const bool store_down = now < redis_down_until_;
    if (o.status == St::completed) {
      // finalize completed it meanwhile, on a call its worker had given up on (kHeldFinalize): a
      // poller's failure is not written over it; the queue counts its retry, which finds it done
      if (queue_ && (kind == kFailTransient || kind == kFailFinalize)) r_.retries++;
    } else if (kind == kDone && !store_down) {
      o.status = St::completed;
      o.end = now;
      settle(i);
    } else if (kind == kUnavailable && ++uncounted_[i] <= queue::kMaxUncountedFailures) {
      // Unavailable before the order moved: it waits where it was, and the job comes back after
      // the backoff of the attempt it was, which does not count
      if (o.status == St::processing) o.status = St::paid;
      requeue_at(now + retry_delay(i, o.attempts), kRetry, i);
      o.attempts--;
    } else if (kind == kRefused && queue_ && ++uncounted_[i] <= queue::kMaxUncountedFailures) {
      // Unavailable: the job comes back after the backoff of the attempt it was, which does not
      // count (up to the queue's limit a job, then it counts); the order waits in finalizing, and
      // its retry finalizes
      o.status = St::finalizing;
      requeue_at(now + retry_delay(i, o.attempts), kRetry, i);
      o.attempts--;
    } else if (!queue_ || kind == kFailPermanent || o.attempts >= s_.queue->attempts) {
      o.status = queue_ ? St::dead : St::failed;  // the legacy flaw: one error and the order has failed
      o.end = now;
      settle(i);
      if (queue_) r_.dead_letters++;
    } else {
      r_.retries++;
      if (kind == kFailFinalize || kind == kRefused) o.status = St::finalizing;  // the upload is done: the retry finalizes
      requeue_at(now + retry_delay(i, o.attempts), kRetry, i);
    }
    if (queue_) dispatch();
    else e_.at(now + s_.polling->poll_interval_s, kPoll, 0);  // the legacy loop sleeps after each task
  }

  // The intake answers order i's delivery with a refusal (at `answered`): the provider delivers
  // again, 20 ms later doubling to 1 s (wall time), and gives up after kProviderDeliveries.
  void refuse_payment(std::uint32_t i, const char* why, double answered) {
    r_.payment_refusals[why]++;
    const int tries = ++provider_tries_[i];
    if (tries >= kProviderDeliveries) {  // the payment is never acknowledged
      settle(i);
      return;
    }
    e_.at(answered + std::min(0.02 * std::pow(2.0, tries - 1), 1.0) * s_.speedup, kPayAgain, i);
    ++paying_again_;
  }

  // The intake has order i's payment delivery now: it checks the signature first, then the store
  // (down, or it forgot the order in a restart without persistence: 404). The provider has its
  // answer at `answered`; `silent`: it has had one already (a 503 or its own timeout).
  void intake(std::uint32_t i, double answered, bool silent) {
    const double now = e_.now();
    auto& o = o_[i];
    const char* refused = intake_refuses(now);
    if (!refused && (now < redis_down_until_ || refusing(now))) refused = "store_unavailable";
    if (!refused && o.status == St::missing) refused = "unknown_order";
    bool unconfirmed = false;
    if (!refused) {
      if (o.status == St::created) {  // a first delivery pays the order (a repeated one changes nothing)
        o.paid = now;
        o.status = St::paid;
        ready_.push_back(i);
        peak_ready_ = std::max(peak_ready_, static_cast<int>(ready_.size()));
        if (queue_) dispatch();
      }
      // recorded, but no replica confirms it within the WAIT: 503 as that times out
      unconfirmed = not_replicated(now);
      if (unconfirmed) refused = "not_replicated";
    }
    if (refused && !silent) refuse_payment(i, refused, answered + (unconfirmed ? kWaitReplicasTimeoutWall_s * s_.speedup : 0));
  }

  // A timed firing or a stage kill: its family decides, through the ModelTarget below.
  void fire(const Firing& f) {
    firing_ = &f;
    fire_model(s_.faults[f.fault], f, *this);
  }

  int workers() const override { return workers_; }
  bool queue() const override { return queue_; }

  void log(const std::string& target, const std::string& detail) override {
    const auto& kind = s_.faults[firing_->fault].kind;
    r_.faults.push_back({e_.now(), kind, target, detail});
    r_.fault_counts[kind]++;
  }

  void stop_worker(int w, bool kill, double for_s) override {
    const double now = e_.now();
    const auto uw = static_cast<std::size_t>(w);
    const double down = kill ? s_.queue ? s_.queue->restart_delay_s : 10 : for_s;
    const int held = busy_[uw];
    idle_ -= is_idle(uw);  // it is not, whatever follows
    log(fmt::format("worker-{}", w), held >= 0 ? "holding order " + std::to_string(held) : "");
    if (held >= 0 && (kill || (queue_ && for_s > lease()))) {
      make_calls(uw, now);  // the calls it had begun
      voided_attempt_[uw] = times_[uw].serial;  // its stage kills to come (after its effects) never happen
      gen_[uw]++;
      busy_[uw] = -1;
      if (queue_) {
        const double back = lease() + reaper_tick() / 2;
        r_.kills.push_back({now, fmt::format("worker-{}", w), order_id(static_cast<std::size_t>(held)), back});
        r_.recoveries++;
        requeue_at(now + back, kRedeliver, static_cast<std::uint32_t>(held));
      } else {
        r_.kills.push_back({now, "worker-0", order_id(static_cast<std::size_t>(held)), std::nullopt});
        settle(static_cast<std::uint32_t>(held));  // stuck for good: nothing will ever move it
      }
    }
    up_[uw] = false;
    if (kill) store_stale_[uw] = false;  // its new process connects afresh
    if (!queue_ && kill) poller_conn_ = Connection{false, false, -INFINITY, 0};  // its new process connects afresh
    e_.at(now + down, kWorkerUp, static_cast<std::uint32_t>(w));
  }

  // Redis refuses writes for down_s (memory or disk full) and keeps its data. (Failing the busy
  // workers' next write in that time, as for a restart, was tried: disk_full's makespan moved
  // closer to the live run's but its p95 and redis_memory_full's makespan moved away.)
  void redis_down(double down_s, bool wipe) override { go_down(down_s, wipe); }

  void go_down(double down_s, bool wipe) {
    redis_down_until_ = std::max(redis_down_until_, e_.now() + down_s);
    if (wipe) {  // every order is forgotten, finished ones too: their effects are left orphaned
      for (std::size_t i = 0; i < o_.size(); ++i) {
        o_[i].status = St::missing;
        settle(static_cast<std::uint32_t>(i));
      }
      ready_.clear();
      end_every_attempt();
      wiped_ = true;
    }
    e_.at(redis_down_until_, kRedisUp, 0);
  }

  // Redis refuses writes for for_s (memory full, noeviction: OOM; disk full: MISCONF) and
  // answers reads. Every store script writes first (it counts itself), so the intake's, the
  // poller's claim, the workers' moves and pick-ups and finalize's read are all refused; the
  // connections stay open. The queue's own scripts differ: with the memory full its reserve,
  // ack and failure report pass (each begins with a command that frees memory), with the disk
  // full they are refused too. A busy worker whose next store command comes in the window
  // fails there (write_refused).
  void redis_refuses_writes(double for_s, bool disk) override {
    // Redis is away (a restart): the live injector's commands fail on the connection that outlived
    // it, and the memory is not filled; the disk is (a file), and its window holds
    if (!disk && e_.now() < redis_down_until_) return log("redis", "not filled: Redis is down");
    const auto calibrated = fill_.find(disk ? "fill_disk" : "fill_redis_memory");
    const FillTimes fill = calibrated != fill_.end() ? calibrated->second
                           : disk ? FillTimes{kFillDiskHoldWall_s * s_.speedup, kFillDiskLiftWall_s * s_.speedup}
                                  : FillTimes{};
    if (fill.hold_s > 0) {
      e_.at(e_.now() + fill.hold_s, disk ? kDiskFull : kMemoryFull, static_cast<std::uint32_t>(refusal_for_s_.size()));
      refusal_for_s_.push_back(for_s + fill.lift_s);
      return;
    }
    refuse_writes(for_s + fill.lift_s, disk);
  }
  void refuse_writes(double for_s, bool disk) {
    const double now = e_.now();
    if (now >= refusing_until_) refusing_since_ = now;
    refusing_until_ = std::max(refusing_until_, now + for_s);
    refusing_disk_ = disk;
    if (queue_ && disk) {
      reserve_refused_until_.resize(busy_.size(), -INFINITY);
      for (std::size_t w = 0; w < busy_.size(); ++w)
        if (busy_[w] < 0) reserve_refused(w);
    }
    for (std::size_t w = 0; w < busy_.size(); ++w) {
      if (busy_[w] < 0) continue;
      const auto& t = times_[w];
      const double next = next_store_command(t, now);
      if (next >= refusing_until_) continue;  // after the window: it passes
      // an attempt that failed before finalize reports it: the queue's report passes a full memory,
      // unless the order dies with it (the worker's store write of that is refused: unavailable)
      if (queue_ && !disk && next == t.end && t.fails() && !t.fails_for_good && !t.reaches_finalize) continue;
      fail_attempt_at(w, next, kWriteRefused);
    }
  }
  bool refusing(double t) const { return t >= refusing_since_ && t < refusing_until_; }

  // Worker w's reserve is refused (a full disk): it tries again every 50 ms of wall time, so once
  // the window ends it reserves at its own phase of that pause, spread evenly over the workers.
  void reserve_refused(std::size_t w) {
    reserve_refused_until_[w] = refusing_until_ + kPauseAfterErrorWall_s * s_.speedup * (w + 0.5) / busy_.size();
    e_.at(reserve_refused_until_[w], kRedisUp, 0);
  }

  // Worker w's store command was refused (write refused). The poller fails the order, and its
  // write of the failure is refused too: the order stays claimed for good (stuck). A queue worker
  // with the memory full reports the failure, which does not count (unavailable), and the job
  // comes back after its backoff: a move refused leaves the order where it was (the retry
  // downloads again), finalize's read refused leaves it in finalizing (the retry finalizes).
  // With the disk full the report is refused too: the job stays leased, its heartbeats refused
  // since the window began, and the reaper hands it back once that lease runs out (and the
  // reaper's own writes pass again).
  void write_refused(std::uint32_t payload) {
    const auto w = payload % kGenShift;
    if (payload / kGenShift != gen_[w] || busy_[w] < 0) return;
    const auto i = static_cast<std::uint32_t>(busy_[w]);
    const double now = e_.now();
    make_calls(w, std::nextafter(now, -INFINITY));  // the calls before this command
    voided_attempt_[w] = times_[w].serial;         // its stage kills not yet fired never happen
    auto& o = o_[i];
    if (times_[w].stale_at_finalize && o.status == St::processing) o.status = St::finalizing;
    if (!queue_) {
      busy_[w] = -1;
      idle_ += up_[w];
      settle(i);
      e_.at(now + s_.polling->poll_interval_s, kPoll, 0);
      return;
    }
    if (!refusing_disk_) return finish_attempt(payload, kUnavailable);
    busy_[w] = -1;
    idle_ += up_[w];
    reserve_refused(w);  // its next reserve comes in the window too
    r_.recoveries++;
    // the last heartbeat before the window and the reaper's tick after the lease ran out: at
    // their mean phases, or rolled (ModelOptions::rolls: their phases are the live run's timing)
    const double heartbeat = lease() / 3;
    double since_beat = heartbeat / 2;
    if (rolls_ != 0) {  // worker w's keeper beats every `heartbeat` from its own start
      const double phase = heartbeat * keyed_draw(s_.seed, jitter_stream_, fmt::format("keeper:{}", w), 0);
      since_beat = std::fmod(refusing_since_ - phase + 100 * heartbeat, heartbeat);
    }
    const double tick_phase = phase_draw(i, "reaper");
    const double last_beat = std::max(times_[w].start, refusing_since_ - since_beat);
    requeue_at(std::max(last_beat + lease(), refusing_until_) + reaper_tick() * tick_phase, kRedeliver, i);
    dispatch();
  }

  // Every busy worker's attempt ends now, with the calls it had begun; its end and its stage kills
  // to come never happen.
  void end_every_attempt() {
    for (std::size_t w = 0; w < busy_.size(); ++w)
      if (busy_[w] >= 0) {
        make_calls(w, e_.now());
        voided_attempt_[w] = times_[w].serial;
        gen_[w]++, busy_[w] = -1, idle_ += up_[w];
      }
  }

  void dead_letter(int jobs) override { r_.dead_letters += jobs; }

  void settle(std::uint32_t i) {
    if (!counted_[i]) counted_[i] = true, ++settled_;
  }

  // The lease and the reaper's tick as the live run applies them: in wall time, the lease at
  // least 250 ms and the tick a quarter of it, at least 50 ms (arch/queue.cpp).
  double lease() const { return s_.queue ? std::max(s_.queue->lease_s, 0.25 * s_.speedup) : 0; }
  double reaper_tick() const { return s_.queue ? std::max(0.05 * s_.speedup, lease() / 4) : 0; }

  // Every worker's store and queue connections lived through the restart: a busy worker's attempt
  // fails at its next store command, and so does its report of the failure (the job stays
  // leased, unrecorded): the reaper hands the job back once the lease its heartbeats last renewed
  // runs out. Without persistence the orders are gone anyway; the poller's run is not changed.
  void redis_restarted(double down_s, bool wipe) override {
    // the new server starts without the lowered maxmemory: a full memory ends (a full disk stays)
    if (!refusing_disk_ && refusing_until_ > e_.now()) refusing_until_ = e_.now();
    go_down(down_s + restart_extra_s_, wipe);
    if (wipe) return;
    fail_at_next_store_command();
    if (!queue_) connections_outlived_redis();
  }

  // The poller's and finalize's connections lived through a Redis restart or failover: the first
  // command on each fails.
  void connections_outlived_redis() {
    poller_conn_.stale = poller_conn_.open;
    finalize_stale_ = true;
  }

  // Whether the poller's store command at t is answered, its connection kept as redis::Connection
  // keeps it: a connection the server closed fails its next command and is dropped; the next
  // command connects anew, and a refused connect waits out a backoff of 50 ms doubling to 2 s of
  // wall time before the next try (250 ms through Sentinel, whose answer is cheap). (Memory or
  // disk full: connected, and the write refused.)
  bool poller_command(double t) {
    auto& c = poller_conn_;
    if (c.open && c.stale) {
      c.open = c.stale = false;
      return false;
    }
    if (!c.open) {
      if (t < c.next_connect_s) return false;  // "reconnect backoff in effect"
      if (t < redis_down_until_) {
        c.backoff_s = c.backoff_s == 0 ? 0.05 * s_.speedup : std::min(2 * c.backoff_s, reconnect_cap_s_);
        c.next_connect_s = t + c.backoff_s;
        return false;
      }
      c.open = true;
      c.backoff_s = 0;
    }
    return t >= redis_down_until_ && !refusing(t);
  }

  // failover_redis: the replica is cut off from now for lag_s, then the primary dies. The promoted
  // replica has the store as it was at the cut; what the primary acknowledged since is gone.
  void failover_redis(double lag_s, double down_after_s) override {
    if (failover_at_ >= 0) return log("redis", "n/a: a failover is already under way");  // as live: one replica
    outage_s_ = down_after_s + failover_.outage_s;  // Sentinel's down-after, then its failover
    log("redis", fmt::format("the replica cut off from the primary for {:g} s before it dies", lag_s));
    const double now = e_.now();
    replica_ = Replica{o_, ready_};
    failover_at_ = now;
    kill_at_ = now + lag_s;
    e_.at(kill_at_, kFailover, 0);
  }

  // The intake's WAIT for a replica cannot be met: from the cut to the kill, and from the
  // promotion until the old primary is back as a replica.
  bool not_replicated(double t) const {
    if (!wait_replicas_ || failover_at_ < 0) return false;
    const double promoted = kill_at_ + outage_s_;
    return (t >= failover_at_ && t <= kill_at_) || (t >= promoted && t < promoted + failover_.rejoin_s);
  }

  // The primary dies: Sentinel promotes the replica after the outage, and every order is as the
  // replica had it. The queue's busy workers fail (their next store command would; until then
  // they only download and upload); a job leased at the cut comes back once the promoted store's
  // reaper finds its lease run out, a job queued at the cut is queued. A payment recorded since
  // the cut was either answered 503 not_replicated (wait_for_replicas: the provider delivers it
  // again) or acknowledged and now forgotten (lost). The poller's attempt runs on and fails at
  // the store; an order the poller had claimed at the cut and finished since is claimed for good
  // (stuck), as nothing returns the poller's claims.
  void promote() {
    const double now = e_.now();
    const Replica replica = std::move(*replica_);
    replica_.reset();
    failed_over_ = true;
    const int poller_holds = queue_ ? -1 : busy_[0];
    if (queue_) end_every_attempt();
    std::vector<bool> queued(o_.size(), false);
    for (auto i : replica.ready) queued[i] = true;
    const double promoted = now + outage_s_;
    for (std::uint32_t i = 0; i < o_.size(); ++i) {
      auto& o = o_[i];
      const auto& was = replica.orders[i];
      if (was.status == St::created) {
        if (o.status == St::created) continue;
        // unpaid again: never acknowledged (the provider delivers it again), or acknowledged
        // (paid stays: the provider saw a 200, and the payment is lost)
        o.status = St::created;
        o.pick = o.end = -1;
        o.attempts = 0;
        if (wait_replicas_) o.paid = -1;
        else settle(i);
      } else {
        o.status = was.status;
        o.paid = was.paid, o.pick = was.pick, o.end = was.end, o.attempts = was.attempts;
      }
      // (an unpaid order the provider has stopped delivering stays unpaid)
      const auto tries = provider_tries_.find(i);
      const bool given_up = tries != provider_tries_.end() && tries->second >= kProviderDeliveries;
      const bool final = done(o.status) || (o.status == St::created && (o.accepted() || given_up));
      if (!final && counted_[i]) counted_[i] = false, --settled_;
      if (final) settle(i);
      if (o.status != St::processing && o.status != St::finalizing) continue;
      // queued at the cut (a retry due, a redelivery); a retry still waiting out its backoff then
      // is taken for leased, and comes back with the leases
      if (queued[i]) continue;
      if (queue_) {  // leased at the cut: its lease runs out, unrenewed
        requeue_at(std::max(promoted, failover_at_ + lease()) + reaper_tick() / 2, kRedeliver, i);
        r_.recoveries++;
      } else if (static_cast<int>(i) != poller_holds) {  // (its attempt's next store command decides)
        settle(i);  // claimed by the poller: stuck for good
      }
    }
    ready_.clear();
    for (auto i : replica.ready)
      if (o_[i].status != St::created && o_[i].status != St::missing && !done(o_[i].status)) ready_.push_back(i);
    r_.faults.push_back({now, "failover_redis", "redis",
                         fmt::format("the primary killed; the replica promoted {:g} s later, with the store as at the cut",
                                     outage_s_)});
    go_down(outage_s_, false);
    if (!queue_) {  // the poller's attempt fails at its next store command, as after a restart
      fail_at_next_store_command();
      connections_outlived_redis();
    }
  }

  void requeue_at(double t, Kind kind, std::uint32_t i) { e_.at(t, kind, i | (failed_over_ ? kAfterFailover : 0)); }

  // Busy workers fail at their next store command (stale_failure): finalize's read of the order
  // too when `finalize_too` (finalize's connections are stale as well), else only their own
  // commands: a move, or the report of the attempt's failure (an attempt that succeeds has none
  // left once finalize has it: the queue worker's ack is sent again).
  void fail_at_next_store_command(bool finalize_too = true) {
    const double now = e_.now();
    for (std::size_t w = 0; w < busy_.size(); ++w) {
      if (busy_[w] < 0) continue;
      const auto& t = times_[w];
      if (!finalize_too && t.uploading < now && t.finalizing < now && !t.fails()) continue;
      fail_attempt_at(w, next_store_command(t, now), kStale);
    }
  }

  // A busy worker's next store command from now on: its move to uploading, to finalizing, or
  // else its attempt's end (finalize's read of the order, or the report of its failure).
  static double next_store_command(const AttemptTimes& t, double now) {
    return t.uploading >= now ? t.uploading : t.finalizing >= now ? t.finalizing : t.end;
  }

  // Busy worker w's attempt fails at its store command at `next` (kStale, kWriteRefused), not
  // at its own end.
  void fail_attempt_at(std::size_t w, double next, Kind why) {
    // the move to finalizing done, the next command is finalize's own read of the order
    times_[w].stale_at_finalize = times_[w].reaches_finalize && times_[w].finalizing < e_.now();
    times_[w].store_fails = true;
    gen_[w]++;  // its own end does not come
    e_.at(next, why, static_cast<std::uint32_t>(w) + kGenShift * gen_[w]);
  }

  void stale_failure(std::uint32_t payload) {
    const auto w = payload % kGenShift;
    if (payload / kGenShift != gen_[w] || busy_[w] < 0) return;
    const auto i = static_cast<std::uint32_t>(busy_[w]);
    const double now = e_.now();
    busy_[w] = -1;
    idle_ += up_[w];
    make_calls(w, std::nextafter(now, -INFINITY));  // the calls before this command
    voided_attempt_[w] = times_[w].serial;  // its stage kills not yet fired never happen
    if (!queue_) {
      // The legacy flaw: the poller fails the order, and writes so on its own connection. When
      // the failed command was its own (a move to uploading or finalizing), that write connects
      // anew, and the failure is written if Redis answers and the order is still in flight there
      // (a failover may have put it back to paid, or unpaid). When it was finalize's read, the
      // write is the first command on the poller's stale connection, and fails. Unwritten, the
      // order stays claimed for good (stuck).
      const auto& t = times_[w];
      if (t.uploading >= now || t.finalizing >= now) (void)poller_command(now);  // its own move fails
      else if (t.reaches_finalize) finalize_stale_ = false;                     // finalize's read fails
      auto& o = o_[i];
      const bool in_flight = o.status == St::processing || o.status == St::finalizing;
      if (poller_command(now) && in_flight) o.status = St::failed, o.end = now;  // the failure written
      if (in_flight) settle(i);
      e_.at(now + s_.polling->poll_interval_s, kPoll, 0);
      return;
    }
    // failed at finalize (its store read): the upload is done, the retry finalizes
    if (times_[w].stale_at_finalize && o_[i].status == St::processing) o_[i].status = St::finalizing;
    r_.recoveries++;
    const double heartbeat = lease() / 3;
    requeue_at(now + lease() - heartbeat / 2 + reaper_tick() / 2, kRedeliver, i);
    dispatch();
  }

  void step(const des::Event& ev) {
    const double now = e_.now();
    switch (ev.kind) {
      case kArrive:
      case kPayAgain:
        if (ev.kind == kPayAgain) --paying_again_;
        if (net_ && deliver_payment(ev.a, now)) return;  // the intake acts later (kIntake)
        intake(ev.a, now, false);
        return;
      case kIntake: {
        --paying_again_;
        const PendingIntake p = intake_pending_[ev.a];
        intake(p.order, p.answer_s, p.silent);
        return;
      }
      case kHeldFinalize: {  // finalize completes an order its worker gave up on
        auto& o = o_[ev.a];
        if (o.status != St::processing && o.status != St::finalizing) return;
        o.status = St::completed;
        o.end = now;
        settle(ev.a);
        return;
      }
      case kDone:
      case kFailTransient:
      case kFailPermanent:
      case kFailFinalize:
      case kRefused:
      case kUnavailable:
        finish_attempt(ev.a, static_cast<Kind>(ev.kind));
        return;
      case kRetry:
      case kRedeliver: {  // the reaper returns an expired job to the front of the queue
        if (failed_over_ && !(ev.a & kAfterFailover)) return;  // the dead primary's
        const std::uint32_t i = ev.a & ~kAfterFailover;
        // forgotten (a restart without persistence), or unpaid again (a failover lost the payment),
        // or completed by finalize meanwhile (a call its worker had given up on)
        if (o_[i].status == St::missing || o_[i].status == St::created || done(o_[i].status)) return;
        if (ev.kind == kRedeliver) ready_.push_front(i);
        else ready_.push_back(i);
        dispatch();
        return;
      }
      case kFailover:
        promote();
        return;
      case kFire:
        fire(faults_.firings[ev.a]);
        return;
      case kStale:
        stale_failure(ev.a);
        return;
      case kWriteRefused:
        write_refused(ev.a);
        return;
      case kDiskFull:
      case kMemoryFull:
        refuse_writes(refusal_for_s_[ev.a], ev.kind == kDiskFull);
        return;
      case kClock:
        log_clocks();
        return;
      case kFinalizeDies: {
        // the attempt whose grant it was is still at it (not ended early), and finalize is up
        const auto [w, serial] = finalize_kills_[ev.a];
        if (busy_[w] >= 0 && times_[w].serial == serial && voided_attempt_[w] != serial &&
            finalize_dead(now) == FinalizeDead::no)
          finalize_killed(times_[w].end, w);
        return;
      }
      case kStageKill: {
        // a kill of a stage its attempt never reached (a restart ended it before): none, and its
        // fault keeps the firing
        const auto& k = stage_kills_[ev.a];
        const auto [w, serial, after_end] = stage_kill_attempt_[ev.a];
        // (one inside the attempt finds its worker on it, not stopped since nor on another)
        if (voided_attempt_[w] == serial || (!after_end && (busy_[w] < 0 || times_[w].serial != serial))) {
          stage_fired_[k.fault]--;
          return;
        }
        fire(k);
        return;
      }
      case kWorkerUp:
        idle_ -= is_idle(ev.a);
        up_[ev.a] = true;
        idle_ += is_idle(ev.a);
        if (queue_) dispatch();
        else if (busy_[0] < 0) e_.at(now, kPoll, 0);
        return;
      case kRedisUp:
        if (queue_) dispatch();
        return;
      case kPoll: {
        if (!up_[0] || busy_[0] >= 0) return;  // a poll of a dead or busy poller: stale
        polls_++;
        std::uint32_t i = 0;
        if (poller_command(now) && next_ready(i)) {
          start(0, i);
          return;  // the next poll follows the job
        }
        e_.at(now + s_.polling->poll_interval_s, kPoll, 0);
        return;
      }
    }
  }

  // One order's record, as a live run would collect it.
  void fill_record(std::size_t i, OrderRecord& rec) const {
    const auto& o = o_[i];
    if (keep_orders_) rec.id = order_id(i);  // sweeps drop the records: no ids needed
    rec.arrival_s = plan_.arrivals_s[i];
    rec.download_plan_s = plan_.download_s[i];
    rec.upload_plan_s = plan_.upload_s[i];
    const auto tries = provider_tries_.find(static_cast<std::uint32_t>(i));  // refused deliveries, at most 10
    rec.webhook_attempts = tries == provider_tries_.end() ? 1 : std::min(tries->second + 1, kProviderDeliveries);
    rec.payment_accepted = o.accepted();
    rec.status = kStatusNames[static_cast<int>(o.status)];
    rec.stages_s = {};
    if (o.paid >= 0) rec.stages_s["paid"] = o.paid;
    if (o.pick >= 0) {
      rec.stages_s["processing"] = o.pick;
      if (keep_orders_) {
        rec.stages_s["downloading"] = o.pick;
        rec.stages_s["uploading"] = o.pick + work_[i].dl;
        rec.stages_s["finalizing"] = o.pick + work_[i].dl + work_[i].ul;
      }
    }
    if (o.end >= 0 && done(o.status)) rec.stages_s[rec.status] = o.end;
    rec.calls.clear();
    const WorldCalls c = calls_of(i);
    for (int a = 0; a < c.made[0]; ++a) rec.calls.push_back({Api::download, {}, a < o.downloads_ok ? 200 : 503, a < o.downloads_ok});
    for (auto [api, made, applied, after] : {std::tuple{Api::grant, c.made[2], c.granted, c.after_grant},
                                             std::tuple{Api::mail, c.made[3], c.mailed, c.after_mail}}) {
      const int failed_before = made - (applied ? 1 + after : 0);
      for (int k = 0; k < failed_before; ++k) rec.calls.push_back({api, {}, 503, false});
      if (applied) rec.calls.push_back({api, {}, 200, true});
      for (int k = 0; k < after; ++k) rec.calls.push_back({api, {}, 200, false});
    }
    tally_calls(rec);
  }

  // Order i's calls to the world (uploads aside: no check reads them).
  WorldCalls calls_of(std::size_t i) const {
    if (!calls_.empty()) return calls_[i];
    // nothing could fail and no worker was stopped: one attempt, every call answered at once
    const auto& o = o_[i];
    const bool completed = o.status == St::completed;
    WorldCalls c;
    c.made[0] = static_cast<std::uint16_t>(o.attempts);
    c.made[2] = c.made[3] = completed;
    c.granted = c.mailed = completed;
    return c;
  }

  // What the checker and the summary would read of fill_record()'s record, without making it.
  OrderFacts facts(std::size_t i) const {
    static constexpr Outcome kOutcomes[] = {Outcome::forgotten, Outcome::in_flight, Outcome::in_flight,
                                            Outcome::completed, Outcome::failed,    Outcome::failed,
                                            Outcome::forgotten, Outcome::in_flight};
    const auto& o = o_[i];
    OrderFacts f;
    f.payment_accepted = o.accepted();
    f.paid = o.accepted();
    f.outcome = kOutcomes[static_cast<int>(o.status)];
    const WorldCalls c = calls_of(i);
    f.effects.download_calls = c.made[0];
    f.effects.downloads_ok = std::min<int>(o.downloads_ok, c.made[0]);
    f.effects.grants = c.granted;
    f.effects.mails = c.mailed;
    f.effects.calls_after_grant = c.after_grant;
    f.effects.calls_after_mail = c.after_mail;
    f.arrival_s = plan_.arrivals_s[i];
    f.download_plan_s = plan_.download_s[i];
    f.upload_plan_s = plan_.upload_s[i];
    f.paid_s = o.paid >= 0 ? o.paid : f.arrival_s;
    f.end_s = o.end >= 0 && done(o.status) ? o.end : f.arrival_s;
    f.picked = o.pick >= 0;
    f.picked_s = o.pick;
    return f;
  }

  // The model's history: per order what the live run would record (deliveries, store
  // transitions, the world's calls), checked and summarised by the same code as a live run's.
  // Sweeps keep no record: each order's facts (what the checker and the summary read of its
  // record) are taken straight from its state, checked and summarised in order, which gives
  // exactly the figures of the whole history (Model.ASweepsFiguresAreExactlyThoseOfTheWholeHistory).
  ArchResult finish() {
    const std::size_t n = o_.size();
    if (keep_orders_) {
      r_.orders.resize(n);
      for (std::size_t i = 0; i < n; ++i) fill_record(i, r_.orders[i]);
      r_.checker = check(history_of(r_));
      summarize(r_, plan_.arrivals_s.front(), plan_.arrivals_s.back(), true);
    } else {
      OrderSummary summary(n);
      CheckerResult ck;
      for (std::size_t i = 0; i < n; ++i) {
        const OrderFacts f = facts(i);
        check_order(ck, f);
        summary.add(f);
      }
      r_.checker = ck;  // a model has no stray calls
      summary.finish(r_, plan_.arrivals_s.front());
    }
    compute_drain(r_, s_);
    std::vector<double> rec;
    for (const auto& k : r_.kills)
      if (k.redelivered_after_s) rec.push_back(*k.redelivered_after_s);
    r_.recovery_s = percentiles(rec);
    if (queue_) r_.recovery_bound_s = lease() + reaper_tick();
    // the model's probe: pickups of an idle system, seeded phases for the poller
    std::vector<double> probe;
    Stream phases(s_.seed, "model-probe");
    for (int k = 0; k < 1000; ++k) probe.push_back(queue_ ? 0.0 : phases.uniform() * s_.polling->poll_interval_s);
    r_.probe_pickup_s = percentiles(probe);
    r_.probe_method = queue_ ? "model: the hand-off to an idle worker is instantaneous"
                             : "model: 1,000 payments at uniformly distributed phases of the poll cycle";
    r_.store_queries = polls_ + 6 * r_.checker.orders;  // each order: payment, the worker's 3, finalize's 2
    r_.store_queries_per_idle_day = queue_ ? 0 : 86'400 / s_.polling->poll_interval_s;
    r_.notes.push_back("model result: no processes, no Redis; webhook faults are not modelled, nor Redis commands");
    if (net_)
      r_.notes.push_back(
          "network faults: each chunk pays a window's mean latency (half its jitter) and its bytes at a bandwidth limit; a "
          "blackhole holds it until it lifts, and the client gives up after its timeout; resets are drawn at the window's "
          "rate, not as the run drew them. Not modelled: resets with a probability on worker_redis and finalize_redis, "
          "a blackhole's timeouts on them, and resets at a moment but on worker_redis");
    if (wiped_) r_.notes.push_back("a Redis restart without persistence forgot every order, finished or not");
    if (!keep_orders_)  // sweeps: the figures only
      r_.peak_backlog = peak_ready_;  // retries and redeliveries waiting count too, as the planner's stability test needs
    return std::move(r_);
  }

  static std::vector<OrderState>& order_buffer() {
    thread_local std::vector<OrderState> buffer;
    return buffer;
  }

  const Scenario& s_;
  const Plan& plan_;
  const FaultPlan& faults_;
  bool queue_, keep_orders_;
  double overhead_s_;  // each attempt's, calibrated from a live run (0: none)
  double restart_extra_s_;  // a restart's outage beyond its down_for, calibrated (0: none)
  std::map<std::string, FillTimes> fill_;  // by kind: when a fill holds and lifts (calibrated; else kFillDisk*Wall_s for a disk)
  double poll_phase_s_;            // when in its interval the poller polls (calibrated; else 0)
  // a failover's promotion (beyond the fault's down_after) and the old primary's return
  // (calibrated, or the defaults above)
  FailoverTimes failover_;
  double outage_s_ = 0;  // the failover under way: from the kill until the replica is promoted
  bool wait_replicas_ = false;  // the intake acknowledges a payment once a replica has it
  // failover_redis: the store as the replica has it, from the cut until the kill
  struct Replica {
    std::vector<OrderState> orders;
    std::deque<std::uint32_t> ready;
  };
  std::optional<Replica> replica_;
  double failover_at_ = -1, kill_at_ = -1;  // the cut and the kill
  bool failed_over_ = false;                // since the kill: requeues scheduled before it are void
  // The poller's Redis connection (poller_command), and whether finalize's lived through a
  // restart or failover (its first store command then fails)
  struct Connection {
    bool open = true, stale = false;
    double next_connect_s = -INFINITY, backoff_s = 0;
  };
  Connection poller_conn_;
  bool finalize_stale_ = false;
  double reconnect_cap_s_ = 0;  // the reconnect backoff's cap (simulated seconds)
  int workers_;
  model_links::Links links_;  // the network faults' windows, per link
  bool net_ = false;          // ... any: the components' exchanges go through them
  double stage_timeout_s_ = 0;  // a worker's call of the world or of finalize gives up after it (net_)
  std::uint64_t rolls_ = 0;     // ModelOptions::rolls
  std::string reset_stream_;    // the keyed draws of the resets
  std::string jitter_stream_;   // ... and of the retries' jitter (with rolls only)
  std::map<std::uint32_t, int> jitter_draws_;  // by order: its retries' jitter drawn so far
  int dispatches_ = 0;                         // (rolls) dispatches drawn so far
  struct PendingIntake {  // a delivery on its way to the intake's script (kIntake)
    std::uint32_t order;
    double answer_s;  // when the provider has the intake's answer
    bool silent;      // the provider already gave up on it, or the intake answered 503: no answer counts
  };
  std::vector<PendingIntake> intake_pending_;
  des::Engine e_;
  std::vector<OrderState> o_;
  std::vector<AttemptWork> work_;  // keep_orders_ only
  std::deque<std::uint32_t> ready_;
  std::vector<int> busy_;
  std::vector<AttemptTimes> times_;  // per worker: its attempt's store commands (queue)
  std::map<std::uint32_t, int> provider_tries_;  // orders whose payment was refused: deliveries refused
  std::map<std::uint32_t, int> uncounted_;       // orders whose finalize was refused: attempts handed back
  int paying_again_ = 0;                         // refused payments the provider will deliver again
  std::vector<std::uint32_t> gen_;
  std::vector<bool> up_;
  std::vector<bool> store_stale_;  // per queue worker: its store connection was reset while it had no command to make
  int idle_ = 0;  // workers up and not busy: dispatch() has nothing to scan without one
  bool is_idle(std::size_t w) const { return up_[w] && busy_[w] < 0; }
  double redis_down_until_ = -1;
  // Redis refusing writes (memory or disk full): since, until, which, and until when a full
  // disk keeps the queue's reserve refused (the workers try again every 50 ms of wall time)
  double refusing_since_ = -1, refusing_until_ = -1;
  std::vector<double> reserve_refused_until_;  // by worker (empty: never)
  bool refusing_disk_ = false;
  std::vector<double> refusal_for_s_;  // each fill that takes hold later: its window
  bool wiped_ = false;
  long long polls_ = 0;
  int peak_ready_ = 0;
  std::size_t settled_ = 0;    // orders that will not change any more
  std::vector<bool> counted_;  // ... each counted once
  std::vector<int> stage_fired_;
  bool has_stage_kills_ = false;
  bool clock_skews_ = false;  // a skew_clock: signed requests may be refused
  std::map<std::string, double> clock_now_;  // each skew_clock target's offset, as last logged
  bool draw_failures_ = true;  // a call can fail or a worker be stopped: the world's calls are counted
  std::vector<WorldCalls> calls_;                  // per order, if draw_failures_
  std::vector<std::vector<PendingCall>> pending_;  // per worker: its attempt's calls not yet made
  std::vector<std::uint32_t> pending_order_;       // ... and whose they are
  std::size_t current_worker_ = 0;                 // the worker whose attempt is being decided
  ModelAttempt attempt_;  // reused: an attempt allocates nothing
  std::vector<Firing> stage_kills_;
  struct StageKillOf {
    std::size_t worker;
    std::uint64_t serial;  // the attempt's
    bool after_end;        // after the attempt's own end (its effects first)
  };
  std::vector<StageKillOf> stage_kill_attempt_;  // ... each one's worker and attempt
  std::vector<std::uint64_t> voided_attempt_;      // per worker: its attempt a restart ended early
  double finalize_killed_at_ = INFINITY, finalize_back_at_ = -INFINITY;  // the last after_grant kill of finalize
  struct FinalizeKill {
    std::size_t worker;
    std::uint64_t serial;  // the attempt whose grant the kill came after
  };
  std::vector<FinalizeKill> finalize_kills_;
  std::uint64_t attempt_serial_ = 0;
  const Firing* firing_ = nullptr;  // the one being fired
  ArchResult r_;
};

}  // namespace

std::vector<std::string> model_architectures(const Scenario& s, const std::vector<std::string>& requested) {
  std::vector<std::string> archs;
  for (const auto& a : architectures_of(s, requested)) {
    if (a == "polling" || a == "queue") archs.push_back(a);
    else if (!requested.empty())
      throw ScenarioError("--arch", "$", "the model covers polling and queue, not " + a + " (a framework under test runs live only)");
  }
  if (archs.empty())
    throw ScenarioError(s.file, "$.architectures", "the model covers polling and queue, and this scenario has neither");
  return archs;
}

RunResult run_model(Scenario s, const ModelOptions& options) {
  if (options.seed) s.seed = *options.seed;
  const std::vector<std::string> archs = model_architectures(s, options.architectures);
  RunResult result;
  result.kind = "model";
  result.scenario = s.name;
  result.file = s.file;
  result.seed = s.seed;
  result.speedup = 0;
  result.resolution_s = 0;
  result.redis = "none (discrete-event model)";
  result.replay_command = fmt::format("scripts/sim model {} --seed {} --arch {}", s.file, s.seed, fmt::join(archs, ","));
  if (!options.calibration.source.empty()) result.replay_command += " --calibrate " + options.calibration.source;
  if (options.rolls != 0) result.replay_command += fmt::format(" --rolls {}", options.rolls);
  Plan plan = make_plan(s);
  result.fault_plan = plan_faults(s, plan);
  for (const auto& a : archs) {
    const auto& cal = options.calibration;
    const double overhead = cal.attempt_overhead_s.count(a) ? cal.attempt_overhead_s.at(a) : 0;
    const double restart_extra = cal.restart_extra_s.count(a) ? cal.restart_extra_s.at(a) : 0;
    const std::optional<FailoverTimes> failover =
        cal.failover.count(a) ? std::optional<FailoverTimes>(cal.failover.at(a)) : std::nullopt;
    const std::map<std::string, FillTimes> fill = cal.fill.count(a) ? cal.fill.at(a) : std::map<std::string, FillTimes>{};
    const double poll_phase =
        a == "polling" && cal.first_pickup_s.count(a) ? std::fmod(cal.first_pickup_s.at(a), s.polling->poll_interval_s) : 0;
    Model m(s, plan, result.fault_plan, a == "queue", options.keep_orders, overhead, restart_extra, failover, fill,
            poll_phase, options.rolls);
    result.results.push_back(m.run());
    result.events += m.events();
    if (overhead > 0)
      result.results.back().notes.push_back(
          fmt::format("calibrated from {}: each attempt pays {:.3g} s besides the world's download and upload (the live "
                      "run's overhead {})",
                      cal.source, overhead, cal.statistic.count(a) ? cal.statistic.at(a) : "figure"));
    if (restart_extra > 0)
      result.results.back().notes.push_back(fmt::format(
          "calibrated from {}: a Redis restart keeps the store away {:.3g} s longer than its down_for", cal.source,
          restart_extra));
    for (const auto& [kind, times] : fill)
      result.results.back().notes.push_back(fmt::format(
          "calibrated from {}: a {} holds {:.3g} s after it fires, and lifts {:.3g} s after its window", cal.source,
          kind == "fill_disk" ? "full disk" : "full memory", times.hold_s, times.lift_s));
    if (poll_phase > 0)
      result.results.back().notes.push_back(
          fmt::format("calibrated from {}: the poller polls {:.3g} s into each interval", cal.source, poll_phase));
    if (failover)
      result.results.back().notes.push_back(
          fmt::format("calibrated from {}: a failover's promotion {:.3g} s after its down-after, the old primary back as a "
                      "replica {:.3g} s later",
                      cal.source, failover->outage_s, failover->rejoin_s));
  }
  result.arrivals_s = std::move(plan.arrivals_s);  // the models are done with it
  return result;
}

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest: blocks up to 32 MB come from the heap ...
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // ... which is not trimmed back to the kernel below 1 GB free
#endif
}

Calibration calibration_from_report(const nlohmann::json& report, const std::string& where) {
  auto fail = [&](const std::string& path, const std::string& why) { throw ScenarioError(where, path, why); };
  if (!report.is_object() || !report.contains("results") || !report["results"].is_object())
    fail("$.results", "expected a report.json written by `sim run`");
  if (report.value("kind", std::string()) == "model")
    fail("$.kind", "a model's report: calibrate with a live run's (`sim run`)");
  Calibration c;
  c.source = where;
  // the run's fault plan, shared by the architectures: each kind's firing times, in order
  std::map<std::string, std::vector<double>> planned;
  if (report.contains("fault_plan") && report["fault_plan"].contains("firings") && report["fault_plan"]["firings"].is_array())
    for (const auto& f : report["fault_plan"]["firings"])
      if (f.contains("t_s") && f["t_s"].is_number()) planned[f.value("kind", std::string())].push_back(f["t_s"].get<double>());
  for (auto& [kind, times] : planned) std::sort(times.begin(), times.end());
  for (const char* arch : {"polling", "queue"}) {
    if (!report["results"].contains(arch)) continue;
    const std::string path = fmt::format("$.results.{}", arch);
    const auto& r = report["results"][arch];
    try {
      // each restart: "down for D s; answering again B s after the kill" (faults/injector.cpp)
      static const std::regex restart(
          R"(down for ([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?) s; answering again ([0-9]+(?:\.[0-9]+)?) s after the kill)");
      double extra = 0;
      int restarts = 0;
      if (r.contains("faults") && r["faults"].is_array())
        for (const auto& f : r["faults"]) {
          std::smatch m;
          const std::string detail = f.value("detail", std::string());
          if (f.value("kind", std::string()) != "restart_redis" || !std::regex_search(detail, m, restart)) continue;
          extra += std::max(0.0, std::stod(m[2].str()) - std::stod(m[1].str()));
          ++restarts;
        }
      if (restarts > 0) c.restart_extra_s[arch] = extra / restarts;
      // a failover: "the primary killed ... after its down-after, D s", "Sentinel names the promoted
      // replica", "the old primary back" (faults/injector.cpp). The promotion is what the outage
      // took beyond the run's down-after (the model adds its own scenario's); a report from before
      // the down-after (Sentinel held the primary down itself) gives the whole outage.
      static const std::regex down_after(R"(after its down-after, ([0-9.e+]+) s$)");
      double killed = -1, named = -1, back = -1, waited = 0;
      if (r.contains("faults") && r["faults"].is_array())
        for (const auto& f : r["faults"]) {
          if (f.value("kind", std::string()) != "failover_redis" || !f.contains("t_s") || !f["t_s"].is_number()) continue;
          const std::string detail = f.value("detail", std::string());
          const double t = f["t_s"].get<double>();
          std::smatch m;
          if (detail.rfind("the primary killed", 0) == 0) {
            killed = t;
            if (std::regex_search(detail, m, down_after)) waited = std::stod(m[1].str());
          } else if (detail.rfind("Sentinel names the promoted replica", 0) == 0) named = t;
          else if (detail.rfind("the old primary back", 0) == 0) back = t;
        }
      if (killed >= 0 && named >= killed)
        c.failover[arch] = {std::max(0.0, named - killed - waited), back >= named ? back - named : kRejoinWall_s * report.value("speedup", 1.0)};
      // fills, by kind: each "disk full: ..., for F s" or "maxmemory ..., for F s" event (one that
      // held: not "... did not refuse ...") against the last firing of its kind before it in the
      // run's fault plan, and the first "... free again" after it (faults/injector.cpp)
      struct Held {
        double t_s, for_s;
      };
      std::map<std::string, std::vector<double>> lifted;
      std::map<std::string, std::vector<Held>> held;
      static const std::regex window(R"(, for ([0-9]+(?:\.[0-9]+)?) s)");
      if (r.contains("faults") && r["faults"].is_array())
        for (const auto& f : r["faults"]) {
          const std::string kind = f.value("kind", std::string()), detail = f.value("detail", std::string());
          if ((kind != "fill_disk" && kind != "fill_redis_memory") || !f.contains("t_s") || !f["t_s"].is_number()) continue;
          const double t = f["t_s"].get<double>();
          std::smatch m;
          if ((detail.rfind("disk full:", 0) == 0 || detail.rfind("maxmemory ", 0) == 0) &&
              detail.find("did not refuse") == std::string::npos && std::regex_search(detail, m, window))
            held[kind].push_back({t, std::stod(m[1].str())});
          else if (detail.rfind("disk free again", 0) == 0 || detail.rfind("memory free again", 0) == 0)
            lifted[kind].push_back(t);
        }
      for (auto& [kind, times] : held) {
        const auto& fired = planned[kind];
        auto& freed = lifted[kind];
        std::sort(freed.begin(), freed.end());
        FillTimes fill;
        int holds = 0, lifts = 0;
        for (const auto& h : times) {
          const auto at = std::upper_bound(fired.begin(), fired.end(), h.t_s);
          if (at == fired.begin()) continue;  // no firing before it
          fill.hold_s += h.t_s - *std::prev(at), ++holds;
          const auto lift = std::upper_bound(freed.begin(), freed.end(), h.t_s);
          if (lift != freed.end()) fill.lift_s += std::max(0.0, *lift - h.t_s - h.for_s), ++lifts;
        }
        if (holds > 0) c.fill[arch][kind] = {fill.hold_s / holds, lifts > 0 ? fill.lift_s / lifts : 0};
      }
      // the poller's phase: when it picked up the first order it picked up, in its interval
      // (the legacy loop polls every interval until it finds work)
      if (arch == std::string("polling") && r.contains("orders") && r["orders"].is_array()) {
        double first = INFINITY;
        for (const auto& o : r["orders"])
          if (o.contains("stages_s") && o["stages_s"].contains("processing") && o["stages_s"]["processing"].is_number())
            first = std::min(first, o["stages_s"]["processing"].get<double>());
        if (std::isfinite(first) && first >= 0) c.first_pickup_s[arch] = first;
      }

      if (!r.contains("overhead_s") || !r["overhead_s"].is_object()) fail(path + ".overhead_s", "missing");
      const auto& o = r["overhead_s"];
      if (o.value("count", 0) == 0) continue;  // no completed order: nothing measured
      // The mean is what a backlog pays, but only when each order's overhead is one attempt's
      // and nothing disturbed it: a retry of finalize alone, a redelivery, a slowed world, a
      // pause or an outage add to some orders'. Then the median, which those few do not move.
      const bool undisturbed = r.value("retries", 0) == 0 && r.value("recoveries", 0) == 0 &&
                               (!r.contains("fault_counts") || r["fault_counts"].empty());
      const char* stat = undisturbed ? "mean" : "p50";
      if (!o.contains(stat) || !o[stat].is_number() || !std::isfinite(o[stat].get<double>()))
        fail(path + ".overhead_s." + stat, "expected a number");
      c.attempt_overhead_s[arch] = std::max(0.0, o[stat].get<double>());
      c.statistic[arch] = stat;
    } catch (const nlohmann::json::exception& e) {
      fail(path, std::string("not as `sim run` writes it: ") + e.what());
    } catch (const std::logic_error& e) {  // std::stod: out of range
      fail(path + ".faults", std::string("a restart's figures out of range: ") + e.what());
    }
  }
  if (c.attempt_overhead_s.empty())
    fail("$.results", "no completed order of polling or queue: nothing to calibrate with");
  return c;
}

}  // namespace qsim::sim
