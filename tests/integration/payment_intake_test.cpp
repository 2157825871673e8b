// Payment intake as a real process over real HTTP on a live Redis: the security matrix, the
// idempotency of repeated deliveries, and no secret in argv.
#include "live_redis.h"
#include "service_process.h"
#include "qsim/components/webhook.h"
#include "qsim/security/signature.h"
#include "qsim/sim/child_process.h"
#include "qsim/store/task_store.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
namespace bp = boost::process;

namespace {

const std::string kSecret = "whsec_payment_test_7f3a";

std::string payment(const std::string& order, long long amount, const std::string& txn) {
  return nlohmann::json{{"order_id", order}, {"amount", amount}, {"txn_id", txn}}.dump();
}

class PaymentIntakeProcess : public ::testing::Test {
protected:
  void SetUp() override {
    QSIM_REQUIRE_REDIS();
    tag = testkit::unique_queue_name();
    proc = std::make_unique<testkit::ServiceProcess>(
        QSIM_PAYMENT_INTAKE_EXE,
        std::vector<std::string>{"--redis", testkit::live_redis().endpoint().to_string(), "--queue", tag, "--max-body", "1024"},
        std::map<std::string, std::string>{{"QSIM_PAYMENT_SECRET", kSecret}});
    port = proc->port();
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_connection_timeout(1);
    client->set_read_timeout(5);
    conn = std::make_unique<redis::Connection>(testkit::live_redis().endpoint());
    store = std::make_unique<store::TaskStore>(*conn, tag, "test");
    queue = std::make_unique<queue::Queue>(*conn, tag);
  }
  struct Reply {
    int status = 0;
    std::string result;
  };
  Reply post(const std::string& body, std::optional<std::string> ts, std::optional<std::string> sig) {
    httplib::Headers h;
    if (ts) h.emplace(std::string(security::kTimestampHeader), *ts);
    if (sig) h.emplace(std::string(security::kSignatureHeader), *sig);
    auto r = client->Post("/webhooks/payment", h, body, "application/json");
    if (!r) return {};
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    return {r->status, j.is_object() ? j.value("result", "") : ""};
  }
  Reply signed_post(const std::string& body, std::int64_t ts, const std::string& secret = kSecret) {
    return post(body, std::to_string(ts), security::sign(secret, ts, body));
  }
  std::map<std::string, long long> metrics() {
    std::map<std::string, long long> out;
    auto r = client->Get("/metrics");
    if (!r) return out;
    std::regex line(R"re(payment_webhooks_total\{result="([a-z_]+)"\} (\d+))re");
    for (std::sregex_iterator it(r->body.begin(), r->body.end(), line), end; it != end; ++it)
      out[(*it)[1]] = std::stoll((*it)[2]);
    return out;
  }
  void create(const std::string& id, long long amount = 499'000) {
    ASSERT_TRUE(store->create({id, id + "@example.com", "https://courses.example/" + id, amount}).value);
  }

  std::string tag;
  int port = 0;
  std::unique_ptr<testkit::ServiceProcess> proc;
  std::unique_ptr<httplib::Client> client;
  std::unique_ptr<redis::Connection> conn;
  std::unique_ptr<store::TaskStore> store;
  std::unique_ptr<queue::Queue> queue;
};

}  // namespace

