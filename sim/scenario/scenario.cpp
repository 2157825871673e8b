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

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// Reads one JSON object field by field; whatever was not asked for is an unknown key.
class Reader {
public:
  Reader(const json& j, std::string path, const std::string& file) : j_(j), path_(std::move(path)), file_(file) {
    if (!j_.is_object()) fail(path_, "expected an object, got " + describe(j_));
  }
  [[noreturn]] void fail(const std::string& path, const std::string& expected) const {
    throw ScenarioError(file_, path, expected);
  }
  std::string at(const std::string& key) const { return path_ + "." + key; }
  // Whether the key is there, without reading it (a read key is no longer an unknown one).
  bool has(const std::string& key) const { return j_.contains(key); }
  const json* get(const std::string& key, bool required) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) fail(at(key), "missing (required)");
      return nullptr;
    }
    return &*it;
  }
  std::string str(const std::string& key, bool required = true, const std::string& fallback = "") {
    auto* v = get(key, required);
    if (!v) return fallback;
    if (!v->is_string() || v->get<std::string>().empty()) fail(at(key), "expected a non-empty string, got " + describe(*v));
    return *v;
  }
  std::string one_of(const std::string& key, const std::vector<std::string>& allowed) {
    auto s = str(key);
    for (auto& a : allowed)
      if (s == a) return s;
    std::string list;
    for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(at(key), "expected one of " + list + "; got \"" + s + "\"");
  }
  double number(const std::string& key, double lo, double hi, bool required = true, double fallback = 0,
                bool lo_open = false) {
    auto* v = get(key, required);
    if (!v) return fallback;
    if (!v->is_number()) fail(at(key), "expected a number, got " + describe(*v));
    double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi || (lo_open && d == lo))
      fail(at(key), "expected a number in " + std::string(lo_open ? "(" : "[") + fmt(lo) + ", " + fmt(hi) + "], got " +
                        describe(*v));
    return d;
  }
  int integer(const std::string& key, long long lo, long long hi, bool required = true, int fallback = 0) {
    auto* v = get(key, required);
    if (!v) return fallback;
    if (!v->is_number_integer()) fail(at(key), "expected an integer, got " + describe(*v));
    auto i = v->get<long long>();
    if (i < lo || i > hi) fail(at(key), "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + describe(*v));
    return static_cast<int>(i);
  }
  double duration(const std::string& key, bool required = true, double fallback = 0, bool positive = false) {
    auto* v = get(key, required);
    if (!v) return fallback;
    std::optional<double> d = v->is_string() ? parse_duration_s(v->get<std::string>()) : std::nullopt;
    if (!d) fail(at(key), "expected a duration like \"250ms\", \"10s\", \"55m\" or \"1h\", got " + describe(*v));
    if (positive && *d <= 0) fail(at(key), "expected a duration greater than 0, got " + describe(*v));
    return *d;
  }
  Reader object(const std::string& key) {
    auto* v = get(key, true);
    return Reader(*v, at(key), file_);
  }
  void done() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) fail(at(it.key()), "unknown key (not in scenarios/schema.json)");
  }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

private:
  static std::string fmt(double d) {
    std::ostringstream o;
    o << d;
    return o.str();
  }
  const json& j_;
  std::string path_;
  const std::string& file_;
  std::set<std::string> seen_;
};

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
  const double max_rate = 1e7;
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

