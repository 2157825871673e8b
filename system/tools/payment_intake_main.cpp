// qsim-payment-intake: the payment webhook as a process. The signing secret comes from
// QSIM_PAYMENT_SECRET or the file named by QSIM_PAYMENT_SECRET_FILE, never from argv.
#include "qsim/components/payment_intake.h"
#include "qsim/security/signature.h"
#include "http_limits_options.h"
#include "log_options.h"
#include "redis_options.h"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"qsim payment intake: verifies signed payment webhooks, pays the order, enqueues its job"};
  qsim::tools::RedisOptions redis_options;
  int port = 8870;
  long window_s = qsim::security::kSignatureWindow.count();
  std::string mode = "queue";
  qsim::components::PaymentIntakeOptions o;
  redis_options.add_to(app);
  app.add_option("--port", port, "HTTP port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--queue", o.queue, "queue name (also the task store's tag)");
  app.add_option("--prefix", o.prefix, "key prefix");
  app.add_option("--mode", mode,
                 "queue: enqueue on payment; polling: status change only; handoff: status change, then the "
                 "framework's hand-off server enqueues (system/frameworks/README.md)")
      ->check(CLI::IsMember({"queue", "polling", "handoff"}));
  app.add_option("--handoff-port", o.handoff_port, "the hand-off server's port on 127.0.0.1 (--mode handoff)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--window-s", window_s, "accepted timestamp skew, seconds, both directions")->check(CLI::Range(1, 86400));
  app.add_option("--max-body", o.max_body_bytes, "largest accepted body, bytes");
  app.add_option("--max-attempts", o.max_attempts, "attempts of each enqueued job before it is dead-lettered")
      ->check(CLI::Range(1, 100));
  long wait_timeout_ms = 200;
  app.add_option("--wait-replicas", o.wait_replicas,
                 "acknowledge a payment only once this many Redis replicas have it (WAIT); else 503 not_replicated")
      ->check(CLI::Range(0, 16));
  app.add_option("--wait-timeout-ms", wait_timeout_ms, "how long --wait-replicas waits")->check(CLI::Range(1, 60'000));
  qsim::tools::HttpLimitOptions limits;
  limits.add_to(app);
  qsim::tools::LogOptions log_options;
  log_options.add_to(app);
  CLI11_PARSE(app, argc, argv);
  o.queue_mode = mode == "queue";
  if (mode == "handoff" && o.handoff_port == 0) {
    std::cerr << "qsim-payment-intake: --mode handoff needs --handoff-port\n";
    return 2;
  }
  if (mode != "handoff") o.handoff_port = 0;
  o.window = std::chrono::seconds(window_s);
  o.wait_timeout = std::chrono::milliseconds(wait_timeout_ms);
  try {
    log_options.setup("intake");
    qsim::components::PaymentIntake intake(redis_options.endpoint_exiting_on_denial(), o,
                                           qsim::security::load_secret("payment"));
    qsim::components::HttpService http;
    http.set_limits(limits.limits());
    intake.mount(http);
    return qsim::components::serve_until_signal(http, port, "qsim-payment-intake");
  } catch (const std::exception& e) {
    std::cerr << "qsim-payment-intake: " << e.what() << "\n";
    return 2;
  }
}
