#include "qsim/security/redis_acl.h"

#include <openssl/sha.h>

namespace qsim::security {

namespace {

// Every command our components send or their scripts run (queue/scripts.cpp,
// store/task_store.cpp), and nothing else: no KEYS, no FLUSH*, no CONFIG, no EVAL of new code.
constexpr const char* kCommands =
    "-@all +ping +time +evalsha +script|load "
    "+hget +hgetall +hmget +hstrlen +hset +hsetnx +hdel +hincrby +del +exists +incr +set +pexpire "
    "+llen +lrange +lpush +rpush +lpop +lmpop +lrem +ltrim "
    "+zadd +zrem +zscore +zcard +zrange +zrevrange +zrangebyscore +zrevrangebyscore +zremrangebyscore";

}  // namespace

std::string_view to_string(RedisRole r) {
  switch (r) {
    case RedisRole::payment_intake: return "payment_intake";
    case RedisRole::queue_worker: return "queue_worker";
    case RedisRole::polling_worker: return "polling_worker";
    case RedisRole::finalize: return "finalize";
  }
  return "unknown";
}

const std::vector<RedisRole>& redis_roles() {
  static const std::vector<RedisRole> all{RedisRole::payment_intake, RedisRole::queue_worker, RedisRole::polling_worker,
                                          RedisRole::finalize};
  return all;
}

std::string glob_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string redis_acl_rules(RedisRole role, std::string_view prefix) {
  // P:{<any tag>}: — the base of every queue and store under the prefix
  const std::string base = glob_escape(prefix) + ":{*}:";
  std::vector<std::string> keys;
  const char* extra = "";
  switch (role) {
    case RedisRole::queue_worker:
      keys = {"*"};
      extra = " +blpop";
      break;
    case RedisRole::payment_intake:
      keys = {"order:*", "status:*", "txn", "store_queries", "ready:*", "delayed", "handed", "idle", "inbox:*",
              "job:*", "stats", "unique", "seq", "dead"};
      extra = " +wait";
      break;
    case RedisRole::polling_worker:
    case RedisRole::finalize:
      keys = {"order:*", "status:*", "store_queries"};
      break;
  }
  std::string out = "resetkeys resetchannels";
  for (const auto& k : keys) out += " ~" + base + k;
  return out + " " + kCommands + extra;
}

std::string redis_acl_line(std::string_view user, std::string_view password, std::string_view rules) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(password.data()), password.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string h;
  for (unsigned char b : digest) h += {hex[b >> 4], hex[b & 0xf]};
  return "user " + std::string(user) + " on #" + h + " " + std::string(rules);
}

}  // namespace qsim::security
