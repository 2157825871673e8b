// The Redis key layout of one queue. Every key of queue Q under prefix P carries the hash tag
// {Q}, so a whole queue lives in one Redis Cluster slot and every script touches one slot.
//
//   P:{Q}:ready:high | :ready:default | :ready:low   LIST   job ids waiting, head = next out
//   P:{Q}:delayed                                    ZSET   job id -> due time (server ms)
//   P:{Q}:active                                     ZSET   lease token "<id>:<serial>" -> lease
//                                                           deadline (server ms)
//   P:{Q}:handed                                     ZSET   lease token -> lease deadline, for jobs
//                                                           leased to an idle worker's inbox by a
//                                                           producer; moved to active by the
//                                                           worker's first call about the job
//   P:{Q}:dead                                       LIST   dead-lettered job ids, oldest first
//   P:{Q}:stats                                      HASH   counters: enqueued reserved acked
//                                                           retried redelivered released dead
//                                                           burials requeued purged
//   P:{Q}:unique                                     HASH   unique key -> job id
//   P:{Q}:idle                                       ZSET   "<lease ms>|<max payload>|<worker>" -> registration
//                                                           expiry (server ms): workers blocked on
//                                                           their inbox, ready lists all empty
//   P:{Q}:inbox:<worker>                             LIST   jobs already leased to an idle worker
//                                                           ("id\ntoken\nattempt\nmax\nprio\npayload")
//   P:{Q}:seq                                        STRING last job id handed out (INCR)
//   P:{Q}:reaper                                     STRING reaper lock, one holder per tick (PX)
//   P:{Q}:job:<id>                                   HASH   payload prio state attempts max
//                                                           created serial worker error unique
//                                                           finished, periodic_slot (periodic jobs:
//                                                           the fire time it is for), and hist: the transitions
//                                                           "state@ms[@worker];..." (the final
//                                                           "done" is the finished field)
//   P:{Q}:periodic:<name>                            HASH   next: next fire time (server ms)
//   P:{Q}:paused                                     STRING set while an operator has paused the
//                                                           queue (admin.h): nothing is reserved
//   P:{Q}:workers                                    ZSET   worker id -> last word (server ms)
//   P:{Q}:worker:<id>                                HASH   job (current, empty: idle) beat interval
//                                                           started; expires an hour after its last word
//
// A job is in exactly one of ready:*, delayed, active or handed (by its token; an idle worker's
// inbox holds only jobs that are also in active or handed), or in none once done or dead (dead ids are listed
// in :dead). Moves between them happen only inside Lua scripts, so a job is
// never only in a worker's memory. All times are Redis server time (TIME inside the scripts).
#pragma once

#include <string>
#include <string_view>

namespace qsim::queue {

enum class Priority { high, normal, low };  // "default" in Redis and in scenario files

std::string_view to_string(Priority p);  // "high" | "default" | "low"
Priority priority_from_string(std::string_view s);  // throws std::invalid_argument

class Keys {
public:
  explicit Keys(std::string_view queue, std::string_view prefix = "qsim");

  const std::string& queue() const { return queue_; }
  // "P:{Q}:" — what job:<id>, inbox:<worker> and periodic:<name> are appended to.
  const std::string& base() const { return base_; }
  std::string ready(Priority p) const;
  std::string delayed() const { return base_ + "delayed"; }
  std::string active() const { return base_ + "active"; }
  std::string handed() const { return base_ + "handed"; }
  std::string dead() const { return base_ + "dead"; }
  std::string stats() const { return base_ + "stats"; }
  std::string unique() const { return base_ + "unique"; }
  std::string idle() const { return base_ + "idle"; }
  std::string inbox(std::string_view worker) const { return base_ + "inbox:" + std::string(worker); }
  std::string seq() const { return base_ + "seq"; }
  std::string reaper_lock() const { return base_ + "reaper"; }
  std::string job(std::string_view id) const { return base_ + "job:" + std::string(id); }
  std::string periodic(std::string_view name) const { return base_ + "periodic:" + std::string(name); }

private:
  std::string queue_;
  std::string base_;
};

}  // namespace qsim::queue
