#include "qsim/dashboard/dashboard.h"

#include "qsim/components/http_service.h"
#include "qsim/html.h"
#include "qsim/queue/admin.h"
#include "qsim/security/signature.h"
#include "qsim/store/task_store.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace qsim::dashboard {

namespace {

using json = nlohmann::json;
using components::HttpRequest;
using components::HttpResponse;

constexpr const char* kCookie = "qsim_session";

// a form's field (the first of a repeated name), or empty
std::string field(const std::multimap<std::string, std::string, std::less<>>& form, std::string_view name) {
  auto it = form.find(name);
  return it == form.end() ? std::string() : it->second;
}

std::string cookie_value(const HttpRequest& r, std::string_view name) {
  auto c = r.header("Cookie");
  if (!c) return {};
  std::string_view s = *c;
  while (!s.empty()) {
    auto semi = s.find(';');
    auto part = s.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    if (semi == std::string_view::npos) break;
    s.remove_prefix(semi + 1);
  }
  return {};
}

std::string ago(std::int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000);
  if (ms < 3'600'000) return fmt::format("{:.0f} min", static_cast<double>(ms) / 60'000);
  return fmt::format("{:.1f} h", static_cast<double>(ms) / 3'600'000);
}

HttpResponse page(int status, std::string body) {
  HttpResponse r{status, std::move(body), "text/html; charset=utf-8"};
  r.headers = {{"Cache-Control", "no-store"},
               {"X-Frame-Options", "DENY"},
               {"X-Content-Type-Options", "nosniff"},
               {"Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
                                           "img-src 'self'; form-action 'self'; frame-ancestors 'none'"},
               {"Referrer-Policy", "same-origin"}};
  return r;
}

HttpResponse redirect(const std::string& to, std::vector<std::pair<std::string, std::string>> more = {}) {
  HttpResponse r = page(303, "");
  r.headers.emplace_back("Location", to);
  for (auto& h : more) r.headers.push_back(std::move(h));
  return r;
}

// Every status, in the order an order goes through them.
constexpr store::OrderStatus kStatuses[] = {
    store::OrderStatus::created,   store::OrderStatus::paid,       store::OrderStatus::processing,
    store::OrderStatus::downloading, store::OrderStatus::uploading, store::OrderStatus::finalizing,
    store::OrderStatus::completed, store::OrderStatus::failed,     store::OrderStatus::dead};

std::string orders_table(const json& orders) {
  std::string h = "<h3>Orders by status</h3><table class=\"orders\"><tr>", counts;
  for (auto status : kStatuses)
    if (const std::string st(store::to_string(status)); orders.contains(st)) {
      h += fmt::format("<th>{}</th>", st);
      counts += fmt::format("<td class=\"num\">{}</td>", orders[st].get<long long>());
    }
  return h + "</tr><tr>" + counts + "</tr></table>";
}

// A small line chart of the last minutes, newest on the right.
std::string sparkline(const std::string& title, const std::vector<double>& ys, const char* color) {
  const double W = 420, H = 90, L = 40, B = 16, T = 18;
  double ymax = 1;
  for (double y : ys) ymax = std::max(ymax, y);
  std::string pts;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const double x = L + (ys.size() < 2 ? 0 : static_cast<double>(i) / static_cast<double>(ys.size() - 1)) * (W - L - 4);
    pts += fmt::format("{:.1f},{:.1f} ", x, H - B - ys[i] / ymax * (H - B - T));
  }
  return fmt::format(
      R"~(<svg width="{0}" height="{1}" viewBox="0 0 {0} {1}"><text x="{2}" y="12" font-size="12">{3}</text>)~"
      R"~(<text x="{5}" y="{6}" font-size="10" text-anchor="end">{7:g}</text><text x="{5}" y="{8}" font-size="10" text-anchor="end">0</text>)~"
      R"~(<line x1="{2}" y1="{8}" x2="{0}" y2="{8}" stroke="#999"/><polyline fill="none" stroke="{9}" stroke-width="2" points="{4}"/></svg>)~",
      W, H, L, html_escape(title), pts, L - 4, T + 4, ymax, H - B, color);
}

}  // namespace

