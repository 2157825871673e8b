// The finalize service as a real process, with the simulated world as a real process: exactly
// one grant and one e-mail per order under concurrent calls and across a SIGKILL between the two
// effects; its own rejections; no secret in argv.
#include "live_redis.h"
#include "qsim/components/http_client.h"
#include "qsim/components/webhook.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"
#include "service_process.h"
#include "world_log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;

namespace {

const std::string kSecret = "whsec_finalize_test_91c2";

class FinalizeProcess : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    tag = testkit::unique_queue_name();
    world = std::make_unique<testkit::ServiceProcess>(QSIM_WORLD_EXE, std::vector<std::string>{});
    start_finalize();
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    store = std::make_unique<store::TaskStore>(*conn, tag, "test");
  }
  void start_finalize() {
    finalize = std::make_unique<testkit::ServiceProcess>(
        QSIM_FINALIZE_EXE,
        std::vector<std::string>{"--redis", testkit::live_redis().endpoint().to_string(), "--queue", tag, "--world-port",
                                 std::to_string(world->port())},
        std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kSecret}});
  }
  // An order that has reached the finalizing stage, as a worker would leave it.
  void order_at_finalizing(const std::string& id) {
    ASSERT_TRUE(store->create({id, id + "@example.com", "https://courses.example/" + id, 1}).value);
    for (auto [from, to] : {std::pair{store::OrderStatus::created, store::OrderStatus::paid},
                            {store::OrderStatus::paid, store::OrderStatus::processing},
                            {store::OrderStatus::processing, store::OrderStatus::finalizing}})
      ASSERT_TRUE(store->transition(id, {from}, to).value);
  }
  std::pair<int, std::string> call(const std::string& body, const std::string& secret = kSecret,
                                   std::int64_t ts = components::unix_now()) {
    components::HttpClient c("127.0.0.1", finalize->port(), 10s);
    auto r = c.post("/webhooks/finalize", body,
                    {{std::string(security::kTimestampHeader), std::to_string(ts)},
                     {std::string(security::kSignatureHeader), security::sign(secret, ts, body)}});
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return {r.status, j.is_object() ? j.value("result", "") : ""};
  }
  std::map<std::string, int> effects(const std::string& api) { return testkit::world_effects(world->port(), api); }
  std::string body(const std::string& order) { return nlohmann::json{{"order_id", order}}.dump(); }

  std::string tag;
  std::unique_ptr<testkit::ServiceProcess> world, finalize;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<store::TaskStore> store;
};

}  // namespace

TEST_F(FinalizeProcess, ThreeConcurrentCallsGiveOneGrantAndOneEmail) {
  order_at_finalizing("o-1");
  std::vector<std::pair<int, std::string>> results(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = call(body("o-1")); });
  for (auto& t : threads) t.join();
  int completed = 0;
  for (auto& [status, result] : results) {
    EXPECT_EQ(status, 200) << result;
    completed += result == "completed";
  }
  EXPECT_EQ(completed, 1);
  EXPECT_EQ(effects("grant")["o-1"], 1);
  EXPECT_EQ(effects("mail")["o-1"], 1);
  EXPECT_EQ(store->get("o-1").value->status, store::OrderStatus::completed);
  EXPECT_EQ(call(body("o-1")).second, "duplicate") << "a later call changes nothing";
}

TEST_F(FinalizeProcess, KilledBetweenGrantAndEmailThenRetriedGivesExactlyOneOfEach) {
  order_at_finalizing("o-2");
  components::HttpClient admin("127.0.0.1", world->port());
  // The grant takes 1.5 s: the finalize process is killed while it waits, after the world has
  // taken the grant call and before any e-mail call was made.
  ASSERT_TRUE(admin.post("/config", R"({"grant":{"latency_ms":1500}})").ok());
  std::thread first([&] { (void)call(body("o-2")); });
  std::this_thread::sleep_for(500ms);
  finalize->kill();
  first.join();
  std::this_thread::sleep_for(1200ms);  // the world finishes the grant it had started
  EXPECT_EQ(effects("grant")["o-2"], 1);
  EXPECT_EQ(effects("mail").count("o-2"), 0u) << "killed before the e-mail";
  EXPECT_EQ(store->get("o-2").value->status, store::OrderStatus::finalizing);

  ASSERT_TRUE(admin.post("/config", R"({})").ok());
  start_finalize();
  auto [status, result] = call(body("o-2"));  // the worker's retry
  EXPECT_EQ(status, 200);
  EXPECT_EQ(result, "completed");
  EXPECT_EQ(effects("grant")["o-2"], 1) << "the retried grant was a no-op: same idempotency key";
  EXPECT_EQ(effects("mail")["o-2"], 1);
  EXPECT_EQ(store->get("o-2").value->status, store::OrderStatus::completed);
}

TEST_F(FinalizeProcess, RejectionsHaveTheirOwnStatusAndChangeNothing) {
  order_at_finalizing("o-3");
  ASSERT_TRUE(store->create({"fresh", "f@example.com", "u", 1}).value);
  const auto now = components::unix_now();
  EXPECT_EQ(call(body("o-3"), "wrong-secret"), (std::pair<int, std::string>{401, "bad_signature"}));
  EXPECT_EQ(call(body("o-3"), kSecret, now - 301), (std::pair<int, std::string>{401, "stale_timestamp"}));
  EXPECT_EQ(call(body("o-3"), kSecret, now + 301), (std::pair<int, std::string>{401, "future_timestamp"}));
  EXPECT_EQ(call(body("nope")), (std::pair<int, std::string>{404, "unknown_order"}));
  EXPECT_EQ(call(body("fresh")), (std::pair<int, std::string>{409, "wrong_state"}));
  EXPECT_EQ(call("{\"order\": 1}"), (std::pair<int, std::string>{400, "malformed_body"}));
  components::HttpClient c("127.0.0.1", finalize->port());
  EXPECT_EQ(c.post("/webhooks/finalize", body("o-3")).status, 401) << "missing headers";
  EXPECT_TRUE(effects("grant").empty());
  EXPECT_EQ(store->get("o-3").value->status, store::OrderStatus::finalizing);
}

TEST_F(FinalizeProcess, NoSecretInTheCommandLine) {
  std::ifstream in("/proc/" + std::to_string(finalize->pid()) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(cmdline.find("qsim-finalize"), std::string::npos);
  EXPECT_EQ(cmdline.find(kSecret), std::string::npos);
}
