#include "live_redis.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>

namespace qsim::testkit {

sim::RedisServer& live_redis() {
  static std::unique_ptr<sim::RedisServer> server;
  static std::string failure;
  if (!failure.empty()) throw sim::RedisStartError(failure);
  if (!server) {
    auto s = std::make_unique<sim::RedisServer>();
    try {
      s->start();
    } catch (const std::exception& e) {
      failure = e.what();
      throw;
    }
    server = std::move(s);
  }
  return *server;
}

std::string unique_queue_name() {
  static std::atomic<int> n{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "q";
  for (auto& c : name)
    if (c == '/' || c == '{' || c == '}') c = '_';
  return name + "." + std::to_string(::getpid()) + "." + std::to_string(n++);
}

std::string helper_path(const std::string& name) {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path() / name).string();
}

}  // namespace qsim::testkit
