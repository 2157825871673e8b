// qsim-queue: the operator's command line for a queue and its task store, against any Redis.
// What the seed runbook did with `ps`, `redis-cli LLEN` and a Node one-liner: see what waits,
// runs and died, requeue the dead, pause and resume, re-enqueue a customer's order.
//
// Exit codes: 0 done; 1 refused or not found (an order in flight, an unknown job); 2 bad
// usage; 3 Redis unreachable or failing.
#include "cli_parse.h"
#include "qsim/queue/admin.h"
#include "qsim/store/task_store.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <stdexcept>

namespace {

using json = nlohmann::json;
using namespace qsim;

// A Redis call that failed: exit 3 with what Redis (or the socket) said.
struct Infrastructure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T need(queue::Expected<T> r, std::string_view what) {
  if (!r) throw Infrastructure(fmt::format("{}: {}", what, r.error));
  return std::move(r.value);
}

std::string ago(std::int64_t ms) {
  if (ms < 0) ms = 0;  // the beat and the reading are both Redis server time: only rounding
  if (ms < 10'000) return fmt::format("{:.1f} s ago", static_cast<double>(ms) / 1000);
  if (ms < 3'600'000) return fmt::format("{} s ago", ms / 1000);
  return fmt::format("{:.1f} h ago", static_cast<double>(ms) / 3'600'000);
}

std::string seconds(std::int64_t ms) { return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000); }

json counters_json(const queue::Counters& c) {
  return {{"enqueued", c.enqueued}, {"reserved", c.reserved}, {"acked", c.acked},       {"retried", c.retried},
          {"redelivered", c.redelivered}, {"released", c.released}, {"dead", c.dead}, {"burials", c.burials},
          {"requeued", c.requeued}, {"purged", c.purged}};
}

int stats(queue::Queue& q, bool as_json) {
  auto o = need(queue::QueueAdmin(q).overview(), "stats");
  json workers = json::array(), in_flight = json::array();
  for (const auto& w : o.workers)
    workers.push_back({{"id", w.id}, {"job", w.job}, {"since_heartbeat_ms", w.since_beat_ms}, {"alive", w.alive}});
  for (const auto& j : o.in_flight_jobs)
    in_flight.push_back({{"id", j.id}, {"worker", j.worker}, {"attempt", j.attempt}, {"lease_remaining_ms", j.lease_remaining_ms}});
  if (as_json) {
    std::cout << json{{"queue", o.queue},
                      {"paused", o.paused},
                      {"ready", {{"high", o.ready_high}, {"default", o.ready_default}, {"low", o.ready_low}}},
                      {"delayed", o.delayed},
                      {"in_flight", o.in_flight},
                      {"dead", o.dead},
                      {"counters", counters_json(o.counters)},
                      {"in_flight_jobs", in_flight},
                      {"workers", workers}}
                     .dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return 0;
  }
  std::cout << fmt::format("queue {}{}\n", o.queue, o.paused ? "  (PAUSED: workers reserve nothing)" : "");
  std::cout << fmt::format("ready     high {}  default {}  low {}\ndelayed   {}\nin flight {}\ndead      {}\n", o.ready_high,
                           o.ready_default, o.ready_low, o.delayed, o.in_flight, o.dead);
  const auto& c = o.counters;
  std::cout << fmt::format(
      "counters  enqueued {}  reserved {}  acked {}  retried {}  redelivered {}  released {}  dead {}  burials {}  "
      "requeued {}  purged {}\n",
      c.enqueued, c.reserved, c.acked, c.retried, c.redelivered, c.released, c.dead, c.burials, c.requeued, c.purged);
  if (!o.in_flight_jobs.empty()) {
    std::cout << fmt::format("\n{:<12} {:<20} {:>7} {:>16}\n", "in flight", "worker", "attempt", "lease left");
    for (const auto& j : o.in_flight_jobs)
      std::cout << fmt::format("{:<12} {:<20} {:>7} {:>16}\n", j.id, j.worker, j.attempt,
                               j.lease_remaining_ms >= 0 ? seconds(j.lease_remaining_ms) : "expired");
  }
  std::cout << fmt::format("\n{:<20} {:<6} {:<12} {}\n", "worker", "alive", "job", "last heartbeat");
  if (o.workers.empty()) std::cout << "(no worker has reported)\n";
  for (const auto& w : o.workers)
    std::cout << fmt::format("{:<20} {:<6} {:<12} {}\n", w.id, w.alive ? "yes" : "no", w.job.empty() ? "-" : w.job,
                             ago(w.since_beat_ms));
  return 0;
}

int job(queue::Queue& q, const std::string& id, bool as_json) {
  auto s = need(q.status(id), "job " + id);
  if (!s) {
    std::cerr << "qsim-queue: no job " << id << " in queue " << q.keys().queue() << "\n";
    return 1;
  }
  json history = json::array();
  for (const auto& t : s->history) history.push_back({{"state", t.state}, {"at_ms", t.at_ms}, {"worker", t.worker}});
  if (as_json) {
    std::cout << json{{"id", s->id},
                      {"state", queue::to_string(s->state)},
                      {"attempts", s->attempts},
                      {"max_attempts", s->max_attempts},
                      {"priority", queue::to_string(s->priority)},
                      {"worker", s->worker},
                      {"last_error", s->last_error},
                      {"payload", s->payload},
                      {"created_ms", s->created_ms},
                      {"history", history}}
                     .dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return 0;
  }
  std::cout << fmt::format("job {}  {}  attempt {} of {}  priority {}\n", s->id, queue::to_string(s->state), s->attempts,
                           s->max_attempts, queue::to_string(s->priority));
  std::cout << "payload    " << s->payload << "\n";
  if (!s->worker.empty()) std::cout << "worker     " << s->worker << "\n";
  if (!s->last_error.empty()) std::cout << "last error " << s->last_error << "\n";
  std::cout << "history\n";
  const std::int64_t t0 = s->history.empty() ? 0 : s->history.front().at_ms;
  for (const auto& t : s->history)
    std::cout << fmt::format("  +{:>10}  {:<12} {}\n", seconds(t.at_ms - t0), t.state, t.worker);
  return 0;
}

int dead_list(queue::Queue& q, const std::string& reason, std::size_t limit, bool as_json) {
  auto dead = need(queue::QueueAdmin(q).dead(reason, limit), "dead list");
  if (as_json) {
    json out = json::array();
    for (const auto& d : dead)
      out.push_back({{"id", d.id}, {"reason", d.reason}, {"attempts", d.attempts}, {"died_ms", d.died_ms}, {"payload", d.payload}});
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (dead.empty()) std::cout << "(no dead job" << (reason.empty() ? "" : " whose reason contains '" + reason + "'") << ")\n";
  for (const auto& d : dead)
    std::cout << fmt::format("{:<12} attempts {:<3} {:<24} {}\n", d.id, d.attempts, d.payload.substr(0, 24), d.reason);
  return 0;
}

// A dead job whose payload is an order of the store goes back with its order (TaskStore::requeue):
// requeued alone, it would meet its order dead and be buried again at once.
int dead_requeue(queue::Queue& q, store::TaskStore& st, std::vector<std::string> ids, bool all, const std::string& reason,
                 bool as_json) {
  queue::QueueAdmin admin(q);
  const bool named = !ids.empty();
  if (all || !reason.empty()) {
    if (named) throw CLI::ValidationError("dead requeue", "give ids or --all/--reason, not both");
    for (auto& d : need(admin.dead(reason), "dead list")) ids.push_back(d.id);
  }
  if (!named && !all && reason.empty()) throw CLI::ValidationError("dead requeue", "give job ids, or --all, or --reason TEXT");
  auto r = need(store::requeue_dead_jobs(st, q, ids), "dead requeue");
  const std::vector<std::string>& done = r.requeued;
  json orders = json::array();
  for (const auto& o : r.orders) orders.push_back({{"job", o.job}, {"order", o.order}, {"outcome", store::to_string(o.outcome)}});
  if (as_json) {
    std::cout << json{{"asked", ids.size()}, {"requeued", done}, {"orders", orders}}.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << fmt::format("requeued {} of {} job(s){}{}\n", done.size(), ids.size(),
                             orders.empty() ? "" : fmt::format(", {} with their order", orders.size()),
                             done.size() < ids.size() ? " (the others were not dead: already requeued, or unknown)" : "");
  }
  return named && done.size() < ids.size() ? 1 : 0;  // a named job that was not requeued: say so
}

int order_show(store::TaskStore& st, const std::string& id, bool as_json) {
  auto o = need(st.get(id), "order " + id);
  if (!o) {
    std::cerr << "qsim-queue: no order " << id << "\n";
    return 1;
  }
  if (as_json) {
    std::cout << json{{"id", o->fields.id},       {"status", store::to_string(o->status)}, {"email", o->fields.email},
                      {"course_url", o->fields.course_url}, {"amount", o->fields.amount}, {"txn", o->txn},
                      {"job", o->job_id},        {"worker", o->worker},      {"attempts", o->attempts},
                      {"last_error", o->last_error}, {"entered_ms", o->entered_ms}}
                     .dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return 0;
  }
  std::cout << fmt::format("order {}  {}  job {}  attempts {}\n", o->fields.id, store::to_string(o->status),
                           o->job_id.empty() ? "-" : o->job_id, o->attempts);
  std::cout << fmt::format("customer {}  course {}  amount {}  txn {}\n", o->fields.email, o->fields.course_url,
                           o->fields.amount, o->txn.empty() ? "-" : o->txn);
  if (!o->worker.empty()) std::cout << "worker     " << o->worker << "\n";
  if (!o->last_error.empty()) std::cout << "last error " << o->last_error << "\n";
  std::vector<std::pair<std::int64_t, std::string>> times;
  for (const auto& [status, ms] : o->entered_ms) times.emplace_back(ms, status);
  std::sort(times.begin(), times.end());
  for (const auto& [ms, status] : times)
    std::cout << fmt::format("  +{:>10}  {}\n", seconds(ms - times.front().first), status);
  return 0;
}

int orders(store::TaskStore& st, const std::string& status, std::size_t limit, bool as_json) {
  auto s = store::order_status_from_string(status);
  if (!s) throw CLI::ValidationError("--status", "expected created, paid, processing, downloading, uploading, finalizing, "
                                                 "completed, failed or dead, got '" + status + "'");
  auto list = need(st.list(*s, limit), "orders");
  auto now = need(st.server_time_ms(), "orders");
  if (as_json) {
    json out = json::array();
    for (const auto& e : list) out.push_back({{"id", e.id}, {"since_ms", e.since_ms}});
    std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (list.empty()) std::cout << "(no order is " << status << ")\n";
  for (const auto& e : list) std::cout << fmt::format("{:<24} {} since {}\n", e.id, status, ago(now - e.since_ms));
  return 0;
}

int order_requeue(store::TaskStore& st, queue::Queue& q, const std::string& id, bool polling, bool as_json) {
  auto [outcome, job_id] = need(st.requeue(id, polling ? nullptr : &q), "order requeue " + id);
  const bool ok = outcome == store::RequeueOutcome::requeued || outcome == store::RequeueOutcome::already_queued;
  if (as_json) {
    std::cout << json{{"order", id}, {"outcome", store::to_string(outcome)}, {"job", job_id}}.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return ok ? 0 : 1;
  }
  switch (outcome) {
    case store::RequeueOutcome::requeued:
      std::cout << "order " << id << " is paid again" << (job_id.empty() ? " (for the polling worker)" : ", job " + job_id + " ready") << "\n";
      break;
    case store::RequeueOutcome::already_queued:
      std::cout << "order " << id << " is already on its way" << (job_id.empty() ? "" : " (job " + job_id + ")") << ": nothing done\n";
      break;
    case store::RequeueOutcome::in_flight:
      std::cerr << "qsim-queue: refused: order " << id << " is in flight (a worker holds it" << (job_id.empty() ? "" : ", job " + job_id) << ")\n";
      break;
    case store::RequeueOutcome::completed: std::cerr << "qsim-queue: refused: order " << id << " is completed\n"; break;
    case store::RequeueOutcome::not_paid: std::cerr << "qsim-queue: refused: order " << id << " was never paid\n"; break;
    case store::RequeueOutcome::unknown_order: std::cerr << "qsim-queue: no order " << id << "\n"; break;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qsim-queue: see and act on a qsim queue and its task store",
               "qsim-queue"};
  app.footer(
      "Examples:\n"
      "  qsim-queue --redis redis://127.0.0.1:6380 --queue orders stats\n"
      "  qsim-queue dead list --reason 'crash loop'\n"
      "  qsim-queue dead requeue --all --reason 'upload: HTTP 503'\n"
      "  qsim-queue order requeue order-00042\n"
      "Exit codes: 0 done, 1 refused or not found, 2 bad usage, 3 Redis unreachable or failing.");
  app.require_subcommand(1);
  app.fallthrough();  // --json and the connection options also after the command
  std::string redis_url = "redis://127.0.0.1:6379", queue_name = "orders", prefix = "qsim";
  bool as_json = false;
  app.add_option("--redis", redis_url, "Redis URL (redis://host:port or unix:///path)")->capture_default_str();
  app.add_option("--queue", queue_name, "queue name (also the task store's tag)")->capture_default_str();
  app.add_option("--prefix", prefix, "key prefix")->capture_default_str();
  app.add_flag("--json", as_json, "machine-readable output");

  auto* st = app.add_subcommand("stats", "ready per priority, delayed, in flight with lease left, dead, counters, workers");
  std::string job_id;
  auto* jb = app.add_subcommand("job", "one job: status, attempts, every transition with its time, last error");
  jb->add_option("id", job_id, "job id")->required();
  auto* dead = app.add_subcommand("dead", "dead-lettered jobs");
  dead->require_subcommand(1);
  std::string reason;
  std::size_t limit = 0;
  auto* dl = dead->add_subcommand("list", "dead jobs with their reason, oldest first");
  dl->add_option("--reason", reason, "only those whose reason contains TEXT");
  dl->add_option("--limit", limit, "at most N (0: all)");
  std::vector<std::string> ids;
  bool all = false;
  auto* dr = dead->add_subcommand("requeue", "back to ready, attempts reset; atomic, counted, history kept; safe to repeat");
  dr->add_option("ids", ids, "job ids");
  dr->add_flag("--all", all, "every dead job (with --reason: those whose reason contains TEXT)");
  dr->add_option("--reason", reason, "the dead jobs whose reason contains TEXT");
  auto* pause = app.add_subcommand("pause", "workers stop reserving (running jobs finish); enqueueing goes on");
  auto* resume = app.add_subcommand("resume", "workers reserve again");
  bool yes = false;
  auto* purge = app.add_subcommand("purge", "delete every waiting job (ready and delayed); in flight and dead stay");
  purge->add_flag("--yes", yes, "really: without it nothing is deleted");
  std::string status;
  auto* ords = app.add_subcommand("orders", "orders in a status, longest there first");
  ords->add_option("--status", status, "created, paid, processing, downloading, uploading, finalizing, completed, failed, dead")
      ->required();
  ords->add_option("--limit", limit, "at most N (0: all)")->capture_default_str();
  std::vector<std::string> order_words;
  bool polling = false;
  auto* ord = app.add_subcommand("order", "`order ID`: one order, its status, job and times; `order requeue ID`: the "
                                          "runbook's re-enqueue of a paid, failed or dead order (safe to run twice; "
                                          "refuses completed and in-flight orders)");
  ord->add_option("words", order_words, "ID, or requeue ID")->required()->expected(1, 2);
  ord->add_flag("--polling", polling, "requeue for the polling architecture: the order goes back to paid, no job");
  if (auto code = tools::parse_or_exit(app, argc, argv)) return *code;
  const bool requeue_order = order_words.size() == 2;
  if (*ord && requeue_order && order_words[0] != "requeue") {
    std::cerr << "qsim-queue: expected `order ID` or `order requeue ID`, got `order " << order_words[0] << " "
              << order_words[1] << "`\n";
    return 2;
  }
  const std::string order_id = order_words.empty() ? "" : order_words.back();
  std::string endpoint = "(unparsed)";  // as parsed: the URL as given could carry what it should not
  try {
    redis::ConnectionOptions co;
    co.connect_timeout = std::chrono::milliseconds(2000);
    co.command_timeout = std::chrono::milliseconds(10'000);
    const auto parsed = redis::Endpoint::from_url(redis_url);
    endpoint = parsed.to_string();
    redis::Connection conn(parsed, co);
    queue::Queue q(conn, queue_name, queue::QueueConfig{prefix});
    store::TaskStore store(conn, queue_name, "operator", prefix);
    if (*st) return stats(q, as_json);
    if (*jb) return job(q, job_id, as_json);
    if (*dl) return dead_list(q, reason, limit, as_json);
    if (*dr) return dead_requeue(q, store, ids, all, reason, as_json);
    if (*pause || *resume) {
      const bool pausing = pause->parsed();
      need(queue::QueueAdmin(q).set_paused(pausing), pausing ? "pause" : "resume");
      if (as_json) std::cout << json{{"queue", queue_name}, {"paused", pausing}}.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      else std::cout << "queue " << queue_name << (pausing ? " paused: workers reserve nothing until resume\n" : " resumed\n");
      return 0;
    }
    if (*purge) {
      if (!yes) {
        std::cerr << "qsim-queue: purge deletes every waiting job of queue " << queue_name << "; add --yes to do it\n";
        return 2;
      }
      auto n = need(queue::QueueAdmin(q).purge(), "purge");
      if (as_json) std::cout << json{{"queue", queue_name}, {"purged", n}}.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      else std::cout << "purged " << n << " waiting job(s)\n";
      return 0;
    }
    if (*ords) return orders(store, status, limit, as_json);
    if (*ord) return requeue_order ? order_requeue(store, q, order_id, polling, as_json) : order_show(store, order_id, as_json);
    return 2;
  } catch (const CLI::ValidationError& e) {
    std::cerr << "qsim-queue: " << e.what() << "\n";
    return 2;
  } catch (const Infrastructure& e) {
    std::cerr << "qsim-queue: Redis at " << endpoint << ": " << e.what() << "\n";
    return 3;
  } catch (const std::invalid_argument& e) {
    std::cerr << "qsim-queue: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {  // an answer that did not hold together
    std::cerr << "qsim-queue: Redis at " << endpoint << ": unexpected answer: " << e.what() << "\n";
    return 3;
  }
}
