// A private redis-server: its own temporary directory, a free loopback port, a generated
// redis.conf, stopped (and the directory removed) by the destructor. The harness runs on one
// when no --redis URL is given; tests and benchmarks run on one always.
//
// Never the default port 6379, never anything but 127.0.0.1. start() throws RedisStartError
// with the server's own log tail when the server does not answer PING in time.
//
// Thread-safety: not thread-safe; one owner.
#pragma once

#include "qsim/redis/connection.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace qsim::sim {

class RedisStartError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct RedisServerOptions {
  std::string executable = "redis-server";  // looked up on PATH
  std::string appendonly = "no";            // "no" | "everysec" | "always"
  std::chrono::milliseconds start_timeout{10'000};
  std::string extra_config;                 // appended to redis.conf verbatim
  // > 0: the directory (the AOF's) is a tmpfs of this many bytes, so that it can be filled
  // (fill_disk). Mounting needs root: start() says so when it is not.
  std::size_t disk_bytes = 0;
  // > 0: a replica of the primary on this loopback port (replicaof).
  int replica_of = 0;
  // > 0: not a data server but a Sentinel (redis-server --sentinel) watching the primary on this
  // loopback port as kSentinelMaster; it holds a primary down after sentinel_down_after_ms
  // unanswered, and then fails over on its own.
  int sentinel_of = 0;
  int sentinel_down_after_ms = 500;
  // Non-empty: Redis ACLs (least privilege). The server's aclfile holds these lines ("user NAME
  // on #sha256 RULES": security/redis_acl.h), the default user behind a password nobody knows, and an administrator of all
  // rights whose password this object makes up and uses itself (endpoint()). The file is read at
  // every start, so the users outlive a restart.
  std::vector<std::string> acl_users;
};

inline constexpr const char* kRedisAdminUser = "qsim_harness";

inline constexpr const char* kSentinelMaster = "qsim";

class RedisServer {
public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void start();        // picks a port on first start; a restart keeps port and directory
  void stop();         // SHUTDOWN (NOSAVE unless AOF), then SIGKILL if it lingers
  void kill();         // SIGKILL: a crash
  // From the next start() on, a replica of the primary on this loopback port (0: a primary).
  void set_replica_of(int port) { options_.replica_of = port; }
  bool running() const;
  int pid() const;

  int port() const { return port_; }
  // With ACLs, as the administrator (its password in memory only).
  redis::Endpoint endpoint() const;
  const std::filesystem::path& dir() const { return dir_; }

private:
  struct Process;
  RedisServerOptions options_;
  std::filesystem::path dir_;
  int port_ = 0;
  std::unique_ptr<Process> proc_;
  bool mounted_ = false;  // dir_ is a tmpfs of options_.disk_bytes
  std::string admin_password_;  // with ACLs
};

// A TCP port on 127.0.0.1 that no other socket holds, reserved for this process: a socket bound
// to it with SO_REUSEADDR (never listening) stays open, so that no outgoing connection takes it
// before the component that is given it listens there (with SO_REUSEADDR, as all ours do).
int free_loopback_port();

// A number of INFO `section` ("<key>:<n>", or "<key>:count=<n>" in errorstats); 0 when Redis does
// not answer or does not list the key (INFO errorstats lists only the errors that happened).
long long redis_info_number(redis::Connection& c, const char* section, const std::string& key);
// The same as a real number (INFO cpu's "used_cpu_sys:1.234567"); none when Redis does not answer
// or does not list the key.
std::optional<double> redis_info_real(redis::Connection& c, const char* section, const std::string& key);

// A Sentinel's config epoch for the primary it watches as `master` (SENTINEL MASTER): the epoch
// of its last failover, 0 before any; nullopt when it does not answer or know the name.
std::optional<long long> sentinel_config_epoch(redis::Connection& sentinel, const std::string& master);

}  // namespace qsim::sim
