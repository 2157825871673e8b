#include "qsim/components/polling_worker.h"

#include "qsim/components/http_service.h"
#include "qsim/components/metrics.h"
#include "qsim/log.h"
#include "qsim/store/task_store.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <thread>

namespace qsim::components {

struct PollingWorker::Stats {
  std::atomic<long long> started{0}, completed{0}, failed{0};
  std::atomic<long long> last_redis_ok_ms{0};
  Histogram download{{1, 5, 15, 60, 300, 900, 1800, 3600, 7200}};
  mutable std::mutex mu;
  std::string current;  // the order being worked on, empty when idle
  void set_current(std::string id) {
    std::lock_guard lock(mu);
    current = std::move(id);
  }
  std::string current_order() const {
    std::lock_guard lock(mu);
    return current;
  }
};

namespace {
long long wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

PollingWorker::PollingWorker(PollingWorkerOptions options, Clock& clock)
    : options_(std::move(options)), clock_(&clock), stats_(std::make_unique<Stats>()) {}

PollingWorker::~PollingWorker() = default;

void PollingWorker::request_stop() noexcept { stop_.store(true); }

void PollingWorker::run(int http_port) {
  HttpService http;
  auto& st = *stats_;
  http.get("/health", [this, &st](const HttpRequest&) {
    const long long last = st.last_redis_ok_ms.load(), since = wall_ms() - last;
    const bool healthy = last > 0 && since <= options_.unhealthy_after.count();
    nlohmann::json j{{"worker", options_.worker_id}, {"current_order", st.current_order()},
                     {"last_redis_contact_ms", since}, {"status", healthy ? "ok" : "redis_unreachable"},
                     {"pid", ::getpid()}};
    return HttpResponse{healthy ? 200 : 503, j.dump()};
  });
  http.get("/metrics", [this, &st](const HttpRequest&) {
    std::string out = render_counter("polls_total", "Store queries for the oldest paid order.", polls_) +
                      render_counter("tasks_started_total", "Orders this worker claimed.", st.started) +
                      render_counter("tasks_completed_total", "Orders this worker completed.", st.completed) +
                      render_counter("tasks_failed_total", "Orders this worker failed (for good: no retry).", st.failed) +
                      st.download.render("download_duration_seconds", "Duration of the download stage.") +
                      render_gauge("worker_busy", "1 while an order is worked on.", st.current_order().empty() ? 0 : 1);
    return HttpResponse{200, out, "text/plain; version=0.0.4"};
  });
  std::thread http_thread;
  if (http_port > 0) {
    http_thread = std::thread([&http, http_port] { (void)http.listen("127.0.0.1", http_port); });
    http.wait_until_listening(std::chrono::seconds(5));  // so that the stop below is never lost
  }
  poll_loop();
  http.stop();
  if (http_thread.joinable()) http_thread.join();
}

void PollingWorker::poll_loop() {
  auto& st = *stats_;
  redis::Connection conn(options_.redis);
  store::TaskStore store(conn, options_.queue, "polling_worker", options_.prefix);
  OrderJob job(store, options_.stages, options_.worker_id);
  auto& clock = *clock_;
  auto next = clock.now();
  while (!stop_.load()) {
    auto claimed = store.claim_oldest_paid(options_.worker_id);
    polls_++;
    if (claimed) st.last_redis_ok_ms = wall_ms();
    next += options_.poll_interval;
    if (claimed && claimed.value) {
      const std::string& id = *claimed.value;
      st.started++;
      st.set_current(id);
      if (log::enabled(log::Level::debug)) log::event(log::Level::debug, "order_claimed", {{"order", id}, {"worker", options_.worker_id}});
      try {
        auto times = job.run(id);
        st.download.observe(times.download_s);
        st.completed++;
        if (log::enabled(log::Level::debug)) log::event(log::Level::debug, "order_completed", {{"order", id}, {"worker", options_.worker_id}});
      } catch (const StageError& e) {
        // The legacy flaw: one error and the order has failed for good.
        st.failed++;
        log::event(log::Level::error, "order_failed", {{"order", id}, {"worker", options_.worker_id}, {"reason", e.what()}});
        (void)store.transition(id,
                               {store::OrderStatus::processing, store::OrderStatus::downloading,
                                store::OrderStatus::uploading, store::OrderStatus::finalizing},
                               store::OrderStatus::failed, options_.worker_id, e.what());
      }
      st.set_current({});
      next = clock.now() + options_.poll_interval;
    } else if (clock.now() > next + std::max<std::chrono::nanoseconds>(10 * options_.poll_interval,
                                                                        std::chrono::milliseconds(50))) {
      // Far behind (the process was paused): start afresh rather than catch up in a burst. A
      // shorter lag (a scheduling hiccup, large only when the interval is compressed to a
      // millisecond) is caught up, so that the number of polls stays exact.
      next = clock.now();
    }
    // Sleep until the deadline in short steps so that a stop is noticed promptly.
    while (!stop_.load() && clock.now() < next)
      clock.sleep_for(std::min<std::chrono::nanoseconds>(next - clock.now(), std::chrono::milliseconds(20)));
  }
}

}  // namespace qsim::components
