// How a scenario file is read: strictly, field by field, every error naming the file, the JSON
// path and what was expected. Shared by the scenario loader and the fault families (each reads
// its own kinds' keys).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::sim {

class ScenarioError : public std::runtime_error {
public:
  ScenarioError(const std::string& file, const std::string& path, const std::string& expected)
      : std::runtime_error(file + ": " + path + ": " + expected), file_(file), path_(path) {}
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

private:
  std::string file_, path_;
};

// "55m" -> 3300.0 seconds. nullopt if not "<non-negative number><ms|s|m|h>".
std::optional<double> parse_duration_s(std::string_view text);

// A JSON value for an error message, cut to 40 characters.
std::string describe(const nlohmann::json& v);

// Reads one JSON object field by field; whatever was not asked for is an unknown key (done()).
class JsonReader {
public:
  JsonReader(const nlohmann::json& j, std::string path, const std::string& file);
  [[noreturn]] void fail(const std::string& path, const std::string& expected) const;
  std::string at(const std::string& key) const { return path_ + "." + key; }
  // Whether the key is there, without reading it (a read key is no longer an unknown one).
  bool has(const std::string& key) const { return j_.contains(key); }
  const nlohmann::json* get(const std::string& key, bool required);
  std::string str(const std::string& key, bool required = true, const std::string& fallback = "");
  std::string one_of(const std::string& key, const std::vector<std::string>& allowed);
  double number(const std::string& key, double lo, double hi, bool required = true, double fallback = 0,
                bool lo_open = false);
  int integer(const std::string& key, long long lo, long long hi, bool required = true, int fallback = 0);
  double duration(const std::string& key, bool required = true, double fallback = 0, bool positive = false);
  std::optional<bool> flag(const std::string& key);  // absent: nullopt
  JsonReader object(const std::string& key);
  void done() const;
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

private:
  const nlohmann::json& j_;
  std::string path_;
  const std::string& file_;
  std::set<std::string> seen_;
};

}  // namespace qsim::sim
