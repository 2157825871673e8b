// qsim-finalize: the finalize webhook as a process. The signing secret comes from
// QSIM_FINALIZE_SECRET or the file named by QSIM_FINALIZE_SECRET_FILE, never from argv.
#include "qsim/components/finalize_service.h"
#include "qsim/security/signature.h"
#include "http_limits_options.h"
#include "log_options.h"
#include "redis_options.h"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"qsim finalize: grants access and sends the e-mail exactly once per order"};
  qsim::tools::RedisOptions redis_options;
  int port = 8880;
  long window_s = qsim::security::kSignatureWindow.count();
  qsim::components::FinalizeOptions o;
  redis_options.add_to(app);
  app.add_option("--port", port, "HTTP port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--queue", o.queue, "queue name (the task store's tag)");
  app.add_option("--prefix", o.prefix, "key prefix");
  app.add_option("--world-port", o.world_port, "the simulated world's port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--window-s", window_s, "accepted timestamp skew, seconds, both directions")->check(CLI::Range(1, 86400));
  qsim::tools::HttpLimitOptions limits;
  limits.add_to(app);
  qsim::tools::LogOptions log_options;
  log_options.add_to(app);
  CLI11_PARSE(app, argc, argv);
  o.window = std::chrono::seconds(window_s);
  try {
    log_options.setup("finalize");
    qsim::components::FinalizeService service(redis_options.endpoint_exiting_on_denial(), o,
                                              qsim::security::load_secret("finalize"));
    qsim::components::HttpService http;
    http.set_limits(limits.limits());
    service.mount(http);
    return qsim::components::serve_until_signal(http, port, "qsim-finalize");
  } catch (const std::exception& e) {
    std::cerr << "qsim-finalize: " << e.what() << "\n";
    return 2;
  }
}
