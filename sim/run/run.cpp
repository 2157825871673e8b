#include "qsim/sim/run.h"

#include "qsim/sim/injector.h"
#include "qsim/sim/architecture.h"
#include "qsim/sim/checker.h"
#include "qsim/sim/stats.h"

#include "qsim/components/http_client.h"
#include "qsim/components/webhook.h"
#include "qsim/queue/keys.h"
#include "qsim/queue/queue.h"
#include "qsim/sim/fault_proxy.h"
#include "qsim/security/redis_acl.h"
#include "qsim/security/signature.h"
#include "qsim/sim/redis_server.h"
#include "qsim/sim/supervisor.h"
#include "qsim/sim/workload.h"
#include "qsim/store/task_store.h"

#include <boost/process/search_path.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

#ifndef QSIM_BIN_DIR
#define QSIM_BIN_DIR ""
#endif

namespace qsim::sim {

namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;
using store::OrderStatus;

constexpr long long kAmount = 499'000;
// The store's users that are not the architecture's: the harness, the shop that creates the
// orders, and a live dashboard reading along (sim run --dashboard)
const std::set<std::string> kHarnessComponents{"harness", "shop", "dashboard"};

using security::random_hex;

// The share of this machine's CPU time that the hypervisor gave to other guests ("steal" in
// /proc/stat) since construction: 0 on bare metal and where /proc/stat has no such field. On a
// shared VM it is what makes a timed run slow for reasons outside the run.
class StealMeter {
public:
  StealMeter() : start_(Steady::now()), steal0_(stolen_s()) {}
  double share() const {
    const double wall = std::chrono::duration<double>(Steady::now() - start_).count();
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (wall <= 0 || cpus <= 0) return 0;
    return std::max(0.0, stolen_s() - steal0_) / (wall * static_cast<double>(cpus));
  }

private:
  static double stolen_s() {  // summed over the CPUs
    std::ifstream in("/proc/stat");
    std::string cpu;
    long long field[8] = {};  // user nice system idle iowait irq softirq steal
    in >> cpu;
    for (auto& f : field) in >> f;
    if (!in || cpu != "cpu") return 0;
    return static_cast<double>(field[7]) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  Steady::time_point start_;
  double steal0_;
};

std::chrono::microseconds wall_of(double sim_s, double speedup) {
  return std::chrono::microseconds(static_cast<long long>(std::llround(sim_s / speedup * 1e6)));
}

void check_cancel(const RunOptions& o) {
  if (o.cancel && o.cancel->load()) throw Cancelled();
}

void sleep_until(Steady::time_point t, const RunOptions& o) {
  for (auto now = Steady::now(); now < t; now = Steady::now()) {
    check_cancel(o);
    std::this_thread::sleep_for(std::min<Steady::duration>(t - now, 20ms));
  }
}

std::string find_bin_dir(const RunOptions& o) {
  if (!o.bin_dir.empty()) return o.bin_dir;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(self.parent_path() / "qsim-queue-worker")) return self.parent_path().string();
  return QSIM_BIN_DIR;
}

std::string tail_of(const std::string& path, std::size_t max = 600) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  auto text = s.str();
  return text.size() > max ? "..." + text.substr(text.size() - max) : text;
}

std::map<std::string, long long> commandstats(redis::Connection& c) {
  std::map<std::string, long long> out;
  auto r = c.command({"INFO", "commandstats"});
  for (auto until = Steady::now() + 5s; !r && r.status != redis::Status::server_error && Steady::now() < until;) {
    std::this_thread::sleep_for(20ms);  // reconnecting, perhaps after a Redis restart
    r = c.command({"INFO", "commandstats"});
  }
  if (!r) throw InfraError("Redis: INFO commandstats: " + r.error);
  std::istringstream in(r.reply.str);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cmdstat_", 0) != 0) continue;
    auto colon = line.find(':'), calls = line.find("calls=");
    if (colon == std::string::npos || calls == std::string::npos) continue;
    out[line.substr(8, colon - 8)] = std::atoll(line.c_str() + calls + 6);
  }
  return out;
}

double server_ms(redis::Connection& c) {
  auto r = c.command({"TIME"});
  if (!r || r.reply.elements.size() != 2) throw InfraError("Redis: TIME: " + r.error);
  return static_cast<double>(*r.reply.elements[0].as_integer()) * 1e3 +
         static_cast<double>(*r.reply.elements[1].as_integer()) / 1e3;
}

template <class M>
M delta(const M& after, const M& before) {
  M out;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    auto d = v - (it == before.end() ? 0 : it->second);
    if (d != 0) out[k] = d;
  }
  return out;
}

long long sum_of(const std::map<std::string, long long>& m, const std::set<std::string>& skip = {}) {
  long long n = 0;
  for (const auto& [k, v] : m)
    if (!skip.count(k)) n += v;
  return n;
}

std::string payment_body(const std::string& order) {
  return nlohmann::json{{"order_id", order}, {"amount", kAmount}, {"txn_id", "txn-" + order}}.dump();
}

// The payment provider: signs each webhook and, like real providers, retries on anything but
// a 2xx (no answer, 5xx, and 4xx too: a provider cannot tell a bug from a transient refusal),
// with a short doubling backoff, up to 10 attempts.
class Provider {
public:
  Provider(int port, std::string secret) : client_("127.0.0.1", port, 5000ms), secret_(std::move(secret)) {}
  // attempts made, and whether the intake accepted the payment (2xx)
  std::pair<int, bool> pay(const std::string& order, const RunOptions& o) {
    auto backoff = 20ms;
    for (int attempt = 1;; ++attempt) {
      std::string body = payment_body(order);
      auto ts = components::unix_now();
      auto r = client_.post("/webhooks/payment", body,
                            {{std::string(security::kTimestampHeader), std::to_string(ts)},
                             {std::string(security::kSignatureHeader), security::sign(secret_, ts, body)}});
      if (r.ok()) return {attempt, true};
      last_refusal_ = r.answered() ? fmt::format("HTTP {} {}", r.status, r.body.substr(0, 300)) : "no answer: " + r.error;
      const std::string result = components::answer_result(r.body);
      refusals_[!r.answered() ? "no_answer" : !result.empty() ? result : "http_" + std::to_string(r.status)]++;
      if (attempt >= 10) return {attempt, false};
      sleep_until(Steady::now() + backoff, o);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1000ms);
    }
  }

  // what the intake said to the latest refused attempt
  const std::string& last_refusal() const { return last_refusal_; }
  // every refused attempt by the intake's "result" (no_answer, or http_<status> without one)
  const std::map<std::string, long long>& refusals() const { return refusals_; }

private:
  components::HttpClient client_;
  std::string secret_;
  std::string last_refusal_;
  std::map<std::string, long long> refusals_;
};

// Debian's libfaketime, multithreaded flavour (skew_clock preloads it); empty when not installed.
std::string libfaketime() {
  std::error_code ec;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime"})
    if (fs::exists(fs::path(dir) / "libfaketimeMT.so.1", ec)) return (fs::path(dir) / "libfaketimeMT.so.1").string();
  return {};
}

