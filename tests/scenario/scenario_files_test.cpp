// The scenario tier. Today it proves the front half of the contract: every file in scenarios/
// is valid, every malformed file is refused with the JSON path of its fault, and `sim
// validate` exits 0 or 2 accordingly. Running every scenario against its gates arrives with
// `sim run`.
#include "qsim/sim/report.h"
#include "qsim/sim/scenario.h"
#include "qsim/sim/schema_check.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace fs = std::filesystem;
namespace bp = boost::process;
using nlohmann::json;
using qsim::sim::ScenarioError;

namespace {
const fs::path kRoot = QSIM_SOURCE_DIR;

std::vector<fs::path> scenario_files() {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(kRoot / "scenarios"))
    if (e.path().extension() == ".json" && e.path().filename() != "schema.json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Every valid scenario the project has: shipped, soak and test data.
std::vector<fs::path> valid_files() {
  auto out = scenario_files();
  for (const char* dir : {"scenarios/soak", "tests/scenario/data"})
    for (auto& e : fs::directory_iterator(kRoot / dir))
      if (e.path().extension() == ".json") out.push_back(e.path());
  return out;
}

json read_json(const fs::path& p) { return json::parse(std::ifstream(p)); }

// Where a document is refused, or "" if it is accepted.
template <class F>
std::string refused_at(F&& parse) {
  try {
    parse();
    return "";
  } catch (const ScenarioError& e) {
    return e.path();
  }
}

// One broken copy of a valid scenario and the path it must be refused at ("" if any path will do,
// e.g. a dropped key may be required by a oneOf at the object's own path).
struct Mutation {
  std::string what;
  json doc;
  std::string path;
};

// At every object level: drop each key, add an unknown key, replace each value by a wrong type,
// set each number out of range (-1, 10^13).
void mutate(const json& root, const json& node, const json::json_pointer& ptr, const std::string& path,
            std::vector<Mutation>& out) {
  // A value of the wrong type for every place in a scenario: no key takes a boolean but the two
  // flags, which take no string.
  auto wrong = [](const json& v) { return v.is_boolean() ? json("true") : json(true); };
  // An external worker's config is its own (passed as QSIM_CONFIG as written): nothing to refuse.
  if (path == "$.architectures.external.config") return;
  if (node.is_object()) {
    // gates is a map from metric names: a new key is a metric, checked by check_gate_metrics.
    if (path != "$.gates") {
      json doc = root;
      doc[ptr]["zzz_unknown"] = 1;
      out.push_back({"add " + path + ".zzz_unknown", doc, path + ".zzz_unknown"});
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      json dropped = root;
      dropped[ptr].erase(it.key());
      out.push_back({"drop " + path + "." + it.key(), dropped, ""});
      json typed = root;
      typed[ptr / it.key()] = wrong(*it);
      out.push_back({"retype " + path + "." + it.key(), typed, path + "." + it.key()});
      // Out of range both ways: the schema's bounds and the loader's must be the same.
      if (it->is_number())
        for (json n : {json(-1), json(10'000'000'000'000ULL)}) {
          json ranged = root;
          ranged[ptr / it.key()] = n;
          out.push_back({"set " + path + "." + it.key() + " = " + n.dump(), ranged, ""});
        }
      mutate(root, *it, ptr / it.key(), path + "." + it.key(), out);
    }
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string at = path + "[" + std::to_string(i) + "]";
      json typed = root;
      typed[ptr / i] = wrong(node[i]);
      out.push_back({"retype " + at, typed, at});
      mutate(root, node[i], ptr / i, at, out);
    }
  }
}

int run_sim(std::vector<std::string> args) {
  bp::child c(QSIM_SIM_EXE, bp::args(args), bp::std_out > bp::null, bp::std_err > bp::null);
  c.wait();
  return c.exit_code();
}
}  // namespace

