// Reading the simulated world's call log (GET /calls) in tests: how many calls an API got, and
// how many effects it applied per order.
#pragma once

#include "qsim/components/http_client.h"

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace qsim::testkit {

inline nlohmann::json world_log(int port) {
  return nlohmann::json::parse(components::HttpClient("127.0.0.1", port).get("/calls").body);
}

inline std::map<std::string, int> world_effects(int port, const std::string& api) {
  std::map<std::string, int> out;
  for (auto& call : world_log(port))
    if (call["api"] == api && call["effect"].get<bool>()) out[call["order"]]++;
  return out;
}

inline int world_calls(int port, const std::string& api) {
  int n = 0;
  for (auto& call : world_log(port)) n += call["api"] == api;
  return n;
}

}  // namespace qsim::testkit