struct Dashboard::Impl {
  Options o;
  components::HttpService http;
  std::thread server, sampler;
  std::atomic<bool> stopping{false};
  std::atomic<int> bound{0};  // 1 listening, -1 could not bind
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  mutable std::mutex mu;  // the lists below, the sessions, the run
  std::string error;

  struct Sample {
    std::int64_t server_ms = 0;
    long long depth = 0, in_flight = 0, acked = 0;
  };
  struct Lane {
    QueueSource src;
    std::mutex mu;  // the connection: one caller at a time
    std::unique_ptr<redis::Connection> conn;
    std::unique_ptr<queue::Queue> q;
    std::unique_ptr<store::TaskStore> store;
    std::deque<Sample> samples;
  };
  std::vector<std::shared_ptr<Lane>> lanes;
  std::map<std::string, std::string> sessions;  // session id -> its CSRF token
  int failures = 0;                             // wrong tokens since failures_since
  std::chrono::steady_clock::time_point failures_since{};
  bool has_run = false;
  std::string scenario, outcome;
  std::vector<RunLane> run_lanes;
  std::deque<RunFault> faults;
  std::size_t faults_total = 0;

  std::vector<std::shared_ptr<Lane>> lanes_copy() const {
    std::lock_guard l(mu);
    return lanes;
  }

  static void connect(Lane& lane) {
    redis::ConnectionOptions co;
    co.connect_timeout = std::chrono::milliseconds(500);
    co.command_timeout = std::chrono::milliseconds(2000);
    lane.conn = std::make_unique<redis::Connection>(lane.src.endpoint, co);
    lane.q = std::make_unique<queue::Queue>(*lane.conn, lane.src.queue, queue::QueueConfig{lane.src.prefix});
    lane.store = std::make_unique<store::TaskStore>(*lane.conn, lane.src.queue, "dashboard", lane.src.prefix);
  }

  void sample_all() {
    for (auto& lane : lanes_copy()) {
      if (!lane->src.queue_engine) continue;
      std::lock_guard l(lane->mu);
      auto ov = queue::QueueAdmin(*lane->q).overview(0);
      if (!ov) continue;  // Redis does not answer: no sample (the page says so when it asks)
      const auto& v = ov.value;
      lane->samples.push_back({v.server_ms, v.ready_high + v.ready_default + v.ready_low + v.delayed, v.in_flight,
                               v.counters.acked});
      while (lane->samples.size() > o.history) lane->samples.pop_front();
    }
  }

  // Only requests addressed to this server by a loopback name or its bind address.
  bool host_allowed(const HttpRequest& r) const {
    auto h = r.header("Host");
    if (!h) return false;
    std::string host(*h);
    const std::string port = ":" + std::to_string(o.port);
    const std::string bind = o.bind.find(':') != std::string::npos ? "[" + o.bind + "]" : o.bind;
    for (const std::string& name : {std::string("127.0.0.1"), std::string("localhost"), std::string("[::1]"), bind})
      if (host == name + port) return true;
    return false;
  }
  bool same_origin(const HttpRequest& r) const {
    auto origin = r.header("Origin");
    if (!origin) return true;  // not a browser's cross-site form (those send Origin); the CSRF token still decides
    auto host = r.header("Host");
    return host && *origin == "http://" + std::string(*host);
  }
  // The session's CSRF token, or empty when the request has no live session.
  std::string csrf_of(const HttpRequest& r) const {
    const std::string id = cookie_value(r, kCookie);
    std::lock_guard l(mu);
    auto it = sessions.find(id);
    return id.empty() || it == sessions.end() ? std::string() : it->second;
  }

