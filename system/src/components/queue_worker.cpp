#include "qsim/components/queue_worker.h"

#include "qsim/components/http_service.h"
#include "qsim/components/metrics.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <thread>

namespace qsim::components {

struct QueueWorkerService::State {
  explicit State(QueueWorkerOptions o) : options(std::move(o)), worker(options.redis, options.queue, options.worker) {}
  QueueWorkerOptions options;
  queue::Worker worker;
  HttpService http;
  std::atomic<long long> started{0}, completed{0}, failed{0};
  Histogram download{{1, 5, 15, 60, 300, 900, 1800, 3600, 7200}};
  Histogram queue_wait{{0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 21600}};
  std::mutex redis_mu;  // for the /metrics queue length
  std::unique_ptr<redis::Connection> metrics_conn;
};

QueueWorkerService::QueueWorkerService(QueueWorkerOptions options) : state_(std::make_unique<State>(std::move(options))) {}

QueueWorkerService::~QueueWorkerService() = default;

// Only flips the worker's atomic flag: safe from a signal handler. run() stops the HTTP side.
void QueueWorkerService::request_stop() noexcept { state_->worker.request_stop(); }

void QueueWorkerService::run(int http_port) {
  auto& st = *state_;
  const auto& o = st.options;
  st.metrics_conn = std::make_unique<redis::Connection>(o.redis);
  st.http.get("/health", [&st](const HttpRequest&) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::instance().now().time_since_epoch()).count();
    long long since = now - st.worker.stats().last_redis_ok_ms.load();
    bool healthy = st.worker.stats().last_redis_ok_ms.load() > 0 && since <= st.options.unhealthy_after.count();
    nlohmann::json j{{"worker", st.worker.id()}, {"current_job", st.worker.current_job()},
                     {"last_redis_contact_ms", since}, {"status", healthy ? "ok" : "redis_unreachable"},
                     {"pid", ::getpid()}};
    return HttpResponse{healthy ? 200 : 503, j.dump()};
  });
  st.http.get("/metrics", [&st](const HttpRequest&) {
    long long ready = -1;
    {
      std::lock_guard lock(st.redis_mu);
      queue::Queue q(*st.metrics_conn, st.options.queue, queue::QueueConfig{st.options.prefix});
      if (auto r = q.ready_count()) ready = r.value;
    }
    std::string out = render_counter("tasks_started_total", "Jobs whose handler started.", st.started) +
                      render_counter("tasks_completed_total", "Orders this worker completed.", st.completed) +
                      render_counter("tasks_failed_total", "Handler runs that failed (retried or dead).", st.failed) +
                      st.download.render("download_duration_seconds", "Duration of the download stage.") +
                      st.queue_wait.render("queue_wait_seconds", "From payment to pickup.") +
                      render_gauge("redis_queue_length", "Jobs waiting in the ready lists (-1: Redis unreachable).",
                                   static_cast<double>(ready)) +
                      render_gauge("worker_busy", "1 while a job runs.", st.worker.current_job().empty() ? 0 : 1);
    return HttpResponse{200, out, "text/plain; version=0.0.4"};
  });
  std::thread http_thread;
  if (http_port > 0) {
    http_thread = std::thread([&st, http_port] { (void)st.http.listen("127.0.0.1", http_port); });
    st.http.wait_until_listening(std::chrono::seconds(5));  // so that the stop below is never lost
  }

  redis::Connection conn(o.redis);
  store::TaskStore store(conn, o.queue, "queue_worker", o.prefix);
  OrderJob job(store, o.stages, st.worker.id());
  job.on_pickup = [&st](double since_paid_s) { st.queue_wait.observe(since_paid_s); };
  st.worker.run([&](const queue::Job& j, queue::JobContext&) {
    st.started++;
    try {
      auto times = job.run(j.payload);
      st.download.observe(times.download_s);
      st.completed++;
    } catch (const Superseded&) {
      st.failed++;
      throw;  // transient: retried only if this delivery still holds its lease; the order stays as it is
    } catch (const Unavailable& e) {
      st.failed++;
      throw queue::Unavailable(e.what());  // the order stays as it is; the attempt does not count
    } catch (const StageError& e) {
      st.failed++;
      bool last = !e.transient() || j.attempt >= j.max_attempts;
      if (last) {
        // The job goes dead only with its order: if the store cannot record that, the attempt is
        // handed back (not counted) and made again later, never a dead job beside a live order.
        auto dead = store.transition(j.payload, in_flight_statuses(), store::OrderStatus::dead, st.worker.id(), e.what());
        if (!dead) throw queue::Unavailable(std::string(e.what()) + "; the store could not mark the order dead: " + dead.error);
      }
      if (!e.transient()) throw queue::PermanentError(e.what());
      throw;
    }
  }, [&](const queue::Job& j, const std::string& reason) {
    // A crash loop: the order dies with its job. Not in flight (completed before the crash, say):
    // nothing to record. The store refusing: the burial is tried again later.
    auto dead = store.transition(j.payload, in_flight_statuses(), store::OrderStatus::dead, st.worker.id(), reason);
    if (!dead) throw queue::Unavailable("the store could not mark the order dead: " + dead.error);
  });
  st.http.stop();
  if (http_thread.joinable()) http_thread.join();
}

}  // namespace qsim::components
