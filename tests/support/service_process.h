// A component started as a real process for a test: spawned with its arguments and extra
// environment (secrets go there, never in argv), ready once GET /health answers 200, stopped
// with SIGTERM (or killed) by the test. It dies with the test process.
#pragma once

#include "qsim/components/http_client.h"
#include "qsim/sim/child_process.h"
#include "qsim/sim/redis_server.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace qsim::testkit {

class ServiceProcess {
public:
  // `port_flag`: the option that takes the HTTP port (the queue worker's is --health-port);
  // empty for a process without HTTP, which counts as ready once it is running.
  // `stderr_path`: where its stderr (its log) goes; empty: nowhere.
  ServiceProcess(const std::string& exe, std::vector<std::string> args, std::map<std::string, std::string> env = {},
                 std::string port_flag = "--port", std::string stderr_path = {})
      : exe_(exe), args_(std::move(args)), env_(std::move(env)), port_flag_(std::move(port_flag)),
        stderr_path_(std::move(stderr_path)), port_(sim::free_loopback_port()) {
    start();
  }
  ~ServiceProcess() { stop(); }

  void start() {
    auto env = sim::child_environment(env_);
    auto args = args_;
    if (!port_flag_.empty()) args.insert(args.end(), {port_flag_, std::to_string(port_)});
    if (stderr_path_.empty())
      child_ = boost::process::child(exe_, boost::process::args(args), env, boost::process::std_out > boost::process::null,
                                     boost::process::std_err > boost::process::null, sim::die_with_parent);
    else
      child_ = boost::process::child(exe_, boost::process::args(args), env, boost::process::std_out > boost::process::null,
                                     boost::process::std_err > stderr_path_, sim::die_with_parent);
    if (port_flag_.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (child_.running()) return;
      throw std::runtime_error(exe_ + " exited at start");
    }
    components::HttpClient c("127.0.0.1", port_, std::chrono::milliseconds(200));
    for (int i = 0; i < 500; ++i) {
      if (c.get("/health").ok()) return;
      if (!child_.running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error(exe_ + " did not become healthy on port " + std::to_string(port_));
  }
  // SIGTERM, and the process must exit 0: a component that does not stop cleanly, or whose
  // sanitizer found something (sanitizers report on stderr and change the exit code), fails
  // the test that ran it.
  void stop() {
    if (child_.valid() && child_.running()) {
      ::kill(child_.id(), SIGTERM);
      child_.wait();
      EXPECT_EQ(child_.exit_code(), 0) << exe_ << " did not stop cleanly on SIGTERM";
    }
  }
  void kill() {
    if (child_.valid() && child_.running()) {
      ::kill(child_.id(), SIGKILL);
      child_.wait();
    }
  }
  int port() const { return port_; }
  int pid() const { return child_.id(); }

private:
  std::string exe_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  std::string port_flag_;
  std::string stderr_path_;
  int port_;
  boost::process::child child_;
};

}  // namespace qsim::testkit