  json state_json() {
    json out{{"queues", json::array()}};
    {
      std::lock_guard l(mu);
      if (has_run) {
        json lanes_j = json::array(), faults_j = json::array();
        for (const auto& rl : run_lanes)
          lanes_j.push_back({{"arch", rl.arch}, {"phase", rl.phase}, {"sim_s", rl.sim_s}, {"expected_s", rl.expected_s},
                             {"done", rl.done}, {"total", rl.total}});
        for (const auto& f : faults)
          faults_j.push_back({{"arch", f.arch}, {"t_s", f.t_s}, {"kind", f.kind}, {"target", f.target}, {"detail", f.detail}});
        out["run"] = {{"scenario", scenario}, {"outcome", outcome}, {"lanes", lanes_j}, {"faults", faults_j},
                      {"faults_total", faults_total}};
      }
    }
    for (auto& lane : lanes_copy()) {
      std::lock_guard l(lane->mu);
      json q{{"name", lane->src.name}, {"redis", lane->src.endpoint.to_string()}, {"queue", lane->src.queue},
             {"queue_engine", lane->src.queue_engine}};
      json orders = json::object();
      for (auto st : kStatuses) {
        auto n = lane->store->count(st);
        if (!n) {
          q["unreachable"] = n.error;
          break;
        }
        orders[std::string(store::to_string(st))] = n.value;
      }
      q["orders"] = orders;
      if (q.contains("unreachable") || !lane->src.queue_engine) {
        out["queues"].push_back(q);
        continue;
      }
      auto ov = queue::QueueAdmin(*lane->q).overview(50);
      if (!ov) {
        q["unreachable"] = ov.error;
        out["queues"].push_back(q);
        continue;
      }
      const auto& v = ov.value;
      q["paused"] = v.paused;
      q["ready"] = {{"high", v.ready_high}, {"default", v.ready_default}, {"low", v.ready_low}};
      q["delayed"] = v.delayed;
      q["in_flight"] = v.in_flight;
      q["dead"] = v.dead;
      q["counters"] = {{"enqueued", v.counters.enqueued}, {"acked", v.counters.acked}, {"retried", v.counters.retried},
                       {"redelivered", v.counters.redelivered}, {"dead", v.counters.dead},
                       {"requeued", v.counters.requeued}};
      json workers = json::array(), in_flight = json::array(), dead = json::array(), history = json::array();
      for (const auto& w : v.workers)
        workers.push_back({{"id", w.id}, {"job", w.job}, {"since_heartbeat_ms", w.since_beat_ms}, {"alive", w.alive}});
      for (const auto& j : v.in_flight_jobs)
        in_flight.push_back({{"id", j.id}, {"worker", j.worker}, {"attempt", j.attempt}, {"lease_remaining_ms", j.lease_remaining_ms}});
      if (auto d = queue::QueueAdmin(*lane->q).dead({}, 50, false))
        for (const auto& j : d.value)
          dead.push_back({{"id", j.id}, {"reason", j.reason}, {"attempts", j.attempts}, {"age_ms", v.server_ms - j.died_ms}});
      for (std::size_t i = 0; i < lane->samples.size(); ++i) {
        const auto& s = lane->samples[i];
        double per_s = 0;
        if (i > 0 && s.server_ms > lane->samples[i - 1].server_ms && s.acked >= lane->samples[i - 1].acked)
          per_s = static_cast<double>(s.acked - lane->samples[i - 1].acked) * 1000.0 /
                  static_cast<double>(s.server_ms - lane->samples[i - 1].server_ms);
        history.push_back({{"server_ms", s.server_ms}, {"depth", s.depth}, {"in_flight", s.in_flight},
                           {"acked_per_s", per_s}});
      }
      q["workers"] = workers;
      q["in_flight_jobs"] = in_flight;
      q["dead_jobs"] = dead;
      q["history"] = history;
      out["queues"].push_back(q);
    }
    return out;
  }

