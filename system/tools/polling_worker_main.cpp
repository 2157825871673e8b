// qsim-polling-worker: the legacy single worker that polls the task store. The finalize
// signing secret comes from QSIM_FINALIZE_SECRET or QSIM_FINALIZE_SECRET_FILE, never from argv.
#include "qsim/components/polling_worker.h"
#include "qsim/security/signature.h"

#include "log_options.h"
#include "redis_options.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

namespace {
qsim::components::PollingWorker* g_worker = nullptr;
extern "C" void on_signal(int) {
  if (g_worker) g_worker->request_stop();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qsim polling worker: the legacy architecture, one order at a time, polled"};
  qsim::tools::RedisOptions redis_options;
  double poll_ms = 10'000;
  long stage_timeout_ms = 30'000, unhealthy_ms = 10'000;
  int health_port = 0;
  qsim::components::PollingWorkerOptions o;
  redis_options.add_to(app);
  app.add_option("--queue", o.queue, "the task store's tag");
  app.add_option("--prefix", o.prefix, "key prefix");
  app.add_option("--id", o.worker_id, "worker id");
  app.add_option("--poll-interval-ms", poll_ms, "time between polls (fractions allowed: the harness compresses time)")
      ->check(CLI::Range(0.05, 3'600'000.0));
  app.add_option("--world-port", o.stages.world_port, "the simulated world's port")->check(CLI::Range(1, 65535));
  app.add_option("--finalize-port", o.stages.finalize_port, "the finalize service's port")->check(CLI::Range(1, 65535));
  app.add_option("--stage-timeout-ms", stage_timeout_ms, "timeout of each call to the world and to finalize")
      ->check(CLI::Range(1, 86'400'000));
  app.add_option("--health-port", health_port, "HTTP port for /health and /metrics (0: none)")->check(CLI::Range(0, 65535));
  app.add_option("--unhealthy-after-ms", unhealthy_ms, "/health says 503 after this long without Redis");
  qsim::tools::LogOptions log_options;
  log_options.add_to(app);
  CLI11_PARSE(app, argc, argv);
  try {
    log_options.setup("polling-worker");
    o.redis = redis_options.endpoint_exiting_on_denial();
    o.poll_interval = std::chrono::microseconds(static_cast<long long>(poll_ms * 1000));
    o.stages.finalize_secret = qsim::security::load_secret("finalize");
    o.stages.timeout = std::chrono::milliseconds(stage_timeout_ms);
    o.unhealthy_after = std::chrono::milliseconds(unhealthy_ms);
    qsim::components::PollingWorker worker(o);
    g_worker = &worker;
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    worker.run(health_port);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsim-polling-worker: " << e.what() << "\n";
    return 2;
  }
}
