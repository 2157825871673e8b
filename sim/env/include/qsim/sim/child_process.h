// Child processes started by the harness, its tests and benchmarks must not outlive them, even
// when the parent is SIGKILLed: pass `die_with_parent` to boost::process::child. Their
// environment is child_environment(): a copy, never the harness's own.
#pragma once

#include <boost/process/environment.hpp>
#include <boost/process/extend.hpp>

#include <map>
#include <string>
#include <vector>

#include <csignal>
#include <sys/prctl.h>
#include <unistd.h>

namespace qsim::sim {

// Linux asks the kernel to SIGKILL the child when the thread that started it exits. The child
// also gets its own process group: a Ctrl-C at the terminal reaches the harness alone, which
// then stops its children in order, instead of every process at once.
inline const auto die_with_parent = boost::process::extend::on_exec_setup = [](auto&) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::setpgid(0, 0);
};

// The harness's environment with `set` added and `drop` removed, as a copy to pass to
// boost::process::child. boost::this_process::environment() is the process's own: writing a
// child's secret into it would hand that secret to every process started later, and two
// architectures starting processes side by side would race on it (one lane's intake got the
// other lane's payment secret, and refused every signature).
inline boost::process::environment child_environment(const std::map<std::string, std::string>& set,
                                                     const std::vector<std::string>& drop = {}) {
  boost::process::environment env = boost::this_process::environment();
  for (const auto& k : drop) env.erase(k);
  for (const auto& [k, v] : set) env[k] = v;
  return env;
}

}  // namespace qsim::sim
