// The network faults in the model: each link's state over simulated time (the windows of
// delay_network, limit_bandwidth, blackhole and reset_connections with a probability), and when
// a chunk or a whole exchange (a request and its answer) sent over a link at t arrives, as the
// harness's fault proxy passes it (env/fault_proxy.cpp):
// - every chunk waits out the latency and a share of the jitter (the model takes the mean, half
//   the jitter), and its bytes at the bandwidth limit;
// - a blackhole holds a chunk until it lifts, then passes it on: a request its client gave up on
//   still reaches the server (and is served) once the blackhole lifts;
// - a reset is rolled once an exchange, on the request: the request never reaches the server.
// Private to the model (sim/model/).
#pragma once

#include "qsim/sim/fault.h"

#include <array>
#include <cstdint>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace qsim::sim::model_links {

// network_links()'s order
enum Link : std::uint8_t { worker_redis, intake_redis, finalize_redis, worker_world, worker_finalize, finalize_world,
                           provider_intake, intake_handoff, kLinks };

struct Exchange {
  double end_s = 0;       // the answer back, or the client's failure (the reset, its timeout)
  double served_s = -1;   // when the server had the request (-1: never, a reset)
  bool failed = false;    // reset or timed out
  bool timed_out = false;
  bool served() const { return served_s >= 0 && std::isfinite(served_s); }  // the server had it, in the end
};

class Links {
public:
  explicit Links(const std::vector<Fault>& faults);
  bool any() const { return any_; }
  const LinkState& at(Link l, double t) const;
  // Whether an exchange begun at t over l is reset, its roll `draw` uniform in [0, 1).
  bool resets(Link l, double t, double draw) const { return at(l, t).reset_probability > draw; }
  // When a chunk of `bytes` sent at t over l arrives.
  double deliver(Link l, double t, double bytes = 0) const;
  // An exchange begun at t: its request (of `bytes`) reaches the server, which answers `serve_s`
  // later; the client gives up after timeout_s. `draw` (uniform in [0, 1)) rolls the reset.
  Exchange exchange(Link l, double t, double serve_s, double timeout_s, double draw, double bytes = 0) const;

private:
  using States = std::vector<std::pair<double, LinkState>>;
  States::const_iterator state(Link l, double t) const;  // the state holding on l at t
  bool any_ = false;
  // per link: the times its state changes (the first is -inf) and the state from each
  std::array<States, kLinks> states_;
};

}  // namespace qsim::sim::model_links
