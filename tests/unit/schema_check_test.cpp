// The schema validator (schema_check.h) on small schemas, and on scenarios through the loader:
// every problem is reported with its JSON path, and the messages say what was expected.
#include "qsim/sim/scenario.h"
#include "qsim/sim/schema_check.h"

#include <gtest/gtest.h>

#include <algorithm>

using nlohmann::json;
using qsim::sim::check_schema;
using qsim::sim::ScenarioError;

namespace {

// "path: message" per problem, the way they read in an error.
std::vector<std::string> problems(const json& schema, const json& v) {
  std::vector<std::string> out;
  for (const auto& p : check_schema(schema, v)) out.push_back(p.path + ": " + p.message);
  return out;
}

using Lines = std::vector<std::string>;

// The smallest valid scenario: the mutations below break it one way at a time.
json tiny() {
  return json::parse(R"({
    "name": "t", "seed": 1,
    "orders": {"count": 3, "arrival": {"kind": "burst"}},
    "job": {"download": {"dist": "constant", "value": "1m"}, "upload": {"dist": "constant", "value": "1m"}},
    "architectures": {"queue": {"workers": 2}}
  })");
}

}  // namespace

TEST(SchemaCheck, TypesRangesAndStrings) {
  const json s = json::parse(R"({"type": "object", "properties": {
    "n": {"type": "integer", "minimum": 1, "maximum": 10},
    "r": {"type": "number", "exclusiveMinimum": 0},
    "p": {"type": "string", "pattern": "^[a-z]+$", "description": "lower-case letters"},
    "s": {"type": "string", "minLength": 2},
    "e": {"enum": ["a", "b"]},
    "c": {"const": 1},
    "l": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}}})");
  EXPECT_EQ(problems(s, json::parse(R"({"n": 5, "r": 0.5, "p": "ab", "s": "ab", "e": "a", "c": 1, "l": [1]})")), Lines{});
  EXPECT_EQ(problems(s, json::parse(R"({"n": 11, "r": 0, "p": "A1", "s": "x", "e": "z", "c": 2, "l": []})")),
            (Lines{"$.c: expected 1, got 2", "$.e: expected one of a, b; got \"z\"",
                   "$.l: expected 1 to 2 item(s), got 0", "$.n: expected an integer in [1, 10], got 11",
                   "$.p: expected a string matching ^[a-z]+$ (lower-case letters), got \"A1\"",
                   "$.r: expected a number > 0, got 0", "$.s: expected a string of at least 2 character(s), got \"x\""}));
  // "integer" as the loader reads it: 1.0 is a number written as a float, not an integer
  EXPECT_EQ(problems(s, json::parse(R"({"n": 1.0, "c": 1.0, "l": [1, "x", 3]})")),
            (Lines{"$.c: expected 1, got 1.0", "$.l: expected 1 to 2 item(s), got 3", "$.l[1]: expected an integer, got \"x\"",
                   "$.n: expected an integer, got 1.0"}));
  EXPECT_EQ(problems(s, json::array()), Lines{"$: expected an object, got []"}) << "nothing more about a wrong type";
}

TEST(SchemaCheck, ObjectsRequiredUnknownKeysAndRefs) {
  const json s = json::parse(R"({"$defs": {"d": {"type": "string"}}, "type": "object", "additionalProperties": false,
    "required": ["workers"], "properties": {"workers": {"$ref": "#/$defs/d"}, "lease": {},
      "m": {"type": "object", "additionalProperties": {"type": "number"}, "minProperties": 1}}})");
  EXPECT_EQ(problems(s, json::parse(R"({"workrs": 1, "zzzzzzzzzz": 2, "m": {"a": "x"}})")),
            (Lines{"$.workers: missing (required)", "$.m.a: expected a number, got \"x\"",
                   "$.workrs: unknown key; did you mean \"workers\"?",
                   "$.zzzzzzzzzz: unknown key; expected one of lease, m, workers"}));
  EXPECT_EQ(problems(s, json::parse(R"({"workers": 3, "m": {}})")),
            (Lines{"$.m: expected at least 1 key(s)", "$.workers: expected a string, got 3"}));
}

TEST(SchemaCheck, OneOfToldApartByAConstReportsTheMatchingBranch) {
  const json s = json::parse(R"({"oneOf": [
    {"type": "object", "additionalProperties": false, "required": ["dist", "value"],
     "properties": {"dist": {"const": "constant"}, "value": {"type": "string"}}},
    {"type": "object", "additionalProperties": false, "required": ["dist", "mean"],
     "properties": {"dist": {"const": "exponential"}, "mean": {"type": "string"}}}]})");
  EXPECT_EQ(problems(s, json::parse(R"({"dist": "exponential", "mean": "1m"})")), Lines{});
  EXPECT_EQ(problems(s, json::parse(R"({"dist": "exponential", "meen": "1m"})")),
            (Lines{"$.mean: missing (required)", "$.meen: unknown key; did you mean \"mean\"?"}));
  EXPECT_EQ(problems(s, json::parse(R"({"dist": "exponential", "mean": "1m", "value": "1m"})")),
            Lines{"$.value: unknown key; expected one of dist, mean"})
      << "the keys of the branch whose const matches, no suggestion from afar";
  EXPECT_EQ(problems(s, json::parse(R"({"dist": "pareto"})")),
            Lines{"$.dist: expected one of constant, exponential; got \"pareto\""});
  EXPECT_EQ(problems(s, json::parse(R"({"value": "1m"})")), Lines{"$.dist: missing (required): one of constant, exponential"});
  EXPECT_EQ(problems(s, 3), Lines{"$: expected an object, got 3"});
}

