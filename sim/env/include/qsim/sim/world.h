// The simulated outside world: one HTTP process standing in for the course source (download),
// the cloud storage (upload), the permission API (grant) and the mail API (mail).
//
//   POST /api/<download|upload|grant|mail>   body {"order_id": "...", "key": "<idempotency key>"}
//        200 {"result":"ok","effect":true|false}   effect=false: the key was applied before
//        503 transient failure | 400 permanent failure | 400 malformed request
//   GET  /calls     every call: api, order, key, status, effect, at_ms (JSON array);
//                   /calls?since=N: the calls after the first N
//   POST /config    replace the behaviour (WorldConfig JSON) — the harness drives faults this way
//   GET  /health
//
// Each API waits its latency (served, on a timer), then fails with its probability. The failure
// decision is a pure function of (seed, api, key, how many times this key was called before), so
// a run replays whatever the interleaving of concurrent callers. An effect is applied once per key, like a
// real API honouring idempotency keys; the call log keeps every attempt, which is how the
// checker tells duplicate deliveries from duplicate effects.
//
// Thread-safety: World is safe from the HTTP server's threads.
#pragma once

#include "qsim/clock.h"
#include "qsim/sim/workload.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

namespace qsim::components {
class HttpService;
}

namespace qsim::sim {

enum class FailureKind { transient, permanent };

struct ApiBehaviour {
  std::chrono::milliseconds latency{0};
  // Per-order latency, overriding `latency`: the harness's planned stage durations, already
  // scaled to wall time ("per_order_us": {"order-7": 275000}).
  std::map<std::string, std::chrono::microseconds> per_order;
  double fail_probability = 0.0;
  FailureKind kind = FailureKind::transient;
  // After a successful call is recorded (and its effect applied), wait this long before
  // answering: the window in which the harness kills the caller "after the grant".
  std::chrono::microseconds hold{0};
};

struct WorldConfig {
  std::uint64_t seed = 1;
  double latency_factor = 1.0;  // every latency multiplied (slow_world)
  std::map<std::string, ApiBehaviour> apis{{"download", {}}, {"upload", {}}, {"grant", {}}, {"mail", {}}};
  // {"seed": 1, "download": {"latency_ms": 200, "fail_probability": 0.1, "fail_kind": "transient",
  //                           "per_order_us": {"order-1": 275000}}, ...}
  // Unknown keys and out-of-range values throw std::invalid_argument naming the JSON path.
  static WorldConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

struct WorldCall {
  std::string api, order, key;
  int status = 0;
  bool effect = false;
  std::int64_t at_ms = 0;  // steady clock, milliseconds
};

class World {
public:
  explicit World(WorldConfig config, Clock& clock = SystemClock::instance());

  struct Answer {
    int status;
    std::string body;
  };
  Answer call(const std::string& api, std::string_view body);  // begin, sleep, finish, hold
  // A call in two steps, for a server that waits without a thread: what it will do once its
  // latency has passed...
  struct Pending {
    std::string api, order, key;
    std::chrono::microseconds latency{0}, hold{0};
    double fail_probability = 0;
    FailureKind fail_kind = FailureKind::transient;
    std::uint64_t seed = 0;
    int nth = 0;  // this key's calls before this one
  };
  // ...or its answer at once (a malformed request, an unknown api)...
  std::variant<Answer, Pending> begin(const std::string& api, std::string_view body);
  // ...and, once the latency has passed: the call's outcome, recorded; `hold` is how long to
  // wait before answering it.
  Answer finish(const Pending& p, std::chrono::microseconds& hold);
  void configure(WorldConfig config);
  std::vector<WorldCall> calls(std::size_t since = 0) const;
  // Effects applied per order for one api (the checker's count).
  std::map<std::string, int> effects(const std::string& api) const;
  void mount(components::HttpService& http);

  // The failure decision, exposed for tests: uniform in [0,1) from (seed, api, key, nth).
  static double draw(std::uint64_t seed, std::string_view api, std::string_view key, int nth);

private:
  Clock* clock_;
  mutable std::mutex mu_;
  WorldConfig config_;
  std::map<std::string, int> calls_per_key_;   // api/key -> calls so far
  std::map<std::string, bool> applied_;        // api/key -> effect applied
  std::vector<WorldCall> log_;
};

}  // namespace qsim::sim