TEST_F(PaymentIntakeProcess, SecurityMatrixEachRejectionHasItsStatusAndCounterAndChangesNothing) {
  create("victim");
  create("paid-one");
  const auto now = components::unix_now();
  const std::string good = payment("victim", 499'000, "T-victim");
  ASSERT_EQ(signed_post(payment("paid-one", 499'000, "T-paid"), now).result, "accepted");

  struct Case {
    std::string name;
    std::function<Reply()> send;
    int status;
    std::string result;
  };
  std::string tampered = good;
  tampered.replace(tampered.find("499000"), 6, "100000");
  std::vector<Case> cases = {
      {"wrong secret", [&] { return signed_post(good, now, "not-the-secret"); }, 401, "bad_signature"},
      {"tampered body", [&] { return post(tampered, std::to_string(now), security::sign(kSecret, now, good)); }, 401,
       "bad_signature"},
      {"tampered timestamp", [&] { return post(good, std::to_string(now + 1), security::sign(kSecret, now, good)); }, 401,
       "bad_signature"},
      {"stale", [&] { return signed_post(good, now - 301); }, 401, "stale_timestamp"},
      {"replayed after the window", [&] { return signed_post(good, now - 3600); }, 401, "stale_timestamp"},
      {"future", [&] { return signed_post(good, now + 301); }, 401, "future_timestamp"},
      {"missing timestamp", [&] { return post(good, std::nullopt, security::sign(kSecret, now, good)); }, 401,
       "missing_headers"},
      {"missing signature", [&] { return post(good, std::to_string(now), std::nullopt); }, 401, "missing_headers"},
      {"no headers", [&] { return post(good, std::nullopt, std::nullopt); }, 401, "missing_headers"},
      {"signature not sha256", [&] { return post(good, std::to_string(now), "md5=abc"); }, 400, "malformed_headers"},
      {"timestamp not a number", [&] { return post(good, "yesterday", security::sign(kSecret, now, good)); }, 400,
       "malformed_headers"},
      {"malformed JSON", [&] { return signed_post("{\"order_id\": \"victim\", ", now); }, 400, "malformed_body"},
      {"missing txn_id", [&] { return signed_post(R"({"order_id":"victim","amount":499000})", now); }, 400,
       "malformed_body"},
      {"amount not an integer", [&] { return signed_post(R"({"order_id":"victim","amount":"499000","txn_id":"X"})", now); },
       400, "malformed_body"},
      {"oversize body", [&] { return signed_post(std::string(2000, ' ') + good, now); }, 413, "body_too_large"},
      {"unknown order", [&] { return signed_post(payment("no-such-order", 499'000, "T-x"), now); }, 404, "unknown_order"},
      {"amount mismatch", [&] { return signed_post(payment("victim", 1, "T-cheap"), now); }, 422, "amount_mismatch"},
      {"second transaction for a paid order", [&] { return signed_post(payment("paid-one", 499'000, "T-other"), now); },
       409, "already_paid"},
      {"valid request replayed", [&] { return signed_post(payment("paid-one", 499'000, "T-paid"), now); }, 200,
       "duplicate"},
  };
  std::map<std::string, long long> expected{{"accepted", 1}};
  for (auto& c : cases) {
    auto r = c.send();
    EXPECT_EQ(r.status, c.status) << c.name;
    EXPECT_EQ(r.result, c.result) << c.name;
    expected[c.result]++;
  }
  auto m = metrics();
  for (auto& [result, n] : expected) EXPECT_EQ(m[result], n) << "counter " << result;
  EXPECT_EQ(store->get("victim").value->status, store::OrderStatus::created) << "no rejection changed the store";
  EXPECT_TRUE(store->get("victim").value->txn.empty());
  EXPECT_EQ(queue->counters().value.enqueued, 1) << "only the one accepted payment made a job";
  // and the victim can still be paid properly afterwards
  EXPECT_EQ(signed_post(good, components::unix_now()).result, "accepted");
  EXPECT_GE(cases.size(), 19u);
}

TEST_F(PaymentIntakeProcess, SamePaymentFiveTimesConcurrentlyGivesOneJob) {
  create("o-1");
  const auto now = components::unix_now();
  const std::string body = payment("o-1", 499'000, "T-dup");
  std::vector<Reply> replies(5);
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i)
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      httplib::Headers h{{std::string(security::kTimestampHeader), std::to_string(now)},
                         {std::string(security::kSignatureHeader), security::sign(kSecret, now, body)}};
      auto r = c.Post("/webhooks/payment", h, body, "application/json");
      if (r) replies[static_cast<size_t>(i)] = {r->status, nlohmann::json::parse(r->body).value("result", "")};
    });
  for (auto& t : threads) t.join();
  int accepted = 0;
  for (auto& r : replies) {
    EXPECT_EQ(r.status, 200) << "providers must see a 2xx for every copy";
    accepted += r.result == "accepted";
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(queue->counters().value.enqueued, 1);
  EXPECT_EQ(metrics()["duplicate"], 4);
}

TEST_F(PaymentIntakeProcess, NoSecretInTheCommandLine) {
  std::ifstream in("/proc/" + std::to_string(proc->pid()) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(cmdline.empty()) << "the process is running";
  EXPECT_EQ(cmdline.find(kSecret), std::string::npos);
  EXPECT_NE(cmdline.find("qsim-payment-intake"), std::string::npos);
}

TEST(PaymentIntakeStartup, RefusesToStartWithoutASecretAndSaysWhere) {
  QSIM_REQUIRE_REDIS();
  auto env = sim::child_environment({}, {"QSIM_PAYMENT_SECRET", "QSIM_PAYMENT_SECRET_FILE"});
  bp::ipstream err;
  bp::child c(QSIM_PAYMENT_INTAKE_EXE, "--redis", testkit::live_redis().endpoint().to_string(), "--port",
              std::to_string(sim::free_loopback_port()), env, bp::std_out > bp::null, bp::std_err > err);
  std::string all, line;
  while (std::getline(err, line)) all += line + "\n";
  c.wait();
  EXPECT_EQ(c.exit_code(), 2);
  EXPECT_NE(all.find("QSIM_PAYMENT_SECRET"), std::string::npos) << all;
}

// Hand-off mode (a framework under test): the intake pays the order, then calls the framework's
// hand-off server (here an httplib server standing in for it) and records the job id; a failed
// hand-off answers 503 and the provider's retry hands the still-paid order off again; once the
// job is recorded, a retry hands off nothing.
TEST(PaymentIntakeHandoff, HandsOffOnceRecordsTheJobAndRetriesAFailedHandOff) {
  QSIM_REQUIRE_REDIS();
  const std::string tag = testkit::unique_queue_name();
  std::atomic<int> calls{0};
  std::atomic<bool> refuse{true};
  httplib::Server fake;
  fake.Post("/enqueue", [&](const httplib::Request& req, httplib::Response& res) {
    ++calls;
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (refuse || !j.is_object() || !j.contains("order_id")) {
      res.status = 503;
      res.set_content(R"({"error":"broker down"})", "application/json");
      return;
    }
    res.set_content(nlohmann::json{{"job_id", "fw-" + j["order_id"].get<std::string>()}}.dump(), "application/json");
  });
  const int handoff_port = fake.bind_to_any_port("127.0.0.1");
  std::thread server([&] { fake.listen_after_bind(); });
  testkit::ServiceProcess proc(QSIM_PAYMENT_INTAKE_EXE,
                               {"--redis", testkit::live_redis().endpoint().to_string(), "--queue", tag, "--mode",
                                "handoff", "--handoff-port", std::to_string(handoff_port)},
                               {{"QSIM_PAYMENT_SECRET", kSecret}});
  redis::Connection conn(testkit::live_redis().endpoint());
  store::TaskStore store(conn, tag, "test");
  queue::Queue q(conn, tag);
  ASSERT_TRUE(store.create({"o-h", "o-h@example.com", "https://courses.example/o-h", 100}).value);
  httplib::Client client("127.0.0.1", proc.port());
  std::string last_job;
  auto pay = [&] {
    const auto ts = components::unix_now();
    const std::string body = payment("o-h", 100, "T-h");
    httplib::Headers h{{std::string(security::kTimestampHeader), std::to_string(ts)},
                       {std::string(security::kSignatureHeader), security::sign(kSecret, ts, body)}};
    auto r = client.Post("/webhooks/payment", h, body, "application/json");
    if (!r) return std::make_pair(0, std::string());
    auto j = nlohmann::json::parse(r->body);
    last_job = j.value("job_id", "");
    return std::make_pair(r->status, j.value("result", ""));
  };
  EXPECT_EQ(pay(), std::make_pair(503, std::string("handoff_failed")));
  EXPECT_EQ(store.get("o-h").value->status, store::OrderStatus::paid) << "paid before the hand-off: not atomic";
  EXPECT_EQ(store.get("o-h").value->job_id, "");
  refuse = false;
  EXPECT_EQ(pay(), std::make_pair(200, std::string("duplicate"))) << "the provider's retry hands the order off again";
  EXPECT_EQ(last_job, "fw-o-h") << "the answer names the framework's job";
  EXPECT_EQ(store.get("o-h").value->job_id, "fw-o-h");
  EXPECT_EQ(pay(), std::make_pair(200, std::string("duplicate")));
  EXPECT_EQ(calls.load(), 2) << "a recorded job is not handed off again";
  EXPECT_EQ(q.counters().value.enqueued, 0) << "hand-off mode never touches qsim's queue";
  fake.stop();
  server.join();
}
