#include "qsim/sim/schema_check.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <regex>

namespace qsim::sim {

namespace {

using nlohmann::json;
using Problems = std::vector<SchemaProblem>;

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// A bound as people write it: 10000000, not 10000000.0 as the JSON library prints a float.
std::string bound(const json& b) {
  const double d = b.get<double>();
  if (b.is_number_float() && d == static_cast<double>(static_cast<long long>(d)) && std::abs(d) < 1e15)
    return std::to_string(static_cast<long long>(d));
  return b.dump();
}

bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") return v.is_number_integer();  // as the loader reads it: 1, not 1.0
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  return false;
}

std::string a_type(const std::string& type) {
  return (type == "object" || type == "array" || type == "integer" ? "an " : "a ") + type;
}

std::string quoted_list(const json& values, const std::string& last_sep = ", ") {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += i + 1 == values.size() ? last_sep : ", ";
    out += values[i].is_string() ? values[i].get<std::string>() : values[i].dump();
  }
  return out;
}

// Levenshtein distance: the suggestion for a mistyped key is the known key nearest to it.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(const std::string& key, const json* properties) {
  if (!properties || properties->empty()) return "unknown key (this object takes none)";
  std::string best;
  std::size_t best_d = std::string::npos;
  json known = json::array();
  for (auto it = properties->begin(); it != properties->end(); ++it) {
    known.push_back(it.key());
    auto d = edit_distance(key, it.key());
    if (d < best_d) best_d = d, best = it.key();
  }
  // A suggestion further away than half the word is noise; the list of keys helps more then.
  if (best_d <= std::max<std::size_t>(2, key.size() / 2)) return "unknown key; did you mean \"" + best + "\"?";
  return "unknown key; expected one of " + quoted_list(known);
}

class Validator {
public:
  explicit Validator(const json& root) : root_(root) {}

  void check(const json& s, const json& v, const std::string& path, Problems& out) {
    if (!s.is_object()) return;  // `true` or a malformed schema node: nothing to enforce
    if (auto ref = s.find("$ref"); ref != s.end()) check(resolve(*ref), v, path, out);
    if (auto t = s.find("type"); t != s.end() && !has_type(v, *t)) {
      // Nothing else about a value of the wrong type is worth saying.
      out.push_back({path, "expected " + a_type(*t) + ", got " + describe(v)});
      return;
    }
    if (auto c = s.find("const"); c != s.end() && !(v == *c && has_type(v, json_type(*c))))
      out.push_back({path, "expected " + c->dump() + ", got " + describe(v)});
    if (auto e = s.find("enum"); e != s.end() && std::find(e->begin(), e->end(), v) == e->end())
      out.push_back({path, "expected one of " + quoted_list(*e) + "; got " + describe(v)});
    if (v.is_string()) check_string(s, v, path, out);
    if (v.is_number()) check_number(s, v, path, out);
    if (v.is_array()) check_array(s, v, path, out);
    if (v.is_object()) check_object(s, v, path, out);
    if (auto o = s.find("oneOf"); o != s.end()) check_one_of(*o, v, path, out);
  }

private:
  static std::string json_type(const json& c) {
    return c.is_number_integer() ? "integer" : c.is_number() ? "number" : c.is_string() ? "string"
           : c.is_boolean() ? "boolean" : c.is_object() ? "object" : c.is_array() ? "array" : "null";
  }

  const json& resolve(const json& ref) const {
    const std::string r = ref.get<std::string>();
    if (r.rfind("#/", 0) != 0) throw std::runtime_error("schema: only local $ref is supported, got " + r);
    return root_.at(json::json_pointer(r.substr(1)));
  }

