// Runs the components as OS processes and keeps them running, like systemd with
// Restart=always and RestartSec=restart_delay: a process that exits (or is killed) is started
// again after its delay. Every exit and start is logged with its time.
//
// All forks happen on the supervisor's own thread, so the children's parent-death signal
// (they are SIGKILLed if the harness dies) is tied to the supervisor's life, not to whichever
// thread called add(). The destructor stops everything: SIGTERM, then SIGKILL after a grace.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include "qsim/clock.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qsim::sim {

struct ProcessSpec {
  std::string name;
  std::string exe;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to the harness's environment (secrets go here)
  std::chrono::milliseconds restart_delay{10'000};
  bool restart = true;
  std::string stderr_path;  // empty: discarded; else the file gets the process's stderr (each start)
};

struct ProcessEvent {
  enum class Kind { started, exited, stopped } kind;
  std::string name;
  int pid = 0;
  int exit_code = 0;  // for exited: the exit code, or 128 + signal
  std::chrono::steady_clock::time_point at;
};

class Supervisor {
public:
  Supervisor();
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the process (on the supervisor thread) and returns its handle; throws if the
  // executable cannot be started.
  int add(ProcessSpec spec);
  int pid(int handle) const;           // 0 while it is down
  int starts(int handle) const;        // 1 + restarts
  // SIGKILL, SIGSTOP, SIGCONT, ... to the process and every process descended from it (a
  // framework worker's job runs in its children); SIGKILL freezes the tree first.
  void signal(int handle, int sig);
  // `sig` to `pid` if it is the process or one descended from it (a framework's work horse or
  // pool child); false if it is not (or the process is down).
  bool signal_in_tree(int handle, int pid, int sig);
  std::vector<ProcessEvent> events() const;
  // Stops one process for good (SIGTERM, SIGKILL after `grace`); it is not restarted.
  void stop(int handle, std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // SIGTERM to all, wait up to `grace`, SIGKILL the rest; no restarts afterwards.
  void stop_all(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // The same for every process but those in `keep`, which go on running (never restarted).
  void stop_all_except(const std::vector<int>& keep, std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsim::sim
