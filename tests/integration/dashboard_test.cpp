// The live dashboard against a live Redis: what it refuses (a requeue without a session, with a
// wrong CSRF token or from another origin, a request to another host name), and, in headless
// Chromium driven by ChromeDriver, a sign-in and a click on a dead job's requeue button that
// moves the job back to ready; and the page of a live `sim run --dashboard`. Screenshots of both
// are saved in the build's test-output folder.
#include "eventually.h"
#include "live_redis.h"
#include "qsim/dashboard/dashboard.h"
#include "qsim/queue/admin.h"
#include "qsim/sim/redis_server.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
namespace bp = boost::process;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kToken = "dashboard-test-token-7f3a";

std::string bury(queue::Queue& q, const std::string& why) {
  queue::EnqueueOptions once;
  once.max_attempts = 1;
  const std::string id = q.enqueue(why, once).value.id;
  auto r = q.reserve(1, "w1", 30s);
  EXPECT_EQ(r.value.jobs.size(), 1u);
  EXPECT_EQ(q.fail(r.value.jobs.at(0), why, queue::FailKind::transient, 0ms).value, queue::FailOutcome::dead);
  return id;
}

queue::JobState state_of(queue::Queue& q, const std::string& id) {
  auto s = q.status(id);
  return s.value ? s.value->state : queue::JobState::unknown;
}

std::string set_cookie_session(const httplib::Result& r) {
  if (!r || !r->has_header("Set-Cookie")) return {};
  std::string c = r->get_header_value("Set-Cookie");
  return c.substr(0, c.find(';'));  // qsim_session=<id>
}

std::string csrf_in(const std::string& html) {
  const std::string key = "name=\"csrf\" value=\"";
  auto at = html.find(key);
  if (at == std::string::npos) return {};
  at += key.size();
  return html.substr(at, html.find('"', at) - at);
}

std::string output_dir() {
  fs::path p = fs::path(QSIM_TEST_OUTPUT_DIR);
  fs::create_directories(p);
  return p.string();
}

std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// Headless Chromium through ChromeDriver's W3C WebDriver protocol (plain HTTP and JSON).
class Browser {
public:
  Browser() : port_(sim::free_loopback_port()), profile_(fs::temp_directory_path() / ("qsim-chrome-" + std::to_string(port_))) {
    const std::string driver = bp::search_path("chromedriver").string();
    const std::string chromium = bp::search_path("chromium").string();
    if (driver.empty() || chromium.empty()) {
      error_ = "chromedriver or chromium is not installed (scripts/test installs chromium and chromium-driver)";
      return;
    }
    driver_ = bp::child(driver, "--port=" + std::to_string(port_), bp::std_out > bp::null, bp::std_err > bp::null);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(60, 0);
    if (!testkit::eventually([&] { return static_cast<bool>(client_->Get("/status")); }, 20s)) {
      error_ = "chromedriver did not answer on port " + std::to_string(port_);
      return;
    }
    json caps{{"capabilities",
               {{"alwaysMatch",
                 {{"browserName", "chrome"},
                  {"goog:chromeOptions",
                   {{"binary", chromium},
                    // no background networking: this machine's network is closed, and Chromium's
                    // own connections (updates, sync) would only be refused
                    {"args", {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              "--no-first-run", "--disable-quic", "--window-size=1280,1600",
                              "--user-data-dir=" + profile_.string()}}}}}}}}};
    auto r = client_->Post("/session", caps.dump(), "application/json");
    if (!r || r->status != 200) {
      error_ = "chromedriver refused a session: " + (r ? r->body : std::string("no answer"));
      return;
    }
    session_ = json::parse(r->body)["value"]["sessionId"];
  }
  ~Browser() {
    if (!session_.empty()) client_->Delete("/session/" + session_);
    if (driver_.valid() && driver_.running()) driver_.terminate();
    std::error_code ec;
    fs::remove_all(profile_, ec);
  }
  const std::string& error() const { return error_; }

