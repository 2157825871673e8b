#include "qsim/sim/scenario.h"

#include "qsim/sim/schema_check.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace qsim::sim {

namespace {

using nlohmann::json;
using Reader = JsonReader;

// A framework's own options, by kind: the loader's copy of scenarios/schema.json's (a test keeps
// the two agreeing). The architectures in arch/ read them; here they are only checked.
void check_framework_options(Reader& f, const std::string& kind, const json& raw) {
  enum T { duration, integer, flag, text, command, strings, object };
  static const std::map<std::string, std::map<std::string, T>> known{
      {"rq", {{"worker_class", text}, {"job_timeout", duration}, {"retries", integer}, {"retry_interval", duration}}},
      {"celery",
       {{"concurrency", integer}, {"acks_late", flag}, {"task_reject_on_worker_lost", flag},
        {"visibility_timeout", duration}, {"prefetch_multiplier", integer}, {"max_retries", integer},
        {"retry_backoff", duration}, {"retry_backoff_max", duration}}},
      {"bullmq",
       {{"concurrency", integer}, {"lock_duration", duration}, {"stalled_interval", duration},
        {"max_stalled_count", integer}, {"attempts", integer}, {"backoff", text}, {"backoff_delay", duration}}},
      {"sidekiq", {{"concurrency", integer}, {"retry", integer}, {"retry_in", duration}, {"poll_interval", duration}}},
      {"external",
       {{"worker", command}, {"handoff", command}, {"env", strings}, {"config", object}, {"startup_timeout", duration}}},
  };
  const auto& keys = known.at(kind);
  for (const auto& [k, v] : raw.items()) {
    auto it = keys.find(k);
    if (it == keys.end()) continue;  // done() names an unknown key
    switch (it->second) {
      case duration: (void)f.duration(k); break;
      case integer: (void)f.integer(k, 0, 1000); break;
      case flag:
        f.get(k, true);
        if (!v.is_boolean()) f.fail(f.at(k), "expected true or false, got " + describe(v));
        break;
      case text: (void)f.str(k); break;
      case command:
        f.get(k, true);
        if (!v.is_array() || v.empty()) f.fail(f.at(k), "expected a non-empty array of strings (a command), got " + describe(v));
        for (std::size_t i = 0; i < v.size(); ++i)
          if (!v[i].is_string() || v[i].get<std::string>().empty())
            f.fail(f.at(k) + "[" + std::to_string(i) + "]", "expected a non-empty string, got " + describe(v[i]));
        break;
      case strings:
        f.get(k, true);
        if (!v.is_object()) f.fail(f.at(k), "expected an object of strings, got " + describe(v));
        for (const auto& [name, value] : v.items())
          if (!value.is_string()) f.fail(f.at(k) + "." + name, "expected a string, got " + describe(value));
        break;
      case object:
        f.get(k, true);
        if (!v.is_object()) f.fail(f.at(k), "expected an object, got " + describe(v));
        break;
    }
  }
  if (kind == "external")
    for (const char* k : {"worker", "handoff"})
      if (!raw.contains(k)) f.fail(f.at(k), "missing (required)");
  f.done();
}

Distribution read_distribution(Reader r) {
  Distribution d;
  auto kind = r.one_of("dist", {"constant", "uniform", "normal", "lognormal", "exponential", "empirical"});
  if (kind == "exponential") {
    d.kind = Distribution::Kind::exponential;
    d.a_s = r.duration("mean", true, 0, true);
  } else if (kind == "constant") {
    d.kind = Distribution::Kind::constant;
    d.a_s = r.duration("value");
  } else if (kind == "uniform") {
    d.kind = Distribution::Kind::uniform;
    d.a_s = r.duration("min");
    d.b_s = r.duration("max");
    if (d.b_s < d.a_s) r.fail(r.at("max"), "expected max >= min");
  } else if (kind == "normal") {
    d.kind = Distribution::Kind::normal;
    d.a_s = r.duration("mean");
    d.b_s = r.duration("stddev");
  } else if (kind == "lognormal") {
    d.kind = Distribution::Kind::lognormal;
    d.a_s = r.duration("median", true, 0, true);
    d.sigma = r.number("sigma", 0, 10);
  } else {
    d.kind = Distribution::Kind::empirical;
    auto* v = r.get("values", true);
    if (!v->is_array() || v->empty()) r.fail(r.at("values"), "expected a non-empty array of durations");
    for (std::size_t i = 0; i < v->size(); ++i) {
      auto s = (*v)[i].is_string() ? parse_duration_s((*v)[i].get<std::string>()) : std::nullopt;
      if (!s) r.fail(r.at("values") + "[" + std::to_string(i) + "]", "expected a duration, got " + describe((*v)[i]));
      d.values_s.push_back(*s);
    }
  }
  r.done();
  return d;
}

Arrival read_arrival(Reader r) {
  Arrival a;
  auto kind = r.one_of("kind", {"burst", "constant", "poisson", "ramp", "spike", "trace"});
  const double max_rate = 1e8;  // 27,778 a second: above what the live harness sustains (scripts/bench --harness)
  if (kind == "burst") {
    a.kind = Arrival::Kind::burst;
    a.at_s = r.duration("at", false, 0);
  } else if (kind == "constant" || kind == "poisson") {
    a.kind = kind == "constant" ? Arrival::Kind::constant : Arrival::Kind::poisson;
    a.rate_per_h = r.number("rate_per_h", 0, max_rate, true, 0, true);
  } else if (kind == "ramp") {
    a.kind = Arrival::Kind::ramp;
    a.from_per_h = r.number("from_per_h", 0, max_rate);
    a.to_per_h = r.number("to_per_h", 0, max_rate, true, 0, true);
    a.over_s = r.duration("over", true, 0, true);
  } else if (kind == "spike") {
    a.kind = Arrival::Kind::spike;
    a.rate_per_h = r.number("base_per_h", 0, max_rate, true, 0, true);
    a.spike_per_h = r.number("spike_per_h", 0, max_rate, true, 0, true);
    a.at_s = r.duration("at");
    a.over_s = r.duration("for", true, 0, true);
  } else {
    a.kind = Arrival::Kind::trace;
    a.trace_file = r.str("file");
  }
  r.done();
  return a;
}

Gate read_gate(const Reader& r, const std::string& metric, const json& v) {
  const std::string path = r.at(metric);
  if (v.is_number()) {
    Gate g;
    g.metric = metric;
    g.op = "<=";
    g.threshold = v.get<double>();
    g.text = "<= " + v.dump();
    return g;
  }
  if (!v.is_string()) r.fail(path, "expected a number or a string like \"<= 650m\" or \">= 9\", got " + describe(v));
  return parse_gate_condition(metric, v.get<std::string>(), r.file(), path);
}

}  // namespace

