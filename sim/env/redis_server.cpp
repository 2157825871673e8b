#include "qsim/sim/redis_server.h"

#include "qsim/sim/child_process.h"

#include <boost/process.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
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
// Whether 127.0.0.1:port can be bound now (nothing listens there, nothing connects from it).
bool loopback_port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RedisStartError("socket(): cannot pick a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// The lowest local port the kernel gives outgoing connections.
int ephemeral_low() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 32768;
  f >> lo;
  return lo;
}
}  // namespace

// A port from bind(0) comes from the ephemeral range, which every outgoing connection draws its
// local port from: between our choice and the component's bind, a connection (there are
// thousands in a run, HTTP without keep-alive) may take it, and the component cannot listen.
// So ports come from below that range, where no connection ever lands, starting at a point
// drawn from this process's pid and handed out once per process (architectures side by side
// never share one).
int free_loopback_port() {
  static std::mutex mu;
  static std::set<int> given;
  static const int lo = ephemeral_low();
  constexpr int kFirst = 10'000;
  std::lock_guard lock(mu);
  const int span = lo - kFirst;  // the ports kFirst .. lo - 1
  if (span > 1000) {
    static int next = kFirst + static_cast<int>((static_cast<unsigned>(::getpid()) * 2654435761u) % static_cast<unsigned>(span));
    // A process that runs many scenarios (an embedder) goes round the range: once every port has
    // been handed out, the oldest are long closed and may be handed out again.
    for (int pass = 0; pass < 2; ++pass) {
      for (int tries = 0; tries < span; ++tries) {
        const int port = next;
        next = next + 1 >= lo ? kFirst : next + 1;
        if (!given.count(port) && loopback_port_free(port)) {
          given.insert(port);
          return port;
        }
      }
      given.clear();
    }
  }
  // no room below the range: whatever bind(0) gives, once
  for (int tries = 0; tries < 1000; ++tries) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw RedisStartError("socket(): cannot pick a free port");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (ok && given.insert(ntohs(addr.sin_port)).second) return ntohs(addr.sin_port);
  }
  throw RedisStartError("bind(127.0.0.1:0): cannot pick a free port");
}

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {}

RedisServer::~RedisServer() {
  try {
    stop();
  } catch (...) {
  }
  if (!dir_.empty()) {
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
          << "save \"\"\ndaemonize no\nprotected-mode yes\n"
          << "enable-debug-command local\n";  // DEBUG SLEEP stalls the server on purpose (faults, tests)
      if (options_.appendonly == "no") {
        out << "appendonly no\n";
      } else {
        out << "appendonly yes\nappendfsync " << options_.appendonly << "\n";
      }
      out << options_.extra_config << "\n";
    }
    // The server dies with us even if we are SIGKILLed: no orphan servers.
    proc_ = std::make_unique<Process>(
        Process{bp::child(exe, conf.string(), bp::std_out > bp::null, bp::std_err > bp::null, die_with_parent)});

    redis::Connection probe({"127.0.0.1", port_, {}}, {std::chrono::milliseconds(200), std::chrono::milliseconds(500),
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

void RedisServer::stop() {
  if (!proc_) return;
  if (proc_->child.running()) {
    {
      redis::Connection c(endpoint(), {std::chrono::milliseconds(200), std::chrono::milliseconds(2000)});
      auto r = c.command({"SHUTDOWN", options_.appendonly == "no" ? "NOSAVE" : "SAVE"});
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
