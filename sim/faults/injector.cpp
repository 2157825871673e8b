#include "qsim/sim/injector.h"

#include "qsim/components/http_client.h"
#include "qsim/components/webhook.h"
#include "qsim/queue/keys.h"
#include "qsim/queue/queue.h"
#include "qsim/security/signature.h"
#include "qsim/sim/world.h"
#include "qsim/store/task_store.h"

#include <fmt/format.h>
#include <optional>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace qsim::sim::detail {

namespace {

// A worker stamps orders with its id, or (a framework's) "<id>#<pid of the job's process>".
bool stamped_by(const std::string& stamp, const std::string& worker_id) {
  return stamp == worker_id || (stamp.size() > worker_id.size() && stamp.compare(0, worker_id.size(), worker_id) == 0 &&
                                stamp[worker_id.size()] == '#');
}

int pid_of_stamp(const std::string& stamp) {
  auto hash = stamp.rfind('#');
  if (hash == std::string::npos) return 0;
  try {
    return std::stoi(stamp.substr(hash + 1));
  } catch (const std::exception&) {
    return 0;
  }
}
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

}  // namespace

Injector::Injector(InjectorContext c)
    : c_(std::move(c)), stage_fired_(c_.scenario->faults.size(), 0), stage_seen_(c_.scenario->faults.size()) {}

Injector::~Injector() { stop(); }

void Injector::start() {
  faults_thread_ = std::thread([this] { faults_loop(); });
  webhooks_thread_ = std::thread([this] { webhooks_loop(); });
}

void Injector::stop() {
  stop_ = true;
  if (faults_thread_.joinable()) faults_thread_.join();
  if (failover_thread_.joinable()) failover_thread_.join();
  if (webhooks_thread_.joinable()) webhooks_thread_.join();
  count_unplanned_failovers();
  for (auto& [at, h] : resume_) c_.supervisor->signal(h, SIGCONT);
  resume_.clear();
  if (!later_.empty()) {
    try {
      redis::Connection c(c_.endpoint);
      run_due(c, true);
    } catch (const std::exception&) {
      later_.clear();  // Redis gone: nothing left to undo on it
    }
  }
}

// Undoes what a fault window did, once the window ends (all of them: the run is over).
void Injector::run_due(redis::Connection& c, bool all) {
  for (auto it = later_.begin(); it != later_.end();) {
    if (all || Steady::now() >= it->first) {
      auto undo = std::move(it->second);
      it = later_.erase(it);
      undo(c);
    } else {
      ++it;
    }
  }
}

std::vector<int> Injector::stage_fired() const {
  std::lock_guard lock(mu_);
  return stage_fired_;
}

double Injector::sim_now() const {
  return std::chrono::duration<double>(Steady::now() - c_.t0).count() * c_.speedup;
}

std::chrono::microseconds Injector::wall(double sim_s) const {
  return std::chrono::microseconds(static_cast<long long>(sim_s / c_.speedup * 1e6));
}

void Injector::log(const std::string& kind, const std::string& target, const std::string& detail, bool count) {
  FaultEvent e{sim_now(), kind, target, detail};
  {
    std::lock_guard lock(mu_);
    events.push_back(e);
    if (count) counts[kind]++;
  }
  if (c_.on_fault) c_.on_fault(e);
}

// Every job under a lease: its payload (the order id) -> the worker holding it.
std::map<std::string, std::string> Injector::leased(redis::Connection& c) {
  std::map<std::string, std::string> out;
  queue::Keys keys(c_.tag, c_.prefix);
  for (const auto& set : {keys.active(), keys.handed()}) {  // handed: leased to an idle worker's inbox
    auto leases = c.command({"ZRANGE", set, "0", "-1"});
    if (!leases) continue;
    for (const auto& token : leases.reply.elements) {
      auto job = c.command({"HMGET", keys.job(token.str.substr(0, token.str.find(':'))), "worker", "payload"});
      if (job && job.reply.elements.size() == 2) out[job.reply.elements[1].str] = job.reply.elements[0].str;
    }
  }
  return out;
}

