// qsim-dashboard: the live web view of a queue and its task store, against any Redis (what
// Sidekiq Web, bull-board and Flower are to theirs). See qsim/dashboard/dashboard.h.
//
// Exit codes: 0 stopped by SIGTERM or SIGINT; 2 bad usage or an unreadable token file; 3 the
// port cannot be bound.
#include "cli_parse.h"
#include "qsim/dashboard/dashboard.h"
#include "qsim/security/signature.h"

#include <CLI/CLI.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace qsim;
  CLI::App app{"qsim-dashboard: a live web view of a qsim queue (depth, throughput, workers, in-flight jobs, dead\n"
               "letters with a requeue button, orders by status).\n\n"
               "Example:\n"
               "  QSIM_DASHBOARD_SECRET_FILE=~/.qsim-token qsim-dashboard --redis redis://127.0.0.1:6380 --port 8090\n"
               "  then open http://127.0.0.1:8090/ (sign in with the token to requeue)\n\n"
               "The token comes from QSIM_DASHBOARD_SECRET or the file named by QSIM_DASHBOARD_SECRET_FILE, never\n"
               "from the command line; without one the dashboard is read-only."};
  std::string redis_url = "redis://127.0.0.1:6379", queue_name = "orders", prefix = "qsim", bind = "127.0.0.1";
  int port = 8090;
  bool any_address = false;
  app.add_option("--redis", redis_url, "Redis URL (redis://host:port or unix:///path)")->capture_default_str();
  app.add_option("--queue", queue_name, "queue name (also the task store's tag)")->capture_default_str();
  app.add_option("--prefix", prefix, "key prefix")->capture_default_str();
  app.add_option("--port", port, "port to serve on")->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--bind", bind, "IP address to serve on (one that is not loopback needs --any-address)")
      ->capture_default_str();
  app.add_flag("--any-address", any_address, "allow --bind to name an address that is not loopback");
  if (auto code = tools::parse_or_exit(app, argc, argv)) return *code;
  // An address, not a name; loopback unless told otherwise; never every address at once (the
  // page answers only requests addressed to a loopback name or to the bind address itself).
  in_addr v4{};
  in6_addr v6{};
  const bool is_v4 = ::inet_pton(AF_INET, bind.c_str(), &v4) == 1, is_v6 = ::inet_pton(AF_INET6, bind.c_str(), &v6) == 1;
  if (!is_v4 && !is_v6) {
    std::cerr << "qsim-dashboard: --bind " << bind << ": give an IP address (127.0.0.1, ::1, ...), not a name\n";
    return 2;
  }
  const bool loopback = is_v4 ? (ntohl(v4.s_addr) >> 24) == 127 : IN6_IS_ADDR_LOOPBACK(&v6);
  const bool unspecified = is_v4 ? v4.s_addr == INADDR_ANY : IN6_IS_ADDR_UNSPECIFIED(&v6);
  if (unspecified) {
    std::cerr << "qsim-dashboard: --bind " << bind << " means every address; name the one to serve on\n";
    return 2;
  }
  if (!loopback && !any_address) {
    std::cerr << "qsim-dashboard: --bind " << bind << " is not loopback; add --any-address to serve on it\n";
    return 2;
  }
  dashboard::Options o;
  o.bind = bind;
  o.port = port;
  dashboard::QueueSource source;
  try {
    o.token = security::find_secret("dashboard").value_or("");
    source.endpoint = redis::Endpoint::from_url(redis_url);
  } catch (const std::exception& e) {
    std::cerr << "qsim-dashboard: " << e.what() << "\n";
    return 2;
  }
  source.name = queue_name;
  source.queue = queue_name;
  source.prefix = prefix;
  dashboard::Dashboard d(o);
  d.add_queue(source);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  if (!d.start()) {
    std::cerr << "qsim-dashboard: " << d.error() << "\n";
    return 3;
  }
  std::cerr << "qsim-dashboard: http://" << (is_v6 ? "[" + bind + "]" : bind) << ":" << port << "/ for queue " << queue_name
            << " on " << source.endpoint.to_string() << (o.token.empty() ? " (read-only: no token)" : "") << "\n";
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  d.stop();
  return 0;
}
