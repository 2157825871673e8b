// A fault in a scenario's `faults` list, and everything the harness does with one. Each kind
// belongs to one family, and a family's file under sim/faults/ holds all of its kinds: the JSON
// form (what the loader accepts), the plan (when it fires, from the seed), the live action
// (what the injector does to the running processes) and the model action (what the
// discrete-event model does instead). Adding a kind touches its family's file and
// scenarios/schema.json, nothing else.
//
//   process  kill_process, pause_process                       process.cpp
//   redis    restart_redis, fill_redis_memory, fill_disk,       redis.cpp
//            failover_redis
//   poison   poison_job                                         poison.cpp
//   webhook  duplicate_webhook, replay_webhook, forge_webhook, late_webhook   webhook.cpp
//   world    fail_download, fail_upload, fail_grant, fail_mail, slow_world   world.cpp
//   network  delay_network, reset_connections, blackhole, limit_bandwidth    network.cpp
//   clock    skew_clock                                          clock.cpp
//
// Times are simulated seconds from the workload's start.
//   when, for kill_process / pause_process / restart_redis / fill_redis_memory / fill_disk / poison_job:
//     at      one moment; `count` victims (processes, poison jobs) at that moment
//     every   one firing per period within [from, until], each with `probability`;
//             `count` caps the firings (0: no cap)
//     stage   kill_process only: whenever a target is seen in the stage (download, upload:
//             a worker; after_grant: finalize between the grant and the e-mail; after_effects:
//             the worker whose order's grant and e-mail are done, before it acks; handoff: the
//             payment intake while a paid order has no framework job recorded yet), within
//             [from, until], each with `probability`, at most `count` (default 1)
//   webhook faults act on each order's payment with `probability`, for arrivals in [from, until];
//   world faults (fail_*, slow_world), network faults and skew_clock hold within [from, until]
//   (blackhole also takes at + for; reset_connections at a time resets every open connection).
#pragma once

#include "qsim/sim/json_reader.h"
#include "qsim/sim/random.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace qsim::sim {

// kill_process, pause_process
struct ProcessFault {
  bool kill = true;           // false: pause_process
  std::string target;         // worker | worker-<n> | payment_intake | finalize
  std::string stage;          // kill only: download | upload | after_grant | after_effects | handoff
  // a worker's kill: "worker" (the process and everything it started, as when its machine or
  // container dies) or "job" (only the processes it runs its jobs in: RQ's work horse, Celery's
  // pool children; the worker itself where it has none)
  std::string process = "worker";
  double for_s = 0;           // pause: how long
};

// restart_redis, fill_redis_memory, fill_disk, failover_redis
struct RedisFault {
  double down_s = 0;                 // restart: how long Redis is down
  std::string persistence = "none";  // restart: none | everysec | always
  double full_s = 0;                 // fill_redis_memory, fill_disk: how long it stays full
  std::string policy = "noeviction"; // fill_redis_memory: Redis's maxmemory-policy meanwhile
  double lag_s = 0;                  // failover_redis: the replica cut off this long before the kill
  double down_after_s = 30;          // failover_redis: the kill to Sentinel's failover (its down-after)
};

// poison_job
struct PoisonFault {};

// duplicate_webhook, replay_webhook, forge_webhook, late_webhook
struct WebhookFault {
  int copies_min = 1, copies_max = 1;  // duplicate: extra copies
  double spread_s = 0;                 // duplicate: copies within this long after the original
  double after_s = 360;                // replay: re-sent this long after (past the 5-minute window)
  double skew_s = 600;                 // late: timestamp this far off (negative: in the future)
  std::string how = "bad_signature";   // forge: bad_signature | tampered_body
};

// fail_download, fail_upload, fail_grant, fail_mail, slow_world
struct WorldFault {
  std::string api;         // download | upload | grant | mail; empty: slow_world
  bool transient = true;   // fail_*
  double factor = 1;       // slow_world: latency multiplier
};

// delay_network, reset_connections, blackhole, limit_bandwidth: on one link through the proxy
struct NetworkFault {
  std::string link;  // network_links()
  double latency_s = 0, jitter_s = 0, bytes_per_s = 0;
};

// skew_clock: one component's wall clock off by offset_s while the window holds, through
// libfaketime (Debian faketime) preloaded into the process; its steady clock is left alone.
// The offset is real seconds, not scaled by speedup: a clock is wrong by real time, and the
// webhook signatures' 5-minute window is real time too.
struct ClockFault {
  std::string target;   // worker | worker-<n> | payment_intake | finalize
  double offset_s = 0;  // ahead (+) or behind (-)
};

struct Fault {
  std::string kind;  // as written: kill_process, restart_redis, ...
  std::optional<double> at_s, every_s;
  double from_s = 0, until_s = 1e300;
  double probability = 1;
  int count = 0;
  std::variant<ProcessFault, RedisFault, PoisonFault, WebhookFault, WorldFault, NetworkFault, ClockFault> params;