// The order a worker is working on. Queue: the job it holds a lease on (the active set is the
// truth; an order's status may lag behind a retry). Polling: of the in-flight orders stamped
// with its id, the one that moved last (older ones are leftovers of an earlier kill).
std::vector<std::string> Injector::held_by(const std::string& worker_id, redis::Connection& c) {
  if (c_.leases) {
    for (const auto& [payload, worker] : leased(c))
      if (worker == worker_id) return {payload};
    return {};
  }
  store::TaskStore st(c, c_.tag, "harness", c_.prefix);
  const std::string base = queue::Keys(c_.tag, c_.prefix).base();
  std::string best;
  long long best_ms = -1;
  for (const char* status : {"processing", "downloading", "uploading", "finalizing"}) {
    auto r = c.command({"ZRANGE", base + "status:" + status, "0", "-1", "WITHSCORES"});
    if (!r) continue;
    for (std::size_t i = 0; i + 1 < r.reply.elements.size(); i += 2) {
      const std::string& id = r.reply.elements[i].str;
      const long long ms = std::atoll(r.reply.elements[i + 1].str.c_str());
      if (ms <= best_ms) continue;
      auto o = st.get(id);
      if (o && o.value && stamped_by(o.value->worker, worker_id)) best = id, best_ms = ms;
    }
  }
  if (best.empty()) return {};
  // A leftover: stuck where this worker id was killed holding it, and not moved since. An order
  // that moved after that kill is held again (a retry the restarted worker picked up).
  std::lock_guard lock(mu_);
  auto earlier = killed_holding_ms_.find({best, worker_id});
  if (earlier != killed_holding_ms_.end() && best_ms <= earlier->second) return {};
  return {best};
}

void Injector::kill(const std::string& instance, const std::string& why, redis::Connection& c, bool job_only) {
  auto h = c_.processes.find(instance);
  if (h == c_.processes.end()) return;
  std::vector<std::string> held;
  if (auto id = c_.worker_ids.find(instance); id != c_.worker_ids.end()) held = held_by(id->second, c);
  std::string how;
  if (job_only) {
    // The process that runs the held order's job, from the order's stamp; where none is known
    // (the job runs in the worker itself), the worker.
    int pid = 0;
    if (!held.empty())
      if (auto w = c.command({"HGET", queue::Keys(c_.tag, c_.prefix).base() + "order:" + held.front(), "worker"}); w)
        pid = pid_of_stamp(w.reply.str);
    if (pid > 0 && pid != c_.supervisor->pid(h->second) && c_.supervisor->signal_in_tree(h->second, pid, SIGKILL)) {
      how = fmt::format("its job's process (pid {})", pid);
    } else {
      c_.supervisor->signal(h->second, SIGKILL);
      how = "the worker itself (its job runs in it)";
    }
  } else {
    c_.supervisor->signal(h->second, SIGKILL);
  }
  const double t = sim_now();
  if (c_.leases && !held.empty()) {
    // The read above and the kill are not one step: the worker may have acked or failed the
    // attempt in between (and another worker may hold the retry already). Such a job needs no
    // redelivery; count it as held only if the victim still holds its lease.
    auto now_leased = leased(c);
    auto still = now_leased.find(held.front());
    if (still == now_leased.end() || still->second != c_.worker_ids.at(instance)) held.clear();
  }
  std::string detail = how.empty() ? why : (why.empty() ? how : why + ", " + how);
  for (const auto& o : held) detail += (detail.empty() ? "holding " : ", holding ") + o;
  log("kill_process", instance, detail);
  // Redis's clock, which stamps the orders' status times: held_by compares them with it.
  long long killed_ms = -1;
  if (!held.empty() && !c_.leases)
    if (auto r = c.command({"TIME"}); r && r.reply.elements.size() == 2)
      killed_ms = std::atoll(r.reply.elements[0].str.c_str()) * 1000 + std::atoll(r.reply.elements[1].str.c_str()) / 1000;
  std::lock_guard lock(mu_);
  for (const auto& o : held) {
    kills.push_back({t, instance, o, std::nullopt});
    // Without Redis's time, the order counts as not moved since (as before: never held twice).
    if (!c_.leases) killed_holding_ms_[{o, c_.worker_ids.at(instance)}] = killed_ms < 0 ? LLONG_MAX : killed_ms;
  }
}

class Injector::Live final : public LiveTarget {
public:
  Live(Injector& in, redis::Connection& c) : in_(in), c_(c) {}