  void check_string(const json& s, const json& v, const std::string& path, Problems& out) {
    const auto& str = v.get_ref<const std::string&>();
    auto chars = [&] {
      return std::count_if(str.begin(), str.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
    };
    if (auto m = s.find("minLength"); m != s.end()) {
      // JSON Schema counts characters: UTF-8 continuation bytes are not characters.
      if (chars() < m->get<long long>())
        out.push_back({path, "expected a string of at least " + m->dump() + " character(s), got " + describe(v)});
    }
    if (auto m = s.find("maxLength"); m != s.end() && chars() > m->get<long long>()) {
      out.push_back({path, "expected a string of at most " + m->dump() + " character(s), got " + describe(v)});
      return;  // and no pattern over it
    }
    // std::regex recurses once per character: a pattern is never run over a string this long
    // (found by fuzz_scenario: a 47 KB name overflowed the stack). The schema bounds every
    // patterned string with maxLength; this is the guard for one that does not.
    constexpr std::size_t kLongestMatched = 4096;
    if (auto p = s.find("pattern"); p != s.end() && str.size() > kLongestMatched) {
      out.push_back({path, "expected a string matching " + p->get<std::string>() + " of at most " +
                               std::to_string(kLongestMatched) + " bytes, got " + describe(v)});
      return;
    }
    if (auto p = s.find("pattern"); p != s.end() && !std::regex_search(str, regex(*p))) {
      std::string what = "expected a string matching " + p->get<std::string>();
      if (auto d = s.find("description"); d != s.end()) what += " (" + d->get<std::string>() + ")";
      out.push_back({path, what + ", got " + describe(v)});
    }
  }

  void check_number(const json& s, const json& v, const std::string& path, Problems& out) {
    const double d = v.get<double>();
    auto lo = s.find("minimum"), lo_open = s.find("exclusiveMinimum"), hi = s.find("maximum");
    const bool bad = (lo != s.end() && d < lo->get<double>()) || (lo_open != s.end() && d <= lo_open->get<double>()) ||
                     (hi != s.end() && d > hi->get<double>());
    if (!bad) return;
    auto t = s.find("type");
    std::string what = "expected " + (t != s.end() ? a_type(*t) : std::string("a number"));
    const json* low = lo != s.end() ? &*lo : lo_open != s.end() ? &*lo_open : nullptr;
    const char* open = lo != s.end() ? "[" : "(";
    if (low && hi != s.end()) what += " in " + std::string(open) + bound(*low) + ", " + bound(*hi) + "]";
    else if (low) what += std::string(lo != s.end() ? " >= " : " > ") + bound(*low);
    else what += " <= " + bound(*hi);
    out.push_back({path, what + ", got " + describe(v)});
  }

  void check_array(const json& s, const json& v, const std::string& path, Problems& out) {
    auto lo = s.find("minItems"), hi = s.find("maxItems");
    const auto n = static_cast<long long>(v.size());
    if ((lo != s.end() && n < lo->get<long long>()) || (hi != s.end() && n > hi->get<long long>())) {
      std::string want = lo != s.end() && hi != s.end()
                             ? (*lo == *hi ? lo->dump() : lo->dump() + " to " + hi->dump())
                             : lo != s.end() ? "at least " + lo->dump() : "at most " + hi->dump();
      out.push_back({path, "expected " + want + " item(s), got " + std::to_string(n)});
    }
    if (auto items = s.find("items"); items != s.end())
      for (std::size_t i = 0; i < v.size(); ++i) check(*items, v[i], path + "[" + std::to_string(i) + "]", out);
  }

  void check_object(const json& s, const json& v, const std::string& path, Problems& out) {
    if (auto r = s.find("required"); r != s.end())
      for (const auto& key : *r)
        if (!v.contains(key.get<std::string>())) out.push_back({path + "." + key.get<std::string>(), "missing (required)"});
    if (auto m = s.find("minProperties"); m != s.end() && static_cast<long long>(v.size()) < m->get<long long>()) {
      std::string want = "at least " + m->dump() + " key(s)";
      if (auto p = s.find("properties"); p != s.end()) {
        json keys = json::array();
        for (auto it = p->begin(); it != p->end(); ++it) keys.push_back(it.key());
        want = m->get<int>() == 1 ? "at least one of " + quoted_list(keys) : want + " of " + quoted_list(keys);
      }
      out.push_back({path, "expected " + want});
    }
    auto props = s.find("properties");
    auto extra = s.find("additionalProperties");
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string at = path + "." + it.key();
      if (props != s.end() && props->contains(it.key())) {
        check((*props)[it.key()], *it, at, out);
      } else if (extra != s.end()) {
        if (*extra == false) out.push_back({at, unknown_key_message(it.key(), props != s.end() ? &*props : nullptr)});
        else check(*extra, *it, at, out);
      }
    }
  }

