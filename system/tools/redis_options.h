// The --redis option of every component: a URL that may name a Redis ACL user
// (redis://user@host:port), whose password comes from QSIM_REDIS_SECRET or the file named by
// QSIM_REDIS_SECRET_FILE, never from argv.
#pragma once

#include "qsim/redis/connection.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace qsim::tools {

struct RedisOptions {
  std::string url = "redis://127.0.0.1:6379";

  void add_to(CLI::App& app) {
    app.add_option("--redis", url,
                   "Redis URL: redis://[user@]host:port or redis+sentinel://[user@]host:port/master; a user's "
                   "password from QSIM_REDIS_SECRET or the file named by QSIM_REDIS_SECRET_FILE")
        ->capture_default_str();
  }

  // The endpoint, with its password. A component cannot work around a right it lacks, and
  // retrying never mends one: from here on, a command Redis denies ends the process (exit 77),
  // after its log line, so that a supervisor sees a deployment error rather than an outage.
  redis::Endpoint endpoint_exiting_on_denial() const {
    redis::set_denied_handler([](const std::string& message) {
      std::fprintf(stderr, "fatal: %s (exit %d: this Redis user lacks a right the component needs)\n", message.c_str(),
                   redis::kDeniedExitCode);
      std::fflush(stderr);
      std::_Exit(redis::kDeniedExitCode);
    });
    return redis::Endpoint::from_url(url);
  }
};

}  // namespace qsim::tools