  std::vector<std::string> instances(const std::string& target) override {
    std::vector<std::string> out;
    for (const auto& [name, h] : in_.c_.processes) {
      const bool worker = in_.c_.worker_ids.count(name) > 0;
      if (name == target || (target == "worker" && worker)) out.push_back(name);
    }
    return out;
  }
  void kill(const std::string& instance, const std::string& why, bool job_only) override {
    in_.kill(instance, why, c_, job_only);
  }
  void pause(const std::string& instance, double for_s) override {
    int h = in_.c_.processes.at(instance);
    in_.c_.supervisor->signal(h, SIGSTOP);
    in_.resume_.push_back({Steady::now() + in_.wall(for_s), h});
    in_.log("pause_process", instance, fmt::format("for {:g} s", for_s));
  }
  void restart_redis(double down_s, const std::string& persistence) override {
    if (!in_.c_.server) return;
    in_.c_.server->kill();
    const double killed_at = in_.sim_now();
    in_.log("restart_redis", "redis", fmt::format("killed; persistence {}; down for {:g} s", persistence, down_s));
    auto until = Steady::now() + in_.wall(down_s);
    while (!in_.stop_ && Steady::now() < until) std::this_thread::sleep_for(1ms);
    try {
      in_.c_.restart_redis();
      // how long the restart really took, in the event's detail (sim model --calibrate reads it)
      std::lock_guard lock(in_.mu_);
      for (auto it = in_.events.rbegin(); it != in_.events.rend(); ++it)
        if (it->kind == "restart_redis" && it->detail.rfind("killed;", 0) == 0) {
          it->detail += fmt::format("; answering again {:.1f} s after the kill", in_.sim_now() - killed_at);
          break;
        }
    } catch (const std::exception& e) {
      in_.log("restart_redis", "redis", std::string("did not come back: ") + e.what());
    }
  }
  void failover_redis(double lag_s, double down_after_s) override {
    // Seconds of wall time (the lag, Sentinel's promotion, the resync): on a thread of its own,
    // so that the other faults' windows, resumes and restores keep their times meanwhile.
    if (in_.failover_thread_.joinable()) return in_.log("failover_redis", "redis", "n/a: a failover is already under way");
    in_.failover_thread_ = std::thread([this, lag_s, down_after_s] { in_.failover(lag_s, down_after_s); });
  }
  void fill_redis_memory(double full_s, const std::string& policy) override {
    if (!in_.c_.server) return;
    auto config = [this](const std::string& key) {
      auto r = c_.command({"CONFIG", "GET", key});
      return r && r.reply.elements.size() == 2 ? r.reply.elements[1].str : std::string();
    };
    const std::string was_max = config("maxmemory"), was_policy = config("maxmemory-policy");
    const long long used = redis_info_number(c_, "memory", "used_memory");
    if (used <= 0 || was_max.empty() || was_policy.empty()) {
      in_.log("fill_redis_memory", "redis", "not filled: Redis did not say how much memory it uses");
      return;
    }
    auto set = [](redis::Connection& c, const std::string& key, const std::string& value) {
      auto r = c.command({"CONFIG", "SET", key, value});
      return r ? std::string() : r.error;
    };
    // noeviction: half of what is in use, so that every write that needs memory is refused. At
    // exactly what is in use, memory freed meanwhile (a client's buffer) let some writes through:
    // three runs of redis_memory_full saw 9, 9 and 22 payment deliveries refused. An evicting
    // policy: what is in use, so that each write evicts what it needs.
    const long long limit = policy == "noeviction" ? std::max(1LL, used / 2) : used;
    auto err = set(c_, "maxmemory-policy", policy);
    if (err.empty()) err = set(c_, "maxmemory", std::to_string(limit));
    if (!err.empty()) {
      in_.log("fill_redis_memory", "redis", "not filled: CONFIG SET: " + err);
      return;
    }
    in_.log("fill_redis_memory", "redis",
            fmt::format("maxmemory {} bytes ({} bytes in use), policy {}, for {:g} s", limit, used, policy, full_s));
    in_.later_.push_back({Steady::now() + in_.wall(full_s), [this, set, was_max, was_policy](redis::Connection& c) {
                            auto e = set(c, "maxmemory", was_max);
                            if (e.empty()) e = set(c, "maxmemory-policy", was_policy);
                            in_.log("fill_redis_memory", "redis",
                                    e.empty() ? "memory free again: maxmemory " + was_max + ", policy " + was_policy
                                              : "could not free the memory: CONFIG SET: " + e,
                                    false);
                          }});
  }
  void fill_disk(double full_s) override {
    if (!in_.c_.server) return;
    // Redis's directory is a size-limited tmpfs (redis_disk_bytes): a filler file takes what is
    // left, so that Redis's next AOF write fails for want of space.
    const auto filler = in_.c_.server->dir() / "qsim-disk-filler";
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return in_.log("fill_disk", "redis", std::string("not filled: cannot create the filler: ") + std::strerror(errno));
    std::vector<char> chunk(1 << 20, 'x');
    long long written = 0;
    int why = 0;
    for (std::size_t size = chunk.size(); size >= 512;) {
      const ssize_t n = ::write(fd, chunk.data(), size);
      if (n > 0) written += n;
      if (n < 0 && errno == EINTR) continue;
      if (n < static_cast<ssize_t>(size)) {  // full at this size: smaller writes take the rest
        why = n < 0 ? errno : ENOSPC;
        size /= 2;
      }
    }
    ::close(fd);
    if (why != ENOSPC) {
      std::filesystem::remove(filler);
      return in_.log("fill_disk", "redis", std::string("not filled: ") + std::strerror(why));
    }
    // The AOF's last page may still have room for a few writes (tmpfs hands out whole pages): a
    // probe key written until Redis refuses it uses that up, so that the fault holds from the
    // moment it is logged (before, three runs of disk_full saw 11 to 20 payment deliveries
    // refused where the whole window refuses 23).
    const std::string probe = queue::Keys(in_.c_.tag, in_.c_.prefix).base() + "disk-probe";
    const std::string page(2048, 'x');
    int accepted = 0;
    std::string refused;
    for (; accepted < 64; ++accepted)
      if (auto r = c_.command({"SET", probe, page}); !r) {
        refused = r.error;
        break;
      }
    const std::string outcome = refused.find("MISCONF") != std::string::npos
                                    ? fmt::format("writes refused after {} probe writes", accepted)
                                : refused.empty() ? fmt::format("but Redis did not refuse {} probe writes", accepted)
                                                  : "but a probe write failed otherwise: " + refused;
    in_.log("fill_disk", "redis",
            fmt::format("disk full: {:.1f} MiB of filler, for {:g} s; {}", written / 1048576.0, full_s, outcome));
    in_.later_.push_back({Steady::now() + in_.wall(full_s), [this, filler, probe](redis::Connection& c) {
                            std::error_code ec;
                            std::filesystem::remove(filler, ec);
                            // refused until Redis has written its AOF again, which it retries before it waits
                            bool deleted = false;
                            for (int tries = 0; !ec && !deleted && tries < 20; ++tries)
                              if (!(deleted = static_cast<bool>(c.command({"DEL", probe}))))
                                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                            in_.log("fill_disk", "redis",
                                    ec        ? "could not free the disk: " + ec.message()
                                    : deleted ? "disk free again"
                                              : "disk free again (its probe key left behind: Redis still refused the delete)",
                                    false);
                          }});
  }
  void skew_clock(const std::string& instance, double offset_s) override {
    auto file = in_.c_.clock_files.find(instance);
    if (file == in_.c_.clock_files.end()) {
      in_.log("skew_clock", instance, "n/a: " + in_.c_.arch + " did not start it with libfaketime", false);
      return;
    }
    {  // libfaketime reads the file on every call: replace it whole, never half-written
      std::ofstream out(file->second + ".new");
      out << fmt::format("{:+.0f}\n", offset_s);
    }
    std::error_code ec;
    std::filesystem::rename(file->second + ".new", file->second, ec);
    if (ec) return in_.log("skew_clock", instance, "could not set the clock: " + ec.message(), false);
    in_.log("skew_clock", instance,
            offset_s == 0 ? "clock on time again"
                          : fmt::format("clock {:g} s {}", std::abs(offset_s), offset_s > 0 ? "ahead" : "behind"),
            offset_s != 0);
  }
  void reset_connections(const std::string& link) override {
    if (in_.c_.proxy) in_.c_.proxy->reset_all(link);
    in_.log("reset_connections", link, "every open connection reset");
  }
  void enqueue_jobs(int count, std::string (*payload)(long long nth)) override {
    if (!in_.c_.leases) {
      in_.log("poison_job", "queue", "n/a: " + in_.c_.arch + " reads no queue of qsim's engine");
      return;
    }
    queue::Queue q(c_, in_.c_.tag, queue::QueueConfig{in_.c_.prefix});
    for (int k = 0; k < count; ++k)
      if (q.enqueue(payload(in_.poison_enqueued))) ++in_.poison_enqueued;
    in_.log("poison_job", "queue", fmt::format("{} malformed jobs enqueued", count));
  }
  void log(const std::string& kind, const std::string& target, const std::string& detail) override {
    in_.log(kind, target, detail);
  }

private:
  Injector& in_;
  redis::Connection& c_;
};

