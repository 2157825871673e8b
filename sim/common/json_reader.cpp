#include "qsim/sim/json_reader.h"

#include <cctype>
#include <cmath>
#include <sstream>

namespace qsim::sim {

using nlohmann::json;

namespace {
std::string number_text(double d) {
  std::ostringstream o;
  o << d;
  return o.str();
}
}  // namespace

std::optional<double> parse_duration_s(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0 || i == text.size()) return std::nullopt;
  std::string number(text.substr(0, i));
  if (number.find('.') != number.rfind('.') || number.front() == '.' || number.back() == '.') return std::nullopt;
  double n = std::strtod(number.c_str(), nullptr);
  if (!std::isfinite(n)) return std::nullopt;  // 400 digits are not a duration
  auto unit = text.substr(i);
  double mult = unit == "ms" ? 0.001 : unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (mult < 0) return std::nullopt;
  if (!std::isfinite(n * mult)) return std::nullopt;
  return n * mult;
}

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

JsonReader::JsonReader(const json& j, std::string path, const std::string& file)
    : j_(j), path_(std::move(path)), file_(file) {
  if (!j_.is_object()) fail(path_, "expected an object, got " + describe(j_));
}

void JsonReader::fail(const std::string& path, const std::string& expected) const {
  throw ScenarioError(file_, path, expected);
}

const json* JsonReader::get(const std::string& key, bool required) {
  seen_.insert(key);
  auto it = j_.find(key);
  if (it == j_.end()) {
    if (required) fail(at(key), "missing (required)");
    return nullptr;
  }
  return &*it;
}

std::string JsonReader::str(const std::string& key, bool required, const std::string& fallback) {
  auto* v = get(key, required);
  if (!v) return fallback;
  if (!v->is_string() || v->get<std::string>().empty()) fail(at(key), "expected a non-empty string, got " + describe(*v));
  return *v;
}

std::string JsonReader::one_of(const std::string& key, const std::vector<std::string>& allowed) {
  auto s = str(key);
  for (auto& a : allowed)
    if (s == a) return s;
  std::string list;
  for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(at(key), "expected one of " + list + "; got \"" + s + "\"");
}

double JsonReader::number(const std::string& key, double lo, double hi, bool required, double fallback, bool lo_open) {
  auto* v = get(key, required);
  if (!v) return fallback;
  if (!v->is_number()) fail(at(key), "expected a number, got " + describe(*v));
  double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi || (lo_open && d == lo))
    fail(at(key), "expected a number in " + std::string(lo_open ? "(" : "[") + number_text(lo) + ", " + number_text(hi) +
                      "], got " + describe(*v));
  return d;
}

int JsonReader::integer(const std::string& key, long long lo, long long hi, bool required, int fallback) {
  auto* v = get(key, required);
  if (!v) return fallback;
  if (!v->is_number_integer()) fail(at(key), "expected an integer, got " + describe(*v));
  auto i = v->get<long long>();
  if (i < lo || i > hi)
    fail(at(key), "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + describe(*v));
  return static_cast<int>(i);
}

double JsonReader::duration(const std::string& key, bool required, double fallback, bool positive) {
  auto* v = get(key, required);
  if (!v) return fallback;
  std::optional<double> d = v->is_string() ? parse_duration_s(v->get<std::string>()) : std::nullopt;
  if (!d) fail(at(key), "expected a duration like \"250ms\", \"10s\", \"55m\" or \"1h\", got " + describe(*v));
  if (positive && *d <= 0) fail(at(key), "expected a duration greater than 0, got " + describe(*v));
  return *d;
}

std::optional<bool> JsonReader::flag(const std::string& key) {
  auto* v = get(key, false);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(at(key), "expected true or false, got " + describe(*v));
  return v->get<bool>();
}

JsonReader JsonReader::object(const std::string& key) {
  auto* v = get(key, true);
  return JsonReader(*v, at(key), file_);
}

void JsonReader::done() const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!seen_.count(it.key())) fail(at(it.key()), "unknown key (not in scenarios/schema.json)");
}

}  // namespace qsim::sim
