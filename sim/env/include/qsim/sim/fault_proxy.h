// A TCP fault proxy: every link between two processes of a run (a component and Redis, a worker
// and the world, the provider and the payment intake, ...) can be routed through one of its
// listening ports on 127.0.0.1, and the harness then degrades that link from outside, while
// the components run unchanged:
//
//   latency, jitter   each chunk is held this long (plus a seeded uniform share of jitter)
//   bandwidth         bytes per second, per direction of each connection (0: unlimited)
//   blackhole         connections are accepted, then nothing is forwarded until it lifts
//   reset             each exchange (a client's first bytes on a connection, or after an
//                     answer: a request, a command) resets its connection (RST) with a
//                     probability, so kept-alive clients meet it as often as others;
//                     reset_all() resets every open connection of the link at once
//
// Boost.Asio on one thread of its own. Loopback only: it listens on and connects to 127.0.0.1.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace qsim::sim {

struct LinkFaults {
  std::chrono::microseconds latency{0}, jitter{0};
  double bytes_per_s = 0;       // 0: unlimited
  bool blackhole = false;
  double reset_probability = 0; // per exchange (request, command)
};

struct LinkCounters {
  long long connections = 0, resets = 0, bytes = 0, delayed_chunks = 0;
};

class FaultProxy {
public:
  explicit FaultProxy(std::uint64_t seed = 1);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // Listens on a free loopback port that forwards to 127.0.0.1:upstream_port; returns the port.
  int add_link(const std::string& name, int upstream_port);
  void set(const std::string& link, LinkFaults faults);
  bool has_link(const std::string& link) const;
  void reset_all(const std::string& link);  // RST to every open connection of the link
  std::map<std::string, LinkCounters> counters() const;

private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace qsim::sim
