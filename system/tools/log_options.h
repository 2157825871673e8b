// The log's command-line options, the same for every component: --log-level and --log-json
// (qsim/log.h). Nothing is logged to stdout; the log goes to stderr.
#pragma once

#include "qsim/log.h"

#include <CLI/CLI.hpp>

#include <string>

namespace qsim::tools {

struct LogOptions {
  std::string level = "info";
  bool json = false;

  void add_to(CLI::App& app) {
    app.add_option("--log-level", level, "debug (every job and claim), info, warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
        ->capture_default_str();
    app.add_flag("--log-json", json, "JSON lines instead of text");
  }
  void setup(std::string_view component) const { log::setup(component, level, json); }
};

}  // namespace qsim::tools
