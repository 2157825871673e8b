#include "qsim/queue/admin.h"

#include "scripts.h"

#include <algorithm>

namespace qsim::queue {

namespace {

long long as_ll(const redis::Reply& r) { return r.as_integer().value_or(0); }

}  // namespace

Expected<QueueOverview> QueueAdmin::overview(std::size_t max_in_flight) {
  const Keys& k = q_->keys();
  auto& conn = q_->connection();
  const std::string last = std::to_string(static_cast<long long>(max_in_flight) - 1);
  auto res = conn.pipeline({{"TIME"},
                            {"LLEN", k.ready(Priority::high)},
                            {"LLEN", k.ready(Priority::normal)},
                            {"LLEN", k.ready(Priority::low)},
                            {"ZCARD", k.delayed()},
                            {"ZCARD", k.active()},
                            {"LLEN", k.dead()},
                            {"EXISTS", k.base() + "paused"},
                            // none asked: an empty range, not "0 -1" (every job in flight)
                            {"ZRANGE", k.active(), max_in_flight ? "0" : "1", max_in_flight ? last : "0", "WITHSCORES"},
                            {"ZREVRANGE", k.base() + "workers", "0", "-1"},
                            // leased to an idle worker's inbox, not yet moved to active: in flight too
                            {"ZCARD", k.handed()},
                            {"ZRANGE", k.handed(), max_in_flight ? "0" : "1", max_in_flight ? last : "0", "WITHSCORES"}});
  for (auto& r : res)
    if (!r) return Expected<QueueOverview>::failure(r);
  QueueOverview o;
  o.queue = k.queue();
  o.server_ms = as_ll(res[0].reply.elements.at(0)) * 1000 + as_ll(res[0].reply.elements.at(1)) / 1000;
  o.ready_high = as_ll(res[1].reply);
  o.ready_default = as_ll(res[2].reply);
  o.ready_low = as_ll(res[3].reply);
  o.delayed = as_ll(res[4].reply);
  o.in_flight = as_ll(res[5].reply) + as_ll(res[10].reply);
  o.dead = as_ll(res[6].reply);
  o.paused = as_ll(res[7].reply) == 1;
  auto counters = q_->counters();
  if (!counters) return {counters.status, counters.error, {}};
  o.counters = counters.value;

  // in-flight jobs: token "<id>:<serial>" -> lease deadline; their worker and attempt from the job
  for (const auto* leases : {&res[8].reply.elements, &res[11].reply.elements})
    for (std::size_t i = 0; i + 1 < leases->size(); i += 2) {
      const std::string& tok = (*leases)[i].str;
      InFlightJob j;
      j.id = tok.substr(0, tok.rfind(':'));
      j.lease_remaining_ms = as_ll((*leases)[i + 1]) - o.server_ms;
      o.in_flight_jobs.push_back(j);
    }
  std::stable_sort(o.in_flight_jobs.begin(), o.in_flight_jobs.end(),
                   [](const InFlightJob& a, const InFlightJob& b) { return a.lease_remaining_ms < b.lease_remaining_ms; });
  if (o.in_flight_jobs.size() > max_in_flight) o.in_flight_jobs.resize(max_in_flight);
  std::vector<std::vector<std::string>> job_reads;
  for (const auto& j : o.in_flight_jobs) job_reads.push_back({"HMGET", k.job(j.id), "worker", "attempts"});
  if (!job_reads.empty()) {
    auto jobs = conn.pipeline(job_reads);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (!jobs[i]) return Expected<QueueOverview>::failure(jobs[i]);
      o.in_flight_jobs[i].worker = jobs[i].reply.elements.at(0).str;
      o.in_flight_jobs[i].attempt = static_cast<int>(as_ll(jobs[i].reply.elements.at(1)));
    }
  }