  json call(const std::string& method, const std::string& path, const json& body = json::object()) {
    const std::string url = "/session/" + session_ + path;
    auto r = method == "GET" ? client_->Get(url) : client_->Post(url, body.dump(), "application/json");
    if (!r) return {{"error", "no answer"}};
    return json::parse(r->body)["value"];
  }
  void go(const std::string& url) { call("POST", "/url", {{"url", url}}); }
  std::string source() { return call("GET", "/source").get<std::string>(); }
  // The element's id, or empty when there is none.
  std::string find(const std::string& css) {
    auto v = call("POST", "/element", {{"using", "css selector"}, {"value", css}});
    for (const auto& [k, id] : v.items())
      if (k.rfind("element-", 0) == 0) return id.get<std::string>();
    return {};
  }
  bool click(const std::string& css) {
    // the page reloads itself every 2 s: an element found just before a reload is gone, so again
    for (int i = 0; i < 10; ++i) {
      const std::string id = find(css);
      if (!id.empty() && !call("POST", "/element/" + id + "/click").contains("error")) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }
  void type(const std::string& css, const std::string& text) {
    call("POST", "/element/" + find(css) + "/value", {{"text", text}});
  }
  std::size_t screenshot(const std::string& path) {
    const std::string png = base64_decode(call("GET", "/screenshot").get<std::string>());
    std::ofstream(path, std::ios::binary) << png;
    return png.size();
  }

private:
  int port_;
  fs::path profile_;
  bp::child driver_;
  std::unique_ptr<httplib::Client> client_;
  std::string session_, error_;
};

class DashboardTest : public testkit::LiveQueueTest {
protected:
  std::unique_ptr<dashboard::Dashboard> serve(const std::string& token) {
    dashboard::Options o;
    o.port = sim::free_loopback_port();
    o.token = token;
    o.sample_every = 200ms;
    auto d = std::make_unique<dashboard::Dashboard>(o);
    d->add_queue({name, testkit::live_redis().endpoint(), "qsim", name, true});
    EXPECT_TRUE(d->start()) << d->error();
    return d;
  }
};

}  // namespace

TEST_F(DashboardTest, RequeueNeedsASessionItsCsrfTokenAndTheSameOrigin) {
  const std::string dead = bury(*q, "upload: HTTP 503");
  auto d = serve(kToken);
  httplib::Client c("127.0.0.1", d->port());
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find(dead), std::string::npos) << "the dead job is listed";
  EXPECT_NE(page->body.find("upload: HTTP 503"), std::string::npos) << "with its reason";
  EXPECT_NE(page->body.find("Sign in"), std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
  EXPECT_EQ(c.Get("/", {{"Host", "attacker.example:" + std::to_string(d->port())}})->status, 421) << "DNS rebinding";

  const std::string form = "queue=" + name + "&job=" + dead + "&csrf=x";
  EXPECT_EQ(c.Post("/requeue", form, "application/x-www-form-urlencoded")->status, 401) << "no session";
  EXPECT_EQ(c.Post("/login", "token=wrong", "application/x-www-form-urlencoded")->status, 403);
  EXPECT_EQ(c.Post("/login", {{"Origin", "http://attacker.example"}}, "token=" + kToken, "application/x-www-form-urlencoded")->status,
            403)
      << "a sign-in from another origin";
  auto login = c.Post("/login", "token=" + kToken, "application/x-www-form-urlencoded");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 303);
  const std::string cookie = set_cookie_session(login);
  ASSERT_FALSE(cookie.empty());
  EXPECT_NE(login->get_header_value("Set-Cookie").find("HttpOnly; SameSite=Strict"), std::string::npos);
  const httplib::Headers session{{"Cookie", cookie}};
  const std::string csrf = csrf_in(c.Get("/", session)->body);
  ASSERT_EQ(csrf.size(), 64u) << "the signed-in page carries the session's CSRF token";

  EXPECT_EQ(c.Post("/requeue", session, form, "application/x-www-form-urlencoded")->status, 403) << "a wrong CSRF token";
  const std::string good = "queue=" + name + "&job=" + dead + "&csrf=" + csrf;
  httplib::Headers cross = session;
  cross.emplace("Origin", "http://attacker.example");
  EXPECT_EQ(c.Post("/requeue", cross, good, "application/x-www-form-urlencoded")->status, 403) << "another origin";
  EXPECT_EQ(state_of(*q, dead), queue::JobState::dead) << "nothing refused moved the job";

  httplib::Headers same = session;
  same.emplace("Origin", "http://127.0.0.1:" + std::to_string(d->port()));
  auto ok = c.Post("/requeue", same, good, "application/x-www-form-urlencoded");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 303);
  EXPECT_EQ(ok->get_header_value("Location"), "/?flash=requeued");
  EXPECT_EQ(state_of(*q, dead), queue::JobState::ready);
  EXPECT_EQ(c.Post("/requeue", same, good, "application/x-www-form-urlencoded")->get_header_value("Location"),
            "/?flash=not-dead")
      << "a second click does nothing";

  auto state = json::parse(c.Get("/state")->body);
  ASSERT_EQ(state["queues"].size(), 1u);
  EXPECT_EQ(state["queues"][0]["ready"]["default"], 1);
  EXPECT_EQ(state["queues"][0]["counters"]["requeued"], 1);

  EXPECT_EQ(c.Post("/requeue", same, std::string(20'000, 'a'), "application/x-www-form-urlencoded")->status, 413)
      << "its forms are small";
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c.Post("/login", "token=guess", "application/x-www-form-urlencoded")->status, 403);
  EXPECT_EQ(c.Post("/login", "token=" + kToken, "application/x-www-form-urlencoded")->status, 429)
      << "after five wrong tokens in a minute even the right one waits";
}

TEST_F(DashboardTest, WithoutATokenItIsReadOnly) {
  bury(*q, "malformed payload");
  auto d = serve("");
  httplib::Client c("127.0.0.1", d->port());
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("Read-only"), std::string::npos);
  EXPECT_EQ(page->body.find("<form method=\"post\" action=\"/requeue\""), std::string::npos);
  EXPECT_EQ(c.Post("/login", "token=", "application/x-www-form-urlencoded")->status, 403);
  EXPECT_EQ(c.Post("/requeue", "queue=x&job=y&csrf=", "application/x-www-form-urlencoded")->status, 403);
}

