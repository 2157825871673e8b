#include "qsim/queue/queue.h"

#include "scripts.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace qsim::queue {

namespace {

long long to_ll(const redis::Reply& r, long long fallback = 0) { return r.as_integer().value_or(fallback); }

std::string join_int(long long v) { return std::to_string(v); }

JobState state_from(std::string_view s) {
  if (s == "ready") return JobState::ready;
  if (s == "delayed") return JobState::delayed;
  if (s == "active") return JobState::active;
  if (s == "done") return JobState::done;
  if (s == "failed") return JobState::failed;
  if (s == "dead") return JobState::dead;
  return JobState::unknown;
}

std::vector<Transition> parse_history(std::string_view h) {
  std::vector<Transition> out;
  while (!h.empty()) {
    auto semi = h.find(';');
    std::string_view entry = h.substr(0, semi);
    h = semi == std::string_view::npos ? std::string_view{} : h.substr(semi + 1);
    if (entry.empty()) continue;
    Transition t;
    auto at = entry.find('@');
    t.state = std::string(entry.substr(0, at));
    if (at != std::string_view::npos) {
      auto rest = entry.substr(at + 1);
      auto at2 = rest.find('@');
      auto ms = rest.substr(0, at2);
      std::from_chars(ms.data(), ms.data() + ms.size(), t.at_ms);
      if (at2 != std::string_view::npos) t.worker = std::string(rest.substr(at2 + 1));
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::ready: return "ready";
    case JobState::delayed: return "delayed";
    case JobState::active: return "active";
    case JobState::done: return "done";
    case JobState::failed: return "failed";
    case JobState::dead: return "dead";
    case JobState::unknown: return "unknown";
  }
  return "unknown";
}

Queue::Queue(redis::Connection& conn, std::string_view name, QueueConfig config)
    : conn_(&conn), keys_(name, config.prefix), config_(std::move(config)) {
  keys_cache_ = {keys_.ready(Priority::high), keys_.ready(Priority::normal), keys_.ready(Priority::low),
                 keys_.delayed(), keys_.active(), keys_.dead(), keys_.stats(), keys_.idle(),
                 keys_.unique(), keys_.seq(), keys_.reaper_lock()};
  for (std::size_t n = 0; n <= keys_cache_.size(); ++n)
    keys_by_count_.emplace_back(keys_cache_.begin(), keys_cache_.begin() + static_cast<std::ptrdiff_t>(n));
  // enqueue never touches active: it declares the hand-off set in its place (scripts.cpp)
  enqueue_keys_ = keys_by_count_.at(scripts::key_count(scripts::enqueue()));
  enqueue_keys_.at(4) = keys_.handed();
}

const std::vector<std::string>& Queue::keys_for(const redis::Script& script) const {
  return &script == &scripts::enqueue() ? enqueue_keys_ : keys_by_count_.at(scripts::key_count(script));
}

std::vector<std::string> Queue::script_keys(const redis::Script& script, const std::string* extra_key) const {
  auto keys = keys_for(script);
  if (extra_key) keys.push_back(*extra_key);
  return keys;
}

Expected<std::vector<redis::Reply>> Queue::run(const redis::Script& script, std::vector<std::string> args,
                                               const std::string* extra_key) {
  args.insert(args.begin(), keys_.base());
  // The common case (no extra key) passes a prepared list: nothing is copied per call.
  redis::Result r = extra_key ? conn_->eval(script, script_keys(script, extra_key), args)
                              : conn_->eval(script, keys_for(script), args);
  if (!r) return Expected<std::vector<redis::Reply>>::failure(r);
  if (r.reply.is_array()) return {redis::Status::ok, {}, std::move(r.reply.elements)};
  std::vector<redis::Reply> one;
  one.push_back(std::move(r.reply));
  return {redis::Status::ok, {}, std::move(one)};
}

Expected<Enqueued> Queue::enqueue(std::string_view payload, const EnqueueOptions& o) {
  if (o.max_attempts < 1)  // a job of no attempts could never be run nor told from a crash loop
    throw std::invalid_argument("max_attempts must be at least 1, not " + std::to_string(o.max_attempts));
  auto r = run(scripts::enqueue(), {std::string(payload), std::string(to_string(o.priority)),
                                    join_int(o.delay.count()), o.unique_key, join_int(o.max_attempts)});
  if (!r) return {r.status, r.error, {}};
  return {redis::Status::ok, {}, Enqueued{r.value.at(0).str, to_ll(r.value.at(1)) == 1}};
}

Expected<std::vector<Enqueued>> Queue::enqueue_many(const std::vector<std::string>& payloads, const EnqueueOptions& o) {
  if (o.max_attempts < 1) throw std::invalid_argument("max_attempts must be at least 1, not " + std::to_string(o.max_attempts));
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(payloads.size() + 1);
  // Make sure the script is loaded before the pipeline (a NOSCRIPT inside it cannot be retried).
  if (auto load = conn_->command({"SCRIPT", "LOAD", scripts::enqueue().source()}); !load)
    return Expected<std::vector<Enqueued>>::failure(load);
  for (const auto& p : payloads) {
    auto keys = script_keys(scripts::enqueue(), nullptr);
    std::vector<std::string> argv{"EVALSHA", scripts::enqueue().sha(), std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), {keys_.base(), p, std::string(to_string(o.priority)), join_int(o.delay.count()),
                             o.unique_key, join_int(o.max_attempts)});
    cmds.push_back(std::move(argv));
  }
  std::vector<Enqueued> out;
  out.reserve(payloads.size());
  for (auto& res : conn_->pipeline(cmds)) {
    if (!res) return Expected<std::vector<Enqueued>>::failure(res);
    out.push_back({res.reply.elements.at(0).str, to_ll(res.reply.elements.at(1)) == 1});
  }
  return {redis::Status::ok, {}, std::move(out)};
}

std::optional<Job> decode_handed_job(std::string_view e) {
  std::string_view f[5];
  for (auto& field : f) {
    auto nl = e.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    field = e.substr(0, nl);
    e.remove_prefix(nl + 1);
  }
  // an entry is the engine's own, but it comes back from Redis: one that does not hold together
  // (found by fuzz_handed_job: no id) is refused, never run
  if (f[0].empty() || f[1].empty()) return std::nullopt;
  Job j;
  j.id = std::string(f[0]);
  j.lease_token = std::string(f[1]);
  auto num = [](std::string_view v, int& out) {
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size();
  };
  if (!num(f[2], j.attempt) || !num(f[3], j.max_attempts) || j.attempt < 0 || j.max_attempts < 0) return std::nullopt;
  try {
    j.priority = priority_from_string(f[4]);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
  j.payload = std::string(e);
  return j;
}

Expected<Reservation> Queue::ack_and_reserve(const std::vector<Job>& acks, std::size_t max_jobs,
                                             std::string_view worker_id, std::chrono::milliseconds lease,
                                             IdleRegistration idle) {
  std::vector<std::string> args;
  args.reserve(6 + acks.size());
  args.emplace_back(worker_id);
  args.push_back(join_int(lease.count()));
  args.push_back(join_int(static_cast<long long>(max_jobs)));
  args.push_back(join_int(static_cast<long long>(config_.max_payload_bytes)));
  args.push_back(idle.was_idle ? "1" : "0");
  args.push_back(join_int(idle.ttl.count()));
  for (const auto& j : acks) args.push_back(j.lease_token);
  auto r = run(scripts::reserve(), std::move(args));
  if (!r) return {r.status, r.error, {}};
  auto& v = r.value;
  Reservation res;
  res.acked = static_cast<int>(to_ll(v.at(0)));
  auto n = static_cast<std::size_t>(to_ll(v.at(1)));
  if (auto due = to_ll(v.at(2), -1); due >= 0) res.next_due = std::chrono::milliseconds(due);
  res.registered_idle = to_ll(v.at(3)) == 1;
  res.jobs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t b = 4 + 6 * i;
    Job j;
    j.id = std::move(v.at(b).str);
    j.lease_token = std::move(v.at(b + 1).str);
    j.attempt = static_cast<int>(to_ll(v.at(b + 2)));
    j.max_attempts = static_cast<int>(to_ll(v.at(b + 3)));
    j.priority = priority_from_string(v.at(b + 4).str);
    j.payload = std::move(v.at(b + 5).str);
    res.jobs.push_back(std::move(j));
  }
  return {redis::Status::ok, {}, std::move(res)};
}

Expected<int> Queue::ack(const std::vector<Job>& jobs) {
  auto r = ack_and_reserve(jobs, 0, "", std::chrono::milliseconds(0));
  if (!r) return {r.status, r.error, 0};
  return {redis::Status::ok, {}, r.value.acked};
}

Expected<std::optional<Job>> Queue::wait_for_work(std::string_view worker_id, std::chrono::milliseconds timeout) {
  // BLPOP takes seconds as a decimal; the socket timeout must outlast the server-side block.
  char secs[32];
  auto n = std::snprintf(secs, sizeof secs, "%.3f", static_cast<double>(std::max<long long>(1, timeout.count())) / 1000.0);
  redis::Result r = conn_->command({"BLPOP", keys_.inbox(worker_id), std::string(secs, static_cast<std::size_t>(n))},
                                   timeout + std::chrono::milliseconds(1000));
  if (!r) return {r.status, r.error, std::nullopt};
  if (r.reply.is_nil()) return {redis::Status::ok, {}, std::nullopt};
  auto job = decode_handed_job(r.reply.elements.at(1).str);
  if (!job) return {redis::Status::protocol_error, "malformed inbox entry", std::nullopt};
  return {redis::Status::ok, {}, std::move(job)};
}

Expected<std::vector<bool>> Queue::heartbeat(const std::vector<Job>& jobs, std::chrono::milliseconds lease) {
  std::vector<std::string> args{join_int(lease.count())};
  for (const auto& j : jobs) args.push_back(j.lease_token);
  auto r = run(scripts::heartbeat(), std::move(args));
  if (!r) return {r.status, r.error, {}};
  std::vector<bool> out;
  for (const auto& e : r.value) out.push_back(to_ll(e) == 1);
  return {redis::Status::ok, {}, std::move(out)};
}

Expected<FailOutcome> Queue::fail(const Job& job, std::string_view reason, FailKind kind, std::chrono::milliseconds retry_delay) {
  const char* how = kind == FailKind::permanent     ? "1"
                    : kind == FailKind::unavailable ? "2"
                    : kind == FailKind::crash_loop  ? "3"
                                                    : "0";
  auto r = run(scripts::fail(), {job.lease_token, std::string(reason), how, join_int(retry_delay.count()),
                                 join_int(kMaxUncountedFailures)});
  if (!r) return {r.status, r.error, FailOutcome::lease_lost};
  auto code = to_ll(r.value.at(0));
  return {redis::Status::ok, {}, code == 2 ? FailOutcome::dead : code >= 1 ? FailOutcome::retry_scheduled : FailOutcome::lease_lost};
}

Expected<bool> Queue::release(const Job& job) {
  auto r = run(scripts::release(), {job.lease_token});
  if (!r) return {r.status, r.error, false};
  return {redis::Status::ok, {}, to_ll(r.value.at(0)) == 1};
}

Expected<ReapResult> Queue::reap(std::string_view holder, std::chrono::milliseconds tick, int limit) {
  auto r = run(scripts::reap(), {std::string(holder), join_int(tick.count()), join_int(limit)});
  if (!r) return {r.status, r.error, {}};
  ReapResult out;
  auto first = to_ll(r.value.at(0));
  out.acted = first >= 0;
  out.redelivered = out.acted ? static_cast<int>(first) : 0;
  out.dead = static_cast<int>(to_ll(r.value.at(1)));
  if (r.value.size() > 2) out.sent_for_burial = static_cast<int>(to_ll(r.value.at(2)));
  return {redis::Status::ok, {}, out};
}

Expected<std::optional<JobStatus>> Queue::status(std::string_view id) {
  redis::Result r = conn_->command({"HGETALL", keys_.job(id)});
  if (!r) return {r.status, r.error, std::nullopt};
  const auto& fields = r.reply.elements;
  if (fields.empty()) return {redis::Status::ok, {}, std::nullopt};
  JobStatus s;
  s.id = std::string(id);
  std::string history;
  std::int64_t finished = 0;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    const auto& k = fields[i].str;
    const auto& v = fields[i + 1];
    if (k == "state") s.state = state_from(v.str);
    else if (k == "attempts") s.attempts = static_cast<int>(to_ll(v));
    else if (k == "max") s.max_attempts = static_cast<int>(to_ll(v));
    else if (k == "prio") s.priority = priority_from_string(v.str);
    else if (k == "worker") s.worker = v.str;
    else if (k == "error") s.last_error = v.str;
    else if (k == "payload") s.payload = v.str;
    else if (k == "created") s.created_ms = to_ll(v);
    else if (k == "hist") history = v.str;
    else if (k == "finished") finished = to_ll(v);
  }
  s.history = parse_history(history);
  // an ack records only 'finished' (one write fewer on the hot path); it is the last transition
  if (s.state == JobState::done) s.history.push_back({"done", finished, {}});
  return {redis::Status::ok, {}, std::move(s)};
}

