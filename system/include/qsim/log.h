// The components' log: one line per event that matters (a job reserved, acked, failed or
// redelivered; a webhook's verdict; a Redis connection lost or made again), on stderr, as text
// or as JSON lines, through spdlog. Nothing is logged until a program calls setup(): the engine
// and the store used as a library stay silent.
//
// An event is a name and fields; no field ever carries a secret, a signature or a request body
// (tests/integration/logging_test.cpp reads every line the components write).
//
// Thread-safety: event() from any thread; setup() once, before the threads start.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace qsim::log {

enum class Level { debug, info, warn, error };

// `level`: debug, info, warn or error (std::invalid_argument otherwise); `json`: JSON lines
// {"ts", "level", "component", "event", fields...} instead of "ts level component event k=v ...".
void setup(std::string_view component, std::string_view level = "info", bool json = false);
bool enabled(Level level);

using Field = std::pair<std::string_view, std::string_view>;
void event(Level level, std::string_view name, std::initializer_list<Field> fields = {});

}  // namespace qsim::log
