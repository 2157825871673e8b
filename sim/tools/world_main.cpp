// qsim-world: the simulated outside world as a process (see qsim/sim/world.h).
#include "qsim/components/http_service.h"
#include "qsim/sim/world.h"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"qsim world: the simulated course source, storage, permission and mail APIs"};
  int port = 8890;
  std::string config_path;
  app.add_option("--port", port, "HTTP port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--config", config_path, "WorldConfig JSON file (latency and failures per API, seed)");
  CLI11_PARSE(app, argc, argv);
  try {
    qsim::sim::WorldConfig config;
    if (!config_path.empty()) {
      std::ifstream in(config_path);
      if (!in) throw std::invalid_argument("cannot read " + config_path);
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_discarded()) throw std::invalid_argument(config_path + ": not valid JSON");
      config = qsim::sim::WorldConfig::from_json(j);
    }
    qsim::sim::World world(config);
    qsim::components::HttpService http;
    world.mount(http);
    return qsim::components::serve_until_signal(http, port, "qsim-world");
  } catch (const std::exception& e) {
    std::cerr << "qsim-world: " << e.what() << "\n";
    return 2;
  }
}
