// The HTTP server's limits as command-line options, for the internet-facing components
// (payment intake and finalize): how long a client may take over its headers and its body,
// and how many connections the server holds at once.
#pragma once

#include "qsim/components/http_service.h"

#include <CLI/CLI.hpp>

#include <cmath>

namespace qsim::tools {

struct HttpLimitOptions {
  double header_timeout_s = 10;
  double body_timeout_s = 30;
  std::size_t max_connections = components::HttpLimits{}.max_connections;

  void add_to(CLI::App& app) {
    app.add_option("--header-timeout", header_timeout_s,
                   "seconds a client has to send a request's headers; an idle kept-alive connection closes after it")
        ->check(CLI::Range(0.01, 3600.0))
        ->capture_default_str();
    app.add_option("--body-timeout", body_timeout_s, "seconds a client has to send a request's body after its headers")
        ->check(CLI::Range(0.01, 3600.0))
        ->capture_default_str();
    app.add_option("--max-connections", max_connections, "connections held at once; a newer one is closed at once")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
  }

  components::HttpLimits limits() const {
    components::HttpLimits l;
    l.header_timeout = std::chrono::milliseconds(std::llround(header_timeout_s * 1000));
    l.body_timeout = std::chrono::milliseconds(std::llround(body_timeout_s * 1000));
    l.max_connections = max_connections;
    return l;
  }
};

}  // namespace qsim::tools
