// Time as an injected dependency. Everything in qsim that reads time or sleeps takes a Clock&,
// so unit tests and the discrete-event model can use ManualClock and never sleep on the wall.
//
// Thread-safety: SystemClock is stateless and safe from any thread. ManualClock is safe to read
// and advance from several threads; sleep_for on a ManualClock advances the clock instead of
// blocking (there is no other thread to advance it in the tests that use it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace qsim {

using Millis = std::chrono::milliseconds;
using Micros = std::chrono::microseconds;

class Clock {
public:
  virtual ~Clock() = default;
  // Monotonic time; only differences are meaningful.
  virtual std::chrono::steady_clock::time_point now() const = 0;
  virtual void sleep_for(std::chrono::nanoseconds d) = 0;
};

class SystemClock final : public Clock {
public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::now(); }
  void sleep_for(std::chrono::nanoseconds d) override { std::this_thread::sleep_for(d); }
  // Never destroyed: objects with static storage (a test's private Redis, say) may still read
  // the clock while static destructors run.
  static SystemClock& instance() {
    static SystemClock* clock = new SystemClock;
    return *clock;
  }
};

class ManualClock final : public Clock {
public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns_.load()));
  }
  void sleep_for(std::chrono::nanoseconds d) override { advance(d); }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

private:
  std::atomic<std::int64_t> ns_{1'000'000'000};  // start away from zero so "never" is distinguishable
};

}  // namespace qsim
