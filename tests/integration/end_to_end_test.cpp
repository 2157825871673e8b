// The whole flow with every component a real process over real HTTP on a live Redis:
// provider -> payment intake -> queue -> 4 queue workers -> world (download, upload)
//          -> finalize -> world (grant, mail) -> completed.
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
#include <regex>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;

namespace {

const std::string kPaymentSecret = "whsec_e2e_payment";
const std::string kFinalizeSecret = "whsec_e2e_finalize";

class EndToEnd : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    tag = testkit::unique_queue_name();
    redis_url = testkit::live_redis().endpoint().to_string();
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    store = std::make_unique<store::TaskStore>(*conn, tag, "test");
    queue = std::make_unique<queue::Queue>(*conn, tag);
  }
  void start_services(const std::string& world_config, int worker_count, const std::string& mode = "queue") {
    world = std::make_unique<testkit::ServiceProcess>(QSIM_WORLD_EXE, std::vector<std::string>{});
    components::HttpClient admin("127.0.0.1", world->port());
    ASSERT_TRUE(admin.post("/config", world_config).ok());
    finalize = std::make_unique<testkit::ServiceProcess>(
        QSIM_FINALIZE_EXE,
        std::vector<std::string>{"--redis", redis_url, "--queue", tag, "--world-port", std::to_string(world->port())},
        std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}});
    intake = std::make_unique<testkit::ServiceProcess>(
        QSIM_PAYMENT_INTAKE_EXE, std::vector<std::string>{"--redis", redis_url, "--queue", tag, "--mode", mode},
        std::map<std::string, std::string>{{"QSIM_PAYMENT_SECRET", kPaymentSecret}});
    for (int i = 0; i < worker_count; ++i) start_worker("qw" + std::to_string(i));
  }
  void start_worker(const std::string& id, const std::string& lease_ms = "5000", const std::string& reaper_ms = "200") {
    workers.push_back(std::make_unique<testkit::ServiceProcess>(
        QSIM_QUEUE_WORKER_EXE,
        std::vector<std::string>{"--redis", redis_url, "--queue", tag, "--id", id, "--world-port",
                                 std::to_string(world->port()), "--finalize-port", std::to_string(finalize->port()),
                                 "--lease-ms", lease_ms, "--reaper-tick-ms", reaper_ms, "--backoff-ms", "50"},
        std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}}, "--health-port"));
  }
  void start_poller(const std::string& poll_ms) {
    poller = std::make_unique<testkit::ServiceProcess>(
        QSIM_POLLING_WORKER_EXE,
        std::vector<std::string>{"--redis", redis_url, "--queue", tag, "--poll-interval-ms", poll_ms, "--world-port",
                                 std::to_string(world->port()), "--finalize-port", std::to_string(finalize->port())},
        std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}}, "");
  }
  int world_calls(const std::string& api) { return testkit::world_calls(world->port(), api); }
  void pay(int orders) {
    components::HttpClient provider("127.0.0.1", intake->port());
    for (int i = 0; i < orders; ++i) {
      std::string id = "order-" + std::to_string(i);
      ASSERT_TRUE(store->create({id, id + "@example.com", "https://courses.example/" + id, 499'000}).value);
      std::string body = nlohmann::json{{"order_id", id}, {"amount", 499'000}, {"txn_id", "T" + id}}.dump();
      auto ts = components::unix_now();
      auto r = provider.post("/webhooks/payment", body,
                             {{std::string(security::kTimestampHeader), std::to_string(ts)},
                              {std::string(security::kSignatureHeader), security::sign(kPaymentSecret, ts, body)}});
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  bool wait_until_settled(int orders, std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      auto done = store->count(store::OrderStatus::completed).value + store->count(store::OrderStatus::dead).value +
                  store->count(store::OrderStatus::failed).value;
      if (done >= orders) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::map<std::string, int> effects(const std::string& api) { return testkit::world_effects(world->port(), api); }
  // Parses Prometheus text exposition strictly: every line is a # HELP / # TYPE comment or
  // `name{labels} value`; a histogram's buckets are cumulative. Returns series -> value.
  static std::map<std::string, double> parse_prometheus(const std::string& text) {
    std::map<std::string, double> out;
    std::regex comment(R"re(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+)re");
    std::regex sample(R"re(([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})?) (-?[0-9.eE+-]+|\+Inf|NaN))re");
    std::istringstream in(text);
    std::string line, last_bucket_metric;
    double last_bucket = 0;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_match(line, comment)) continue;
      if (!std::regex_match(line, m, sample)) {
        ADD_FAILURE() << "not Prometheus text: '" << line << "'";
        continue;
      }
      double v = std::stod(m[4]);
      out[m[1]] = v;
      auto bucket = line.find("_bucket{");
      if (bucket != std::string::npos) {
        auto metric = line.substr(0, bucket);
        if (metric == last_bucket_metric) {
          EXPECT_GE(v, last_bucket) << "buckets are cumulative: " << line;
        }
        last_bucket_metric = metric;
        last_bucket = v;
      }
    }
    return out;
  }
  long long metric_sum(const std::string& name) {
    long long total = 0;
    for (auto& w : workers) {
      components::HttpClient c("127.0.0.1", w->port());
      auto series = parse_prometheus(c.get("/metrics").body);
      EXPECT_TRUE(series.count(name)) << name;
      total += static_cast<long long>(series[name]);
    }
    return total;
  }

  std::string tag, redis_url;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<store::TaskStore> store;
  std::unique_ptr<queue::Queue> queue;
  std::unique_ptr<testkit::ServiceProcess> world, finalize, intake, poller;
  std::vector<std::unique_ptr<testkit::ServiceProcess>> workers;
};

}  // namespace

TEST_F(EndToEnd, FiftyOrdersFourQueueWorkersEachCompletedWithOneGrantAndOneEmail) {
  start_services(R"({"download":{"latency_ms":200},"upload":{"latency_ms":100}})", 4);
  pay(50);
  ASSERT_TRUE(wait_until_settled(50, 60s));
  EXPECT_EQ(store->count(store::OrderStatus::completed).value, 50);
  auto grants = effects("grant"), mails = effects("mail");
  EXPECT_EQ(grants.size(), 50u);
  EXPECT_EQ(mails.size(), 50u);
  for (auto& [order, n] : grants) EXPECT_EQ(n, 1) << order;
  for (auto& [order, n] : mails) EXPECT_EQ(n, 1) << order;
  auto c = queue->counters().value;
  EXPECT_EQ(c.acked, 50);
  EXPECT_EQ(c.dead, 0);
  // the workers' /metrics agree with the ledger
  EXPECT_EQ(metric_sum("tasks_completed_total"), 50);
  EXPECT_EQ(metric_sum("tasks_started_total"), 50);
  EXPECT_EQ(metric_sum("tasks_failed_total"), 0);
  EXPECT_EQ(metric_sum("queue_wait_seconds_count"), 50);
  EXPECT_EQ(metric_sum("download_duration_seconds_count"), 50);
  EXPECT_EQ(metric_sum("worker_busy"), 0) << "all idle at the end";
  for (auto& w : workers) EXPECT_EQ(components::HttpClient("127.0.0.1", w->port()).get("/health").status, 200);
  auto o = store->get("order-7").value;
  for (auto s : {"created", "paid", "processing", "downloading", "uploading", "finalizing", "completed"})
    EXPECT_TRUE(o->entered_ms.count(s)) << "every transition is timestamped: " << s;
}

TEST_F(EndToEnd, TransientWorldFailuresAreRetriedAndSucceed) {
  start_services(R"({"seed":5,"download":{"latency_ms":20,"fail_probability":0.4}})", 2);
  pay(10);
  ASSERT_TRUE(wait_until_settled(10, 60s));
  EXPECT_EQ(store->count(store::OrderStatus::completed).value, 10);
  auto c = queue->counters().value;
  EXPECT_GT(c.retried, 0) << "the seeded world failed some downloads";
  EXPECT_EQ(metric_sum("tasks_failed_total"), c.retried);
  for (auto& [order, n] : effects("grant")) EXPECT_EQ(n, 1) << order;
}

TEST_F(EndToEnd, PermanentWorldFailureDeadLettersTheJobAndMarksTheOrderDeadWithTheReason) {
  start_services(R"({"upload":{"fail_probability":1.0,"fail_kind":"permanent"}})", 1);
  pay(1);
  ASSERT_TRUE(wait_until_settled(1, 30s));
  auto o = store->get("order-0").value;
  EXPECT_EQ(o->status, store::OrderStatus::dead);
  EXPECT_EQ(o->last_error, "upload: HTTP 400");
  auto job = queue->status(o->job_id).value;
  EXPECT_EQ(job->state, queue::JobState::dead);
  EXPECT_EQ(job->attempts, 1) << "permanent: no retry";
  EXPECT_TRUE(effects("grant").empty());
}

TEST_F(EndToEnd, AWorkerKilledOnEveryAttemptLeavesTheOrderDeadNotInFlight) {
  start_services(R"({"download":{"latency_ms":3000}})", 0);
  auto next_worker = [&](int n) { start_worker("crashed" + std::to_string(n), "600", "100"); };
  pay(1);
  for (int attempt = 1; attempt <= 3; ++attempt) {  // the job's three attempts, each worker SIGKILLed mid-download
    next_worker(attempt);
    auto downloading = [&] {
      auto o = store->get("order-0").value;
      auto j = o ? queue->status(o->job_id).value : std::nullopt;
      return o && o->status == store::OrderStatus::downloading && j && j->state == queue::JobState::active &&
             j->attempts == attempt;
    };
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!downloading() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(downloading()) << "attempt " << attempt << " never reached the download: order "
                               << store::to_string(store->get("order-0").value->status);
    workers.back()->kill();
  }
  next_worker(4);  // the job's burial: it marks the order dead and is not run again
  ASSERT_TRUE(wait_until_settled(1, 30s)) << "the order stayed " << store::to_string(store->get("order-0").value->status);
  auto o = store->get("order-0").value;
  EXPECT_EQ(o->status, store::OrderStatus::dead);
  EXPECT_EQ(o->last_error, "lease expired on attempt 3 of 3: worker lost (crash loop)");
  auto job = queue->status(o->job_id).value;
  EXPECT_EQ(job->state, queue::JobState::dead);
  EXPECT_EQ(job->last_error, o->last_error);
  std::this_thread::sleep_for(3500ms);  // a fourth download, had one started, would be counted by now
  EXPECT_EQ(world_calls("download"), 3) << "a crash loop is not run a fourth time";
  EXPECT_TRUE(effects("grant").empty());
}

TEST_F(EndToEnd, FiftyOrdersThroughTheLegacyPollingWorker) {
  start_services(R"({"download":{"latency_ms":20},"upload":{"latency_ms":10}})", 0, "polling");
  pay(50);
  EXPECT_EQ(queue->counters().value.enqueued, 0) << "the legacy flow has no queue";
  start_poller("10");
  ASSERT_TRUE(wait_until_settled(50, 60s));
  EXPECT_EQ(store->count(store::OrderStatus::completed).value, 50);
  for (auto& [order, n] : effects("grant")) EXPECT_EQ(n, 1) << order;
  EXPECT_EQ(effects("mail").size(), 50u);
  EXPECT_GE(store->query_counts().value["polling_worker"], 50) << "every poll is a counted store query";
}

TEST_F(EndToEnd, PollingWorkerFailsAnOrderOnTheFirstErrorWithoutRetry) {
  start_services(R"({"download":{"fail_probability":1.0}})", 0, "polling");
  pay(1);
  start_poller("10");
  ASSERT_TRUE(wait_until_settled(1, 30s));
  auto o = store->get("order-0").value;
  EXPECT_EQ(o->status, store::OrderStatus::failed);
  EXPECT_EQ(o->last_error, "download: HTTP 503");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(world_calls("download"), 1) << "a transient error, and still no retry";
}

TEST_F(EndToEnd, PollingWorkerKilledMidJobLeavesTheOrderStuckForGood) {
  start_services(R"({"download":{"latency_ms":1500}})", 0, "polling");
  pay(1);
  start_poller("10");
  std::this_thread::sleep_for(400ms);  // claimed, downloading
  poller->kill();
  start_poller("10");                  // the operator restarts it
  std::this_thread::sleep_for(2500ms);
  auto o = store->get("order-0").value;
  EXPECT_EQ(o->status, store::OrderStatus::downloading) << "nobody ever looks at it again";
  EXPECT_EQ(world_calls("download"), 1);
  EXPECT_TRUE(effects("grant").empty());
}

TEST_F(EndToEnd, NoSecretInAnyWorkerCommandLine) {
  start_services("{}", 1);
  start_poller("1000");
  for (int pid : {workers[0]->pid(), poller->pid(), finalize->pid(), intake->pid()}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(cmdline.empty());
    EXPECT_EQ(cmdline.find(kFinalizeSecret), std::string::npos) << cmdline;
    EXPECT_EQ(cmdline.find(kPaymentSecret), std::string::npos) << cmdline;
  }
}

TEST_F(EndToEnd, HeartbeatsKeepALeaseAliveThroughAStageLongerThanTheLease) {
  world = std::make_unique<testkit::ServiceProcess>(QSIM_WORLD_EXE, std::vector<std::string>{});
  ASSERT_TRUE(components::HttpClient("127.0.0.1", world->port()).post("/config", R"({"download":{"latency_ms":2000}})").ok());
  finalize = std::make_unique<testkit::ServiceProcess>(
      QSIM_FINALIZE_EXE,
      std::vector<std::string>{"--redis", redis_url, "--queue", tag, "--world-port", std::to_string(world->port())},
      std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}});
  intake = std::make_unique<testkit::ServiceProcess>(
      QSIM_PAYMENT_INTAKE_EXE, std::vector<std::string>{"--redis", redis_url, "--queue", tag},
      std::map<std::string, std::string>{{"QSIM_PAYMENT_SECRET", kPaymentSecret}});
  workers.push_back(std::make_unique<testkit::ServiceProcess>(
      QSIM_QUEUE_WORKER_EXE,
      std::vector<std::string>{"--redis", redis_url, "--queue", tag, "--world-port", std::to_string(world->port()),
                               "--finalize-port", std::to_string(finalize->port()), "--lease-ms", "600",
                               "--reaper-tick-ms", "100"},
      std::map<std::string, std::string>{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}}, "--health-port"));
  pay(1);
  ASSERT_TRUE(wait_until_settled(1, 30s));
  EXPECT_EQ(store->get("order-0").value->status, store::OrderStatus::completed);
  EXPECT_EQ(queue->counters().value.redelivered, 0) << "a 2 s download under a 600 ms lease was never taken away";
  EXPECT_EQ(world_calls("download"), 1);
}

TEST(QueueWorkerHealth, ReportsRedisUnreachableAfterTheThreshold) {
  sim::RedisServer own;  // this test stops its Redis
  own.start();
  testkit::ServiceProcess worker(QSIM_QUEUE_WORKER_EXE,
                                 {"--redis", own.endpoint().to_string(), "--queue", "health", "--unhealthy-after-ms", "500"},
                                 {{"QSIM_FINALIZE_SECRET", "x"}}, "--health-port");
  components::HttpClient c("127.0.0.1", worker.port(), 2s);
  auto up = c.get("/health");
  EXPECT_EQ(up.status, 200) << up.body;
  auto j = nlohmann::json::parse(up.body);
  EXPECT_FALSE(j["worker"].get<std::string>().empty());
  EXPECT_TRUE(j.contains("current_job"));
  EXPECT_TRUE(j.contains("last_redis_contact_ms"));
  own.kill();
  std::this_thread::sleep_for(2000ms);
  auto down = c.get("/health");
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(nlohmann::json::parse(down.body)["status"], "redis_unreachable");
  own.start();
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = c.get("/health").status == 200;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(back) << "healthy again once Redis returns";
}
