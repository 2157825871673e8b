// Parsing an operator tool's command line one way (qsim-queue, qsim-dashboard): --help prints
// and exits 0, a usage error is said on stderr and exits 2 (bad usage, as their exit codes say).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

namespace qsim::tools {

// The exit code when the tool stops here (help: 0, bad usage: 2); none when it goes on.
inline std::optional<int> parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;
  }
  return std::nullopt;
}

}  // namespace qsim::tools