void Injector::fire(const Firing& f, redis::Connection& c) {
  Live live(*this, c);
  fire_live(c_.scenario->faults[f.fault], f, live);
}

void Injector::stage_faults(redis::Connection& c, std::size_t& calls_seen) {
  const auto& faults = c_.scenario->faults;
  const double now = sim_now();
  store::TaskStore st(c, c_.tag, "harness", c_.prefix);
  const std::string base = queue::Keys(c_.tag, c_.prefix).base();
  nlohmann::json new_calls = nlohmann::json::array();
  bool need_calls = false;
  for (const auto& f : faults)
    if (auto* p = f.stage_kill()) need_calls = need_calls || p->stage == "after_grant" || p->stage == "after_effects";
  if (need_calls) {
    components::HttpClient world("127.0.0.1", c_.world_port, 2000ms);
    auto r = world.get("/calls?since=" + std::to_string(calls_seen));
    if (r.ok()) {
      auto calls = nlohmann::json::parse(r.body, nullptr, false);
      if (calls.is_array()) {
        calls_seen += calls.size();
        new_calls = std::move(calls);
      }
    }
  }
  for (std::size_t i = 0; i < faults.size(); ++i) {
    const auto& f = faults[i];
    const ProcessFault* p = f.stage_kill();
    if (!p || !f.window_holds(now)) continue;
    const std::string& stage = p->stage;
    {
      std::lock_guard lock(mu_);
      if (stage_fired_[i] >= f.count) continue;
    }
    std::vector<std::string> candidates;
    if (stage == "after_grant" || stage == "after_effects") {
      // the world's call log since the last look; the world holds its answer a moment, so the
      // caller is still waiting when we see the call
      const std::string api = stage == "after_grant" ? "grant" : "mail";
      for (const auto& call : new_calls)
        if (call.value("api", "") == api && call.value("status", 0) == 200 && call.value("effect", false))
          candidates.push_back(call.value("order", ""));
    } else if (stage == "handoff") {
      // paid, and no job recorded yet: the intake is between the store's paid and the
      // framework's enqueue (a network delay on intake_handoff widens that window)
      if (!c_.handoff) continue;
      auto r = c.command({"ZRANGE", base + "status:paid", "0", "-1"});
      if (!r) continue;
      for (const auto& e : r.reply.elements) {
        auto job = c.command({"HGET", base + "order:" + e.str, "job"});
        if (job && (job.reply.is_nil() || job.reply.str.empty())) candidates.push_back(e.str);
      }
    } else {
      auto r = c.command({"ZRANGE", base + "status:" + (stage == "download" ? "downloading" : "uploading"), "0", "-1"});
      if (!r) continue;
      for (const auto& e : r.reply.elements) candidates.push_back(e.str);
    }
    for (const auto& order : candidates) {
      if (stage_seen_[i].count(order)) continue;
      stage_seen_[i][order] = true;
      if (keyed_draw(c_.scenario->seed, "stage-kill", order, static_cast<int>(i)) >= f.probability) continue;
      std::string instance;
      if (stage == "after_grant") {
        instance = "finalize";
      } else if (stage == "handoff") {
        instance = "payment_intake";
      } else {
        auto o = st.get(order);
        if (!o || !o.value) continue;
        for (const auto& [name, id] : c_.worker_ids)
          if (stamped_by(o.value->worker, id)) instance = name;
        if (instance.empty() || (p->target != "worker" && p->target != instance)) continue;
      }
      kill(instance, fmt::format("at stage {} of {}", stage, order), c, p->process == "job");
      std::lock_guard lock(mu_);
      if (++stage_fired_[i] >= f.count) break;
    }
  }
}