  template <class T>
  const T* as() const { return std::get_if<T>(&params); }
  // kill_process at a stage (fires when the run sees a target in it, not at planned times)
  const ProcessFault* stage_kill() const {
    auto* p = as<ProcessFault>();
    return p && p->kill && !p->stage.empty() ? p : nullptr;
  }
  bool window_holds(double t) const { return t >= from_s && t < until_s; }
};

// What the fault families need to know of the scenario to read a fault.
struct FaultReadContext {
  int workers = 1;  // the most workers any architecture of the scenario has
};

// Reads faults[i] (the reader stands at it); ScenarioError at the path of the first problem.
Fault read_fault(JsonReader r, const FaultReadContext& ctx);

// Every kind a scenario may name, and the links a run can route through its fault proxy.
const std::vector<std::string>& fault_kinds();
const std::vector<std::string>& network_links();

// ---- the plan ------------------------------------------------------------------------------

// One timed firing of a fault (kill_process, pause_process, restart_redis, poison_job,
// reset_connections at a time).
struct Firing {
  double t_s = 0;
  std::size_t fault = 0;     // index into the scenario's faults
  std::string kind;          // the fault's kind
  std::string target;        // as written (worker, worker-3, finalize, a link, ...)
  std::uint64_t pick = 0;    // seeded choice among the target's live instances
  int count = 1;             // victims (processes, poison jobs) at this moment
};

// The extra requests the payment provider sends for one order, besides its genuine delivery.
struct WebhookExtra {
  enum class Kind { duplicate, replay, forge_signature, forge_body, late } kind = Kind::duplicate;
  std::size_t order = 0;
  double at_s = 0;           // simulated send time
  double skew_s = 0;         // late: timestamp offset (negative: in the future); replay: age
};
std::string to_string(WebhookExtra::Kind k);

struct FaultPlan {
  std::vector<Firing> firings;           // sorted by time
  std::vector<WebhookExtra> webhooks;    // sorted by time
};

// The schedule, made concrete from the seed before anything runs, so that the same scenario and
// seed always give the same timeline (stage kills are the exception: they fire when a target is
// seen in its stage, which the run decides). Randomness comes from the "faults" stream (timed
// firings, victims) and the "webhook-faults" stream (each order's payment), never from the
// arrival or duration streams. `horizon_s` bounds `every` without an `until`.
FaultPlan plan_faults(std::uint64_t seed, const std::vector<Fault>& faults, const std::vector<double>& arrivals_s,
                      double horizon_s);

// ---- what a fault does to a live run --------------------------------------------------------

// The injector's means against the running processes; the families decide what to do with them.
class LiveTarget {
public:
  virtual ~LiveTarget() = default;
  // The running instances a target names (worker: every worker; worker-3, finalize: that one).
  virtual std::vector<std::string> instances(const std::string& target) = 0;
  // SIGKILL; job_only: the processes the worker runs its jobs in, not the worker.
  virtual void kill(const std::string& instance, const std::string& why, bool job_only) = 0;
  virtual void pause(const std::string& instance, double for_s) = 0;  // SIGSTOP, SIGCONT after for_s
  virtual void restart_redis(double down_s, const std::string& persistence) = 0;
  // Redis's maxmemory set to the memory in use, with `policy`, for full_s; then as it was.
  virtual void fill_redis_memory(double full_s, const std::string& policy) = 0;
  // Redis's AOF directory (a tmpfs the size of redis_disk_bytes) filled up for full_s, then freed.
  virtual void fill_disk(double full_s) = 0;
  // The primary SIGKILLed; down_after_s later (simulated) Sentinel fails over to its replica. With
  // lag_s, the replica's link to the primary is cut (blackholed in the proxy) that long before,
  // so that what the primary acknowledged meanwhile never reaches it.
  virtual void failover_redis(double lag_s, double down_after_s) = 0;
  virtual void reset_connections(const std::string& link) = 0;
  // Sets the wall-clock offset of an instance started with libfaketime (clock_skewed).
  virtual void skew_clock(const std::string& instance, double offset_s) = 0;
  // Jobs onto qsim's queue (the nth of the run's: payload(nth)); n/a where the architecture
  // reads none of its queues.
  virtual void enqueue_jobs(int count, std::string (*payload)(long long nth)) = 0;
  virtual void log(const std::string& kind, const std::string& target, const std::string& detail) = 0;
};

// A timed firing, carried out.
void fire_live(const Fault& f, const Firing& firing, LiveTarget& live);

// The simulated world's configuration while windowed faults hold (fail_*, slow_world, and a
// kill at after_grant or after_effects, which needs the world to hold its answer a moment).
struct WorldState {
  struct Api {
    std::optional<double> fail_probability;  // none: the scenario's base rate
    bool transient = true;
    bool hold = false;  // answer a moment late, so that the caller is still waiting when seen
  };
  std::map<std::string, Api> apis;  // download upload grant mail
  double latency_factor = 1;
};
// Whether faults[i] shapes the world at `t`, given how often each stage kill has fired.
std::vector<bool> world_faults_active(const std::vector<Fault>& faults, double t, const std::vector<int>& stage_fired);
WorldState world_state(const std::vector<Fault>& faults, const std::vector<bool>& active);
double max_latency_factor(const std::vector<Fault>& faults);  // the slowest the world can get

