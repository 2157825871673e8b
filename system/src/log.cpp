#include "qsim/log.h"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>

namespace qsim::log {

namespace {

std::shared_ptr<spdlog::logger> g_logger;  // set once by setup(), before any thread logs
bool g_json = false;

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

// A text value is written bare when it is one word, quoted (JSON string rules) otherwise.
std::string text_value(std::string_view v) {
  bool bare = !v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) bare = false;
  return bare ? std::string(v) : nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void setup(std::string_view component, std::string_view level, bool json) {
  Level l;
  if (level == "debug") l = Level::debug;
  else if (level == "info") l = Level::info;
  else if (level == "warn") l = Level::warn;
  else if (level == "error") l = Level::error;
  else throw std::invalid_argument("log level must be debug, info, warn or error, not '" + std::string(level) + "'");
  auto logger = std::make_shared<spdlog::logger>(std::string(component), std::make_shared<spdlog::sinks::stderr_sink_mt>());
  g_json = json;
  // JSON: the message is the event's fields, already encoded, after the common ones
  logger->set_pattern(json ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n",%v})"
                           : "%Y-%m-%dT%H:%M:%S.%e%z %l %n %v");
  logger->set_level(to_spd(l));
  logger->flush_on(spdlog::level::debug);  // a SIGKILL loses nothing already logged
  g_logger = std::move(logger);
}

bool enabled(Level level) { return g_logger && g_logger->should_log(to_spd(level)); }

// Empty fields are left out.
void event(Level level, std::string_view name, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line;
  if (g_json) {
    // the members inside the braces the pattern supplies, in the order given
    auto quoted = [](std::string_view v) {
      return nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    // (appended piece by piece: "literal" + std::string trips GCC 12's -Wrestrict, bug 105329)
    line = "\"event\":";
    line += quoted(name);
    for (const auto& [k, v] : fields) {
      if (v.empty()) continue;
      line += ',';
      line += quoted(k);
      line += ':';
      line += quoted(v);
    }
  } else {
    line = std::string(name);
    for (const auto& [k, v] : fields) {
      if (v.empty()) continue;
      line += ' ';
      line += k;
      line += '=';
      line += text_value(v);
    }
  }
  g_logger->log(to_spd(level), "{}", line);
}

}  // namespace qsim::log