  std::string render(const json& st, const std::string& csrf, const std::string& flash) const {
    std::string h =
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>qsim dashboard</title><script src=\"/dashboard.js\"></script>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:16px auto;color:#222}table{border-collapse:collapse;"
        "margin:6px 0 14px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f4f4f4}"
        ".num{text-align:right}.bad{color:#c00}.ok{color:#080}.cards span{display:inline-block;border:1px solid #ccc;"
        "padding:6px 12px;margin:0 6px 6px 0;font-size:14px}form{display:inline;margin:0}</style></head><body>";
    h += "<h1>qsim dashboard</h1><p>";
    if (o.token.empty()) h += "Read-only: no token is set (QSIM_DASHBOARD_SECRET or QSIM_DASHBOARD_SECRET_FILE).";
    else if (csrf.empty()) h += "<a href=\"/login\" id=\"login\">Sign in</a> to requeue dead jobs.";
    else
      h += fmt::format("Signed in. <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" "
                       "value=\"{}\"><button type=\"submit\">Sign out</button></form>",
                       html_escape(csrf));
    h += " The page reloads every 2 s.</p>";
    if (!flash.empty()) h += "<p class=\"ok\" id=\"flash\">" + html_escape(flash) + "</p>";
    if (st.contains("run")) {
      const auto& r = st["run"];
      h += "<h2>Run: " + html_escape(r["scenario"].get<std::string>()) + "</h2>";
      if (!r["outcome"].get<std::string>().empty()) h += "<p><b>" + html_escape(r["outcome"].get<std::string>()) + "</b></p>";
      h += "<table id=\"run\"><tr><th>architecture</th><th>phase</th><th>simulated</th><th>orders finished</th></tr>";
      for (const auto& l : r["lanes"])
        h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"num\">{:.0f} of ~{:.0f} min</td><td class=\"num\">{} of {}</td></tr>",
                         html_escape(l["arch"].get<std::string>()), html_escape(l["phase"].get<std::string>()),
                         l["sim_s"].get<double>() / 60, l["expected_s"].get<double>() / 60, l["done"].get<long long>(),
                         l["total"].get<long long>());
      h += "</table>";
      h += fmt::format("<h3>Faults fired: {}</h3>", r["faults_total"].get<std::size_t>());
      if (!r["faults"].empty()) {
        h += "<table id=\"faults\"><tr><th>architecture</th><th>at (simulated)</th><th>kind</th><th>target</th><th>detail</th></tr>";
        for (const auto& f : r["faults"])
          h += fmt::format("<tr><td>{}</td><td class=\"num\">{:.1f} min</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                           html_escape(f["arch"].get<std::string>()), f["t_s"].get<double>() / 60,
                           html_escape(f["kind"].get<std::string>()), html_escape(f["target"].get<std::string>()),
                           html_escape(f["detail"].get<std::string>()));
        h += "</table>";
      }
    }
    if (st["queues"].empty()) h += "<p>No queue yet.</p>";
    for (const auto& q : st["queues"]) {
      const std::string name = q["name"];
      h += fmt::format("<h2>Queue {} <small>({} on {})</small></h2>", html_escape(name),
                       html_escape(q["queue"].get<std::string>()), html_escape(q["redis"].get<std::string>()));
      if (q.contains("unreachable")) {
        h += "<p class=\"bad\">Redis does not answer: " + html_escape(q["unreachable"].get<std::string>()) + "</p>";
        continue;
      }
      if (!q["queue_engine"].get<bool>()) {
        h += "<p>Its queue is the framework's own: only its orders are shown.</p>" + orders_table(q["orders"]);
        continue;
      }
      const auto& rd = q["ready"];
      h += fmt::format("<div class=\"cards\"><span>ready {} (high {}, default {}, low {})</span><span>delayed {}</span>"
                       "<span>in flight {}</span><span class=\"{}\">dead {}</span>{}</div>",
                       rd["high"].get<long long>() + rd["default"].get<long long>() + rd["low"].get<long long>(),
                       rd["high"].get<long long>(), rd["default"].get<long long>(), rd["low"].get<long long>(),
                       q["delayed"].get<long long>(), q["in_flight"].get<long long>(),
                       q["dead"].get<long long>() > 0 ? "bad" : "", q["dead"].get<long long>(),
                       q["paused"].get<bool>() ? "<span class=\"bad\">PAUSED</span>" : "");
      std::vector<double> depth, rate;
      for (const auto& s : q["history"]) depth.push_back(s["depth"].get<double>() + s["in_flight"].get<double>()),
                                         rate.push_back(s["acked_per_s"].get<double>());
      const std::string span = q["history"].size() < 2 ? "the last minutes"
                               : "the last " + ago(q["history"].back()["server_ms"].get<std::int64_t>() -
                                                   q["history"].front()["server_ms"].get<std::int64_t>());
      h += sparkline("jobs waiting or in flight, " + span, depth, "#d9534f");
      h += sparkline("throughput, jobs done per second, " + span, rate, "#0275d8");
      h += "<h3>Workers</h3><table class=\"workers\"><tr><th>worker</th><th>current job</th><th>last heartbeat</th><th>alive</th></tr>";
      for (const auto& w : q["workers"])
        h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"num\">{} ago</td><td class=\"{}\">{}</td></tr>",
                         html_escape(w["id"].get<std::string>()),
                         w["job"].get<std::string>().empty() ? "idle" : html_escape(w["job"].get<std::string>()),
                         ago(w["since_heartbeat_ms"].get<std::int64_t>()), w["alive"].get<bool>() ? "ok" : "bad",
                         w["alive"].get<bool>() ? "yes" : "no");
      h += "</table><h3>In flight</h3><table><tr><th>job</th><th>worker</th><th>attempt</th><th>lease left</th></tr>";
      for (const auto& j : q["in_flight_jobs"]) {
        const auto left = j["lease_remaining_ms"].get<std::int64_t>();
        h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num {}\">{}</td></tr>",
                         html_escape(j["id"].get<std::string>()), html_escape(j["worker"].get<std::string>()),
                         j["attempt"].get<int>(), left < 0 ? "bad" : "", left < 0 ? "expired" : ago(left));
      }
      h += fmt::format("</table><h3>Dead letters{}</h3><table class=\"dead\"><tr><th>job</th><th>reason</th><th>attempts</th>"
                       "<th>died</th><th></th></tr>",
                       q["dead"].get<long long>() > static_cast<long long>(q["dead_jobs"].size())
                           ? fmt::format(" (the oldest {} of {}; qsim-queue dead list has them all)", q["dead_jobs"].size(),
                                         q["dead"].get<long long>())
                           : "");
      for (const auto& j : q["dead_jobs"]) {
        const std::string id = j["id"];
        std::string action = "sign in to requeue";
        if (o.token.empty()) action = "read-only";
        else if (!csrf.empty())
          action = fmt::format("<form method=\"post\" action=\"/requeue\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">"
                               "<input type=\"hidden\" name=\"queue\" value=\"{}\"><input type=\"hidden\" name=\"job\" "
                               "value=\"{}\"><button type=\"submit\" class=\"requeue\" data-job=\"{}\">Requeue</button></form>",
                               html_escape(csrf), html_escape(name), html_escape(id), html_escape(id));
        h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{} ago</td><td>{}</td></tr>",
                         html_escape(id), html_escape(j["reason"].get<std::string>()), j["attempts"].get<int>(),
                         ago(j["age_ms"].get<std::int64_t>()), action);
      }
      h += "</table>" + orders_table(q["orders"]);
    }
    return h + "</body></html>\n";
  }

  HttpResponse requeue(const HttpRequest& r) {
    const std::string csrf = csrf_of(r);
    if (o.token.empty()) return page(403, "read-only dashboard: no token is set\n");
    if (csrf.empty()) return page(401, "sign in first: POST /login with the token\n");
    const auto f = components::parse_form(r.body);
    if (!same_origin(r) || !security::constant_time_equal(field(f, "csrf"), csrf))
      return page(403, "refused: the form did not come from this dashboard (CSRF token or Origin)\n");
    std::shared_ptr<Lane> lane;
    for (auto& l : lanes_copy())
      if (l->src.name == field(f, "queue")) lane = l;
    if (!lane) return page(404, "no queue named " + html_escape(field(f, "queue")) + "\n");
    if (!lane->src.queue_engine) return page(400, "that queue is a framework's own: requeue it with the framework's tools\n");
    std::lock_guard l(lane->mu);
    auto done = store::requeue_dead_jobs(*lane->store, *lane->q, {field(f, "job")});
    if (!done) return page(503, "Redis: " + html_escape(done.error) + "\n");
    return redirect(done.value.requeued.empty() ? "/?flash=not-dead" : "/?flash=requeued");
  }
};

