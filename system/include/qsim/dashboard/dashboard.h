// The live dashboard of queues (`qsim-dashboard`, and `sim run --dashboard PORT` during a run):
// queue depth and throughput over the last minutes, the workers with their current job, the jobs
// in flight with their lease remaining, dead letters with their reason and a requeue button,
// orders by status; during a run also the run's progress and its faults as they fire.
//
// Server-rendered HTML that a small script reloads every two seconds, and the same as JSON at
// /state. Reading needs nothing (it binds to loopback unless told otherwise, and answers only
// requests addressed to a loopback name or its bind address, against DNS rebinding). Requeue
// needs a session: POST /login with the token sets an HttpOnly, SameSite=Strict cookie; every
// form carries that session's CSRF token; a POST from another origin is refused. With no token
// the dashboard is read-only and says so.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include "qsim/redis/connection.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace qsim::dashboard {

struct QueueSource {
  std::string name;  // shown, and the key of the requeue form; unique
  redis::Endpoint endpoint;
  std::string prefix = "qsim", queue = "orders";
  bool queue_engine = true;  // false: a framework's own queue; only the orders are shown
};

struct Options {
  std::string bind = "127.0.0.1";
  int port = 8090;
  std::string token;  // empty: read-only (no login, no requeue)
  std::chrono::milliseconds sample_every{1000};
  std::size_t history = 300;  // samples kept per queue: five minutes at one a second
};

// What a run shows beside its queues.
struct RunLane {
  std::string arch, phase;
  double sim_s = 0, expected_s = 0;  // simulated
  long long done = 0, total = 0;     // orders
};
struct RunFault {
  std::string arch;
  double t_s = 0;  // simulated
  std::string kind, target, detail;
};

class Dashboard {
public:
  explicit Dashboard(Options options);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  void add_queue(const QueueSource& source);  // any time; one whose Redis went away shows so
  void set_run(const std::string& scenario);   // shows the run panel
  void update_lane(const RunLane& lane);       // by arch
  void add_fault(const RunFault& fault);
  void set_outcome(const std::string& outcome);  // the run ended: its verdict in a sentence

  // Binds and serves on threads of its own; false (with the reason in error()) if it cannot bind.
  bool start();
  void stop();
  std::string error() const;
  int port() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsim::dashboard
