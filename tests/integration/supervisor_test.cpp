// The supervisor with real processes: restart after the delay, no restart when disabled or
// stopping, nothing left running after stop_all, start failures reported; each child gets its
// own environment, and the harness's stays untouched.
#include "eventually.h"
#include "qsim/sim/supervisor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <unistd.h>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim::sim;

namespace {
bool alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }
}  // namespace

TEST(Supervisor, RestartsAKilledProcessAfterItsDelay) {
  Supervisor s;
  int h = s.add({"worker-1", "/bin/sleep", {"30"}, {}, 300ms, true, {}});
  int first = s.pid(h);
  ASSERT_TRUE(alive(first));
  s.signal(h, SIGKILL);
  ASSERT_TRUE(qsim::testkit::eventually([&] { return s.pid(h) != 0 && s.pid(h) != first; }, 5000ms));
  EXPECT_EQ(s.starts(h), 2);
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[1].kind, ProcessEvent::Kind::exited);
  EXPECT_EQ(ev[1].exit_code, 128 + SIGKILL);
  EXPECT_EQ(ev[2].kind, ProcessEvent::Kind::started);
  auto down_for = ev[2].at - ev[1].at;
  EXPECT_GE(down_for, 300ms) << "not before its restart delay";
  EXPECT_LT(down_for, 1500ms) << "generous: the delay plus a loaded machine";
}

TEST(Supervisor, EachChildGetsItsOwnSecretAndTheHarnessKeepsNone) {
  // Two supervisors starting at once, as two architectures side by side do: each child must see
  // its own secret. Written into the harness's own environment, one lane's intake once got the
  // other's payment secret.
  ASSERT_EQ(std::getenv("QSIM_TEST_SECRET"), nullptr);
  const std::string dir = ::testing::TempDir();
  auto lane = [&](char which) {
    Supervisor s;
    for (int i = 0; i < 20; ++i) {
      const std::string file = dir + "/secret-" + which + std::to_string(i);
      s.add({"child", "/bin/sh", {"-c", "printf %s \"$QSIM_TEST_SECRET\" > " + file}, {{"QSIM_TEST_SECRET", std::string(40, which)}},
             1s, false, {}});
    }
    EXPECT_TRUE(qsim::testkit::eventually(
        [&] {
          auto ev = s.events();
          return std::count_if(ev.begin(), ev.end(), [](const ProcessEvent& e) { return e.kind == ProcessEvent::Kind::exited; }) == 20;
        },
        5000ms));
    s.stop_all();
  };
  std::thread a(lane, 'a'), b(lane, 'b');
  a.join();
  b.join();
  for (char which : {'a', 'b'})
    for (int i = 0; i < 20; ++i) {
      std::ifstream in(dir + "/secret-" + which + std::to_string(i));
      std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_EQ(got, std::string(40, which)) << "child " << which << i;
    }
  EXPECT_EQ(std::getenv("QSIM_TEST_SECRET"), nullptr) << "a child's secret reached the harness's environment";
}

TEST(Supervisor, NoRestartWhenDisabled) {
  Supervisor s;
  int h = s.add({"legacy", "/bin/sleep", {"30"}, {}, 50ms, false, {}});
  s.signal(h, SIGKILL);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(s.pid(h), 0);
  EXPECT_EQ(s.starts(h), 1);
}

TEST(Supervisor, ACrashLoopIsRestartedAtItsCadence) {
  Supervisor s;
  int h = s.add({"crashy", "/bin/false", {}, {}, 100ms, true, {}});
  ASSERT_TRUE(qsim::testkit::eventually([&] { return s.starts(h) >= 4; }, 3000ms));
  for (auto& e : s.events()) {
    if (e.kind == ProcessEvent::Kind::exited) {
      EXPECT_EQ(e.exit_code, 1);
    }
  }
}