Gate parse_gate_condition(const std::string& metric, const std::string& condition, const std::string& file,
                          const std::string& path) {
  Gate g;
  g.metric = metric;
  g.text = condition;
  std::size_t i = 0;
  while (i < condition.size() && std::string("<>=").find(condition[i]) != std::string::npos) ++i;
  g.op = condition.substr(0, i);
  if (g.op != "<=" && g.op != "<" && g.op != ">=" && g.op != ">" && g.op != "==")
    throw ScenarioError(file, path, "expected an operator <=, <, >=, > or == before the value, got \"" + condition + "\"");
  while (i < condition.size() && condition[i] == ' ') ++i;
  std::string value = condition.substr(i);
  if (auto d = parse_duration_s(value)) {
    g.threshold = *d;
  } else {
    char* end = nullptr;
    g.threshold = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(g.threshold))
      throw ScenarioError(file, path, "expected a number or a duration after the operator, got \"" + condition + "\"");
  }
  return g;
}

Scenario parse_scenario(const json& j, const std::string& file) {
  // The published schema first, so that it is the contract and cannot drift from the loader;
  // it reports every problem at once. What it cannot express (cross-field checks, ranges that
  // depend on other keys) is left to the loader's own checks below.
  auto problems = check_schema(scenario_schema(), j);
  if (!problems.empty()) {
    // One error at the first problem's path; every further problem on its own line, as
    // "file: path: expected" like the first.
    std::string expected = problems[0].message;
    for (std::size_t i = 1; i < problems.size(); ++i)
      expected += "\n" + file + ": " + problems[i].path + ": " + problems[i].message;
    throw ScenarioError(file, problems[0].path, expected);
  }
  return parse_scenario_without_schema(j, file);
}