Expected<Counters> Queue::counters() {
  redis::Result r = conn_->command({"HGETALL", keys_.stats()});
  if (!r) return Expected<Counters>::failure(r);
  Counters c;
  const auto& f = r.reply.elements;
  for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
    long long v = to_ll(f[i + 1]);
    const auto& k = f[i].str;
    if (k == "enqueued") c.enqueued = v;
    else if (k == "reserved") c.reserved = v;
    else if (k == "acked") c.acked = v;
    else if (k == "retried") c.retried = v;
    else if (k == "redelivered") c.redelivered = v;
    else if (k == "released") c.released = v;
    else if (k == "dead") c.dead = v;
    else if (k == "burials") c.burials = v;
    else if (k == "requeued") c.requeued = v;
    else if (k == "purged") c.purged = v;
  }
  return {redis::Status::ok, {}, c};
}

Expected<bool> Queue::announce(std::string_view worker_id, std::string_view job_id, std::chrono::milliseconds interval,
                               bool leaving) {
  redis::Result r = conn_->eval(scripts::presence(), {keys_.base() + "workers", keys_.base() + "worker:" + std::string(worker_id)},
                                {keys_.base(), std::string(worker_id), std::string(job_id), join_int(interval.count()),
                                 leaving ? "1" : "0"});
  if (!r) return {r.status, r.error, false};
  return {redis::Status::ok, {}, true};
}

