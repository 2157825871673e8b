// The simulated world's requests: its configuration (POST /config) and its API calls
// (download, upload, grant, mail). A bad configuration is std::invalid_argument naming a path;
// a call answers 200, 4xx or 5xx; nothing else.
#include "fuzz.h"
#include "qsim/clock.h"
#include "qsim/sim/world.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace qsim;
  std::string_view parts[3];
  fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), parts);
  ManualClock clock;  // latencies advance it; nothing sleeps
  sim::World world(sim::WorldConfig{}, clock);
  auto config = nlohmann::json::parse(parts[0], nullptr, false);
  if (!config.is_discarded()) {
    try {
      world.configure(sim::WorldConfig::from_json(config));
    } catch (const std::invalid_argument&) {
    }
  }
  static const char* const apis[] = {"download", "upload", "grant", "mail"};
  const auto api = apis[parts[1].empty() ? 0 : static_cast<unsigned char>(parts[1][0]) % 4];
  auto a = world.call(api, parts[2]);
  if (a.status != 200 && (a.status < 400 || a.status > 599)) fuzz::violated("status " + std::to_string(a.status));
  return 0;
}
