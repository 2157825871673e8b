#include "qsim/sim/redis_server.h"

#include "qsim/sim/child_process.h"
#include "qsim/security/redis_acl.h"
#include "qsim/security/signature.h"

#include <boost/process.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace bp = boost::process;

namespace qsim::sim {

struct RedisServer::Process {
  bp::child child;
};

namespace {
// A port picked by bind(127.0.0.1:0) and then closed is free only until the next outgoing
// connection on this host: connect() takes its local port from the same ephemeral range, and a
// run makes thousands of connections. When one of them took the port before the component bound
// it, the component could not listen (seen as "qsim-world: cannot listen on 127.0.0.1:P" in about
// one run in six). So the port stays reserved: the socket that picked it stays bound, with
// SO_REUSEADDR and never listening. connect() skips a port that a bind() holds, bind(0) elsewhere
// does too, and the component, which binds with SO_REUSEADDR (httplib here, redis-server, the
// frameworks' Python, Node and Ruby servers), may still listen on it, and listen again after a
// restart. The socket is close-on-exec, so no child inherits it.
struct Reserved {
  int fd;
  int port;
};

Reserved reserve_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw RedisStartError("socket(): cannot pick a free port");
  int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw RedisStartError("bind(127.0.0.1:0): cannot pick a free port");
  }
  return {fd, ntohs(addr.sin_port)};
}
}  // namespace

// Within this process a port is handed out once (start_http also checks that the answer on a
// port comes from the process it started), and stays reserved (above). A process that runs many
// scenarios keeps the latest kMaxReserved reservations; older ones, of runs long finished, are
// released.
int free_loopback_port() {
  constexpr std::size_t kMaxReserved = 512;
  static std::mutex mu;
  static std::set<int> given;
  static std::deque<Reserved> held;
  std::lock_guard lock(mu);
  for (int attempt = 0;; ++attempt) {
    Reserved r = reserve_loopback_port();
    if (!given.insert(r.port).second && attempt < 1000) {
      ::close(r.fd);
      continue;
    }
    held.push_back(r);
    if (held.size() > kMaxReserved) {
      ::close(held.front().fd);
      held.pop_front();
    }
    return r.port;
  }
}

namespace {

// The text of INFO `section`'s `key`, from its value on ("<n>", or "count=<n>" without its
// "count="); none when Redis does not answer or does not list the key.
std::optional<std::string> info_value(redis::Connection& c, const char* section, const std::string& key) {
  auto r = c.command({"INFO", section});
  if (!r) return std::nullopt;
  const std::string& text = r.reply.str;  // "# Section\r\nkey:value\r\n...": a key starts a line
  auto at = text.find("\n" + key + ":");
  if (at == std::string::npos) return std::nullopt;
  at += key.size() + 2;
  if (text.compare(at, 6, "count=") == 0) at += 6;
  return text.substr(at, text.find('\r', at) - at);
}

}  // namespace

long long redis_info_number(redis::Connection& c, const char* section, const std::string& key) {
  auto v = info_value(c, section, key);
  return v ? std::atoll(v->c_str()) : 0;
}

std::optional<double> redis_info_real(redis::Connection& c, const char* section, const std::string& key) {
  auto v = info_value(c, section, key);
  if (!v) return std::nullopt;
  return std::strtod(v->c_str(), nullptr);
}

std::optional<long long> sentinel_config_epoch(redis::Connection& sentinel, const std::string& master) {
  auto r = sentinel.command({"SENTINEL", "MASTER", master});
  for (std::size_t i = 0; r && i + 1 < r.reply.elements.size(); i += 2)  // field, value, ...
    if (r.reply.elements[i].str == "config-epoch") return std::atoll(r.reply.elements[i + 1].str.c_str());
  return std::nullopt;
}

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {}