Dashboard::Dashboard(Options options) : impl_(std::make_unique<Impl>()) {
  impl_->o = std::move(options);
  auto* m = impl_.get();
  m->http.get("/", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "this dashboard answers only requests to its own loopback address\n");
    std::string flash;
    if (auto f = r.param("flash")) {
      if (*f == "requeued") flash = "Requeued: the job is ready again.";
      else if (*f == "not-dead") flash = "Nothing to requeue: the job is no longer dead.";
      else if (*f == "signed-in") flash = "Signed in.";
    }
    return page(200, m->render(m->state_json(), m->csrf_of(r), flash));
  });
  m->http.get("/state", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "wrong host\n");
    HttpResponse out{200, m->state_json().dump(-1, ' ', false, json::error_handler_t::replace), "application/json"};
    out.headers = {{"Cache-Control", "no-store"}};
    return out;
  });
  m->http.get("/dashboard.js", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "wrong host\n");
    // Reload every 2 s, unless the pointer is over a button (so that a click lands).
    HttpResponse out{200,
                     "let hovering = false;\n"
                     "document.addEventListener('mouseover', e => { hovering = !!(e.target.closest && e.target.closest('button,input,a')); });\n"
                     "setInterval(() => { if (!hovering) location.replace(location.pathname); }, 2000);\n",
                     "text/javascript"};
    out.headers = {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}};
    return out;
  });
  m->http.get("/login", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "wrong host\n");
    if (m->o.token.empty()) return page(403, "read-only dashboard: no token is set\n");
    return page(200,
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>qsim dashboard: sign in</title></head><body>"
                "<h1>Sign in</h1><form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" "
                "name=\"token\" id=\"token\" autocomplete=\"current-password\"></label> <button type=\"submit\" "
                "id=\"sign-in\">Sign in</button></form></body></html>\n");
  });
  m->http.post("/login", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "wrong host\n");
    if (m->o.token.empty()) return page(403, "read-only dashboard: no token is set\n");
    if (!m->same_origin(r)) return page(403, "refused: a sign-in from another origin\n");
    // Guessing is slowed without holding a handler thread: after 5 wrong tokens in a minute,
    // every sign-in is refused until that minute is over.
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard l(m->mu);
      if (now - m->failures_since > std::chrono::minutes(1)) m->failures = 0, m->failures_since = now;
      if (m->failures >= 5) return page(429, "too many wrong tokens: try again in a minute\n");
    }
    if (!security::constant_time_equal(field(components::parse_form(r.body), "token"), m->o.token)) {
      std::lock_guard l(m->mu);
      ++m->failures;
      return page(403, "wrong token\n");
    }
    const std::string id = security::random_hex(32), csrf = security::random_hex(32);
    {
      std::lock_guard l(m->mu);
      if (m->sessions.size() > 1000) m->sessions.clear();
      m->sessions[id] = csrf;
    }
    return redirect("/?flash=signed-in", {{"Set-Cookie", fmt::format("{}={}; HttpOnly; SameSite=Strict; Path=/", kCookie, id)}});
  });
  m->http.post("/logout", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "wrong host\n");
    const std::string csrf = m->csrf_of(r);
    if (csrf.empty() || !m->same_origin(r) ||
        !security::constant_time_equal(field(components::parse_form(r.body), "csrf"), csrf))
      return page(403, "refused\n");
    {
      std::lock_guard l(m->mu);
      m->sessions.erase(cookie_value(r, kCookie));
    }
    return redirect("/", {{"Set-Cookie", fmt::format("{}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/", kCookie)}});
  });
  m->http.post("/requeue", [m](const HttpRequest& r) {
    if (!m->host_allowed(r)) return page(421, "wrong host\n");
    return m->requeue(r);
  });
  components::HttpLimits limits;
  limits.handler_threads = 4;
  limits.max_connections = 256;
  m->http.set_limits(limits);
  // its forms are a few hundred bytes
  m->http.on_too_large(16 * 1024, [](std::size_t bytes) {
    return page(413, fmt::format("a body of {} bytes: this dashboard's forms take at most 16 KiB\n", bytes));
  });
}

