// What the components tell the people who run them, read from real processes: their logs
// (one line per event that matters, text or JSON lines, never a secret or a signature), their
// /metrics (request-latency histograms at the intake and finalize, the polling worker's
// /health and /metrics), and the Grafana dashboard shipped beside them naming only metrics
// that some component exports.
#include "live_redis.h"
#include "qsim/components/http_client.h"
#include "qsim/components/webhook.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"
#include "service_process.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
namespace fs = std::filesystem;

namespace {

const std::string kPaymentSecret = "whsec_observability_payment_5b1e";
const std::string kFinalizeSecret = "whsec_observability_finalize_77c2";

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

}  // namespace

TEST(Observability, LogsMetricsAndTheDashboardFromRealComponents) {
  QSIM_REQUIRE_REDIS();
  const std::string tag = testkit::unique_queue_name(), poll_tag = testkit::unique_queue_name();
  const std::string redis_url = testkit::live_redis().endpoint().to_string();
  const fs::path logs = fs::temp_directory_path() / ("qsim-observability-" + tag);
  fs::create_directories(logs);
  const std::map<std::string, std::string> fin_env{{"QSIM_FINALIZE_SECRET", kFinalizeSecret}};

  testkit::ServiceProcess world(QSIM_WORLD_EXE, {});
  ASSERT_TRUE(components::HttpClient("127.0.0.1", world.port()).post("/config", R"({"download":{"latency_ms":5}})").ok());
  testkit::ServiceProcess finalize(QSIM_FINALIZE_EXE,
                                   {"--redis", redis_url, "--queue", tag, "--world-port", std::to_string(world.port()),
                                    "--log-level", "debug"},
                                   fin_env, "--port", (logs / "finalize.log").string());
  testkit::ServiceProcess intake(QSIM_PAYMENT_INTAKE_EXE, {"--redis", redis_url, "--queue", tag, "--log-level", "debug", "--log-json"},
                                 {{"QSIM_PAYMENT_SECRET", kPaymentSecret}}, "--port", (logs / "intake.log").string());
  testkit::ServiceProcess worker(QSIM_QUEUE_WORKER_EXE,
                                 {"--redis", redis_url, "--queue", tag, "--id", "qw-obs", "--world-port",
                                  std::to_string(world.port()), "--finalize-port", std::to_string(finalize.port()),
                                  "--log-level", "debug"},
                                 fin_env, "--health-port", (logs / "queue-worker.log").string());
  testkit::ServiceProcess finalize_poll(QSIM_FINALIZE_EXE,
                                        {"--redis", redis_url, "--queue", poll_tag, "--world-port", std::to_string(world.port())},
                                        fin_env);
  testkit::ServiceProcess poller(QSIM_POLLING_WORKER_EXE,
                                 {"--redis", redis_url, "--queue", poll_tag, "--poll-interval-ms", "10", "--world-port",
                                  std::to_string(world.port()), "--finalize-port", std::to_string(finalize_poll.port()),
                                  "--log-level", "debug"},
                                 fin_env, "--health-port", (logs / "polling-worker.log").string());

  redis::Connection conn(testkit::live_redis().endpoint());
  store::TaskStore store(conn, tag, "test"), poll_store(conn, poll_tag, "test");
  queue::Queue q(conn, tag);
  components::HttpClient provider("127.0.0.1", intake.port());
  std::set<std::string> signatures;  // every signature sent: none may reach a log
  auto deliver = [&](const std::string& id, std::int64_t ts, const std::string& secret) {
    std::string body = nlohmann::json{{"order_id", id}, {"amount", 100}, {"txn_id", "T" + id}}.dump();
    std::string sig = security::sign(secret, ts, body);
    signatures.insert(sig.substr(sig.find('=') + 1));
    return provider.post("/webhooks/payment", body,
                         {{std::string(security::kTimestampHeader), std::to_string(ts)},
                          {std::string(security::kSignatureHeader), sig}});
  };
  for (int i = 0; i < 3; ++i) {
    std::string id = "obs-" + std::to_string(i);
    ASSERT_TRUE(store.create({id, id + "@example.com", "https://courses.example/" + id, 100}).value);
    ASSERT_EQ(deliver(id, components::unix_now(), kPaymentSecret).status, 200);
  }
  EXPECT_EQ(deliver("obs-0", components::unix_now(), "whsec_forged").status, 401);
  EXPECT_EQ(deliver("obs-1", components::unix_now() - 3600, kPaymentSecret).status, 401);
  ASSERT_TRUE(poll_store.create({"poll-0", "p@example.com", "https://courses.example/p", 100}).value);
  ASSERT_EQ(poll_store.accept_payment("poll-0", "Tpoll", 100, nullptr).value.outcome, store::PaymentOutcome::accepted);
  auto settled = [&] {
    return store.count(store::OrderStatus::completed).value == 3 && poll_store.count(store::OrderStatus::completed).value == 1;
  };
  for (int i = 0; i < 500 && !settled(); ++i) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(settled());

  // metrics: the latency histograms count every delivery; the poller has /health and /metrics
  auto metrics = [](int port) { return components::HttpClient("127.0.0.1", port).get("/metrics").body; };
  const std::string intake_m = metrics(intake.port()), finalize_m = metrics(finalize.port()), worker_m = metrics(worker.port()),
                    poller_m = metrics(poller.port());
  EXPECT_NE(intake_m.find("payment_webhook_duration_seconds_count 5"), std::string::npos) << intake_m;
  EXPECT_NE(intake_m.find("payment_webhook_duration_seconds_bucket{le=\"+Inf\"} 5"), std::string::npos) << intake_m;
  EXPECT_NE(finalize_m.find("finalize_webhook_duration_seconds_count 3"), std::string::npos) << finalize_m;
  EXPECT_NE(poller_m.find("tasks_completed_total 1"), std::string::npos) << poller_m;
  EXPECT_NE(poller_m.find("polls_total "), std::string::npos) << poller_m;
  auto health = components::HttpClient("127.0.0.1", poller.port()).get("/health");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(nlohmann::json::parse(health.body)["status"], "ok");

  // the dashboard names only exported metrics
  auto dashboard = nlohmann::json::parse(slurp(fs::path(QSIM_SOURCE_DIR) / "system/dashboards/grafana.json"));
  const std::string exported = intake_m + finalize_m + worker_m + poller_m;
  std::set<std::string> named;
  const std::regex metric_re(R"(([a-z_]+_(?:total|seconds_bucket|seconds_count|seconds_sum|length|busy)))");
  for (const auto& panel : dashboard["panels"])
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (std::sregex_iterator m(expr.begin(), expr.end(), metric_re), end; m != end; ++m) named.insert((*m)[1]);
    }
  EXPECT_GE(named.size(), 10u);
  for (const auto& name : named) EXPECT_NE(exported.find("\n" + name), std::string::npos) << "the dashboard names " << name;

  // logs: stop the processes so every line is written, then read them all
  intake.stop();
  finalize.stop();
  worker.stop();
  poller.stop();
  std::map<std::string, std::string> log;
  for (const char* f : {"intake", "finalize", "queue-worker", "polling-worker"}) log[f] = slurp(logs / (std::string(f) + ".log"));
  for (const auto& [name, text] : log) {
    EXPECT_FALSE(text.empty()) << name << " logged nothing";
    for (const auto& secret : {kPaymentSecret, kFinalizeSecret, std::string("whsec_forged")})
      EXPECT_EQ(text.find(secret), std::string::npos) << name << " logged a secret";
    for (const auto& sig : signatures) EXPECT_EQ(text.find(sig), std::string::npos) << name << " logged a signature";
  }
  // the intake's are JSON lines, one per verdict
  std::map<std::string, int> verdicts;
  for (const auto& line : lines_of(log["intake"])) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON line: " << line;
    EXPECT_EQ(j["component"], "intake");
    EXPECT_TRUE(j.contains("ts") && j.contains("level")) << line;
    if (j["event"] == "webhook") verdicts[j["result"].get<std::string>()]++;
  }
  EXPECT_EQ(verdicts, (std::map<std::string, int>{{"accepted", 3}, {"bad_signature", 1}, {"stale_timestamp", 1}}));
  auto count = [](const std::string& text, const std::string& what) {
    int n = 0;
    for (const auto& line : lines_of(text)) n += line.find(what) != std::string::npos;
    return n;
  };
  EXPECT_EQ(count(log["queue-worker"], " job_reserved "), 3) << log["queue-worker"];
  EXPECT_EQ(count(log["queue-worker"], " job_done "), 3) << log["queue-worker"];
  EXPECT_EQ(count(log["finalize"], " webhook "), 3) << log["finalize"];
  EXPECT_EQ(count(log["polling-worker"], " order_completed order=poll-0"), 1) << log["polling-worker"];
  fs::remove_all(logs);
}