Fault read_fault(Reader r, const Scenario& s) {
  Fault f;
  static const std::vector<std::pair<std::string, Fault::Kind>> kinds{
      {"kill_process", Fault::Kind::kill_process},       {"pause_process", Fault::Kind::pause_process},
      {"restart_redis", Fault::Kind::restart_redis},     {"duplicate_webhook", Fault::Kind::duplicate_webhook},
      {"replay_webhook", Fault::Kind::replay_webhook},   {"forge_webhook", Fault::Kind::forge_webhook},
      {"late_webhook", Fault::Kind::late_webhook},       {"fail_download", Fault::Kind::fail_download},
      {"fail_upload", Fault::Kind::fail_upload},         {"fail_grant", Fault::Kind::fail_grant},
      {"fail_mail", Fault::Kind::fail_mail},             {"slow_world", Fault::Kind::slow_world},
      {"poison_job", Fault::Kind::poison_job},           {"delay_network", Fault::Kind::delay_network},
      {"reset_connections", Fault::Kind::reset_connections}, {"blackhole", Fault::Kind::blackhole},
      {"limit_bandwidth", Fault::Kind::limit_bandwidth}};
  std::vector<std::string> names;
  for (const auto& [n, k] : kinds) names.push_back(n);
  f.name = r.one_of("kind", names);
  for (const auto& [n, k] : kinds)
    if (n == f.name) f.kind = k;
  using K = Fault::Kind;
  auto window = [&] {
    f.from_s = r.duration("from", false, 0);
    f.until_s = r.duration("until", false, 1e300);
    if (f.until_s <= f.from_s) r.fail(r.at("until"), "expected a time after \"from\"");
  };
  auto probability = [&] { f.probability = r.number("probability", 0, 1, false, 1); };
  // at | every | (kill_process) stage: exactly one
  auto when = [&](bool stage_allowed) {
    if (!stage_allowed && r.get("stage", false))
      r.fail(r.at("stage"), "no \"stage\" here: only kill_process fires at a stage");
    int given = (r.get("at", false) != nullptr) + (r.get("every", false) != nullptr) +
                (stage_allowed && r.get("stage", false) != nullptr);
    if (given != 1)
      r.fail(r.path(), stage_allowed ? "exactly one of \"at\", \"every\" or \"stage\"" : "exactly one of \"at\" or \"every\"");
    if (r.get("at", false)) f.at_s = r.duration("at");
    if (r.get("every", false)) {
      f.every_s = r.duration("every", true, 0, true);
      window();
      probability();
    }
    if (stage_allowed && r.get("stage", false)) {
      f.stage = r.one_of("stage", {"download", "upload", "after_grant", "after_effects", "handoff"});
      window();
      probability();
    }
    f.count = r.integer("count", 1, 1'000'000, false, f.every_s ? 0 : 1);
  };
  switch (f.kind) {
    case K::kill_process:
    case K::pause_process: {
      f.target = r.str("target");
      const bool instance = f.target.rfind("worker-", 0) == 0;
      if (f.target != "worker" && f.target != "payment_intake" && f.target != "finalize" && !instance)
        r.fail(r.at("target"), "expected worker, worker-<n>, payment_intake or finalize; got \"" + f.target + "\"");
      if (instance) {
        const std::string n = f.target.substr(7);
        int workers = s.queue ? s.queue->workers : 1;  // the most any architecture of the scenario has
        for (const auto& [kind, fw] : s.frameworks) workers = std::max(workers, fw.workers);
        if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 6 || std::stoi(n) >= workers)
          r.fail(r.at("target"), "a worker that exists: worker-0 .. worker-" + std::to_string(workers - 1) + "; got \"" +
                                     f.target + "\"");
      }
      when(f.kind == K::kill_process);
      if (f.stage == "after_grant" && f.target != "finalize")
        r.fail(r.at("target"), "finalize (it is finalize that stands between the grant and the e-mail)");
      if (f.stage == "handoff" && f.target != "payment_intake")
        r.fail(r.at("target"), "payment_intake (it is the intake that hands a paid order to a framework)");
      if ((f.stage == "download" || f.stage == "upload" || f.stage == "after_effects") && f.target != "worker" &&
          !instance)
        r.fail(r.at("target"), "a worker (only workers download, upload and wait for finalize)");
      if (f.kind == K::pause_process) f.for_s = r.duration("for", true, 0, true);
      if (f.kind == K::kill_process && r.get("process", false)) {
        f.process = r.one_of("process", {"worker", "job"});
        if (f.target == "payment_intake" || f.target == "finalize")
          r.fail(r.at("process"), "only a worker's kill chooses its process (worker or job)");
      }
      break;
    }
    case K::restart_redis:
      when(false);
      f.for_s = r.duration("down_for", false, 0);
      f.persistence = r.get("persistence", false) ? r.one_of("persistence", {"none", "everysec", "always"}) : "none";
      break;
    case K::poison_job:
      when(false);
      break;
    case K::duplicate_webhook: {
      probability();
      window();
      if (auto* c = r.get("copies", false)) {
        const std::string what = "expected [min, max] extra copies, 1 <= min <= max <= 100, got ";
        if (!c->is_array() || c->size() != 2) r.fail(r.at("copies"), what + describe(*c));
        for (std::size_t i = 0; i < 2; ++i)  // a bad bound is named itself, as the schema names it
          if (!(*c)[i].is_number_integer() || (*c)[i].get<long long>() < 1 || (*c)[i].get<long long>() > 100)
            r.fail(r.at("copies") + "[" + std::to_string(i) + "]", "expected an integer in [1, 100], got " + describe((*c)[i]));
        if ((*c)[1].get<int>() < (*c)[0].get<int>()) r.fail(r.at("copies"), what + describe(*c));
        f.copies_min = (*c)[0];
        f.copies_max = (*c)[1];
      }
      f.spread_s = r.duration("spread", false, 0);
      break;
    }
    case K::replay_webhook:
      probability();
      window();
      f.after_s = r.duration("after", false, 360);
      if (f.after_s <= 300) r.fail(r.at("after"), "a time past the receivers' 5-minute window (more than 5m)");
      break;
    case K::forge_webhook:
      probability();
      window();
      f.how = r.get("how", false) ? r.one_of("how", {"bad_signature", "tampered_body"}) : "bad_signature";
      break;
    case K::late_webhook: {
      probability();
      window();
      f.skew_s = r.duration("skew", false, 600);
      if (f.skew_s <= 300) r.fail(r.at("skew"), "a skew past the receivers' 5-minute window (more than 5m)");
      if (r.get("future", false)) {
        auto* v = r.get("future", false);
        if (!v->is_boolean()) r.fail(r.at("future"), "expected true or false");
        if (v->get<bool>()) f.skew_s = -f.skew_s;
      }
      break;
    }
    case K::fail_download:
    case K::fail_upload:
    case K::fail_grant:
    case K::fail_mail:
      f.probability = r.number("probability", 0, 1);
      window();
      if (auto* t = r.get("transient", false)) {
        if (!t->is_boolean()) r.fail(r.at("transient"), "expected true or false, got " + describe(*t));
        f.transient = *t;
      }
      break;
    case K::slow_world:
      f.factor = r.number("factor", 0, 1000, true, 1, true);
      window();
      break;
    case K::delay_network:
    case K::reset_connections:
    case K::blackhole:
    case K::limit_bandwidth: {
      f.link = r.one_of("link", network_links());
      if (f.kind == K::delay_network) {
        f.latency_s = r.duration("latency");
        f.jitter_s = r.duration("jitter", false, 0);
        window();
      } else if (f.kind == K::limit_bandwidth) {
        f.bytes_per_s = r.number("bytes_per_s", 1, 1e12);
        window();
      } else if (f.kind == K::blackhole) {
        // A blackhole must lift: at + for, or a window with an end. Named at the fault, as the
        // schema's oneOf does.
        const bool span = r.has("at") && r.has("for");
        if (span == r.has("until"))
          r.fail(r.path(), "exactly one of \"at\" and \"for\", or \"until\" (when the blackhole lifts)");
        if (span) {
          f.from_s = r.duration("at");
          f.until_s = f.from_s + r.duration("for", true, 0, true);
        } else {
          window();
        }
      } else {
        if (r.has("at") == r.has("probability")) r.fail(r.path(), "exactly one of \"at\" or \"probability\"");
        if (r.has("at")) {
          f.at_s = r.duration("at");
          f.count = 1;
        } else {
          f.probability = r.number("probability", 0, 1);
          window();
        }
      }
      break;
    }
  }
  r.done();
  return f;
}

}  // namespace

