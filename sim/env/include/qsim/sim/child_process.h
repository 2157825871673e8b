// Child processes started by the harness, its tests and benchmarks must not outlive them, even
// when the parent is SIGKILLed: pass `die_with_parent` to boost::process::child.
#pragma once

#include <boost/process/extend.hpp>

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

}  // namespace qsim::sim