Dashboard::~Dashboard() { stop(); }

void Dashboard::add_queue(const QueueSource& source) {
  auto lane = std::make_shared<Impl::Lane>();
  lane->src = source;
  Impl::connect(*lane);
  std::lock_guard l(impl_->mu);
  for (auto& existing : impl_->lanes)
    if (existing->src.name == source.name) {
      existing = lane;  // the same name again: a new Redis (the next run of an architecture)
      return;
    }
  impl_->lanes.push_back(lane);
}

void Dashboard::set_run(const std::string& scenario) {
  std::lock_guard l(impl_->mu);
  impl_->has_run = true;
  impl_->scenario = scenario;
}

void Dashboard::update_lane(const RunLane& lane) {
  std::lock_guard l(impl_->mu);
  for (auto& existing : impl_->run_lanes)
    if (existing.arch == lane.arch) {
      existing = lane;
      return;
    }
  impl_->run_lanes.push_back(lane);
}

void Dashboard::add_fault(const RunFault& fault) {
  std::lock_guard l(impl_->mu);
  impl_->faults.push_front(fault);  // newest first
  ++impl_->faults_total;
  while (impl_->faults.size() > 50) impl_->faults.pop_back();
}

void Dashboard::set_outcome(const std::string& outcome) {
  std::lock_guard l(impl_->mu);
  impl_->outcome = outcome;
}