const std::vector<std::string>& network_links() {
  static const std::vector<std::string> links{"worker_redis",    "intake_redis",   "finalize_redis", "worker_world",
                                              "worker_finalize", "finalize_world", "provider_intake", "intake_handoff"};
  return links;
}

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

std::optional<double> parse_duration_s(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0 || i == text.size()) return std::nullopt;
  std::string number(text.substr(0, i));
  if (number.find('.') != number.rfind('.') || number.front() == '.' || number.back() == '.') return std::nullopt;
  double n = std::strtod(number.c_str(), nullptr);
  auto unit = text.substr(i);
  double mult = unit == "ms" ? 0.001 : unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (mult < 0) return std::nullopt;
  return n * mult;
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
    for (std::size_t i = 0; i < f->size(); ++i)
      s.faults.push_back(read_fault(Reader((*f)[i], r.at("faults") + "[" + std::to_string(i) + "]", file), s));
    std::string persistence;
    for (std::size_t i = 0; i < s.faults.size(); ++i) {
      const auto& fault = s.faults[i];
      if (fault.kind != Fault::Kind::restart_redis) continue;
      if (!persistence.empty() && fault.persistence != persistence)
        r.fail(r.at("faults") + "[" + std::to_string(i) + "].persistence",
               "the same persistence as the other restart_redis faults (one server, one configuration): \"" +
                   persistence + "\"");
      persistence = fault.persistence;
    }
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
    plan.orders = p.integer("orders", 100, 10'000'000, false, 20'000);
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