TEST_F(DashboardTest, ClickingRequeueInChromiumMovesADeadJobBackToReady) {
  const std::string dead = bury(*q, "finalize: HTTP 500");
  const int port = sim::free_loopback_port();
  bp::environment env = boost::this_process::environment();
  env["QSIM_DASHBOARD_SECRET"] = kToken;  // the token never appears in argv
  bp::child dash(QSIM_DASHBOARD_EXE, "--redis", testkit::live_redis().endpoint().to_string(), "--queue", name, "--port",
                 std::to_string(port), env, bp::std_out > bp::null, bp::std_err > bp::null);
  httplib::Client probe("127.0.0.1", port);
  ASSERT_TRUE(testkit::eventually([&] { return static_cast<bool>(probe.Get("/state")); }, 10s)) << "qsim-dashboard did not start";

  Browser b;
  ASSERT_TRUE(b.error().empty()) << b.error();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  b.go(base + "/login");
  b.type("#token", kToken);
  ASSERT_TRUE(b.click("#sign-in"));
  ASSERT_TRUE(testkit::eventually([&] { return b.source().find("Signed in") != std::string::npos; }, 10s)) << b.source();
  ASSERT_TRUE(b.click("button.requeue[data-job=\"" + dead + "\"]")) << b.source();
  EXPECT_TRUE(testkit::eventually([&] { return state_of(*q, dead) == queue::JobState::ready; }, 10s))
      << "the click requeued the job";
  EXPECT_TRUE(testkit::eventually([&] { return b.source().find(">dead 0<") != std::string::npos; }, 10s)) << b.source();
  const std::string png = output_dir() + "/dashboard_requeue.png";
  EXPECT_GT(b.screenshot(png), 10'000u) << png;
  dash.terminate();
}

TEST_F(DashboardTest, ShowsALiveRunInChromium) {
  const int port = sim::free_loopback_port();
  const fs::path out = fs::temp_directory_path() / ("qsim-dashboard-run-" + std::to_string(port));
  bp::child run(QSIM_SIM_EXE, "run", std::string(QSIM_SOURCE_DIR) + "/scenarios/poison_jobs.json", "--arch", "queue",
                "--speedup", "120", "--probe-orders", "5", "--quiet", "--out", out.string(), "--dashboard", std::to_string(port),
                bp::std_out > bp::null, bp::std_err > bp::null);
  httplib::Client c("127.0.0.1", port);
  // the run's queue with its dead letters (the scenario's poison jobs) while the workload runs
  auto live = [&] {
    auto r = c.Get("/state");
    if (!r) return false;
    auto s = json::parse(r->body);
    if (!s.contains("run") || s["run"]["lanes"].empty() || s["run"]["lanes"][0]["phase"] != "workload") return false;
    for (const auto& qj : s["queues"])
      if (qj.value("dead", 0) >= 1 && qj["history"].size() >= 2) return true;
    return false;
  };
  ASSERT_TRUE(testkit::eventually(live, 60s)) << "the dashboard never showed the run's workload with a dead letter";
  Browser b;
  ASSERT_TRUE(b.error().empty()) << b.error();
  b.go("http://127.0.0.1:" + std::to_string(port) + "/");
  const std::string page = b.source();
  EXPECT_NE(page.find("Run: poison_jobs"), std::string::npos) << page;
  EXPECT_NE(page.find("Faults fired"), std::string::npos);
  EXPECT_NE(page.find("poison_job"), std::string::npos) << "the faults as they fired";
  EXPECT_NE(page.find("Dead letters"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos) << "depth and throughput over the last minutes";
  const std::string png = output_dir() + "/dashboard_live_run.png";
  EXPECT_GT(b.screenshot(png), 10'000u) << png;
  run.wait();
  EXPECT_EQ(run.exit_code(), 0);
  std::error_code ec;
  fs::remove_all(out, ec);
}