  // The property that tells the branches apart: one every branch pins with a `const`.
  static std::optional<std::string> discriminator(const json& branches) {
    if (branches.empty() || !branches[0].contains("properties")) return std::nullopt;
    for (auto it = branches[0]["properties"].begin(); it != branches[0]["properties"].end(); ++it) {
      const bool everywhere = std::all_of(branches.begin(), branches.end(), [&](const json& b) {
        return b.contains("properties") && b["properties"].contains(it.key()) && b["properties"][it.key()].contains("const");
      });
      if (everywhere) return it.key();
    }
    return std::nullopt;
  }

  // How a branch reads in "expected ... or ...": its required keys, else its type.
  static std::string summary(const json& b) {
    if (b.contains("required") && !b.contains("type")) {
      std::string keys;
      for (const auto& k : b["required"]) keys += (keys.empty() ? "\"" : " and \"") + k.get<std::string>() + "\"";
      return keys;
    }
    if (!b.contains("type")) return "an alternative";
    std::string out = a_type(b["type"]);
    if (b.contains("pattern")) out += " matching " + b["pattern"].get<std::string>();
    return out;
  }

  void check_one_of(const json& branches, const json& v, const std::string& path, Problems& out) {
    if (auto key = discriminator(branches)) {
      json values = json::array();
      for (const auto& b : branches) values.push_back(b["properties"][*key]["const"]);
      if (!v.is_object()) return out.push_back({path, "expected an object, got " + describe(v)});
      auto it = v.find(*key);
      if (it == v.end()) return out.push_back({path + "." + *key, "missing (required): one of " + quoted_list(values)});
      for (const auto& b : branches)
        if (b["properties"][*key]["const"] == *it && has_type(*it, json_type(b["properties"][*key]["const"])))
          return check(b, v, path, out);
      return out.push_back({path + "." + *key, "expected one of " + quoted_list(values) + "; got " + describe(*it)});
    }
    std::vector<Problems> found(branches.size());
    std::size_t matching = 0;
    for (std::size_t i = 0; i < branches.size(); ++i) {
      check(branches[i], v, path, found[i]);
      matching += found[i].empty();
    }
    if (matching == 1) return;
    std::string alternatives;
    for (std::size_t i = 0; i < branches.size(); ++i)
      alternatives += (i == 0 ? "" : i + 1 == branches.size() ? " or " : ", ") + summary(branches[i]);
    if (matching > 1) return out.push_back({path, "expected exactly one of " + alternatives + ", not several"});
    // None matches: if only one branch takes a value of this type, its problems are the useful ones.
    std::optional<std::size_t> only;
    std::size_t typed = 0;
    for (std::size_t i = 0; i < branches.size(); ++i)
      if (branches[i].contains("type") && has_type(v, branches[i]["type"])) only = i, ++typed;
    if (typed == 1) {
      out.insert(out.end(), found[*only].begin(), found[*only].end());
      return;
    }
    bool all_required = std::all_of(branches.begin(), branches.end(), [](const json& b) { return !b.contains("type"); });
    out.push_back({path, "expected " + std::string(all_required ? "exactly one of " : "") + alternatives +
                             (all_required ? "" : ", got " + describe(v))});
  }

  const std::regex& regex(const json& pattern) {
    auto [it, fresh] = regexes_.try_emplace(pattern.get<std::string>());
    if (fresh) it->second = std::regex(it->first, std::regex::ECMAScript);  // JSON Schema patterns are ECMA-262
    return it->second;
  }

  const json& root_;
  std::map<std::string, std::regex> regexes_;
};

}  // namespace

std::vector<SchemaProblem> check_schema(const json& schema, const json& instance) {
  Problems out;
  Validator(schema).check(schema, instance, "$", out);
  return out;
}

const json& scenario_schema() {
  static const json schema = json::parse(scenario_schema_text());
  return schema;
}

}  // namespace qsim::sim
