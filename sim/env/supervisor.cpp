#include "qsim/sim/supervisor.h"

#include "qsim/sim/child_process.h"

#include <boost/process.hpp>

#include <algorithm>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <future>
#include <optional>
#include <stdexcept>
#include <sys/wait.h>

namespace bp = boost::process;

namespace qsim::sim {

using Steady = std::chrono::steady_clock;

namespace {

// The fields of /proc/<pid>/stat the supervisor needs; none if the process is gone.
struct ProcStat {
  pid_t ppid = 0;
  unsigned long long start_time = 0;  // clock ticks since boot (field 22)
};

std::optional<ProcStat> read_stat(const std::filesystem::path& stat_file) {
  std::ifstream stat(stat_file);
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  auto close = line.rfind(')');  // the command may hold spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  ProcStat s;
  char state = 0;
  rest >> state >> s.ppid;  // fields 3 and 4
  std::string skip;
  for (int field = 5; field < 22 && rest >> skip; ++field) {
  }
  rest >> s.start_time;
  return s;
}

// `pid` and every process descended from it, parents first (read from /proc). A framework's
// worker runs its jobs in children (RQ's work horse, Celery's pool), some in sessions of their
// own, so a process group does not reach them all.
std::vector<pid_t> process_tree(pid_t pid) {
  std::multimap<pid_t, pid_t> children;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto s = read_stat(e.path() / "stat")) children.emplace(s->ppid, static_cast<pid_t>(std::stol(name)));
  }
  std::vector<pid_t> out{pid};
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto [lo, hi] = children.equal_range(out[i]);
    for (auto it = lo; it != hi; ++it) out.push_back(it->second);
  }
  return out;
}

// The process's start time, 0 if it is gone: with its pid, it names one process even after the
// pid is reused.
unsigned long long start_time(pid_t pid) {
  auto s = read_stat("/proc/" + std::to_string(pid) + "/stat");
  return s ? s->start_time : 0;
}

struct Snapshot {
  std::vector<std::pair<pid_t, unsigned long long>> procs;
  explicit Snapshot(const std::vector<pid_t>& pids) {
    for (auto p : pids) procs.emplace_back(p, start_time(p));
  }
  Snapshot() = default;
  void add(const Snapshot& o) { procs.insert(procs.end(), o.procs.begin(), o.procs.end()); }
  // Only the processes that are still the ones seen (not a reused pid).
  void signal(int sig) const {
    for (const auto& [p, t] : procs)
      if (t != 0 && start_time(p) == t) ::kill(p, sig);
  }
};

// SIGKILL freezes the tree first, so that no process forks a replacement in between.
void signal_tree(pid_t pid, int sig) {
  auto tree = process_tree(pid);
  if (sig == SIGKILL)
    for (int round = 0; round < 5; ++round) {  // a fork between the scan and the stop: scan again
      for (auto p : tree) ::kill(p, SIGSTOP);
      auto again = process_tree(pid);
      if (again.size() == tree.size()) break;
      tree = std::move(again);
    }
  for (auto p : tree) ::kill(p, sig);
}

}  // namespace

struct Supervisor::Impl {
  struct Proc {
    ProcessSpec spec;
    std::optional<bp::child> child;
    int starts = 0;
    std::optional<Steady::time_point> restart_at;
  };

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Proc> procs;
  std::vector<ProcessEvent> events;
  std::deque<std::pair<int, std::promise<void>>> to_start;  // handled on the supervisor thread
  bool stopping = false, quit = false;
  std::thread thread;

  // Called with `mu` held, on the supervisor thread.
  void start(int h) {
    auto& p = procs[static_cast<std::size_t>(h)];
    auto env = child_environment(p.spec.env);
    if (p.spec.stderr_path.empty())
      p.child.emplace(p.spec.exe, bp::args(p.spec.args), env, bp::std_out > bp::null, bp::std_err > bp::null,
                      die_with_parent);
    else
      p.child.emplace(p.spec.exe, bp::args(p.spec.args), env, bp::std_out > bp::null,
                      bp::std_err > boost::filesystem::path(p.spec.stderr_path), die_with_parent);
    p.starts++;
    p.restart_at.reset();
    events.push_back({ProcessEvent::Kind::started, p.spec.name, static_cast<int>(p.child->id()), 0, Steady::now()});
  }

  void loop() {
    std::unique_lock lock(mu);
    while (!quit) {
      while (!to_start.empty()) {
        auto [h, done] = std::move(to_start.front());
        to_start.pop_front();
        try {
          start(h);
          done.set_value();
        } catch (...) {
          done.set_exception(std::current_exception());
        }
      }
      auto now = Steady::now();
      for (std::size_t h = 0; h < procs.size(); ++h) {
        auto& p = procs[h];
        if (p.child && !p.child->running()) {  // exited or killed: reap, log, schedule a restart
          std::error_code ec;
          p.child->wait(ec);
          int code = p.child->native_exit_code();
          int reported = WIFSIGNALED(code) ? 128 + WTERMSIG(code) : WEXITSTATUS(code);
          events.push_back({stopping ? ProcessEvent::Kind::stopped : ProcessEvent::Kind::exited, p.spec.name,
                            static_cast<int>(p.child->id()), reported, now});
          p.child.reset();
          if (!stopping && p.spec.restart) p.restart_at = now + p.spec.restart_delay;
        }
        if (!stopping && !p.child && p.restart_at && now >= *p.restart_at) {
          try {
            start(static_cast<int>(h));
          } catch (...) {
            p.restart_at = now + p.spec.restart_delay;  // try again later
          }
        }
      }
      cv.wait_for(lock, std::chrono::milliseconds(5));
    }
  }
};

