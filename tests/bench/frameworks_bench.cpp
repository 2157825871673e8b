#include "frameworks_bench.h"

#include "qsim/components/http_client.h"
#include "qsim/redis/connection.h"
#include "qsim/sim/child_process.h"
#include "qsim/sim/redis_server.h"
#include "qsim/sim/supervisor.h"

#include <boost/process.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

namespace bp = boost::process;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace qsim::bench {

std::vector<Framework> frameworks(const std::string& dir) {
  const std::string py = "/usr/bin/python3";
  auto cfg = [](std::string label, int processes, nlohmann::json config, int jobs) {
    return FrameworkConfig{std::move(label), processes, std::move(config), jobs};
  };
  return {
      {"rq",
       {py, dir + "/rq/qsim_rq.py"},
       cfg("1 Worker (forks a work horse per job)", 1, {{"worker_class", "Worker"}}, 400),
       {cfg("2 Workers", 2, {{"worker_class", "Worker"}}, 600),
        cfg("1 SimpleWorker (no fork)", 1, {{"worker_class", "SimpleWorker"}}, 3000),
        cfg("2 SimpleWorkers", 2, {{"worker_class", "SimpleWorker"}}, 4000)}},
      {"celery",
       {py, dir + "/celery/qsim_celery.py"},
       cfg("1 worker, prefork concurrency 1", 1, {{"concurrency", 1}}, 2000),
       {cfg("1 worker, prefork concurrency 2", 1, {{"concurrency", 2}}, 3000),
        cfg("1 worker, prefork concurrency 4, prefetch 16", 1, {{"concurrency", 4}, {"prefetch_multiplier", 16}}, 4000),
        cfg("2 workers, prefork concurrency 2", 2, {{"concurrency", 2}}, 4000)}},
      {"bullmq",
       {"node", dir + "/bullmq/qsim_bullmq.js"},
       cfg("1 worker, concurrency 1", 1, {{"concurrency", 1}}, 3000),
       {cfg("1 worker, concurrency 16", 1, {{"concurrency", 16}}, 8000),
        cfg("1 worker, concurrency 64", 1, {{"concurrency", 64}}, 10000),
        cfg("2 workers, concurrency 32", 2, {{"concurrency", 32}}, 10000)}},
      {"sidekiq",
       {"ruby", dir + "/sidekiq/qsim_sidekiq.rb"},
       cfg("1 process, concurrency 1", 1, {{"concurrency", 1}}, 3000),
       {cfg("1 process, concurrency 10", 1, {{"concurrency", 10}}, 6000),
        cfg("2 processes, concurrency 5", 2, {{"concurrency", 5}}, 6000)}},
  };
}

namespace {

std::string exe_of(const std::string& word) {
  if (word.find('/') != std::string::npos) return word;
  auto p = bp::search_path(word);
  if (p.empty()) throw std::runtime_error(word + " is not in PATH");
  return p.string();
}

// The protocol's environment; the benchmark's workers run the no-op job alone.
std::map<std::string, std::string> bench_env(int port, const std::string& queue, const nlohmann::json& config) {
  return {{"QSIM_REDIS_URL", fmt::format("redis://127.0.0.1:{}", port)},
          {"QSIM_QUEUE", queue},
          {"QSIM_CONFIG", config.dump()},
          {"QSIM_BENCH", "1"},
          {"QSIM_STORE_BASE", "bench:{" + queue + "}:"},
          {"QSIM_STORE_TRANSITION", "return 0"},
          {"QSIM_WORLD_URL", "http://127.0.0.1:9"},
          {"QSIM_FINALIZE_URL", "http://127.0.0.1:9"},
          {"QSIM_FINALIZE_SECRET", "unused"},
          {"QSIM_STAGE_TIMEOUT_S", "5"},
          {"QSIM_COMPONENT", "bench"}};
}

// Runs `<adapter> args...` to its end (a fill or a paced enqueue).
void run_to_end(const Framework& fw, std::vector<std::string> args, const std::map<std::string, std::string>& env,
                std::chrono::seconds limit, const std::string& log) {
  auto e = sim::child_environment(env);
  std::vector<std::string> all(fw.command.begin() + 1, fw.command.end());
  all.insert(all.end(), args.begin(), args.end());
  bp::child c(exe_of(fw.command.front()), bp::args(all), e, bp::std_out > bp::null,
              bp::std_err > boost::filesystem::path(log), sim::die_with_parent);
  if (!c.wait_for(limit)) {
    c.terminate();
    throw std::runtime_error(fmt::format("{} {} did not finish within {} s (log: {})", fw.name, args.front(), limit.count(), log));
  }
  if (c.exit_code() != 0) throw std::runtime_error(fmt::format("{} {} exited {} (log: {})", fw.name, args.front(), c.exit_code(), log));
}

struct Workers {
  sim::Supervisor sup;
  std::vector<int> health;
};

void start_workers(Workers& w, int port, const Framework& fw, const FrameworkConfig& cfg, const std::string& queue,
                   const std::string& log_dir) {
  for (int i = 0; i < cfg.processes; ++i) {
    sim::ProcessSpec p;
    p.name = fmt::format("{}-bench-w{}", fw.name, i);
    p.exe = exe_of(fw.command.front());
    p.args.assign(fw.command.begin() + 1, fw.command.end());
    p.args.push_back("worker");
    p.env = bench_env(port, queue, cfg.config);
    const int hp = sim::free_loopback_port();
    p.env["QSIM_HEALTH_PORT"] = std::to_string(hp);
    p.env["QSIM_WORKER_ID"] = p.name;
    p.restart = false;
    p.stderr_path = (std::filesystem::path(log_dir) / (p.name + ".log")).string();
    w.sup.add(std::move(p));
    w.health.push_back(hp);
  }
}

void wait_healthy(const Workers& w, const std::string& what) {
  for (int port : w.health) {
    components::HttpClient c("127.0.0.1", port, 200ms);
    auto until = Steady::now() + 60s;
    while (c.get("/health").status != 200) {
      if (Steady::now() > until) throw std::runtime_error(what + ": a worker did not answer /health within 60 s");
      std::this_thread::sleep_for(20ms);
    }
  }
}

long long counter(redis::Connection& c, const std::string& key) {
  auto r = c.command({"GET", key});
  if (!r) throw std::runtime_error("Redis: " + r.error);
  return r.reply.is_nil() ? 0 : std::stoll(r.reply.str);
}

}  // namespace

double framework_drain_jobs_per_s(int port, const Framework& fw, const FrameworkConfig& cfg, int run,
                                  const std::string& log_dir) {
  static int drains = 0;  // one queue per drain: no counter or job of an earlier one is seen
  const std::string queue = fmt::format("bench-{}-drain-{}-r{}", fw.name, ++drains, run);
  const auto env = bench_env(port, queue, cfg.config);
  run_to_end(fw, {"bench-fill", std::to_string(cfg.jobs)}, env, 300s,
             (std::filesystem::path(log_dir) / (fw.name + "-bench-fill.log")).string());
  redis::Connection c({"127.0.0.1", port, {}});
  Workers w;
  start_workers(w, port, fw, cfg, queue, log_dir);
  const long long lo = cfg.jobs / 10, hi = cfg.jobs - cfg.jobs / 10;
  std::optional<Steady::time_point> t_lo;
  auto until = Steady::now() + 300s;
  for (;;) {
    const long long done = counter(c, queue + ":bench:done");
    if (!t_lo && done >= lo) t_lo = Steady::now();
    if (done >= hi) break;
    if (Steady::now() > until)
      throw std::runtime_error(fmt::format("{} ({}): {} of {} jobs done after 300 s", fw.name, cfg.label, done, cfg.jobs));
    std::this_thread::sleep_for(2ms);
  }
  const double s = std::chrono::duration<double>(Steady::now() - *t_lo).count();
  w.sup.stop_all(2000ms);
  return static_cast<double>(hi - lo) / s;
}

std::vector<double> framework_pickup_us(int port, const Framework& fw, int jobs, double rate, int run,
                                        const std::string& log_dir) {
  const std::string queue = fmt::format("bench-{}-pickup-r{}", fw.name, run);
  Workers w;
  start_workers(w, port, fw, fw.one, queue, log_dir);
  wait_healthy(w, fw.name);
  std::this_thread::sleep_for(500ms);  // idle and blocked in its fetch
  run_to_end(fw, {"bench-pickup", std::to_string(jobs), fmt::format("{:g}", rate)}, bench_env(port, queue, fw.one.config),
             300s, (std::filesystem::path(log_dir) / (fw.name + "-bench-pickup.log")).string());
  redis::Connection c({"127.0.0.1", port, {}});
  for (auto until = Steady::now() + 60s; counter(c, queue + ":bench:done") < jobs;) {
    if (Steady::now() > until) throw std::runtime_error(fw.name + ": pickup: not every job started within 60 s");
    std::this_thread::sleep_for(10ms);
  }
  w.sup.stop_all(2000ms);
  auto r = c.command({"LRANGE", queue + ":bench:pickup_us", "0", "-1"});
  if (!r) throw std::runtime_error("Redis: " + r.error);
  std::vector<double> out;
  for (const auto& e : r.reply.elements) out.push_back(std::stod(e.str));
  if (out.size() != static_cast<std::size_t>(jobs))
    throw std::runtime_error(fmt::format("{}: pickup: {} samples for {} jobs", fw.name, out.size(), jobs));
  return out;
}

}  // namespace qsim::bench
