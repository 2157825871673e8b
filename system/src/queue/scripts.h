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
// the operator's (admin.h)
const redis::Script& requeue_dead();
const redis::Script& purge();
const redis::Script& pause();
const redis::Script& presence();

// How many of the leading KEYS `script` uses (not counting a key the caller appends).
std::size_t key_count(const redis::Script& script);

// For scripts of other modules that must change a job and their own keys atomically (payment
// intake: the order becomes paid and its job is enqueued in one step). Such a script receives
// the queue's first 10 KEYS, then its own from KEYS[11]; ARGV[1] is the queue's key base.
enum class Part { now, hist, bury, lease, push_ready, promote, enqueue, token_id, revive };  // revive last
redis::Script compose(std::initializer_list<Part> parts, const char* body);
inline constexpr std::size_t kEnqueueKeyCount = 10;

}  // namespace qsim::queue::scripts