// Each skew_clock target's offset follows its windows (clock_offsets); every instance the target
// names gets the new offset when it changes.
void Injector::clock_faults(double now, redis::Connection& c) {
  auto offsets = clock_offsets(c_.scenario->faults, now);
  if (offsets.empty()) return;
  Live live(*this, c);
  for (const auto& [target, offset] : offsets) {
    auto before = clock_now_.find(target);
    if ((before == clock_now_.end() && offset == 0) || (before != clock_now_.end() && before->second == offset)) continue;
    clock_now_[target] = offset;
    for (const auto& instance : live.instances(target)) live.skew_clock(instance, offset);
  }
}

// Each link's faults are the sum of the network faults holding on it now (link_states); the
// proxy is told when that changes, and every window's opening and closing is logged.
void Injector::network_faults(double now) {
  if (!c_.proxy) return;
  const auto& faults = c_.scenario->faults;
  for (auto& [link, state] : link_states(faults, now)) {
    auto& before = network_active_[link];
    if (before.empty()) before.assign(faults.size(), false);
    if (state.second == before) continue;
    const bool used = c_.proxy->has_link(link);  // e.g. intake_handoff: frameworks only
    for (std::size_t i = 0; i < faults.size(); ++i)
      if (state.second[i] != before[i])
        log(faults[i].kind, link,
            !used ? "n/a: nothing in " + c_.arch + " uses this link"
                  : state.second[i] ? "window opens" : "window closes",
            state.second[i] && used);
    if (used) {
      const LinkState& sim = state.first;  // simulated units; the proxy works in wall time
      LinkFaults lf;
      lf.latency = wall(sim.latency_s);
      lf.jitter = wall(sim.jitter_s);
      lf.bytes_per_s = sim.bytes_per_s * c_.speedup;  // simulated bytes per simulated second
      lf.blackhole = sim.blackhole;
      lf.reset_probability = sim.reset_probability;
      c_.proxy->set(link, lf);
    }
    before = state.second;
  }
}

