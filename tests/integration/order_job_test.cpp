// OrderJob, the work for one paid order, run in this process against a real world and a real
// finalize service on a live Redis: where a (re)delivery resumes, and what a delivery does when
// another delivery of the same order has overtaken it (it was paused past its lease).
#include "live_redis.h"
#include "qsim/components/http_client.h"
#include "qsim/components/order_job.h"
#include "qsim/store/task_store.h"
#include "service_process.h"
#include "world_log.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
using store::OrderStatus;

namespace {

const std::string kFinalizeSecret = "whsec_order_job_finalize";

class OrderJobTest : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    tag = testkit::unique_queue_name();
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    store = std::make_unique<store::TaskStore>(*conn, tag, "test");
    world = std::make_unique<testkit::ServiceProcess>(QSIM_WORLD_EXE, std::vector<std::string>{});
    finalize = std::make_unique<testkit::ServiceProcess>(
        QSIM_FINALIZE_EXE,
        std::vector<std::string>{"--redis", testkit::live_redis().endpoint().to_string(), "--queue", tag, "--world-port",
                                 std::to_string(world->port())},
        std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}});
  }
  components::StageEndpoints endpoints() const { return {world->port(), finalize->port(), kFinalizeSecret, 5000ms}; }
  // An order paid and then moved along `path`, as an earlier delivery would have left it.
  void order_at(const std::string& id, std::vector<OrderStatus> path) {
    ASSERT_TRUE(store->create({id, id + "@example.com", "https://courses.example/" + id, 499'000}).value);
    OrderStatus at = OrderStatus::created;
    path.insert(path.begin(), OrderStatus::paid);
    for (auto to : path) {
      ASSERT_TRUE(store->transition(id, {at}, to, "earlier-delivery").value);
      at = to;
    }
  }
  OrderStatus status(const std::string& id) { return store->get(id).value->status; }
  int calls(const std::string& api) { return testkit::world_calls(world->port(), api); }

  std::string tag;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<store::TaskStore> store;
  std::unique_ptr<testkit::ServiceProcess> world, finalize;
};

}  // namespace

TEST_F(OrderJobTest, ARedeliveryFindingTheOrderMidUploadStartsAgainFromTheDownload) {
  order_at("order-1", {OrderStatus::processing, OrderStatus::downloading, OrderStatus::uploading});
  components::OrderJob job(*store, endpoints(), "w2");
  job.run("order-1");
  EXPECT_EQ(status("order-1"), OrderStatus::completed);
  EXPECT_EQ(calls("download"), 1) << "the download lives on the worker that made it: done again";
  EXPECT_EQ(calls("upload"), 1);
  EXPECT_EQ(calls("grant"), 1);
}

// The race the chaos soak found: a delivery that finds the order finalizing used to pull it back
// to processing, from under the finalize call of the delivery that held it, which then got 409
// and dead-lettered a paid order.
TEST_F(OrderJobTest, ARedeliveryFindingTheOrderFinalizingOnlyFinalizesIt) {
  order_at("order-2", {OrderStatus::processing, OrderStatus::downloading, OrderStatus::uploading,
                       OrderStatus::finalizing});
  components::OrderJob job(*store, endpoints(), "w2");
  job.run("order-2");
  EXPECT_EQ(status("order-2"), OrderStatus::completed);
  EXPECT_EQ(calls("download"), 0) << "the upload is done: nothing to download again";
  EXPECT_EQ(calls("upload"), 0);
  EXPECT_EQ(testkit::world_effects(world->port(), "grant")["order-2"], 1);
  EXPECT_EQ(testkit::world_effects(world->port(), "mail")["order-2"], 1);
}

TEST_F(OrderJobTest, ADeliveryOvertakenByAnotherStopsBeforeFinalizeAndLeavesTheOrderToIt) {
  // The stale delivery's download takes 600 ms; meanwhile another delivery takes the order over.
  ASSERT_TRUE(components::HttpClient("127.0.0.1", world->port())
                  .post("/config", R"({"download":{"per_order_us":{"order-3":600000}}})")
                  .ok());
  order_at("order-3", {});
  auto stale = std::async(std::launch::async, [&] {
    redis::Connection own(testkit::live_redis().endpoint());  // one connection per thread
    store::TaskStore own_store(own, tag, "test");
    components::OrderJob job(own_store, endpoints(), "w1");
    try {
      job.run("order-3");
      return std::string("finished");
    } catch (const components::Superseded& e) {
      return std::string(e.what());
    }
  });
  // w1 is inside its download; w2 (a redelivery) restarts the order and gets it to uploading.
  for (int i = 0; i < 200 && status("order-3") != OrderStatus::downloading; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(status("order-3"), OrderStatus::downloading);
  ASSERT_TRUE(store->transition("order-3", {OrderStatus::downloading}, OrderStatus::processing, "w2").value);
  ASSERT_TRUE(store->transition("order-3", {OrderStatus::processing}, OrderStatus::downloading, "w2").value);
  ASSERT_TRUE(store->transition("order-3", {OrderStatus::downloading}, OrderStatus::uploading, "w2").value);
  const std::string outcome = stale.get();
  EXPECT_NE(outcome.find("another delivery of it has taken it over"), std::string::npos) << outcome;
  EXPECT_EQ(status("order-3"), OrderStatus::uploading) << "the stale delivery neither moved nor finalized it";
  EXPECT_EQ(calls("upload"), 0);
  EXPECT_EQ(calls("grant"), 0);
}