Expected<long long> Queue::ready_count() {
  auto results = conn_->pipeline({{"LLEN", keys_.ready(Priority::high)},
                                  {"LLEN", keys_.ready(Priority::normal)},
                                  {"LLEN", keys_.ready(Priority::low)}});
  long long total = 0;
  for (auto& res : results) {
    if (!res) return Expected<long long>::failure(res);
    total += to_ll(res.reply);
  }
  return {redis::Status::ok, {}, total};
}

Expected<std::vector<std::string>> Queue::dead_ids() {
  redis::Result r = conn_->command({"LRANGE", keys_.dead(), "0", "-1"});
  if (!r) return Expected<std::vector<std::string>>::failure(r);
  std::vector<std::string> out;
  for (auto& e : r.reply.elements) out.push_back(std::move(e.str));
  return {redis::Status::ok, {}, std::move(out)};
}

Expected<std::vector<std::string>> Queue::periodic_step(std::string_view name, std::string_view expected_next,
                                                        std::int64_t new_next, const std::string& payload,
                                                        Priority priority, int max_attempts) {
  if (max_attempts < 1) throw std::invalid_argument("max_attempts must be at least 1, not " + std::to_string(max_attempts));
  std::string key = keys_.periodic(name);
  auto r = run(scripts::periodic(), {std::string(expected_next), std::to_string(new_next), payload,
                                     std::string(to_string(priority)), join_int(max_attempts)},
               &key);
  if (!r) return {r.status, r.error, {}};
  std::vector<std::string> out;
  for (auto& e : r.value) out.push_back(e.type == redis::Reply::Type::integer ? std::to_string(e.integer) : std::move(e.str));
  return {redis::Status::ok, {}, std::move(out)};
}

}  // namespace qsim::queue
