// What every signed webhook receiver shares: the size / header / signature / window checks in a
// fixed order, and one counter per result word. Payment intake and the finalize service answer
// through this, so the same request gets the same rejection from both.
//
// Thread-safety: WebhookCounters is safe from any thread.
#pragma once

#include "qsim/components/http_service.h"
#include "qsim/components/metrics.h"

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsim::components {

struct WebhookResponse {
  int status = 500;
  std::string result;  // the counter's label
  std::string body;    // JSON
};

class WebhookCounters {
public:
  explicit WebhookCounters(std::vector<std::string> results);  // every label starts at 0
  // Counts `result` and builds the JSON answer {"result", "detail"?, extra fields...}.
  WebhookResponse answer(int status, std::string result, std::string detail = {},
                         std::vector<std::pair<std::string, std::string>> fields = {});
  std::map<std::string, long long> snapshot() const;
  // Prometheus text for metric `name` with label result.
  std::string prometheus(std::string_view name, std::string_view help) const;
  // Time from a request's arrival at the handler to its answer, every result together.
  Histogram& latency() { return latency_; }

private:
  Histogram latency_{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  mutable std::mutex mu_;
  std::map<std::string, long long> counts_;
};

// The "result" of an answer built by WebhookCounters::answer; empty when the body is not one.
std::string answer_result(std::string_view body);

// The result labels the guard can produce.
std::vector<std::string> guard_results();

// Size, then headers and signature, then window. nullopt: the request may proceed.
std::optional<WebhookResponse> guard_signed_request(WebhookCounters& counters, std::string_view secret,
                                                    std::optional<std::string_view> timestamp,
                                                    std::optional<std::string_view> signature, std::string_view body,
                                                    std::int64_t now, std::chrono::seconds window,
                                                    std::size_t max_body_bytes);

std::int64_t unix_now();

// The routes every signed webhook receiver has: POST `path` (signature headers and body handed
// to `handle` with the current Unix time; each verdict logged as a `webhook` event), GET
// /health, GET /metrics (`metric` counter by result, and its `..._duration_seconds` histogram of
// handling time: `payment_webhooks_total` -> `payment_webhook_duration_seconds`), and bodies
// over the server's hard cap answered and counted as body_too_large.
using SignedHandler = std::function<WebhookResponse(std::optional<std::string_view> timestamp,
                                                    std::optional<std::string_view> signature, std::string_view body,
                                                    std::int64_t now)>;
void mount_signed_webhook(HttpService& http, const std::string& path, WebhookCounters& counters,
                          const std::string& metric, const std::string& help, SignedHandler handle);

}  // namespace qsim::components
