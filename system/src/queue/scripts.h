// The queue engine's Lua scripts. Every state change of a job is one of these, run atomically
// by Redis. All scripts receive the same KEYS (see kKeyCount and Keys::script_keys order in
// queue.cpp) and ARGV[1] = the queue's key base "P:{Q}:".
#pragma once

#include "qsim/redis/connection.h"

namespace qsim::queue::scripts {

const redis::Script& enqueue();
const redis::Script& reserve();    // ack a batch, promote due delayed jobs, reserve a batch
const redis::Script& heartbeat();
const redis::Script& fail();
const redis::Script& release();
const redis::Script& reap();
const redis::Script& periodic();

}  // namespace qsim::queue::scripts
