// Least privilege in Redis: the ACL user of each component, allowed only the commands its code
// runs (scripts included: Redis checks every command a script runs against the caller's user)
// and only the keys it needs, for the queues and stores under one key prefix (any queue tag):
//
//   payment_intake  the store's keys, and the queue's keys for enqueueing: ready lists, delayed,
//                   the hand-off set, idle registrations, inboxes, jobs, counters, unique keys,
//                   the id sequence and the dead list; never the active set, the reaper lock,
//                   the pause flag nor the worker registry. Also WAIT (--wait-replicas).
//   queue_worker    every key under the prefix: it runs the engine (leases, the reaper,
//                   presence) and moves orders through the store. Also BLPOP (its inbox).
//   polling_worker  the store's keys only (order:*, status:*, store_queries): no queue key.
//   finalize        the same as the polling worker.
//
// The key layouts are in queue/keys.h and store/task_store.h. A user is "on" with a SHA-256 of
// its password (an ACL file never holds a password in clear) and no pub/sub channels.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace qsim::security {

enum class RedisRole { payment_intake, queue_worker, polling_worker, finalize };

std::string_view to_string(RedisRole r);  // "payment_intake", ...; also the users' names
const std::vector<RedisRole>& redis_roles();

// The rules of the role's user after "user NAME": "resetkeys resetchannels ~... -@all +...".
std::string redis_acl_rules(RedisRole role, std::string_view prefix);

// One line of an ACL file (Redis's aclfile): "user NAME on #<sha256 of password> RULES".
std::string redis_acl_line(std::string_view user, std::string_view password, std::string_view rules);

// A glob pattern that matches `text` literally (Redis glob: * ? [ ] \ escaped).
std::string glob_escape(std::string_view text);

}  // namespace qsim::security