  std::vector<std::vector<std::string>> worker_reads;
  for (const auto& w : res[9].reply.elements) {
    o.workers.push_back({w.str, {}, 0, 0, 0, false});
    worker_reads.push_back({"HMGET", k.base() + "worker:" + w.str, "job", "beat", "interval", "started"});
  }
  if (!worker_reads.empty()) {
    auto ws = conn.pipeline(worker_reads);
    for (std::size_t i = 0; i < ws.size(); ++i) {
      if (!ws[i]) return Expected<QueueOverview>::failure(ws[i]);
      const auto& f = ws[i].reply.elements;
      auto& w = o.workers[i];
      w.job = f.at(0).str;
      w.since_beat_ms = o.server_ms - as_ll(f.at(1));
      w.interval_ms = as_ll(f.at(2));
      w.started_ms = as_ll(f.at(3));
      w.alive = w.since_beat_ms <= std::max<std::int64_t>(3 * w.interval_ms, 3000);
    }
  }
  return {redis::Status::ok, {}, std::move(o)};
}

Expected<std::vector<DeadJob>> QueueAdmin::dead(std::string_view reason, std::size_t limit, bool payloads) {
  auto ids = q_->dead_ids();
  if (!ids) return {ids.status, ids.error, {}};
  std::vector<DeadJob> out;
  const std::size_t batch = 500;
  for (std::size_t from = 0; from < ids.value.size(); from += batch) {
    std::vector<std::vector<std::string>> reads;
    const std::size_t to = std::min(ids.value.size(), from + batch);
    for (std::size_t i = from; i < to; ++i) {
      reads.push_back({"HMGET", q_->keys().job(ids.value[i]), "error", "attempts", "finished"});
      if (payloads) reads.back().push_back("payload");
    }
    auto rs = q_->connection().pipeline(reads);
    for (std::size_t i = 0; i < rs.size(); ++i) {
      if (!rs[i]) return Expected<std::vector<DeadJob>>::failure(rs[i]);
      const auto& f = rs[i].reply.elements;
      DeadJob d{ids.value[from + i], f.at(0).str, payloads ? f.at(3).str : std::string(), static_cast<int>(as_ll(f.at(1))),
                as_ll(f.at(2))};
      if (!reason.empty() && d.reason.find(reason) == std::string::npos) continue;
      out.push_back(std::move(d));
      if (limit && out.size() >= limit) return {redis::Status::ok, {}, std::move(out)};
    }
  }
  return {redis::Status::ok, {}, std::move(out)};
}

Expected<std::vector<std::string>> QueueAdmin::requeue_dead(const std::vector<std::string>& ids) {
  std::vector<std::string> done;
  const std::size_t batch = 500;  // one script per batch: atomic per batch, never a long block
  for (std::size_t from = 0; from < ids.size(); from += batch) {
    std::vector<std::string> args(ids.begin() + static_cast<std::ptrdiff_t>(from),
                                  ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), from + batch)));
    auto r = q_->run(scripts::requeue_dead(), std::move(args));
    if (!r) return {r.status, r.error, std::move(done)};
    for (auto& e : r.value)
      if (!e.str.empty()) done.push_back(std::move(e.str));
  }
  return {redis::Status::ok, {}, std::move(done)};
}

Expected<bool> QueueAdmin::set_paused(bool paused) {
  auto r = q_->run(scripts::pause(), {paused ? "1" : "0"});
  if (!r) return {r.status, r.error, false};
  return {redis::Status::ok, {}, as_ll(r.value.at(0)) == 1};
}

Expected<long long> QueueAdmin::purge() {
  long long total = 0;
  for (;;) {  // in steps of 1,000: Redis serves other clients between them
    auto r = q_->run(scripts::purge(), {"1000"});
    if (!r) return {r.status, r.error, total};
    const long long n = as_ll(r.value.at(0));
    total += n;
    if (n == 0) return {redis::Status::ok, {}, total};
  }
}

}  // namespace qsim::queue
