// qsim-queue-worker: one queue worker process. The finalize signing secret comes from
// QSIM_FINALIZE_SECRET or QSIM_FINALIZE_SECRET_FILE, never from argv.
#include "qsim/components/queue_worker.h"
#include "qsim/queue/backoff.h"
#include "qsim/security/signature.h"

#include "log_options.h"
#include "redis_options.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

namespace {
qsim::components::QueueWorkerService* g_service = nullptr;
extern "C" void on_signal(int) {
  if (g_service) g_service->request_stop();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qsim queue worker: downloads, uploads and finalizes paid orders from the queue"};
  qsim::tools::RedisOptions redis_options;
  int health_port = 0;
  long lease_ms = 30'000, reaper_ms = 1000, backoff_ms = 1000, unhealthy_ms = 10'000, stage_timeout_ms = 30'000;
  double backoff_factor = 2.0;
  qsim::components::QueueWorkerOptions o;
  redis_options.add_to(app);
  app.add_option("--queue", o.queue, "queue name (also the task store's tag)");
  app.add_option("--prefix", o.prefix, "key prefix");
  app.add_option("--id", o.worker.worker_id, "worker id (default w<pid>)");
  app.add_option("--health-port", health_port, "HTTP port for /health and /metrics (0: none)")->check(CLI::Range(0, 65535));
  app.add_option("--world-port", o.stages.world_port, "the simulated world's port")->check(CLI::Range(1, 65535));
  app.add_option("--finalize-port", o.stages.finalize_port, "the finalize service's port")->check(CLI::Range(1, 65535));
  app.add_option("--lease-ms", lease_ms, "job lease")->check(CLI::Range(100, 86'400'000));
  app.add_option("--reaper-tick-ms", reaper_ms, "reaper period")->check(CLI::Range(10, 600'000));
  app.add_option("--backoff-ms", backoff_ms, "first retry delay (then times --backoff-factor, capped at 64x)")->check(CLI::Range(1, 3'600'000));
  app.add_option("--backoff-factor", backoff_factor, "retry delay multiplier per attempt (1: constant)")
      ->check(CLI::Range(1.0, 10.0));
  app.add_option("--stage-timeout-ms", stage_timeout_ms, "timeout of each call to the world and to finalize")
      ->check(CLI::Range(1, 86'400'000));
  app.add_option("--unhealthy-after-ms", unhealthy_ms, "/health says 503 after this long without Redis");
  qsim::tools::LogOptions log_options;
  log_options.add_to(app);
  CLI11_PARSE(app, argc, argv);
  try {
    log_options.setup("queue-worker");
    o.redis = redis_options.endpoint_exiting_on_denial();
    o.worker.lease = std::chrono::milliseconds(lease_ms);
    o.worker.reaper_tick = std::chrono::milliseconds(reaper_ms);
    o.worker.backoff = {std::chrono::milliseconds(backoff_ms), backoff_factor,
                        std::chrono::milliseconds(backoff_factor > 1.0
                                                      ? static_cast<long>(static_cast<double>(backoff_ms) * qsim::queue::kBackoffCapFactor)
                                                      : backoff_ms),
                        0.2};
    o.stages.timeout = std::chrono::milliseconds(stage_timeout_ms);
    o.worker.queue.prefix = o.prefix;
    o.unhealthy_after = std::chrono::milliseconds(unhealthy_ms);
    o.stages.finalize_secret = qsim::security::load_secret("finalize");
    qsim::components::QueueWorkerService service(o);
    g_service = &service;
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    service.run(health_port);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsim-queue-worker: " << e.what() << "\n";
    return 2;
  }
}