// A thread that outlives every fault: processes forked from it are tied to its life (their
// parent-death signal fires when the forking *thread* exits), so a Redis restarted by the
// injector must be started here, not on the injector's own thread.
class ForkThread {
public:
  ForkThread() : thread_([this] { loop(); }) {}
  ~ForkThread() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void run(std::function<void()> f) {
    std::packaged_task<void()> task(std::move(f));
    auto done = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_all();
    done.get();  // rethrows
  }

private:
  void loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return quit_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> tasks_;
  bool quit_ = false;
  std::thread thread_;
};

struct Env {
  ForkThread forks;  // declared before the servers: destroyed after them
  std::unique_ptr<RedisServer> server;
  // failover_redis: a replica of `server` and a Sentinel watching it; the components find the
  // primary through the Sentinel (the endpoint is redis+sentinel://).
  std::unique_ptr<RedisServer> replica, sentinel;
  std::unique_ptr<FaultProxy> replication;  // the replica's link to the primary, so that it can be cut
  int replication_port = 0;                 // that link's port on the proxy
  redis::Endpoint endpoint;
  // redis_acl: each component's Redis user (named after its role) and password; empty without
  std::map<std::string, std::string> component_passwords;
  std::string prefix = "qsim";
  std::string description;
  fs::path log_dir;
};

// failover_redis: beside the primary (env.server, started), a replica of it and a Sentinel
// watching both; returns once the replica is in sync and the Sentinel knows it, so that the
// Sentinel has a replica to promote when the primary dies.
void start_failover_set(Env& env, RedisServerOptions ro) {
  const int primary = env.server->port();
  env.replication = std::make_unique<FaultProxy>();
  ro.disk_bytes = 0;
  ro.replica_of = env.replication_port = env.replication->add_link("replication", primary);
  env.replica = std::make_unique<RedisServer>(ro);
  RedisServerOptions so;
  so.sentinel_of = primary;
  // Out of a run's reach (an hour): the failover_redis fault asks Sentinel to fail over after
  // its down_after, in simulated time (faults/injector.cpp).
  so.sentinel_down_after_ms = 3'600'000;
  env.sentinel = std::make_unique<RedisServer>(so);
  try {
    env.forks.run([&] { env.replica->start(); });
    env.forks.run([&] { env.sentinel->start(); });
  } catch (const std::exception& e) {
    throw InfraError(std::string("failover_redis: ") + e.what());
  }
  redis::Connection replica(env.replica->endpoint()), sentinel(env.sentinel->endpoint());
  const auto deadline = Steady::now() + 15s;
  bool synced = false, known = false;
  while (Steady::now() < deadline && !(synced && known)) {
    if (auto info = replica.command({"INFO", "replication"}); info)
      synced = synced || info.reply.str.find("master_link_status:up") != std::string::npos;
    auto r = sentinel.command({"SENTINEL", "REPLICAS", kSentinelMaster});
    known = r && !r.reply.elements.empty();
    if (!(synced && known)) std::this_thread::sleep_for(20ms);
  }
  if (!synced || !known)
    throw InfraError(fmt::format("failover_redis: the replica on 127.0.0.1:{} {} within 15 s", env.replica->port(),
                                 !synced ? "did not sync with the primary" : "was not seen by the Sentinel"));
  env.endpoint = redis::Endpoint{};
  env.endpoint.sentinels = {{"127.0.0.1", env.sentinel->port()}};
  env.endpoint.master = kSentinelMaster;
  env.description = fmt::format("private redis-server primary on 127.0.0.1:{}, replica on 127.0.0.1:{}, Sentinel on "
                                "127.0.0.1:{} ({})",
                                primary, env.replica->port(), env.sentinel->port(), env.endpoint.to_string());
}

// The Redis user a component connects as under redis_acl, by its executable.
security::RedisRole redis_role_of(const std::string& exe) {
  if (exe == "qsim-payment-intake") return security::RedisRole::payment_intake;
  if (exe == "qsim-queue-worker") return security::RedisRole::queue_worker;
  if (exe == "qsim-polling-worker") return security::RedisRole::polling_worker;
  if (exe == "qsim-finalize") return security::RedisRole::finalize;
  throw InfraError("redis_acl: no Redis user is defined for " + exe);
}

bool loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

bool terminal(OrderStatus s) {
  return s == OrderStatus::completed || s == OrderStatus::failed || s == OrderStatus::dead;
}

// One architecture's run, phase by phase; what differs between architectures is the
// Architecture's to say. It is the ArchEnv the architecture starts its processes through.
class ArchRun final : public ArchEnv {
public:
  ArchRun(const Scenario& s, const Plan& plan, const FaultPlan& faults, const RunOptions& o, Env& env, std::string arch,
          std::string bin)
      : s_(s), plan_(plan), faults_(faults), o_(o), env_(env), arch_(std::move(arch)), bin_(std::move(bin)),
        tag_("orders-" + arch_), conn_(env.endpoint), store_(conn_, tag_, "harness", env.prefix),
        shop_store_(conn_, tag_, "shop", env.prefix), queue_(conn_, tag_, queue::QueueConfig{env.prefix}),
        payment_secret_(random_hex(24)), finalize_secret_(random_hex(24)) {
    s_.speedup = s.speedup_of(arch_);  // from here on, this architecture's speedup
    arch_impl_ = make_architecture(arch_, s_);
  }

  // ArchEnv
  const Scenario& scenario() const override { return s_; }
  int start(ProcessSpec p) override {
    const std::string name = p.name;
    const int h = supervise(std::move(p));
    std::this_thread::sleep_for(50ms);
    if (sup_.pid(h) == 0) throw InfraError(name + " exited at start; its log: " + tail_of(log_path(name)));
    return h;
  }
  void stop(int handle) override { sup_.stop(handle); }
  int world_port() const override { return world_port_; }
  int finalize_port() const override { return finalize_port_; }
  long stage_timeout_ms() const override { return stage_timeout_ms_; }
  void note(std::string text) override { notes_.push_back(std::move(text)); }
  queue::Queue& queue() override { return queue_; }

  ArchResult run() {
    try {
      return run_phases();
    } catch (const InfraError&) {
      fail_if_denied();  // the cause, when a component lacked a Redis right, over its symptom
      throw;
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception&) {
      fail_if_denied();
      throw;
    }
  }

  // A component that exited because Redis denied its user a right (exit 77) is a deployment
  // error: the run stops as an infrastructure failure naming it, whatever else it saw.
  void fail_if_denied() {
    for (const auto& e : sup_.events())
      if (e.kind == ProcessEvent::Kind::exited && e.exit_code == redis::kDeniedExitCode)
        throw InfraError(fmt::format("{} exited: Redis denied its user a right it needs (exit {}); its log: {}", e.name,
                                     e.exit_code, tail_of(log_path(e.name))));
  }

private:
  ArchResult run_phases() {
    const StealMeter steal;
    ArchResult r;
    r.name = arch_;
    r.workers = arch_impl_->workers();
    r.speedup = s_.speedup;
    r.resolution_s = s_.speedup / 1000.0;
    progress("starting", 0, 0, 0);
    start_services(r);
    if (o_.on_services_up) o_.on_services_up(arch_, env_.endpoint, env_.prefix, tag_, arch_impl_->on_queue_engine());
    if (o_.probe) probe(r);
    arch_impl_->enter(*this, Phase::workload, s_.speedup);
    workload(r);
    idle_window(r);
    progress("collecting", r.makespan_s, r.makespan_s, static_cast<long long>(plan_.arrivals_s.size()));
    // The history is read from a system at rest: every component but the world stops first, so
    // that the world's call log and the store describe the same moment (a run cut off with work
    // in flight would otherwise show orders completed after the log was read, without effects).
    sup_.stop_all_except({world_h_});
    collect(r);
    arch_impl_->stop(*this);
    sup_.stop_all();
    for (auto& n : notes_) r.notes.push_back(std::move(n));
    notes_.clear();
    r.host_steal_share = steal.share();
    return r;
  }

private:
  void progress(const char* phase, double sim_s, double expected_s, long long done) {
    if (o_.on_progress)
      o_.on_progress({arch_, phase, sim_s, expected_s, done, static_cast<long long>(plan_.arrivals_s.size())});
  }

