// Waiting in integration tests: poll a condition until it holds or `limit` passes (generous
// limits: these tests touch wall time on a shared machine).
#pragma once

#include <chrono>
#include <thread>

namespace qsim::testkit {

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return p();
}

}  // namespace qsim::testkit