TEST(Supervisor, StopAllLeavesNothingRunningAndRestartsNothing) {
  std::vector<int> pids;
  {
    Supervisor s;
    std::vector<int> handles;
    for (const char* name : {"w0", "w1", "w2"}) handles.push_back(s.add({name, "/bin/sleep", {"30"}, {}, 10ms, true, {}}));
    s.signal(handles[1], SIGSTOP);  // a paused process must be stopped too
    for (int h : handles) pids.push_back(s.pid(h));
    s.stop_all(1000ms);
    for (int h : handles) EXPECT_EQ(s.pid(h), 0);
    std::this_thread::sleep_for(100ms);
    for (int h : handles) EXPECT_EQ(s.starts(h), 1) << "no restart while stopping";
  }
  for (int pid : pids) EXPECT_FALSE(alive(pid)) << pid;
}

// Before the history is read, every component stops but the world, whose call log is read.
TEST(Supervisor, StopAllExceptKeepsTheNamedOnesRunning) {
  Supervisor s;
  std::vector<int> handles;
  for (const char* name : {"world", "w1", "w2"}) handles.push_back(s.add({name, "/bin/sleep", {"30"}, {}, 10ms, true, {}}));
  const int world_pid = s.pid(handles[0]);
  s.stop_all_except({handles[0]}, 1000ms);
  EXPECT_EQ(s.pid(handles[1]), 0);
  EXPECT_EQ(s.pid(handles[2]), 0);
  EXPECT_EQ(s.pid(handles[0]), world_pid);
  EXPECT_TRUE(alive(world_pid));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(s.starts(handles[1]), 1) << "no restart of a stopped one";
  s.stop_all(1000ms);
  EXPECT_FALSE(alive(world_pid));
}

TEST(Supervisor, DestructorStopsEverything) {
  int pid = 0;
  {
    Supervisor s;
    pid = s.pid(s.add({"w", "/bin/sleep", {"30"}, {}, 10ms, true, {}}));
    ASSERT_TRUE(alive(pid));
  }
  EXPECT_FALSE(alive(pid));
}

TEST(Supervisor, AStartFailureIsReported) {
  Supervisor s;
  EXPECT_ANY_THROW(s.add({"ghost", "/no/such/program", {}, {}, 10ms, true, {}}));
}

namespace {
// Gone, or a zombie its parent has not reaped yet: either way it runs no more.
bool stopped_running(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

int read_pid(const std::string& file) {
  int pid = 0;
  qsim::testkit::eventually([&] { return (std::ifstream(file) >> pid) && pid > 0; }, 5000ms);
  return pid;
}
}  // namespace

// A framework's worker runs its jobs in children, some in sessions of their own (RQ's work
// horse calls setsid): a kill reaches the whole tree, and a job-only kill reaches the job's
// process alone, and only one inside the tree.
TEST(Supervisor, AKillReachesChildrenInTheirOwnSessionAndAJobKillOnlyThem) {
  const std::string file = "/tmp/qsim-supervisor-tree-" + std::to_string(::getpid());
  Supervisor s;
  const std::string script = "setsid sleep 30 & echo $! > " + file + "; while :; do sleep 0.05; done";
  int h = s.add({"tree", "/bin/sh", {"-c", script}, {}, 60s, false, {}});
  int child = read_pid(file);
  ASSERT_GT(child, 0);
  EXPECT_FALSE(s.signal_in_tree(h, ::getpid(), SIGKILL)) << "a process outside the tree is never signalled";
  EXPECT_TRUE(s.signal_in_tree(h, child, SIGKILL));
  EXPECT_TRUE(qsim::testkit::eventually([&] { return stopped_running(child); }, 5000ms)) << "the job's process";
  std::this_thread::sleep_for(100ms);
  EXPECT_NE(s.pid(h), 0) << "a job-only kill leaves the worker running";

  std::remove(file.c_str());
  int h2 = s.add({"tree2", "/bin/sh", {"-c", script}, {}, 60s, false, {}});
  int child2 = read_pid(file);
  ASSERT_GT(child2, 0);
  s.signal(h2, SIGKILL);
  EXPECT_TRUE(qsim::testkit::eventually([&] { return s.pid(h2) == 0; }, 5000ms));
  EXPECT_TRUE(qsim::testkit::eventually([&] { return stopped_running(child2); }, 5000ms))
      << "a child in its own session dies with its worker";
  std::remove(file.c_str());
}
