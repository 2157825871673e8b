// A worker process for the crash and concurrency tests: each job appends "<job id>:<attempt>"
// to the list ledger:<queue> (on its own connection), in the middle of some simulated work,
// then returns so the worker acks it. SIGTERM/SIGINT ask for a graceful stop.
#include "qsim/queue/worker.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <thread>

namespace {
qsim::queue::Worker* g_worker = nullptr;
extern "C" void on_signal(int) {
  if (g_worker) g_worker->request_stop();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ledger worker (test helper)"};
  std::string url, queue_name, id;
  int lease_ms = 1000, reaper_ms = 250, work_ms = 0, batch = 1;
  app.add_option("--redis", url, "redis URL")->required();
  app.add_option("--queue", queue_name, "queue name")->required();
  app.add_option("--id", id, "worker id");
  app.add_option("--lease-ms", lease_ms);
  app.add_option("--reaper-tick-ms", reaper_ms);
  app.add_option("--work-ms", work_ms, "simulated work per job");
  app.add_option("--batch", batch);
  CLI11_PARSE(app, argc, argv);

  auto endpoint = qsim::redis::Endpoint::parse(url);
  qsim::queue::WorkerOptions o;
  o.worker_id = id;
  o.lease = std::chrono::milliseconds(lease_ms);
  o.reaper_tick = std::chrono::milliseconds(reaper_ms);
  o.batch = static_cast<std::size_t>(batch);
  o.idle_wait = std::chrono::milliseconds(200);
  o.shutdown_deadline = std::chrono::milliseconds(2000);
  qsim::queue::Worker worker(endpoint, queue_name, o);
  g_worker = &worker;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  qsim::redis::Connection ledger(endpoint);
  const std::string ledger_key = "ledger:{" + queue_name + "}";
  worker.run([&](const qsim::queue::Job& job, qsim::queue::JobContext&) {
    // Half the work before the ledger append, half after: a kill in the first half re-runs a job
    // that left no trace, a kill in the second half produces a duplicate ledger entry.
    auto half = std::chrono::microseconds(work_ms * 500);
    if (work_ms > 0) std::this_thread::sleep_for(half);
    auto r = ledger.command({"RPUSH", ledger_key, job.id + ":" + std::to_string(job.attempt)});
    if (!r) throw std::runtime_error("ledger append failed: " + r.error);
    if (work_ms > 0) std::this_thread::sleep_for(half);
  });
  std::cerr << "worker " << worker.id() << " stopped: acked " << worker.stats().acked << "\n";
  return 0;
}