Scenario parse_scenario_without_schema(const json& j, const std::string& file) {
  Reader r(j, "$", file);
  Scenario s;
  s.file = file;
  s.name = r.str("name");
  for (char c : s.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      r.fail(r.at("name"), "expected letters, digits, '_' or '-' (it names the report folder), got \"" + s.name + "\"");
  if (auto* seed = r.get("seed", true); !seed->is_number_unsigned())
    r.fail(r.at("seed"), "expected a non-negative integer, got " + describe(*seed));
  else
    s.seed = seed->get<std::uint64_t>();
  s.speedup = r.number("speedup", 0, 1e9, false, 1, true);
  if (auto* v = r.get("redis_acl", false)) {
    if (!v->is_boolean()) r.fail(r.at("redis_acl"), "expected true or false, got " + describe(*v));
    s.redis_acl = *v;
  }
  if (auto* v = r.get("side_by_side", false)) {
    if (!v->is_boolean()) r.fail(r.at("side_by_side"), "expected true or false, got " + describe(*v));
    s.side_by_side = *v;
  }

  auto orders = r.object("orders");
  s.orders = orders.integer("count", 1, 10'000'000);
  s.arrival = read_arrival(orders.object("arrival"));
  orders.done();

  auto job = r.object("job");
  s.download = read_distribution(job.object("download"));
  s.upload = read_distribution(job.object("upload"));
  if (job.get("fail_probability", false)) {
    auto f = job.object("fail_probability");
    s.fail_download = f.number("download", 0, 1, false);
    s.fail_upload = f.number("upload", 0, 1, false);
    s.fail_grant = f.number("grant", 0, 1, false);
    s.fail_mail = f.number("mail", 0, 1, false);
    f.done();
  }
  job.done();

  auto arch = r.object("architectures");
  if (arch.get("polling", false)) {
    auto p = arch.object("polling");
    PollingArch pa;
    pa.workers = p.integer("workers", 1, 1000, false, 1);
    if (pa.workers != 1) p.fail(p.at("workers"), "expected 1: the legacy polling architecture has exactly one worker");
    pa.poll_interval_s = p.duration("poll_interval", false, 10, true);
    if (p.get("speedup", false)) pa.speedup = p.number("speedup", 0, 1e9, true, 0, true);
    p.done();
    s.polling = pa;
  }
  if (arch.get("queue", false)) {
    auto q = arch.object("queue");
    QueueArch qa;
    qa.workers = q.integer("workers", 1, 1000);
    if (q.get("retry", false)) {
      auto rt = q.object("retry");
      qa.attempts = rt.integer("attempts", 1, 100, false, 3);
      qa.backoff = rt.one_of("backoff", {"exponential", "constant"}) == "constant" ? QueueArch::Backoff::constant
                                                                                  : QueueArch::Backoff::exponential;
      qa.backoff_base_s = rt.duration("base", false, 30);
      rt.done();
    }
    qa.lease_s = q.duration("lease", false, 120, true);
    qa.restart_delay_s = q.duration("restart_delay", false, 10);
    if (q.get("speedup", false)) qa.speedup = q.number("speedup", 0, 1e9, true, 0, true);
    q.done();
    s.queue = qa;
  }
  for (const auto& kind : framework_kinds()) {
    const json* raw = arch.get(kind, false);
    if (!raw) continue;
    Reader f(*raw, arch.at(kind), arch.file());
    FrameworkArch fa;
    fa.kind = kind;
    fa.configured = true;
    fa.workers = f.integer("workers", 1, 1000, false, 10);
    fa.restart_delay_s = f.duration("restart_delay", false, 10);
    if (f.get("speedup", false)) fa.speedup = f.number("speedup", 0, 1e9, true, 0, true);
    check_framework_options(f, kind, *raw);
    for (const auto& [k, v] : raw->items())
      if (k != "workers" && k != "restart_delay" && k != "speedup") fa.options[k] = v;
    s.frameworks[kind] = std::move(fa);
  }
  if (!s.polling && !s.queue && s.frameworks.empty())
    arch.fail(arch.path(), "expected at least one of polling, queue, rq, celery, bullmq, sidekiq, external");
  arch.done();

  if (auto* f = r.get("faults", false)) {
    if (!f->is_array()) r.fail(r.at("faults"), "expected an array, got " + describe(*f));
    FaultReadContext ctx;
    ctx.workers = s.queue ? s.queue->workers : 1;  // the most any architecture of the scenario has
    for (const auto& [kind, fw] : s.frameworks) ctx.workers = std::max(ctx.workers, fw.workers);
    for (std::size_t i = 0; i < f->size(); ++i)
      s.faults.push_back(read_fault(Reader((*f)[i], r.at("faults") + "[" + std::to_string(i) + "]", file), ctx));
    std::string persistence;
    for (std::size_t i = 0; i < s.faults.size(); ++i) {
      const auto* redis = s.faults[i].as<RedisFault>();
      if (!redis || s.faults[i].kind != "restart_redis") continue;
      if (!persistence.empty() && redis->persistence != persistence)
        r.fail(r.at("faults") + "[" + std::to_string(i) + "].persistence",
               "the same persistence as the other restart_redis faults (one server, one configuration): \"" +
                   persistence + "\"");
      persistence = redis->persistence;
    }
    // A failover replaces the server the other Redis faults act on, and its replica: one at a time.
    bool failover = false;
    std::string other;
    for (const auto& fault : s.faults) {
      failover = failover || fault.kind == "failover_redis";
      // fill_redis_memory acts through the connection, so on whichever server is the primary then
      if ((fault.kind == "restart_redis" || fault.kind == "fill_disk") && other.empty()) other = fault.kind;
    }
    if (failover && !other.empty())
      r.fail(r.at("faults"), "failover_redis cannot be combined with " + other + " (one acts on the primary the other kills)");
    for (std::size_t i = 0; failover && i < s.faults.size(); ++i)
      if (const std::string link = link_of(s.faults[i]); link.size() > 6 && link.compare(link.size() - 6, 6, "_redis") == 0)
        r.fail(r.at("faults") + "[" + std::to_string(i) + "].link",
               "with failover_redis the components find Redis through Sentinel, and their Redis links do not run "
               "through the fault proxy: " + link + " cannot be degraded then");
  }
  // redis_acl: users on the run's own server for qsim's own components only (sim run also
  // refuses --redis-acl with these, for a scenario without the field)
  if (s.redis_acl && redis_failover(s.faults))
    r.fail(r.at("redis_acl"), "redis_acl cannot be combined with failover_redis: the replica and the Sentinel would need "
                              "users of their own");
  if (s.redis_acl && !s.frameworks.empty())
    r.fail(r.at("redis_acl"), "redis_acl gives Redis users to qsim's own components only: " + s.frameworks.begin()->first +
                                  "'s adapter connects without credentials (drop it or redis_acl)");
  if (r.get("payment_intake", false)) {
    auto pi = r.object("payment_intake");
    s.intake_wait_replicas = pi.integer("wait_for_replicas", 0, 1, false, 0);
    pi.done();
    if (s.intake_wait_replicas > 0 && !redis_failover(s.faults))
      r.fail(r.at("payment_intake") + ".wait_for_replicas",
             "a replica to wait for: only a failover_redis fault gives the run's Redis one");
  }
  if (r.get("plan", false)) {
    auto p = r.object("plan");
    PlanSpec plan;
    auto slo = p.object("slo");
    plan.slo_metric = slo.one_of("metric", {"e2e_p50", "e2e_p90", "e2e_p95", "e2e_p99", "pickup_p50", "pickup_p90",
                                            "pickup_p95", "pickup_p99"});
    plan.slo_max_s = slo.duration("max", true, 0, true);
    slo.done();
    // a list, or {"from", "to"[, "step"]}
    auto series = [&](const std::string& key, double lo, double hi, bool integer) {
      std::vector<double> out;
      auto* v = p.get(key, true);
      if (v->is_array()) {
        for (std::size_t i = 0; i < v->size(); ++i) {
          const auto& x = (*v)[i];
          if (!x.is_number() || (integer && !x.is_number_integer()) || x.get<double>() < lo || x.get<double>() > hi)
            p.fail(p.at(key) + "[" + std::to_string(i) + "]",
                   std::string("expected ") + (integer ? "an integer" : "a number") + " in [" + std::to_string(static_cast<long long>(lo)) +
                       ", " + std::to_string(static_cast<long long>(hi)) + "], got " + describe(x));
          out.push_back(x.get<double>());
        }
      } else {
        Reader range(*v, p.at(key), file);
        double from = range.number("from", lo, hi), to = range.number("to", lo, hi),
               step = range.number("step", 0, hi, false, 1, true);
        range.done();
        if (to < from) range.fail(range.at("to"), "expected to >= from");
        for (double x = from; x <= to + 1e-9 && out.size() < 1000; x += step) out.push_back(x);
      }
      if (out.empty() || out.size() > 200) p.fail(p.at(key), "expected 1 to 200 values");
      return out;
    };
    for (double w : series("workers", 1, 1000, true)) plan.workers.push_back(static_cast<int>(w));
    plan.rates_per_h = series("rates_per_h", 1e-6, 1e7, false);
    plan.orders = p.integer("orders", 100, 10'000'000, false, 5'000);
    plan.replications = p.integer("replications", 2, 100, false, 10);
    if (static_cast<double>(plan.orders) * plan.replications > 50'000'000)
      p.fail(p.at("replications"), "at most 50,000,000 simulated orders per point (orders × replications), got " +
                                       std::to_string(static_cast<long long>(plan.orders) * plan.replications));
    if (p.get("cost_per_worker_hour", false)) plan.cost_per_worker_hour = p.number("cost_per_worker_hour", 0, 1e9);
    p.done();
    s.plan = plan;
  }
  if (auto* g = r.get("gates", false)) {
    Reader gates(*g, r.at("gates"), file);
    for (auto it = g->begin(); it != g->end(); ++it) {
      (void)gates.get(it.key(), true);
      s.gates.push_back(read_gate(gates, it.key(), *it));
    }
  }
  r.done();
  return s;
}

Scenario load_scenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ScenarioError(path, "$", "cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw ScenarioError(path, "$", std::string("not valid JSON: ") + e.what());
  }
  return parse_scenario(j, path);
}

const std::vector<std::string>& framework_kinds() {
  static const std::vector<std::string> kinds{"rq", "celery", "bullmq", "sidekiq", "external"};
  return kinds;
}

FrameworkArch Scenario::framework(const std::string& kind) const {
  if (auto it = frameworks.find(kind); it != frameworks.end()) return it->second;
  FrameworkArch f;
  f.kind = kind;
  if (queue) f.workers = queue->workers, f.restart_delay_s = queue->restart_delay_s;
  return f;
}

std::vector<std::string> architectures_of(const Scenario& s, const std::vector<std::string>& requested) {
  std::vector<std::string> archs = requested;
  if (archs.empty()) {
    if (s.polling) archs.push_back("polling");
    if (s.queue) archs.push_back("queue");
    for (const auto& k : framework_kinds())
      if (s.frameworks.count(k)) archs.push_back(k);
  }
  const auto& kinds = framework_kinds();
  for (const auto& a : archs)
    if (!((a == "polling" && s.polling) || (a == "queue" && s.queue) ||
          std::find(kinds.begin(), kinds.end(), a) != kinds.end()))
      throw ScenarioError("--arch", "$", "architecture '" + a + "' is not in the scenario (expected " +
                                             std::string(s.polling ? "polling " : "") + (s.queue ? "queue" : "") + ")");
  return archs;
}

}  // namespace qsim::sim