Supervisor::Supervisor() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([this] { impl_->loop(); });
}

Supervisor::~Supervisor() {
  stop_all();
  {
    std::lock_guard lock(impl_->mu);
    impl_->quit = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

int Supervisor::add(ProcessSpec spec) {
  std::future<void> started;
  int h;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) throw std::logic_error("supervisor is stopping");
    h = static_cast<int>(impl_->procs.size());
    impl_->procs.push_back({std::move(spec), std::nullopt, 0, std::nullopt});
    std::promise<void> p;
    started = p.get_future();
    impl_->to_start.emplace_back(h, std::move(p));
  }
  impl_->cv.notify_all();
  started.get();  // rethrows a start failure
  return h;
}

int Supervisor::pid(int handle) const {
  std::lock_guard lock(impl_->mu);
  const auto& p = impl_->procs.at(static_cast<std::size_t>(handle));
  return p.child ? static_cast<int>(p.child->id()) : 0;  // the loop reaps exits within a few ms
}

int Supervisor::starts(int handle) const {
  std::lock_guard lock(impl_->mu);
  return impl_->procs.at(static_cast<std::size_t>(handle)).starts;
}

void Supervisor::signal(int handle, int sig) {
  std::lock_guard lock(impl_->mu);
  auto& p = impl_->procs.at(static_cast<std::size_t>(handle));
  if (p.child && p.child->running()) signal_tree(static_cast<pid_t>(p.child->id()), sig);
}

bool Supervisor::signal_in_tree(int handle, int pid, int sig) {
  std::lock_guard lock(impl_->mu);
  auto& p = impl_->procs.at(static_cast<std::size_t>(handle));
  if (!p.child || !p.child->running()) return false;
  auto tree = process_tree(static_cast<pid_t>(p.child->id()));
  if (std::find(tree.begin(), tree.end(), static_cast<pid_t>(pid)) == tree.end()) return false;
  return ::kill(static_cast<pid_t>(pid), sig) == 0;
}

std::vector<ProcessEvent> Supervisor::events() const {
  std::lock_guard lock(impl_->mu);
  return impl_->events;
}

void Supervisor::stop(int handle, std::chrono::milliseconds grace) {
  auto down = [&] {
    std::lock_guard lock(impl_->mu);
    return !impl_->procs.at(static_cast<std::size_t>(handle)).child.has_value();
  };
  {
    std::lock_guard lock(impl_->mu);
    auto& p = impl_->procs.at(static_cast<std::size_t>(handle));
    p.spec.restart = false;
    p.restart_at.reset();
  }
  Snapshot tree;
  {
    std::lock_guard lock(impl_->mu);
    auto& p = impl_->procs.at(static_cast<std::size_t>(handle));
    if (p.child && p.child->running()) {
      tree = Snapshot(process_tree(static_cast<pid_t>(p.child->id())));
      tree.signal(SIGCONT);  // a paused process cannot act on SIGTERM
      ::kill(static_cast<pid_t>(p.child->id()), SIGTERM);  // the process stops its own children
    }
  }
  auto deadline = Steady::now() + grace;
  while (!down() && Steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  tree.signal(SIGKILL);  // whatever is left of the tree
  while (!down()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void Supervisor::stop_all(std::chrono::milliseconds grace) { stop_all_except({}, grace); }

void Supervisor::stop_all_except(const std::vector<int>& keep, std::chrono::milliseconds grace) {
  std::vector<pid_t> pids;
  Snapshot trees;
  auto kept = [&](std::size_t i) { return std::find(keep.begin(), keep.end(), static_cast<int>(i)) != keep.end(); };
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    for (std::size_t i = 0; i < impl_->procs.size(); ++i)
      if (auto& p = impl_->procs[i]; !kept(i) && p.child && p.child->running()) {
        pids.push_back(static_cast<pid_t>(p.child->id()));
        trees.add(Snapshot(process_tree(pids.back())));
      }
    trees.signal(SIGCONT);  // a paused process cannot act on SIGTERM
    for (auto pid : pids) ::kill(pid, SIGTERM);  // with mu held: none of them is reaped meanwhile
  }
  auto deadline = Steady::now() + grace;
  auto any_running = [&] {
    std::lock_guard lock(impl_->mu);
    for (std::size_t i = 0; i < impl_->procs.size(); ++i)
      if (!kept(i) && impl_->procs[i].child) return true;
    return false;
  };
  while (any_running() && Steady::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  {
    std::lock_guard lock(impl_->mu);
    trees.signal(SIGKILL);
  }
  while (any_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the loop reaps them
}

}  // namespace qsim::sim