  // Adds the process to the supervisor, its stderr in the log folder.
  int supervise(ProcessSpec p) {
    const std::string name = p.name;
    p.stderr_path = log_path(name);
    try {
      return sup_.add(std::move(p));
    } catch (const std::exception& e) {
      throw InfraError(fmt::format("{} would not start: {}", name, e.what()));
    }
  }

  std::string log_path(const std::string& name) const { return (env_.log_dir / (arch_ + "-" + name + ".log")).string(); }

  // Starts a process that serves HTTP on `port` and waits until its /health answers.
  int start_http(ProcessSpec spec, int port) override {
    const std::string name = spec.name;
    const int h = supervise(std::move(spec));
    wait_healthy(name, port, 10);
    // Our components' health answers carry their pid: a port answered by another process (one
    // that took the port between its choice and our component's bind) is an error, never a
    // silent detour of this run's calls to someone else's server.
    components::HttpClient client("127.0.0.1", port, 1000ms);
    auto r = client.get("/health");
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("pid") && j["pid"].is_number_integer() && j["pid"].get<int>() != sup_.pid(h))
      throw InfraError(fmt::format("{}: port {} is answered by another process (pid {}), not by {} (pid {}); its log: {}",
                                   name, port, j["pid"].get<int>(), name, sup_.pid(h), tail_of(log_path(name))));
    return h;
  }

  void wait_healthy(const std::string& name, int port, double timeout_s) override {
    components::HttpClient client("127.0.0.1", port, 200ms);
    auto deadline = Steady::now() + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(timeout_s));
    while (Steady::now() < deadline) {
      check_cancel(o_);
      if (client.get("/health").status == 200) return;
      std::this_thread::sleep_for(10ms);
    }
    throw InfraError(fmt::format("{} did not answer on port {} within {:g} s; its log: {}", name, port, timeout_s,
                                 tail_of(log_path(name))));
  }

  ProcessSpec program(const std::string& name, std::vector<std::string> command, std::map<std::string, std::string> env,
                      double restart_delay_s) override {
    if (command.empty()) throw ScenarioError(s_.file, "$.architectures." + arch_, name + ": an empty command");
    ProcessSpec p;
    p.name = name;
    p.exe = command.front();
    if (p.exe.find('/') == std::string::npos) {
      auto found = boost::process::search_path(p.exe);
      if (found.empty()) throw InfraError(fmt::format("{}: '{}' is not in PATH", name, p.exe));
      p.exe = found.string();
    }
    if (!fs::exists(p.exe)) throw InfraError(fmt::format("{}: no executable {}", name, p.exe));
    p.args.assign(command.begin() + 1, command.end());
    p.env = std::move(env);
    p.restart_delay = std::max<std::chrono::milliseconds>(
        1ms, std::chrono::duration_cast<std::chrono::milliseconds>(wall_of(restart_delay_s, s_.speedup)));
    return p;
  }

  std::map<std::string, std::string> framework_env(const std::string& redis_link) override {
    redis::Endpoint redis = env_.endpoint;
    if (proxy_ && redis.sentinels.empty()) redis.port = via(redis_link, env_.endpoint.port);
    if (!redis.unix_socket.empty()) throw ScenarioError("--redis", "$", "the frameworks under test need a TCP Redis URL");
    return {{"QSIM_REDIS_URL", redis.to_string()},
            {"QSIM_QUEUE", env_.prefix + "-" + tag_},  // the run's own: leftovers of another run are not read
            {"QSIM_STORE_BASE", std::string(store_.base())},
            {"QSIM_STORE_TRANSITION", store::TaskStore::transition_script_text()},
            {"QSIM_WORLD_URL", fmt::format("http://127.0.0.1:{}", via("worker_world", world_port_))},
            {"QSIM_FINALIZE_URL", fmt::format("http://127.0.0.1:{}", via("worker_finalize", finalize_port_))},
            {"QSIM_FINALIZE_SECRET", finalize_secret_},
            {"QSIM_STAGE_TIMEOUT_S", fmt::format("{:.3f}", stage_timeout_ms_ / 1e3)}};
  }

  // The port a caller uses to reach `upstream` over `link`: the fault proxy's when the scenario
  // has network faults, else the upstream's own.
  int via(const std::string& link, int upstream) override {
    if (!proxy_) return upstream;
    auto it = link_ports_.find(link);
    if (it == link_ports_.end()) it = link_ports_.emplace(link, proxy_->add_link(link, upstream)).first;
    return it->second;
  }

  ProcessSpec component(const std::string& name, const std::string& exe, std::vector<std::string> args,
                        const std::string& redis_link) override {
    ProcessSpec p;
    p.name = name;
    p.exe = (fs::path(bin_) / exe).string();
    if (!fs::exists(p.exe)) throw InfraError("no executable " + p.exe + " (build the project, or set RunOptions::bin_dir)");
    redis::Endpoint redis = env_.endpoint;
    if (proxy_) redis.port = via(redis_link, env_.endpoint.port);
    if (!env_.component_passwords.empty()) {
      redis.user = std::string(security::to_string(redis_role_of(exe)));
      redis.password = env_.component_passwords.at(redis.user);
    }
    std::vector<std::string> common{"--redis", redis.to_string(), "--queue", tag_, "--prefix", env_.prefix};
    args.insert(args.begin(), common.begin(), common.end());
    p.args = std::move(args);
    p.env = {{"QSIM_PAYMENT_SECRET", payment_secret_}, {"QSIM_FINALIZE_SECRET", finalize_secret_}};
    if (!redis.user.empty()) p.env["QSIM_REDIS_SECRET"] = redis.password;  // the URL names the user only
    if (clock_skewed(s_.faults, name)) {
      // skew_clock: its wall clock goes through libfaketime, which reads the offset from a file
      // on every call (the injector rewrites it as windows open and close); steady time is left
      // alone, so its timeouts and sleeps stay true.
      const std::string lib = libfaketime();
      if (lib.empty())
        throw InfraError("skew_clock needs libfaketime (the Debian package faketime; scripts/sim installs it)");
      const std::string file = (env_.log_dir / (arch_ + "-" + name + ".faketime")).string();
      std::ofstream(file) << "+0\n";
      const char* asan = std::getenv("ASAN_OPTIONS");
      p.env.insert({{"LD_PRELOAD", lib},
                    {"FAKETIME_TIMESTAMP_FILE", file},
                    {"FAKETIME_NO_CACHE", "1"},
                    {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
                    // a sanitized build: libfaketime is preloaded ahead of the ASan runtime
                    {"ASAN_OPTIONS", std::string(asan ? asan : "") + (asan && *asan ? ":" : "") + "verify_asan_link_order=0"}});
      clock_files_[name] = file;
    }
    p.restart_delay = std::max<std::chrono::milliseconds>(
        1ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                 wall_of(s_.queue ? s_.queue->restart_delay_s : 10, s_.speedup)));
    return p;
  }

  double longest_stage_wall_ms() const {
    double m = 0;
    for (std::size_t i = 0; i < plan_.download_s.size(); ++i)
      m = std::max({m, plan_.download_s[i], plan_.upload_s[i]});
    return m / s_.speedup * 1e3;
  }

  void start_services(ArchResult& r) {
    for (const auto& f : s_.faults)
      if (!link_of(f).empty() && !proxy_) {
        if (!env_.endpoint.unix_socket.empty()) throw ScenarioError("--redis", "$", "network faults need a TCP Redis URL");
        proxy_ = std::make_unique<FaultProxy>(s_.seed);
        r.notes.push_back("network faults: every link between processes runs through the harness's TCP fault proxy");
      }
    world_port_ = free_loopback_port();
    ProcessSpec world;
    world.name = "world";
    world.exe = (fs::path(bin_) / "qsim-world").string();
    world.args = {"--port", std::to_string(world_port_)};
    world.stderr_path = log_path("world");
    world_h_ = start_http(world, world_port_);
    configure_world(true);

    finalize_port_ = free_loopback_port();
    finalize_h_ = start_http(component("finalize", "qsim-finalize",
                                  {"--port", std::to_string(finalize_port_), "--world-port",
                                   std::to_string(via("finalize_world", world_port_))},
                                  "finalize_redis"),
                             finalize_port_);
    intake_port_ = free_loopback_port();
    std::vector<std::string> intake_args{"--port", std::to_string(intake_port_)};
    for (auto& a : arch_impl_->intake_args(*this)) intake_args.push_back(std::move(a));
    if (s_.intake_wait_replicas > 0) {
      intake_args.insert(intake_args.end(), {"--wait-replicas", std::to_string(s_.intake_wait_replicas)});
      r.notes.push_back(fmt::format("the payment intake acknowledges a payment only once {} replica(s) have it (WAIT, "
                                    "200 ms); unconfirmed, it answers 503 and the provider delivers again",
                                    s_.intake_wait_replicas));
    }
    intake_h_ = start_http(component("payment_intake", "qsim-payment-intake", intake_args, "intake_redis"), intake_port_);
    provider_port_ = via("provider_intake", intake_port_);

    // A call to the world or to finalize that hangs (a network fault) must fail within a time
    // that scales with the job, as 30 s would for an hour-long download: four times the longest
    // planned stage, slowed as much as the scenario slows the world, and at least 2 s.
    const double slow = max_latency_factor(s_.faults);
    stage_timeout_ms_ = static_cast<long>(std::max(2'000.0, 4 * slow * longest_stage_wall_ms()));
    arch_impl_->start(*this);
  }

  // probe: no latency, no failures; workload: the planned latencies and the scenario's failures,
  // with the fault windows open at simulated time `sim_t`
  void configure_world(bool probe, double sim_t = 0) {
    nlohmann::json c{{"seed", s_.seed}};
    for (const char* api : {"download", "upload", "grant", "mail"}) c[api] = nlohmann::json::object();
    if (!probe) {
      auto& d = c["download"]["per_order_us"] = nlohmann::json::object();
      auto& u = c["upload"]["per_order_us"] = nlohmann::json::object();
      for (std::size_t i = 0; i < plan_.arrivals_s.size(); ++i) {
        d[order_id(i)] = wall_of(plan_.download_s[i], s_.speedup).count();
        u[order_id(i)] = wall_of(plan_.upload_s[i], s_.speedup).count();
      }
      c["download"]["fail_probability"] = s_.fail_download;
      c["upload"]["fail_probability"] = s_.fail_upload;
      c["grant"]["fail_probability"] = s_.fail_grant;
      c["mail"]["fail_probability"] = s_.fail_mail;
      const WorldState w = world_state(s_.faults, world_faults_active(s_.faults, sim_t, stage_fired_));
      for (const auto& [api, a] : w.apis) {
        if (a.hold) c[api]["hold_us"] = 50'000;  // long enough for the injector to see the call
        if (a.fail_probability) {
          c[api]["fail_probability"] = *a.fail_probability;
          c[api]["fail_kind"] = a.transient ? "transient" : "permanent";
        }
      }
      c["latency_factor"] = w.latency_factor;
    }
    components::HttpClient admin("127.0.0.1", world_port_, 10'000ms);
    auto r = admin.post("/config", c.dump());
    if (!r.ok()) throw InfraError("world: /config answered " + std::to_string(r.status) + " " + r.body + r.error);
  }

  // A store or queue call that must succeed. A transport error is retried for a few seconds:
  // the connection rebuilds itself, and Redis may be coming back from a restart (a fault).
  template <class F>
  auto must(const char* what, F call) {
    for (auto until = Steady::now() + 5s;;) {
      auto e = call();
      const bool transport = e.status == redis::Status::timeout || e.status == redis::Status::connection_lost ||
                             e.status == redis::Status::protocol_error;
      if (e) return std::move(e.value);
      if (!transport || Steady::now() >= until) throw InfraError(fmt::format("Redis: {}: {}", what, e.error));
      check_cancel(o_);
      std::this_thread::sleep_for(20ms);
    }
  }

  // One reading of the load (about every 100 ms of wall time during the workload): Redis's
  // commands so far less the harness's own, and the store queries so far by the architecture's
  // components. No reading while Redis cannot answer (a restart).
  void sample_load() {
    auto info = conn_.command({"INFO", "stats"});
    if (!info) return;
    const long long harness = harness_commands_++;
    const std::string key = "\ntotal_commands_processed:";
    const auto at = info.reply.str.find(key);
    if (at == std::string::npos) return;
    const long long total = std::atoll(info.reply.str.c_str() + at + key.size());
    auto queries = store_.query_counts();
    if (!queries) return;
    ++harness_commands_;
    const double t = std::chrono::duration<double>(Steady::now() - t0_).count() * s_.speedup;
    load_samples_.push_back({t, total - harness, sum_of(queries.value, kHarnessComponents)});
  }

  long long finished_count() {
    long long n = 0;
    for (auto st : {OrderStatus::completed, OrderStatus::failed, OrderStatus::dead})
      n += must("count orders", [&] { return store_.count(st); });
    harness_commands_ += 3;
    return n;
  }

  void create_order(const std::string& id) {
    (void)must("create order", [&] { return shop_store_.create({id, id + "@example.com", "https://courses.example/" + id, kAmount}); });
  }

  void probe(ArchResult& r) {
    const ProbePlan plan = arch_impl_->probe_plan(o_.probe_orders);
    const double probe_speedup = plan.speedup;
    r.probe_speedup = probe_speedup;
    r.probe_resolution_s = probe_speedup / 1000.0;
    r.probe_method = plan.method;
    arch_impl_->enter(*this, Phase::probe, probe_speedup);
    progress("probe", 0, 0, 0);
    Provider provider(provider_port_, payment_secret_);
    Stream rng(s_.seed, "probe-" + arch_);
    const double gap_max_s = plan.gap_max_s;
    std::vector<double> pickups;
    for (int i = 0; i < o_.probe_orders; ++i) {
      auto id = fmt::format("probe-{:03d}", i);
      create_order(id);
      sleep_until(Steady::now() + std::chrono::microseconds(static_cast<long long>(rng.uniform() * gap_max_s * 1e6)), o_);
      if (auto [attempts, ok] = provider.pay(id, o_); !ok)
        throw InfraError(fmt::format("probe: the payment intake did not accept {} in {} attempts; the last: {}; its log: {}",
                                     id, attempts, provider.last_refusal(), tail_of(log_path("payment_intake"))));
      fail_if_denied();
      auto deadline = Steady::now() + 10s;
      std::optional<store::Order> order;
      while (Steady::now() < deadline) {
        check_cancel(o_);
        order = must("get order", [&] { return store_.get(id); });
        if (order && terminal(order->status)) break;
        std::this_thread::sleep_for(1ms);
      }
      if (!order || !order->entered_ms.count("processing"))
        throw InfraError("probe: " + id + " was not picked up within 10 s of wall time");
      pickups.push_back(static_cast<double>(order->entered_ms.at("processing") - order->entered_ms.at("paid")) / 1e3 *
                        probe_speedup);
    }
    r.probe_pickup_s = percentiles(pickups);
  }

  void workload(ArchResult& r) {
    const std::size_t n = plan_.arrivals_s.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 1000 == 0) check_cancel(o_);
      create_order(order_id(i));
    }
    configure_world(false);
    auto queries0 = must("store query counts", [&] { return store_.query_counts(); });
    auto counters0 = must("queue counters", [&] { return queue_.counters(); });
    auto cmd0 = commandstats(conn_);
    long long oom0 = redis_info_number(conn_, "errorstats", "errorstat_OOM"),
              misconf0 = redis_info_number(conn_, "errorstats", "errorstat_MISCONF"),
              evicted0 = redis_info_number(conn_, "stats", "evicted_keys");
    double sum_work = 0, max_work = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum_work += plan_.download_s[i] + plan_.upload_s[i];
      max_work = std::max(max_work, plan_.download_s[i] + plan_.upload_s[i]);
    }
    const double expected_s = plan_.arrivals_s.back() + sum_work / r.workers + max_work;
    const auto deadline_wall = wall_of(expected_s * 1.5, s_.speedup) + 15s;

    // t0: the workload's simulated zero, on both the harness's clock and Redis's.
    auto before = Steady::now();
    double server_now = server_ms(conn_);
    auto after = Steady::now();
    t0_ = after + 100ms;
    t0_server_ms_ = server_now + std::chrono::duration<double, std::milli>(t0_ - (before + (after - before) / 2)).count();

    attempts_ = std::vector<std::atomic<int>>(n);  // written by the senders, read by the monitor
    accepted_ = std::vector<std::atomic<bool>>(n);
    std::atomic<std::size_t> delivered{0}, refused{0};
    std::atomic<std::size_t> next{0};
    std::atomic<bool> abort{false};
    std::exception_ptr failure;
    std::mutex failure_mu;
    std::vector<std::thread> senders;
    for (std::size_t t = 0; t < std::min<std::size_t>(32, n); ++t)
      senders.emplace_back([&] {
        try {
          Provider provider(provider_port_, payment_secret_);
          for (std::size_t i = next++; i < n && !abort; i = next++) {
            sleep_until(t0_ + wall_of(plan_.arrivals_s[i], s_.speedup), o_);
            auto [attempts, ok] = provider.pay(order_id(i), o_);
            accepted_[i] = ok;
            attempts_[i] = attempts;
            (ok ? delivered : refused)++;
          }
          std::lock_guard lock(failure_mu);
          for (const auto& [why, count] : provider.refusals()) r.payment_refusals[why] += count;
        } catch (...) {
          std::lock_guard lock(failure_mu);
          if (!failure) failure = std::current_exception();
          abort = true;
        }
      });
    auto join = [&] {
      abort = abort || (o_.cancel && o_.cancel->load());
      for (auto& t : senders)
        if (t.joinable()) t.join();
    };
    detail::Injector injector(injector_context());
    injector.start();
    try {
      // Orders finished before the workload (the probe's) are not the workload's; a Redis
      // restart without persistence may forget them, and the count starts from zero again.
      long long before_workload = finished_count();
      // Orders the system forgot (a Redis restart without persistence) or left stuck (a killed
      // poller) never finish: stop when nothing has moved for a while once every payment was sent.
      const auto stall = std::max<Steady::duration>(
          {5s, wall_of(3 * max_work, s_.speedup) + 2s,
           std::chrono::milliseconds(stage_timeout_ms_ + static_cast<long>(arch_impl_->recovery_wall_ms())) + 1s});
      long long last_done = -1;
      sleep_until(t0_ - 1ms, o_);  // the load's first reading just before the first payment
      sample_load();
      auto last_change = Steady::now();
      while (true) {
        check_cancel(o_);
        fail_if_denied();
        {
          std::lock_guard lock(failure_mu);
          if (failure) break;
        }
        long long done = last_done;
        try {
          const long long finished = finished_count();
          if (finished < before_workload) before_workload = 0;  // wiped
          done = finished - before_workload;
        } catch (const InfraError&) {
          // Redis is restarting (a fault): look again on the next tick
        }
        if (done != last_done) last_change = Steady::now(), last_done = done;
        double sim_now = std::chrono::duration<double>(Steady::now() - t0_).count() * s_.speedup;
        progress("workload", std::max(0.0, sim_now), expected_s, std::max(0LL, done));
        sample_load();
        const bool sent = delivered + refused >= n &&
                          injector.webhooks_done() && sim_now > last_firing_s();
        if (done >= static_cast<long long>(n) && sent) break;
        if (Steady::now() > t0_ + deadline_wall) {
          r.notes.push_back(fmt::format("the workload ended at its deadline with {} of {} orders finished: 1.5 times "
                                        "the {:.1f} simulated hours it should take, plus 15 s of wall time",
                                        done, n, expected_s / 3600));
          break;
        }
        if (sent && done + static_cast<long long>(refused.load()) >= static_cast<long long>(n))
          break;  // every payment the provider could deliver has settled
        if (sent && Steady::now() - last_change > stall) {
          r.notes.push_back(fmt::format("the workload ended with {} of {} orders finished: nothing moved for {:.1f} s "
                                        "of wall time",
                                        done, n, std::chrono::duration<double>(stall).count()));
          break;
        }
        std::this_thread::sleep_for(100ms);
      }
    } catch (...) {
      abort = true;
      injector.stop();
      join();
      throw;
    }
    abort = true;
    injector.stop();
    join();
    if (failure) std::rethrow_exception(failure);
    sample_load();
    long long exits = 0;
    for (const auto& e : sup_.events())
      if (e.kind == ProcessEvent::Kind::exited && e.at >= t0_) ++exits;
    r.checker.crashes = std::max(0LL, exits - (injector.counts.count("kill_process") ? injector.counts.at("kill_process") : 0));
    if (proxy_)
      for (const auto& [link, c] : proxy_->counters())
        r.network[link] = {{"connections", c.connections}, {"resets", c.resets}, {"bytes", c.bytes},
                           {"delayed_chunks", c.delayed_chunks}};
    r.faults = injector.events;
    r.fault_counts = injector.counts;
    r.kills = injector.kills;
    r.webhooks = injector.webhooks;
    r.forged_accepted = injector.forged_accepted;
    poison_enqueued_ = injector.poison_enqueued;
    r.wall_s = std::chrono::duration<double>(Steady::now() - t0_).count();

    if (injector.counts.count("failover_redis")) {
      // The readings before are the dead primary's: the promoted server's counts stand alone.
      cmd0.clear();
      oom0 = misconf0 = evicted0 = 0;
    }
    auto cmd1 = commandstats(conn_);
    harness_commands_ += 1;  // the INFO above
    r.redis_commands_by_name = delta(cmd1, cmd0);
    r.redis_commands = std::max(0LL, sum_of(r.redis_commands_by_name) - harness_commands_);
    r.redis_oom_errors = std::max(0LL, redis_info_number(conn_, "errorstats", "errorstat_OOM") - oom0);
    r.redis_misconf_errors = std::max(0LL, redis_info_number(conn_, "errorstats", "errorstat_MISCONF") - misconf0);
    r.redis_evicted_keys = std::max(0LL, redis_info_number(conn_, "stats", "evicted_keys") - evicted0);
    harness_commands_ += 3;
    if (!r.payment_refusals.empty()) {
      std::vector<std::string> parts;
      long long total = 0;
      for (const auto& [why, count] : r.payment_refusals) parts.push_back(fmt::format("{} {}", why, count)), total += count;
      r.notes.push_back(fmt::format("the payment intake refused {} deliveries of payment webhooks ({}); the provider "
                                    "delivered each again, up to 10 times",
                                    total, fmt::join(parts, ", ")));
    }
    if (r.redis_misconf_errors)
      r.notes.push_back(fmt::format("Redis's disk was full: it refused {} writes (MISCONF) while it could not write its AOF",
                                    r.redis_misconf_errors));
    if (r.redis_oom_errors || r.redis_evicted_keys)
      r.notes.push_back(fmt::format("Redis's memory was full: it refused {} commands for want of memory (OOM) and evicted "
                                    "{} keys",
                                    r.redis_oom_errors, r.redis_evicted_keys));
    if (r.fault_counts.count("restart_redis"))
      r.notes.push_back("Redis restarted during the workload: INFO commandstats starts again from zero with the "
                        "server, so the Redis command counts cover only the time since the last restart");
    if (r.fault_counts.count("failover_redis"))
      r.notes.push_back("Redis failed over during the workload: its replica, promoted, has only what had reached it, and "
                        "payments acknowledged (2xx) that never did are counted lost (or orphaned_effects, when the "
                        "order was also served); the Redis command and error counts are the promoted server's own, "
                        "since it started (as a replica), and what the dead primary counted is not in them");
    if (injector.unplanned_failovers)
      r.notes.push_back(fmt::format(
          "Sentinel failed over {} more time(s) than the scenario asked: the server it left behind took writes until it "
          "was made a replica, and lost them then; this run's figures are not the scenario's",
          injector.unplanned_failovers));
    r.harness_commands = harness_commands_;
    auto queries1 = must("store query counts", [&] { return store_.query_counts(); });
    r.store_queries_by_component = delta(queries1, queries0);
    for (auto& h : kHarnessComponents) r.store_queries_by_component.erase(h);
    r.store_queries = sum_of(r.store_queries_by_component);
    auto counters1 = must("queue counters", [&] { return queue_.counters(); });
    if ((r.fault_counts.count("restart_redis") || r.fault_counts.count("failover_redis")) &&
        counters1.enqueued < counters0.enqueued) {
      counters0 = {};  // the restart wiped the counters: count from zero
      r.notes.push_back("Redis came back without its data: the queue's counters and the Redis command counts cover "
                        "only the time after the restart");
    }
    r.retries = std::max(0LL, counters1.retried - counters0.retried);
    r.dead_letters = std::max(0LL, counters1.dead - counters0.dead);
    r.recoveries = std::max(0LL, counters1.redelivered - counters0.redelivered);
    enqueued_ = std::max(0LL, counters1.enqueued - counters0.enqueued);
  }

  double last_firing_s() const { return faults_.firings.empty() ? 0 : faults_.firings.back().t_s; }

  detail::InjectorContext injector_context() {
    detail::InjectorContext c;
    c.scenario = &s_;
    c.plan = &faults_;
    c.arch = arch_;
    c.leases = arch_impl_->on_queue_engine();
    c.handoff = arch_impl_->hands_off();
    c.supervisor = &sup_;
    c.server = env_.server.get();
    c.replica = env_.replica.get();
    c.replication = env_.replication.get();
    c.replication_port = env_.replication_port;
    c.rejoin_redis = [this](int primary) {
      env_.forks.run([this, primary] {
        env_.server->set_replica_of(primary);
        env_.server->start();
      });
    };
    c.restart_redis = [this] { env_.forks.run([this] { env_.server->start(); }); };
    c.endpoint = env_.endpoint;
    c.prefix = env_.prefix;
    c.tag = tag_;
    c.processes = arch_impl_->targets();
    c.processes["payment_intake"] = intake_h_;
    c.processes["finalize"] = finalize_h_;
    c.worker_ids = arch_impl_->worker_ids();
    c.world_port = world_port_;
    c.intake_port = provider_port_;
    c.proxy = proxy_.get();
    c.clock_files = clock_files_;
    c.payment_secret = payment_secret_;
    c.t0 = t0_;
    c.speedup = s_.speedup;
    c.reconfigure_world = [this](double sim_t, const std::vector<int>& fired) {
      stage_fired_ = fired;
      configure_world(false, sim_t);
    };
    c.order_id = [](std::size_t i) { return order_id(i); };
    c.payment_body = [](std::size_t i) { return payment_body(order_id(i)); };
    if (o_.on_fault) c.on_fault = [this](const FaultEvent& e) { o_.on_fault(arch_, e); };
    return c;
  }

  // Nothing arrives: what do the components ask of the store and of Redis meanwhile?
  void idle_window(ArchResult& r) {
    const double idle_speedup = arch_impl_->idle_speedup(s_.speedup);
    const bool restarted = idle_speedup != s_.speedup;
    arch_impl_->enter(*this, Phase::idle, idle_speedup);
    const auto window = std::chrono::duration<double>(arch_impl_->idle_window_wall_s());
    progress("idle", r.wall_s * s_.speedup, r.wall_s * s_.speedup, static_cast<long long>(plan_.arrivals_s.size()));
    auto q0 = must("store query counts", [&] { return store_.query_counts(); });
    auto c0 = commandstats(conn_);
    auto start = Steady::now();
    sleep_until(start + std::chrono::duration_cast<Steady::duration>(window), o_);
    auto q1 = must("store query counts", [&] { return store_.query_counts(); });
    auto c1 = commandstats(conn_);
    double wall = std::chrono::duration<double>(Steady::now() - start).count();
    r.idle_window_s = wall * idle_speedup;
    double days = r.idle_window_s / 86'400.0;
    auto dq = delta(q1, q0);
    r.store_queries_per_idle_day = static_cast<double>(sum_of(dq, kHarnessComponents)) / days;
    // our own: one query_counts and one INFO inside the window
    r.redis_commands_per_idle_day = static_cast<double>(std::max(0LL, sum_of(delta(c1, c0)) - 2)) / days;
    r.notes.push_back(fmt::format("idle figures: {:.2f} s of wall time at speedup {:g} ({:.0f} simulated s) with nothing "
                                  "arriving, scaled to a simulated day{}",
                                  wall, idle_speedup, r.idle_window_s,
                                  restarted ? " (" + arch_impl_->idle_speedup_reason(idle_speedup) + ")"
                                            : ""));
  }

  double sim_of_ms(std::int64_t ms) const override { return (static_cast<double>(ms) - t0_server_ms_) / 1e3 * s_.speedup; }

  void collect(ArchResult& r) {
    const std::size_t n = plan_.arrivals_s.size();
    components::HttpClient world("127.0.0.1", world_port_, 30'000ms);
    auto calls_reply = world.get("/calls");
    if (!calls_reply.ok()) throw InfraError("world: /calls answered " + std::to_string(calls_reply.status));
    auto calls = nlohmann::json::parse(calls_reply.body);

    std::map<std::string, std::size_t> index;
    r.orders.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto& o = r.orders[i];
      o.id = order_id(i);
      index[o.id] = i;
      o.arrival_s = plan_.arrivals_s[i];
      o.download_plan_s = plan_.download_s[i];
      o.upload_plan_s = plan_.upload_s[i];
      o.webhook_attempts = attempts_[i];
      o.payment_accepted = accepted_[i];
    }
    for (const auto& c : calls) {
      EffectCall call{api_from(c.at("api").get<std::string>()), c.value("key", std::string()), c.at("status").get<int>(),
                      c.at("effect").get<bool>()};
      const std::string order = c.at("order").get<std::string>();
      auto it = index.find(order);
      if (it == index.end()) {
        if (order.rfind("probe-", 0) != 0) r.stray_calls.push_back({order, std::move(call)});
        continue;
      }
      r.orders[it->second].calls.push_back(std::move(call));
    }
    for (auto& o : r.orders) tally_calls(o);

    for (std::size_t i = 0; i < n; ++i) {
      if (i % 1000 == 0) check_cancel(o_);
      auto& o = r.orders[i];
      auto order = must("get order", [&] { return store_.get(o.id); });
      if (!order) {
        o.status = "missing";
      } else {
        o.status = std::string(store::to_string(order->status));
        o.error = order->last_error;
        if (!order->job_id.empty()) job_ids_[o.id] = order->job_id;
        for (const auto& [st, ms] : order->entered_ms)
          if (StageTimes::known(st)) o.stages_s[st] = sim_of_ms(ms);
      }
    }
    const long long crashes = r.checker.crashes;
    r.checker = check(history_of(r));
    r.checker.crashes = crashes;
    summarize(r, plan_.arrivals_s.front(), plan_.arrivals_s.back());
    r.load = load_series(load_samples_, r.orders, r.workers);
    recovery(r);
    const auto& ck = r.checker;
    if (arch_impl_->on_queue_engine()) {
      r.duplicate_jobs = std::max(0LL, enqueued_ - poison_enqueued_ - ck.orders);
      for (const auto& id : must("dead letters", [&] { return queue_.dead_ids(); })) {
        auto st = must("job status", [&] { return queue_.status(id); });
        if (!st) continue;
        // the reason without the order id or payload in it, so that like reasons group
        std::string reason = st->last_error.substr(0, st->last_error.find_first_of("'\"{"));
        while (!reason.empty() && (reason.back() == ' ' || reason.back() == ':')) reason.pop_back();
        r.dead_letters_by_reason[reason.empty() ? "(no reason)" : reason]++;
      }
    }
    arch_impl_->collect(*this, r);
    r.explanations = arch_impl_->explain(r);
  }

  void recovery(ArchResult& r) {
    std::map<std::string, const OrderRecord*> by_id;
    for (const auto& o : r.orders) by_id[o.id] = &o;
    std::vector<double> times;
    for (auto& k : r.kills) {
      auto it = by_id.find(k.order);
      if (it == by_id.end()) continue;
      auto job = job_ids_.find(k.order);
      k.redelivered_after_s =
          arch_impl_->redelivered_after(*this, k, *it->second, job == job_ids_.end() ? std::string() : job->second);
      if (k.redelivered_after_s) times.push_back(*k.redelivered_after_s);
    }
    r.recovery_s = percentiles(times);
    compute_drain(r, s_);
  }

  Scenario s_;  // a copy: its speedup is this architecture's
  const Plan& plan_;
  const FaultPlan& faults_;
  const RunOptions& o_;
  Env& env_;
  std::string arch_, bin_, tag_;
  redis::Connection conn_;
  store::TaskStore store_, shop_store_;
  queue::Queue queue_;
  std::string payment_secret_, finalize_secret_;
  std::unique_ptr<FaultProxy> proxy_;  // declared before the supervisor: outlives the processes
  std::map<std::string, int> link_ports_;
  int provider_port_ = 0;
  std::map<std::string, std::string> clock_files_;  // instance -> its libfaketime offset file (skew_clock)
  Supervisor sup_;
  int world_port_ = 0, finalize_port_ = 0, intake_port_ = 0, finalize_h_ = -1, intake_h_ = -1, world_h_ = -1;
  std::unique_ptr<Architecture> arch_impl_;
  std::vector<std::string> notes_;  // from the architecture, for the report
  std::vector<int> stage_fired_;  // after_grant holds, as the injector last reported
  long long poison_enqueued_ = 0, enqueued_ = 0;
  std::map<std::string, std::string> job_ids_;  // order -> its queue job
  long stage_timeout_ms_ = 30'000;
  Steady::time_point t0_;
  double t0_server_ms_ = 0;
  long long harness_commands_ = 0;
  std::vector<LoadSample> load_samples_;
  std::vector<std::atomic<int>> attempts_;
  std::vector<std::atomic<bool>> accepted_;
};

}  // namespace