// failover_redis, on its own thread: cut the replica off for the lag (its replication link runs
// through the proxy), kill the primary, wait for Sentinel to promote the replica, and bring the
// old primary back as the promoted one's replica.
// Each failover Sentinel makes takes a new epoch, which the primary it names keeps as its config
// epoch: beyond the failovers asked for, Sentinel failed over on its own (or tried, and then
// did). The run's figures are then not the scenario's: what the server it left behind wrote
// meanwhile is gone when it rejoins as a replica.
void Injector::count_unplanned_failovers() {
  if (sentinel_read_ || c_.endpoint.sentinels.empty()) return;
  sentinel_read_ = true;
  try {
    redis::Connection sentinel({"127.0.0.1", c_.endpoint.sentinels.at(0).second}, {100ms, 500ms, 10ms, 10ms});
    const auto epoch = sentinel_config_epoch(sentinel, c_.endpoint.master);
    if (!epoch) return log("failover_redis", "redis", "Sentinel did not say its config epoch: unasked failovers not counted", false);
    unplanned_failovers = static_cast<int>(std::max(0LL, *epoch - failovers_asked_));
    if (unplanned_failovers > 0)
      log("failover_redis", "redis",
          fmt::format("Sentinel failed over on its own: its config epoch is {} after {} failover(s) asked of it",
                      *epoch, failovers_asked_),
          false);
  } catch (const std::exception& e) {
    log("failover_redis", "redis", std::string("Sentinel not reached at the end: unasked failovers not counted: ") + e.what(), false);
  }
}