TEST(ScenarioFiles, EveryShippedScenarioIsValid) {
  auto files = scenario_files();
  ASSERT_FALSE(files.empty());
  for (auto& f : files) {
    try {
      auto s = qsim::sim::load_scenario(f.string());
      qsim::sim::check_gate_metrics(s);
      EXPECT_EQ(s.name + ".json", f.filename().string()) << "a scenario's name matches its file";
    } catch (const ScenarioError& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(ScenarioFiles, TheBuiltInSchemaIsThePublishedOne) {
  EXPECT_EQ(json::parse(qsim::sim::scenario_schema_text()), read_json(kRoot / "scenarios/schema.json"))
      << "the build embeds scenarios/schema.json: reconfigure";
}

TEST(ScenarioFiles, EveryValidScenarioPassesTheSchemaAndTheLoader) {
  for (auto& f : valid_files()) {
    for (const auto& p : qsim::sim::check_schema(qsim::sim::scenario_schema(), read_json(f)))
      ADD_FAILURE() << f << ": " << p.path << ": " << p.message;
    EXPECT_EQ(refused_at([&] { qsim::sim::load_scenario(f.string()); }), "") << f;
    EXPECT_EQ(refused_at([&] { qsim::sim::parse_scenario_without_schema(read_json(f), f.string()); }), "") << f;
  }
}

// The schema and the loader's own checks cannot drift: every broken copy of every valid file is
// refused by both, at the same path (and load_scenario, which runs both, names that path too).
// A dropped key may leave a document the schema accepts; then the loader must accept it as
// well, unless it breaks a rule across keys that no schema keyword expresses (listed here).
TEST(ScenarioFiles, SchemaAndLoaderRefuseEveryMutationAtTheSamePath) {
  // dropped key -> what the loader says instead: the cross-field rules
  const std::vector<std::pair<std::string, std::string>> cross_field{
      {".persistence", "the same persistence"},  // every restart_redis shares one server
      {"drop $.faults", "a replica to wait for"},  // wait_for_replicas needs the failover_redis's replica
      {"drop $.faults[0]", "a replica to wait for"},
  };
  int refused = 0;
  for (auto& f : valid_files()) {
    const json doc = read_json(f);
    std::vector<Mutation> mutations;
    mutate(doc, doc, json::json_pointer(), "$", mutations);
    for (const auto& m : mutations) {
      const std::string where = f.filename().string() + ": " + m.what;
      auto problems = qsim::sim::check_schema(qsim::sim::scenario_schema(), m.doc);
      const std::string schema_path = problems.empty() ? "" : problems[0].path;
      std::string loader_message;
      const std::string loader_path = refused_at([&] {
        try {
          qsim::sim::parse_scenario_without_schema(m.doc, f.string());
        } catch (const ScenarioError& e) {
          loader_message = e.what();
          throw;
        }
      });
      const std::string both_path = refused_at([&] { qsim::sim::parse_scenario(m.doc, f.string()); });
      if (!m.path.empty()) {
        EXPECT_EQ(schema_path, m.path) << where << " (schema)";
      }
      if (schema_path.empty()) {
        bool known = false;
        for (const auto& [key, says] : cross_field)
          known |= m.what.size() >= key.size() && m.what.compare(m.what.size() - key.size(), key.size(), key) == 0 &&
                   loader_message.find(says) != std::string::npos;
        if (!known) {
          EXPECT_EQ(loader_path, "") << where << ": the schema accepts it, the loader says " << loader_message;
        }
        continue;
      }
      ++refused;
      EXPECT_EQ(loader_path, schema_path) << where << ": " << problems[0].message << " / " << loader_message;
      EXPECT_EQ(both_path, schema_path) << where;
    }
  }
  EXPECT_GE(refused, 500) << "the mutations reach every level of every file";
}

TEST(ScenarioFiles, EveryMalformedFileIsRefusedAtItsJsonPath) {
  std::ifstream manifest(kRoot / "tests/scenario/malformed/expected.tsv");
  std::string line;
  int checked = 0;
  std::set<std::string> listed;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    auto file = line.substr(0, tab), path = line.substr(tab + 1);
    listed.insert(file);
    auto full = (kRoot / "tests/scenario/malformed" / file).string();
    try {
      // what `sim validate` and `sim run` check before anything starts
      qsim::sim::check_gate_metrics(qsim::sim::load_scenario(full));
      ADD_FAILURE() << file << " was accepted";
    } catch (const ScenarioError& e) {
      EXPECT_EQ(e.path(), path) << file << ": " << e.what();
      EXPECT_EQ(e.file(), full);
      EXPECT_EQ(std::string(e.what()).rfind(full + ": " + path + ": ", 0), 0u) << "file: path: expected — " << e.what();
    }
    ++checked;
  }
  EXPECT_GE(checked, 30);
  for (auto& e : fs::directory_iterator(kRoot / "tests/scenario/malformed")) {
    if (e.path().extension() == ".json") {
      EXPECT_TRUE(listed.count(e.path().filename().string())) << e.path() << " unlisted";
    }
  }
}

TEST(ScenarioFiles, SchemaListsExactlyTheKeysTheLoaderAccepts) {
  auto schema = nlohmann::json::parse(std::ifstream(kRoot / "scenarios/schema.json"));
  std::set<std::string> keys;
  for (auto& [k, v] : schema["properties"].items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"name", "seed", "speedup", "side_by_side", "redis_acl", "orders", "job",
                                         "architectures", "faults", "payment_intake", "gates", "plan"}));
  EXPECT_EQ(schema["additionalProperties"], false);
}

TEST(SimValidate, ExitCodes) {
  EXPECT_EQ(run_sim({"validate", (kRoot / "scenarios/100_orders.json").string()}), 0);
  EXPECT_EQ(run_sim({"validate", (kRoot / "tests/scenario/malformed/13_arrival_unknown_kind.json").string()}), 2);
  EXPECT_EQ(run_sim({"validate", (kRoot / "scenarios/100_orders.json").string(),
                     (kRoot / "tests/scenario/malformed/04_missing_name.json").string()}),
            2)
      << "one bad file among good ones";
  EXPECT_EQ(run_sim({}), 2) << "no subcommand is a usage error";
  EXPECT_EQ(run_sim({"validate", "/no/such/file.json"}), 2);
  EXPECT_EQ(run_sim({"--help"}), 0);
}

TEST(Durations, UnitsAndRejections) {
  using qsim::sim::parse_duration_s;
  EXPECT_EQ(parse_duration_s("250ms"), 0.25);
  EXPECT_EQ(parse_duration_s("10s"), 10.0);
  EXPECT_EQ(parse_duration_s("55m"), 3300.0);
  EXPECT_EQ(parse_duration_s("1.5h"), 5400.0);
  EXPECT_EQ(parse_duration_s("0s"), 0.0);
  for (const char* bad : {"", "10", "s", "10 s", "-5m", "1.2.3s", ".5s", "5.s", "10d", "10S"})
    EXPECT_FALSE(parse_duration_s(bad).has_value()) << bad;
}