RunResult run_scenario(Scenario s, const RunOptions& o) {
  if (o.seed) s.seed = *o.seed;
  if (o.speedup) {
    if (!(*o.speedup > 0) || *o.speedup > 1e9) throw ScenarioError("--speedup", "$", "expected a number in (0, 1e9]");
    s.speedup = *o.speedup;  // for every architecture
    if (s.polling) s.polling->speedup.reset();
    if (s.queue) s.queue->speedup.reset();
    for (auto& [kind, f] : s.frameworks) f.speedup.reset();
  }
  const std::vector<std::string> archs = live_architectures(s, o.architectures);
  const bool side_by_side = o.side_by_side.value_or(s.side_by_side);
  const auto started = Steady::now();
  const StealMeter steal;
  RunResult result;
  result.scenario = s.name;
  result.file = s.file;
  result.seed = s.seed;
  result.speedup = s.speedup;
  result.resolution_s = s.speedup / 1000.0;
  result.replay_command = fmt::format("scripts/sim run {} --seed {}{} --arch {}", s.file, s.seed,
                                      o.speedup ? fmt::format(" --speedup {:g}", s.speedup) : "", fmt::join(archs, ","));
  Plan plan = make_plan(s);
  result.arrivals_s = plan.arrivals_s;
  const FaultPlan fault_plan = plan_faults(s, plan);
  result.fault_plan = fault_plan;
  const std::string persistence = redis_persistence(s.faults);
  if (persistence == "always" && redis_disk_bytes(s.faults) > 0)
    throw ScenarioError(s.file, "$.faults", "fill_disk cannot be combined with a restart_redis of persistence \"always\": with "
                                            "appendfsync always Redis exits on the failed AOF write instead of refusing writes");

  const bool acl = o.redis_acl || s.redis_acl;
  if (acl) {
    if (o.redis_url)
      throw ScenarioError("--redis", "$", "redis_acl makes users on the run's own redis-server; with --redis, name the "
                                          "user in the URL (redis://user@host:port, its password in QSIM_REDIS_SECRET)");
    if (redis_failover(s.faults))
      throw ScenarioError(s.file, "$.redis_acl", "failover_redis with ACLs is not supported: the replica and Sentinel "
                                                 "would need users of their own");
    for (const auto& a : archs)
      if (a != "polling" && a != "queue")
        throw ScenarioError(s.file, "$.redis_acl", "redis_acl gives users to qsim's own components only; " + a +
                                                       "'s adapter connects without credentials");
  }
  // The component logs: the given folder, or a temporary one removed afterwards.
  fs::path log_dir;
  char tmpl[] = "/tmp/qsim-run-XXXXXX";
  if (!o.log_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.log_dir, ec);
    if (ec) throw ScenarioError("--logs", o.log_dir, "a folder that can be created: " + ec.message());
    log_dir = o.log_dir;
  } else if (!::mkdtemp(tmpl)) {
    throw InfraError("cannot create a temporary directory for the component logs");
  } else {
    log_dir = tmpl;
  }
  struct RemoveDir {
    fs::path p;
    ~RemoveDir() {
      std::error_code ec;
      if (!p.empty()) fs::remove_all(p, ec);
    }
  } remove_logs{o.log_dir.empty() ? log_dir : fs::path()};
  std::optional<redis::Endpoint> external;
  if (o.redis_url) {
    try {
      external = redis::Endpoint::from_url(*o.redis_url);  // a user's password from QSIM_REDIS_SECRET[_FILE]
    } catch (const std::exception& e) {
      throw ScenarioError("--redis", "$", e.what());
    }
    if (!external->user.empty())
      for (const auto& a : archs)
        if (a != "polling" && a != "queue")
          throw ScenarioError("--redis", "$", "a Redis user is passed to qsim's own components only; " + a +
                                                  "'s adapter connects without credentials");
    if (external->unix_socket.empty() && !loopback(external->host))
      throw ScenarioError("--redis", "$", "only loopback addresses are allowed, got '" + external->host + "'");
    if (auto kind = private_redis_fault(s.faults); !kind.empty())
      throw ScenarioError("--redis", "$", kind + " needs the private redis-server (run without --redis)");
    if (side_by_side && archs.size() > 1)
      throw ScenarioError("--redis", "$", "side by side, each architecture needs its own private redis-server (run "
                                          "without --redis)");
  }
  // What one architecture runs on: the external Redis under a random key prefix, or a private
  // redis-server of its own (side by side) or shared with the architectures after it.
  auto make_env = [&](Env& env) {
    env.log_dir = log_dir;
    if (external) {
      env.endpoint = *external;
      env.prefix = "qsim-" + random_hex(4);
      env.description = "external " + env.endpoint.to_string() + ", keys under " + env.prefix + ":";
    } else {
      RedisServerOptions ro;
      ro.appendonly = persistence.empty() || persistence == "none" ? "no" : persistence;
      ro.disk_bytes = redis_disk_bytes(s.faults);
      if (acl)
        for (auto role : security::redis_roles()) {
          const std::string user(security::to_string(role)), password = random_hex(24);
          env.component_passwords[user] = password;
          ro.acl_users.push_back(security::redis_acl_line(user, password, security::redis_acl_rules(role, env.prefix)));
        }
      env.server = std::make_unique<RedisServer>(ro);
      try {
        env.forks.run([&] { env.server->start(); });
      } catch (const std::exception& e) {
        throw InfraError(std::string("private redis-server: ") + e.what());
      }
      env.endpoint = env.server->endpoint();
      env.description = "private redis-server on 127.0.0.1:" + std::to_string(env.endpoint.port);
      if (redis_failover(s.faults)) start_failover_set(env, ro);
    }
    redis::Connection ping(env.endpoint);
    auto r = ping.command({"PING"});
    if (!r) throw InfraError("Redis at " + env.endpoint.to_string() + " is unreachable: " + r.error);
  };
  const std::string bin = find_bin_dir(o);
  if ((!side_by_side || archs.size() < 2) && !redis_failover(s.faults)) {
    Env env;
    make_env(env);
    result.redis = env.description;
    for (const auto& a : archs) {
      ArchRun run(s, plan, fault_plan, o, env, a, bin);
      result.results.push_back(run.run());
    }
  } else if (!side_by_side || archs.size() < 2) {
    // A failover leaves no replica behind: each architecture, one after the other, on a primary,
    // replica and Sentinel of its own.
    for (const auto& a : archs) {
      Env env;
      make_env(env);
      result.redis = env.description;
      ArchRun run(s, plan, fault_plan, o, env, a, bin);
      result.results.push_back(run.run());
    }
  } else {
    // Side by side: every architecture at once on the same trace, each on its own private Redis
    // (so that INFO commandstats stays its own). One failing, or a cancel, stops them all.
    std::atomic<bool> stop{false};
    RunOptions each = o;
    each.cancel = &stop;
    std::mutex progress_mu;
    if (o.on_progress)
      each.on_progress = [&](const Progress& p) {
        std::lock_guard lock(progress_mu);
        o.on_progress(p);
      };
    std::vector<std::unique_ptr<Env>> envs;
    std::vector<std::string> descriptions;
    for (std::size_t i = 0; i < archs.size(); ++i) {
      envs.push_back(std::make_unique<Env>());
      make_env(*envs.back());
      descriptions.push_back(archs[i] + ": " + envs.back()->description);
    }
    result.redis = fmt::format("side by side, {}", fmt::join(descriptions, "; "));
    std::vector<std::optional<ArchResult>> done(archs.size());
    std::vector<std::exception_ptr> errors(archs.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < archs.size(); ++i)
      threads.emplace_back([&, i] {
        try {
          ArchRun run(s, plan, fault_plan, each, *envs[i], archs[i], bin);
          done[i] = run.run();
        } catch (...) {
          errors[i] = std::current_exception();
          stop = true;
        }
      });
    while (std::any_of(done.begin(), done.end(), [](const auto& d) { return !d; }) && !stop) {
      if (o.cancel && o.cancel->load()) stop = true;
      std::this_thread::sleep_for(20ms);
    }
    for (auto& t : threads) t.join();
    if (o.cancel && o.cancel->load()) throw Cancelled();
    for (auto& e : errors)  // the first real failure, not the others' Cancelled
      if (e) try {
          std::rethrow_exception(e);
        } catch (const Cancelled&) {
        }
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (!done[i]) throw InfraError(archs[i] + " stopped without a result");
      result.results.push_back(std::move(*done[i]));
    }
  }
  result.wall_s = std::chrono::duration<double>(Steady::now() - started).count();
  result.host_steal_share = steal.share();
  return result;
}

}  // namespace qsim::sim