// One link's faults while windows hold on it, in simulated units.
struct LinkState {
  double latency_s = 0, jitter_s = 0;
  double bytes_per_s = 0;  // 0: unlimited
  bool blackhole = false;
  double reset_probability = 0;
  bool operator==(const LinkState&) const = default;
};
std::string link_of(const Fault& f);  // the link a network fault acts on; empty for other kinds
// Each link's state at `t` (every link of network_links()), and which faults hold on it.
std::map<std::string, std::pair<LinkState, std::vector<bool>>> link_states(const std::vector<Fault>& faults, double t);

// The clock offset (real seconds, + ahead) of each skew_clock target at `t`; 0 outside windows.
std::map<std::string, double> clock_offsets(const std::vector<Fault>& faults, double t);
// One instance's clock offset at `t` (real seconds, + ahead), as clock_skewed() names instances
// ("worker" names every worker-<n>); 0 for an instance no window names then.
double clock_offset(const std::vector<Fault>& faults, double t, const std::string& instance);
// Whether the receiver refuses a signed request the sender makes at `t` (a payment webhook to
// payment_intake, a worker's call of finalize): their clocks, as the skew_clock windows holding
// then set them, differ by more than the signatures' window (security::kSignatureWindow).
bool signature_refused(const std::vector<Fault>& faults, double t, const std::string& sender,
                       const std::string& receiver);
// Whether a skew_clock names this instance (payment_intake, finalize, worker-3, ...): it is then
// started with libfaketime preloaded.
bool clock_skewed(const std::vector<Fault>& faults, const std::string& instance);

// The persistence restart_redis faults ask of the one server ("" when there are none; everysec
// at least when a fill_disk needs an AOF to refuse).
std::string redis_persistence(const std::vector<Fault>& faults);
// The size of the tmpfs the private Redis's directory must sit on (a fill_disk), or 0: none.
std::size_t redis_disk_bytes(const std::vector<Fault>& faults);
// The first fault that acts on the redis-server itself (restart_redis, fill_redis_memory, fill_disk,
// failover_redis), so needs the private one; "" when there is none.
std::string private_redis_fault(const std::vector<Fault>& faults);
// Whether a failover_redis asks for a replica and Sentinel beside the private Redis.
bool redis_failover(const std::vector<Fault>& faults);

// ---- what a fault does in the model ---------------------------------------------------------

// The model's means; the families decide what to do with them.
class ModelTarget {
public:
  virtual ~ModelTarget() = default;
  virtual int workers() const = 0;
  virtual bool queue() const = 0;  // the queue architecture (else the poller)
  // A worker dies (kill) or freezes (pause) for for_s; whatever it holds is handled as the
  // architecture would.
  virtual void stop_worker(int w, bool kill, double for_s) = 0;
  virtual void redis_down(double down_s, bool wipe) = 0;
  // Redis answers but refuses writes for for_s and keeps its data: its memory full (noeviction:
  // OOM) or its disk full (MISCONF). The two differ in which of the queue's commands still pass.
  virtual void redis_refuses_writes(double for_s, bool disk) = 0;
  // redis-server restarted: down as above, and every connection to it that lived through the
  // restart fails on its next command.
  virtual void redis_restarted(double down_s, bool wipe) = 0;
  // failover_redis: the replica cut off now for lag_s, then the primary killed and the replica
  // promoted, down_after_s and Sentinel's failover later, with what it had at the cut.
  virtual void failover_redis(double lag_s, double down_after_s) = 0;
  // reset_connections at a moment: every open connection over the link is reset.
  virtual void reset_connections(const std::string& link) = 0;
  virtual void dead_letter(int jobs) = 0;
  virtual void log(const std::string& target, const std::string& detail) = 0;
};

void fire_model(const Fault& f, const Firing& firing, ModelTarget& model);

// One attempt at an order in the model, as the windowed faults shape it.
struct ModelAttempt {
  std::string order;
  int worker = 0;
  double start_s = 0;
  // before the durations are drawn: the world's slowdown and each stage's failure rate
  double slow = 1;
  struct Stage {
    double fail_probability = 0;
    bool transient = true;
  } stages[4];  // download upload grant mail; the scenario's base rates to begin with
  // after: the attempt's timing and outcome
  bool finalize_only = false;  // a retry of finalize alone: never in the download or upload stage
  double download_s = 0, upload_s = 0, end_s = 0;
  bool succeeds = true;
  struct Kill {
    double t_s;
    std::size_t fault;
    std::string target;
    bool after_end;  // scheduled after the attempt's own end (its effects come first)
  };
  std::vector<Kill> kills;
};
// Before the draws: slow_world and fail_* holding at the attempt's start.
void shape_attempt(const std::vector<Fault>& faults, ModelAttempt& a);
// After the draws: stage kills that land on this attempt (stage_fired counts them).
void kill_attempt(std::uint64_t seed, const std::vector<Fault>& faults, ModelAttempt& a, std::vector<int>& stage_fired);

}  // namespace qsim::sim