void Injector::failover(double lag_s, double down_after_s) {
  if (!c_.server || !c_.replica || !c_.server->running())
    return log("failover_redis", "redis", "n/a: no primary with a replica to fail over");
  auto stopped = [this] {
    if (stop_) log("failover_redis", "redis", "the run ended before the failover did", false);
    return stop_.load();
  };
  if (lag_s > 0) {
    // Sentinel would by now have pointed a replica it found replicating through the proxy
    // straight at the primary (after its failover-timeout): then there is nothing to cut.
    redis::Connection replica(c_.replica->endpoint(), {100ms, 500ms, 10ms, 10ms});
    auto info = replica.command({"INFO", "replication"});
    const bool through_proxy = c_.replication && info &&
                               info.reply.str.find("master_port:" + std::to_string(c_.replication_port) + "\r") != std::string::npos;
    if (!through_proxy) {
      log("failover_redis", "redis", "n/a: the replica does not replicate through the harness's proxy, so it cannot be cut off");
    } else {
      // The replication stream stops reaching the replica: the primary goes on acknowledging
      // writes only it has, as replication is asynchronous.
      LinkFaults cut;
      cut.blackhole = true;
      c_.replication->set("replication", cut);
      log("failover_redis", "redis", fmt::format("the replica cut off from the primary for {:g} s before it dies", lag_s));
      auto until = Steady::now() + wall(lag_s);
      while (!stop_ && Steady::now() < until) std::this_thread::sleep_for(1ms);
      c_.replication->reset_all("replication");  // what was held back for the replica is gone with it
      if (stopped()) return c_.replication->set("replication", {});
    }
  }
  c_.server->kill();
  log("failover_redis", "redis",
      fmt::format("the primary killed (SIGKILL); Sentinel fails over to the replica after its down-after, {:g} s",
                  down_after_s));
  // Sentinel's own down-after is set long (env: run.cpp), out of reach of a run: held to a
  // wall-time period of its own it would be a different outage at every speedup, and one short
  // enough for a sped-up run (500 ms) took a loaded host's slow answers for a dead primary and
  // failed over again. The scenario's down-after passes in simulated time; then Sentinel fails
  // over as when it holds a primary down (SENTINEL FAILOVER: it picks the replica, promotes it,
  // and names it to every client that asks).
  // The run's end cuts the wait short, not the failover: the lane's last readings need a primary,
  // and Sentinel left alone would not fail over for an hour. (A run torn down gives it 5 s.)
  const auto detected = Steady::now() + wall(down_after_s);
  while (!stop_ && Steady::now() < detected) std::this_thread::sleep_for(1ms);
  std::optional<Steady::time_point> stop_seen;
  auto given_up = [&] {
    if (!stop_) return false;
    if (!stop_seen) stop_seen = Steady::now();
    return Steady::now() - *stop_seen > 5s;
  };
  const int promoted = c_.replica->port();
  redis::Connection sentinel({"127.0.0.1", c_.endpoint.sentinels.at(0).second}, {100ms, 500ms, 10ms, 10ms});
  auto names_promoted = [&] {
    auto r = sentinel.command({"SENTINEL", "get-master-addr-by-name", c_.endpoint.master});
    return r && r.reply.elements.size() == 2 && r.reply.elements[1].str == std::to_string(promoted);
  };
  // Asked again only when refused (-NOGOODSLAVE until it has seen the replica lately): -INPROG, or
  // the replica named already, means that an ask whose answer was lost (a timeout) was taken.
  bool accepted = false;
  std::string refused;
  for (const auto until = Steady::now() + 30s; !accepted && Steady::now() < until && !given_up();) {
    auto r = sentinel.command({"SENTINEL", "FAILOVER", c_.endpoint.master});
    accepted = r || r.error.find("INPROG") != std::string::npos || names_promoted();
    if (!accepted) {
      refused = r.error;
      std::this_thread::sleep_for(20ms);
    }
  }
  if (!accepted) return log("failover_redis", "redis", "Sentinel did not take the ask to fail over: " + (refused.empty() ? std::string("the run ended") : refused));
  ++failovers_asked_;
  bool switched = false;
  for (const auto until = Steady::now() + 30s; !switched && Steady::now() < until && !given_up();)
    if (!(switched = names_promoted())) std::this_thread::sleep_for(20ms);
  if (!switched) return log("failover_redis", "redis", "Sentinel did not name the promoted replica in time");
  log("failover_redis", "redis", fmt::format("Sentinel names the promoted replica, 127.0.0.1:{}", promoted));
  if (stop_) return;  // (the old primary stays down: the run is over)
  // As an orchestrator would, the dead primary comes back as a replica of the promoted one, so
  // that the set has a replica again (and a WAIT for one can be met).
  try {
    const auto back = Steady::now();
    c_.rejoin_redis(promoted);
    redis::Connection primary({"127.0.0.1", promoted}, {100ms, 500ms, 10ms, 10ms});
    bool online = false;
    while (!stop_ && !online && Steady::now() < back + 30s) {
      auto r = primary.command({"INFO", "replication"});
      online = r && r.reply.str.find("state=online") != std::string::npos;  // WAIT counts it from then on
      if (!online) std::this_thread::sleep_for(10ms);
    }
    if (stopped()) return;
    log("failover_redis", "redis",
        fmt::format("the old primary back, as a replica of 127.0.0.1:{}: {} after {:.2f} s of wall time", promoted,
                    online ? "in sync" : "not in sync", std::chrono::duration<double>(Steady::now() - back).count()));
  } catch (const std::exception& e) {
    log("failover_redis", "redis", std::string("the old primary did not come back: ") + e.what());
  }
}

