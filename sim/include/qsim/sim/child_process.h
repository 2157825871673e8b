// Child processes started by the harness, its tests and benchmarks must not outlive them, even
// when the parent is SIGKILLed: pass `die_with_parent` to boost::process::child.
#pragma once

#include <boost/process/extend.hpp>

#include <csignal>
#include <sys/prctl.h>

namespace qsim::sim {

// Linux asks the kernel to SIGKILL the child when the thread that started it exits.
inline const auto die_with_parent =
    boost::process::extend::on_exec_setup = [](auto&) { ::prctl(PR_SET_PDEATHSIG, SIGKILL); };

}  // namespace qsim::sim
