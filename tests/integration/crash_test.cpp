// Real worker processes, really SIGKILLed. The claims: nothing is lost, every duplicate
// execution is accounted for by a counted redelivery, and a killed worker's job comes back
// within lease + one reaper tick.
#include "eventually.h"
#include "live_redis.h"
#include "qsim/queue/queue.h"
#include "qsim/sim/child_process.h"

#include <boost/process.hpp>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace qsim;
namespace bp = boost::process;

namespace {

struct WorkerProcess {
  std::string id;
  bp::child child;
};

class Fleet {
public:
  Fleet(std::string queue, std::vector<std::string> extra) : queue_(std::move(queue)), extra_(std::move(extra)) {}
  ~Fleet() {
    for (auto& w : workers_)
      if (w.child.running()) w.child.terminate();
  }
  void spawn(int slot) {
    std::string id = "w" + std::to_string(slot) + "g" + std::to_string(generation_++);
    std::vector<std::string> args{"--redis", testkit::live_redis().endpoint().to_string(), "--queue", queue_, "--id", id};
    args.insert(args.end(), extra_.begin(), extra_.end());
    WorkerProcess w{id, bp::child(testkit::helper_path("ledger_worker"), bp::args(args), bp::std_out > bp::null,
                                  bp::std_err > bp::null, sim::die_with_parent)};
    if (static_cast<int>(workers_.size()) <= slot) workers_.resize(static_cast<size_t>(slot) + 1);
    workers_[static_cast<size_t>(slot)] = std::move(w);
  }
  // SIGKILL, reap, return the killed incarnation's id.
  std::string kill(int slot) {
    auto& w = workers_[static_cast<size_t>(slot)];
    ::kill(w.child.id(), SIGKILL);
    w.child.wait();
    return w.id;
  }
  // SIGTERM everyone; returns how many exited 0 (graceful).
  int stop_all() {
    int clean = 0;
    for (auto& w : workers_) {
      if (!w.child.running()) continue;
      ::kill(w.child.id(), SIGTERM);
      w.child.wait();
      if (w.child.exit_code() == 0) ++clean;
    }
    return clean;
  }
  size_t size() const { return workers_.size(); }

private:
  std::string queue_;
  std::vector<std::string> extra_;
  std::vector<WorkerProcess> workers_;
  int generation_ = 0;
};

 // Jobs not done, with their history: what a failing run needs to say.
std::string describe_unfinished(queue::Queue& q, int jobs) {
  std::string out;
  for (int n = 1; n <= jobs; ++n) {
    auto s = q.status(std::to_string(n)).value;
    if (!s || s->state == queue::JobState::done) continue;
    out += "job " + std::to_string(n) + " " + std::string(queue::to_string(s->state)) + " error '" + s->last_error + "':";
    for (auto& h : s->history) out += " " + h.state + "@" + std::to_string(h.at_ms) + (h.worker.empty() ? "" : "@" + h.worker);
    out += "\n";
  }
  return out;
}

// ledger entries "id:attempt" -> job id -> attempts that reached the ledger
std::map<std::string, std::multiset<int>> read_ledger(redis::Connection& c, const std::string& queue) {
  std::map<std::string, std::multiset<int>> out;
  auto r = c.command({"LRANGE", "ledger:{" + queue + "}", "0", "-1"});
  for (auto& e : r.reply.elements) {
    auto colon = e.str.rfind(':');
    out[e.str.substr(0, colon)].insert(std::stoi(e.str.substr(colon + 1)));
  }
  return out;
}

}  // namespace