void Injector::faults_loop() {
  redis::Connection c(c_.endpoint);
  const auto& firings = c_.plan->firings;
  std::size_t next = 0, calls_seen = 0;
  const auto& faults = c_.scenario->faults;
  std::vector<bool> world = world_faults_active(faults, 0, stage_fired());
  bool has_stage = false;
  for (const auto& f : faults) has_stage = has_stage || f.stage_kill();
  while (!stop_) {
    try {
      const double now = sim_now();
      while (next < firings.size() && firings[next].t_s <= now) fire(firings[next++], c);
      for (auto it = resume_.begin(); it != resume_.end();) {
        if (Steady::now() >= it->first) {
          c_.supervisor->signal(it->second, SIGCONT);
          it = resume_.erase(it);
        } else {
          ++it;
        }
      }
      run_due(c, false);
      auto active = world_faults_active(faults, now, stage_fired());
      if (active != world) {
        for (std::size_t i = 0; i < active.size(); ++i)
          if (active[i] != world[i] && !faults[i].stage_kill())
            log(faults[i].kind, "world", active[i] ? "window opens" : "window closes", active[i]);
        c_.reconfigure_world(now, stage_fired());
        world = active;
      }
      if (has_stage) stage_faults(c, calls_seen);
      network_faults(now);
      clock_faults(now, c);
    } catch (const std::exception&) {
      // Redis restarting, a process gone: try again on the next tick
    }
    std::this_thread::sleep_for(2ms);
  }
}

void Injector::webhooks_loop() {
  components::HttpClient intake("127.0.0.1", c_.intake_port, 5000ms);
  for (const auto& w : c_.plan->webhooks) {
    auto at = c_.t0 + wall(w.at_s);
    while (!stop_ && Steady::now() < at) std::this_thread::sleep_for(std::min<Steady::duration>(at - Steady::now(), 20ms));
    if (stop_) break;
    std::string body = c_.payment_body(w.order), sent = body;
    auto ts = components::unix_now();
    std::string secret = c_.payment_secret;
    switch (w.kind) {
      case WebhookExtra::Kind::duplicate: break;
      case WebhookExtra::Kind::replay:  // the genuine request as captured `skew_s` ago
      case WebhookExtra::Kind::late: ts -= static_cast<std::int64_t>(w.skew_s); break;
      case WebhookExtra::Kind::forge_signature: secret = "whsec_guessed"; break;
      case WebhookExtra::Kind::forge_body: {
        auto j = nlohmann::json::parse(body);
        j["amount"] = 1;  // the signature below is the genuine body's
        sent = j.dump();
        break;
      }
    }
    auto r = intake.post("/webhooks/payment", sent,
                         {{std::string(security::kTimestampHeader), std::to_string(ts)},
                          {std::string(security::kSignatureHeader), security::sign(secret, ts, body)}});
    std::string word = "no_answer";
    if (r.answered()) {
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      word = j.is_object() ? j.value("result", "http_" + std::to_string(r.status)) : "http_" + std::to_string(r.status);
    }
    log(to_string(w.kind) + "_webhook", "payment_intake", c_.order_id(w.order) + ": answered " + word);
    std::lock_guard lock(mu_);
    webhooks[to_string(w.kind)][word]++;
    if (w.kind != WebhookExtra::Kind::duplicate && r.ok()) ++forged_accepted;
  }
  webhooks_done_ = true;
}

}  // namespace qsim::sim::detail