TEST(SchemaCheck, OtherOneOfs) {
  // by type: the one branch that takes a string says what is wrong with this string
  const json gate = json::parse(R"({"oneOf": [{"type": "number"}, {"type": "string", "pattern": "^<= [0-9]+$"}]})");
  EXPECT_EQ(problems(gate, 3), Lines{});
  EXPECT_EQ(problems(gate, "=< 3"), Lines{"$: expected a string matching ^<= [0-9]+$, got \"=< 3\""});
  EXPECT_EQ(problems(gate, json::array({1})), Lines{"$: expected a number or a string matching ^<= [0-9]+$, got [1]"});
  // by required keys: exactly one of them
  const json when = json::parse(R"({"oneOf": [{"required": ["at"]}, {"required": ["every"]}]})");
  EXPECT_EQ(problems(when, json::parse(R"({"at": 1})")), Lines{});
  EXPECT_EQ(problems(when, json::object()), Lines{"$: expected exactly one of \"at\" or \"every\""});
  EXPECT_EQ(problems(when, json::parse(R"({"at": 1, "every": 2})")),
            Lines{"$: expected exactly one of \"at\" or \"every\", not several"});
}

// (c) of the issue: a mistyped key is named, with the key it was meant to be.
TEST(SchemaCheck, AMistypedKeyNamesTheKnownOne) {
  json j = tiny();
  j["architectures"]["queue"].erase("workers");
  j["architectures"]["queue"]["workrs"] = 10;
  const auto p = check_schema(qsim::sim::scenario_schema(), j);
  ASSERT_FALSE(p.empty());
  EXPECT_EQ(p.back().path + ": " + p.back().message, "$.architectures.queue.workrs: unknown key; did you mean \"workers\"?");
  j["architectures"]["queue"]["workers"] = 10;  // now the only problem
  try {
    qsim::sim::parse_scenario(j, "t.json");
    ADD_FAILURE() << "accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.path(), "$.architectures.queue.workrs");
    EXPECT_STREQ(e.what(), "t.json: $.architectures.queue.workrs: unknown key; did you mean \"workers\"?");
  }
}

// (d): every problem at once, the first as the error's path, one line each.
TEST(SchemaCheck, AFileWithTwoProblemsNamesBoth) {
  json j = tiny();
  j["seed"] = "one";
  j["job"]["upload"]["dist"] = "pareto";
  EXPECT_NO_THROW(qsim::sim::parse_scenario(tiny(), "t.json"));
  try {
    qsim::sim::parse_scenario(j, "t.json");
    ADD_FAILURE() << "accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.path(), "$.job.upload.dist");
    EXPECT_EQ(std::string(e.what()),
              "t.json: $.job.upload.dist: expected one of constant, uniform, normal, lognormal, empirical, exponential; "
              "got \"pareto\"\n"
              "t.json: $.seed: expected an integer, got \"one\"");
  }
}

TEST(SchemaCheck, CrossFieldRulesAreStillTheLoaders) {
  json j = tiny();
  j["job"]["download"] = json::parse(R"({"dist": "uniform", "min": "2m", "max": "1m"})");
  EXPECT_TRUE(check_schema(qsim::sim::scenario_schema(), j).empty()) << "no schema keyword compares two keys";
  try {
    qsim::sim::parse_scenario(j, "t.json");
    ADD_FAILURE() << "accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.path(), "$.job.download.max");
  }
}

// Found by fuzz_scenario (tests/fuzz/regressions/scenario/long_name): std::regex recurses once
// per character, and a 47 KB scenario name overflowed the stack. Patterned strings are bounded
// by maxLength in the schema, and the checker never runs a pattern over a very long string.
TEST(SchemaCheck, ALongStringIsRefusedWithoutRunningItsPattern) {
  auto j = nlohmann::json::parse(R"({"name": "x", "orders": {"count": 1, "arrival": {"kind": "burst"}},
    "job": {"download": {"dist": "constant", "value": "1s"}, "upload": {"dist": "constant", "value": "1s"}},
    "architectures": {"queue": {"workers": 1}}})");
  j["name"] = std::string(50'000, 'a');
  auto problems = check_schema(qsim::sim::scenario_schema(), j);
  auto name = std::find_if(problems.begin(), problems.end(), [](const auto& p) { return p.path == "$.name"; });
  ASSERT_NE(name, problems.end());
  EXPECT_NE(name->message.find("at most 256"), std::string::npos) << name->message;

  auto schema = nlohmann::json::parse(R"({"type": "string", "pattern": "^a+$"})");  // no maxLength
  auto unbounded = check_schema(schema, std::string(100'000, 'a'));
  ASSERT_EQ(unbounded.size(), 1u);
  EXPECT_NE(unbounded.front().message.find("at most 4096 bytes"), std::string::npos);
  EXPECT_TRUE(check_schema(schema, std::string(4096, 'a')).empty());
}
