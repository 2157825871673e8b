// The queue engine's Lua scripts. Every state change of a job is one of these, run atomically
// by Redis. KEYS come in one fixed order (scripts.cpp, Queue::Queue) of which each script takes
// the first key_count(); ARGV[1] is the queue's key base "P:{Q}:".
#pragma once

#include "qsim/redis/connection.h"

#include <cstddef>

namespace qsim::queue::scripts {

const redis::Script& enqueue();
const redis::Script& reserve();    // ack a batch, promote due delayed jobs, reserve a batch
const redis::Script& heartbeat();
const redis::Script& fail();
const redis::Script& release();
const redis::Script& reap();
const redis::Script& periodic();

// How many of the leading KEYS `script` uses.
std::size_t key_count(const redis::Script& script);

}  // namespace qsim::queue::scripts