bool Dashboard::start() {
  auto* m = impl_.get();
  m->server = std::thread([m] {
    if (!m->http.listen(m->o.bind, m->o.port)) m->bound = -1;
  });
  for (int i = 0; i < 200 && m->bound == 0; ++i)
    if (m->http.wait_until_listening(std::chrono::milliseconds(25))) m->bound = 1;
  if (m->bound != 1) {
    if (m->server.joinable()) m->server.join();
    std::lock_guard l(m->mu);
    m->error = fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", m->o.bind, m->o.port);
    return false;
  }
  m->sampler = std::thread([m] {
    while (!m->stopping) {
      try {
        m->sample_all();
      } catch (const std::exception&) {
        // a reply not as expected: no sample this time, the page shows what it can read
      }
      std::unique_lock l(m->stop_mu);
      m->stop_cv.wait_for(l, m->o.sample_every, [m] { return m->stopping.load(); });
    }
  });
  return true;
}

void Dashboard::stop() {
  auto* m = impl_.get();
  {
    std::lock_guard l(m->stop_mu);
    m->stopping = true;
  }
  m->stop_cv.notify_all();
  if (m->sampler.joinable()) m->sampler.join();
  m->http.stop();
  if (m->server.joinable()) m->server.join();
}

std::string Dashboard::error() const {
  std::lock_guard l(impl_->mu);
  return impl_->error;
}

int Dashboard::port() const { return impl_->o.port; }

}  // namespace qsim::dashboard
