// The scenario tier. Today it proves the front half of the contract: every file in scenarios/
// is valid, every malformed file is refused with the JSON path of its fault, and `sim
// validate` exits 0 or 2 accordingly. Running every scenario against its gates arrives with
// `sim run`.
#include "qsim/sim/report.h"
#include "qsim/sim/scenario.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace fs = std::filesystem;
namespace bp = boost::process;
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
  EXPECT_EQ(keys, (std::set<std::string>{"name", "seed", "speedup", "orders", "job", "architectures", "faults", "gates", "plan"}));
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