RedisServer::~RedisServer() {
  try {
    stop();
  } catch (...) {
  }
  if (!dir_.empty()) {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool RedisServer::running() const { return proc_ && const_cast<bp::child&>(proc_->child).running(); }

int RedisServer::pid() const { return proc_ ? proc_->child.id() : -1; }

void RedisServer::start() {
  if (running()) return;
  if (dir_.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qsim-redis-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw RedisStartError("cannot create a temporary directory for redis-server");
    dir_ = tmpl;
  }
  if (options_.disk_bytes > 0 && !mounted_) {
    if (::geteuid() != 0)
      throw RedisStartError(fmt::format("a full disk (fill_disk) needs Redis's directory on a {} MiB tmpfs, and mounting one "
                                        "needs root: run it as root",
                                        options_.disk_bytes >> 20));
    const std::string opts = fmt::format("size={},mode=0700", options_.disk_bytes);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts.c_str()) != 0)
      throw RedisStartError(fmt::format("cannot mount a {} MiB tmpfs on {} for fill_disk: {}", options_.disk_bytes >> 20,
                                        dir_.string(), std::strerror(errno)));
    mounted_ = true;
  }
  auto exe = bp::search_path(options_.executable);
  if (exe.empty())
    throw RedisStartError("'" + options_.executable + "' not found on PATH (Debian package redis-server; scripts/test installs it)");

  std::string last_error;
  // A port picked as free can be taken before redis binds it; try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (port_ == 0 || attempt > 0) port_ = free_loopback_port();
    auto conf = dir_ / "redis.conf";
    {
      std::ofstream out(conf);
      out << "bind 127.0.0.1\nport " << port_ << "\ndir " << dir_.string() << "\n"
          << "logfile " << (dir_ / "redis.log").string() << "\n"
          << "daemonize no\nprotected-mode yes\n";
      if (options_.sentinel_of > 0) {
        // Sentinel rewrites this file as it learns (replicas, epochs): it must be its own.
        out << "sentinel monitor " << kSentinelMaster << " 127.0.0.1 " << options_.sentinel_of << " 1\n"
            << "sentinel down-after-milliseconds " << kSentinelMaster << " " << options_.sentinel_down_after_ms << "\n"
            // Long (10 min): after this long Sentinel points a replica that reaches its primary
            // through the fault proxy straight at the primary, and replica_lag has nothing to cut.
            << "sentinel failover-timeout " << kSentinelMaster << " 600000\n"
            << "sentinel parallel-syncs " << kSentinelMaster << " 1\n";
      } else {
        out << "save \"\"\nenable-debug-command local\n";  // DEBUG SLEEP stalls the server on purpose (faults, tests)
      }
      if (options_.replica_of > 0) out << "replicaof 127.0.0.1 " << options_.replica_of << "\n";
      // A replica that (re)joins is sent the data at once, not after the 5 s Redis 7 waits by
      // default for more replicas to share one transfer.
      if (options_.sentinel_of == 0) out << "repl-diskless-sync-delay 0\n";
      if (options_.sentinel_of > 0) {
      } else if (options_.appendonly == "no") {
        out << "appendonly no\n";
      } else {
        out << "appendonly yes\nappendfsync " << options_.appendonly << "\n";
      }
      if (!options_.acl_users.empty()) {
        if (admin_password_.empty()) admin_password_ = security::random_hex(24);
        const auto acl = dir_ / "users.acl";
        {
          std::ofstream users(acl);
          // Not "off": Redis 7.0 replays the AOF's MULTI/EXEC blocks (every script's writes) as
          // the default user and checks its rights again at EXEC, so a default user without
          // rights loses them all on a restart (redis/redis#14541, fixed upstream after the 7.0
          // that Debian ships). A password made up here and never kept keeps every client out.
          users << security::redis_acl_line("default", security::random_hex(32), "~* &* +@all") << "\n"
                << security::redis_acl_line(kRedisAdminUser, admin_password_, "~* &* +@all") << "\n";
          for (const auto& line : options_.acl_users) users << line << "\n";
        }
        std::filesystem::permissions(acl, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        out << "aclfile " << acl.string() << "\n";
      }
      out << options_.extra_config << "\n";
    }
    // The server dies with us even if we are SIGKILLed: no orphan servers.
    proc_ = std::make_unique<Process>(
        Process{options_.sentinel_of > 0
                    ? bp::child(exe, conf.string(), "--sentinel", bp::std_out > bp::null, bp::std_err > bp::null, die_with_parent)
                    : bp::child(exe, conf.string(), bp::std_out > bp::null, bp::std_err > bp::null, die_with_parent)});

    redis::Connection probe(endpoint(), {std::chrono::milliseconds(200), std::chrono::milliseconds(500),
                                                       std::chrono::milliseconds(1), std::chrono::milliseconds(1)});
    auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    while (std::chrono::steady_clock::now() < deadline && proc_->child.running()) {
      auto r = probe.command({"PING"});
      if (r.ok() && r.reply.str == "PONG") return;
      last_error = r.error;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (proc_->child.running()) break;  // alive but silent: not a port race
    proc_->child.wait();
  }
  std::ostringstream msg;
  msg << "redis-server did not start on 127.0.0.1:" << port_ << " within " << options_.start_timeout.count()
      << " ms (last error: " << last_error << ")";
  std::ifstream log(dir_ / "redis.log");
  std::string line, tail;
  while (std::getline(log, line)) tail = line;
  if (!tail.empty()) msg << "; its log says: " << tail;
  if (proc_ && proc_->child.running()) proc_->child.terminate();
  throw RedisStartError(msg.str());
}

redis::Endpoint RedisServer::endpoint() const {
  redis::Endpoint e{"127.0.0.1", port_, {}};
  if (!options_.acl_users.empty()) {
    e.user = kRedisAdminUser;
    e.password = admin_password_;
  }
  return e;
}

void RedisServer::stop() {
  if (!proc_) return;
  if (proc_->child.running()) {
    {
      redis::Connection c(endpoint(), {std::chrono::milliseconds(200), std::chrono::milliseconds(2000)});
      auto r = options_.sentinel_of > 0 ? c.command({"SHUTDOWN"})
                                        : c.command({"SHUTDOWN", options_.appendonly == "no" ? "NOSAVE" : "SAVE"});
      (void)r;  // a successful SHUTDOWN closes the connection: no reply is expected
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (proc_->child.running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (proc_->child.running()) proc_->child.terminate();
  }
  std::error_code ec;
  proc_->child.wait(ec);
  proc_.reset();
}

void RedisServer::kill() {
  if (!proc_) return;
  if (proc_->child.running()) proc_->child.terminate();  // SIGKILL in Boost.Process
  std::error_code ec;
  proc_->child.wait(ec);
  proc_.reset();
}

}  // namespace qsim::sim