TEST(CrashTest, RandomSigkillsLoseNothingAndEveryDuplicateIsARedelivery) {
  QSIM_REQUIRE_REDIS();
  const int kJobs = 2000, kWorkers = 4;
  const int lease_ms = 1000, tick_ms = 250;
  auto name = testkit::unique_queue_name();
  redis::Connection c(testkit::live_redis().endpoint());
  queue::Queue q(c, name);
  // Crash-loop dead-lettering has its own test (QueueTest.CrashLoopIsDeadLetteredAfterMaxAttempts);
  // here a job may be unlucky enough to lose several workers, which must not count as lost.
  queue::EnqueueOptions o;
  o.max_attempts = 10;
  ASSERT_TRUE(q.enqueue_many(std::vector<std::string>(kJobs, "job"), o).ok());

  Fleet fleet(name, {"--lease-ms", std::to_string(lease_ms), "--reaper-tick-ms", std::to_string(tick_ms),
                     "--work-ms", "10"});
  for (int i = 0; i < kWorkers; ++i) fleet.spawn(i);

  std::mt19937_64 rng(20261121);  // fixed: the kill schedule replays
  std::map<std::string, std::int64_t> killed_at;  // worker incarnation -> server ms of the kill
  auto finished = [&] { return q.counters().value.acked + q.counters().value.dead >= kJobs; };
  auto deadline = std::chrono::steady_clock::now() + 180s;
  while (!finished() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 201));  // every 200-400 ms
    if (finished()) break;
    int slot = static_cast<int>(rng() % kWorkers);
    auto id = fleet.kill(slot);
    killed_at[id] = testkit::server_ms(c);
    fleet.spawn(slot);  // the supervisor restarts it
  }
  ASSERT_TRUE(testkit::eventually(finished, 60s)) << "acked " << q.counters().value.acked << " of " << kJobs << "\n"
                                         << describe_unfinished(q, kJobs);
  EXPECT_EQ(fleet.stop_all(), kWorkers) << "every surviving worker stops cleanly on SIGTERM";

  auto counters = q.counters().value;
  EXPECT_EQ(counters.acked, kJobs);
  EXPECT_EQ(counters.dead, 0);
  EXPECT_GE(killed_at.size(), 10u) << "the test must really kill workers";

  auto ledger = read_ledger(c, name);
  long long duplicates = 0, redelivered_attempts = 0, attempts_missing_from_ledger = 0;
  std::vector<std::int64_t> recovery_ms;
  int kills_holding_a_job = 0;
  for (int n = 1; n <= kJobs; ++n) {
    auto id = std::to_string(n);
    auto s = q.status(id).value;
    ASSERT_TRUE(s.has_value()) << id;
    ASSERT_EQ(s->state, queue::JobState::done) << "job " << id << " not done\n" << describe_unfinished(q, kJobs);
    const auto& seen = ledger[id];
    ASSERT_GE(seen.size(), 1u) << "job " << id << " never ran to the ledger";
    EXPECT_EQ(seen.count(s->attempts), 1u) << "job " << id << ": the acked attempt wrote once";
    EXPECT_LE(*seen.rbegin(), s->attempts);
    duplicates += static_cast<long long>(seen.size()) - 1;
    redelivered_attempts += s->attempts - 1;
    for (int a = 1; a < s->attempts; ++a)
      if (seen.count(a) == 0) ++attempts_missing_from_ledger;  // killed between reserve and append
    // every reservation by a killed worker that was not acked must come back in time
    for (size_t i = 0; i + 1 < s->history.size(); ++i) {
      const auto& h = s->history[i];
      if (h.state != "active" || !killed_at.count(h.worker)) continue;
      const auto& next = s->history[i + 1];
      if (next.state == "done") continue;  // acked before the kill landed
      // "released": handed to the worker while it was idle and never taken from its inbox
      ASSERT_TRUE(next.state == "redelivered" || next.state == "released") << "job " << id << ": " << next.state;
      ++kills_holding_a_job;
      // from the kill, or from the hand-off if the job was handed to the worker after it died
      recovery_ms.push_back(next.at_ms - std::max(killed_at[h.worker], h.at_ms));
    }
  }
  EXPECT_EQ(redelivered_attempts, counters.redelivered) << "the counter matches the jobs' own attempt counts";
  EXPECT_EQ(duplicates + attempts_missing_from_ledger, counters.redelivered)
      << "each redelivery either re-ran a job that had reached the ledger (a duplicate) or one that had not";
  EXPECT_LE(duplicates, counters.redelivered);
  EXPECT_GE(kills_holding_a_job, 1);
  // lease + one reaper tick, plus 100 ms for the reaper thread's timer step and a loaded CI box
  const std::int64_t bound = lease_ms + tick_ms + 100;
  std::int64_t worst = 0;
  for (auto ms : recovery_ms) {
    worst = std::max(worst, ms);
    EXPECT_LE(ms, bound) << "a killed worker's job came back after " << ms << " ms";
  }
  RecordProperty("kills", static_cast<int>(killed_at.size()));
  RecordProperty("redelivered", static_cast<int>(counters.redelivered));
  RecordProperty("duplicates", static_cast<int>(duplicates));
  RecordProperty("worst_recovery_ms", static_cast<int>(worst));
  std::cout << "kills " << killed_at.size() << ", kills holding a job " << kills_holding_a_job << ", redelivered "
            << counters.redelivered << ", ledger duplicates " << duplicates << ", killed before the ledger "
            << attempts_missing_from_ledger << ", worst recovery " << worst << " ms (bound " << bound << ")\n";
}

TEST(CrashTest, EightProcessesAckTwentyThousandJobsExactlyOnce) {
  QSIM_REQUIRE_REDIS();
  const int kJobs = 20'000, kWorkers = 8;
  auto name = testkit::unique_queue_name();
  redis::Connection c(testkit::live_redis().endpoint());
  queue::Queue q(c, name);
  Fleet fleet(name, {"--lease-ms", "30000"});
  for (int i = 0; i < kWorkers; ++i) fleet.spawn(i);
  // enqueue while the workers are already racing for jobs
  for (int chunk = 0; chunk < 20; ++chunk) ASSERT_TRUE(q.enqueue_many(std::vector<std::string>(kJobs / 20, "j")).ok());
  ASSERT_TRUE(testkit::eventually([&] { return q.counters().value.acked >= kJobs; }, 120s))
      << "acked " << q.counters().value.acked << "\n" << describe_unfinished(q, kJobs);
  EXPECT_EQ(fleet.stop_all(), kWorkers);
  auto counters = q.counters().value;
  EXPECT_EQ(counters.enqueued, kJobs);
  EXPECT_EQ(counters.reserved, kJobs);
  EXPECT_EQ(counters.acked, kJobs);
  EXPECT_EQ(counters.redelivered, 0);
  auto ledger = read_ledger(c, name);
  ASSERT_EQ(ledger.size(), static_cast<size_t>(kJobs));
  for (auto& [id, attempts] : ledger) ASSERT_EQ(attempts.size(), 1u) << "job " << id << " ran more than once";
  std::set<std::string> workers;
  for (int n = 1; n <= kJobs; n += 97) workers.insert(q.status(std::to_string(n)).value->worker);
  EXPECT_GE(workers.size(), 4u) << "the work was really shared";
}
