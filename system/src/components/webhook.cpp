#include "qsim/components/webhook.h"

#include "qsim/log.h"
#include "qsim/security/signature.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

namespace qsim::components {

WebhookCounters::WebhookCounters(std::vector<std::string> results) {
  for (auto& r : results) counts_[r] = 0;
}

WebhookResponse WebhookCounters::answer(int status, std::string result, std::string detail,
                                        std::vector<std::pair<std::string, std::string>> fields) {
  {
    std::lock_guard lock(mu_);
    counts_[result]++;
  }
  nlohmann::json j{{"result", result}};
  if (!detail.empty()) j["detail"] = detail;
  for (auto& [k, v] : fields)
    if (!v.empty()) j[k] = v;
  // A detail may quote a peer's answer: invalid UTF-8 in it is replaced, never thrown on.
  return {status, std::move(result), j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

std::string answer_result(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  return j.is_object() && j.contains("result") && j["result"].is_string() ? j["result"].get<std::string>() : "";
}

std::map<std::string, long long> WebhookCounters::snapshot() const {
  std::lock_guard lock(mu_);
  return counts_;
}

std::string WebhookCounters::prometheus(std::string_view name, std::string_view help) const {
  std::string n(name);
  std::string out = "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " counter\n";
  for (const auto& [result, count] : snapshot())
    out += n + "{result=\"" + result + "\"} " + std::to_string(count) + "\n";
  return out;
}

std::vector<std::string> guard_results() {
  return {"missing_headers", "malformed_headers", "bad_signature", "stale_timestamp", "future_timestamp",
          "body_too_large"};
}

std::optional<WebhookResponse> guard_signed_request(WebhookCounters& counters, std::string_view secret,
                                                    std::optional<std::string_view> timestamp,
                                                    std::optional<std::string_view> signature, std::string_view body,
                                                    std::int64_t now, std::chrono::seconds window,
                                                    std::size_t max_body_bytes) {
  if (body.size() > max_body_bytes)
    return counters.answer(413, "body_too_large",
                           std::to_string(body.size()) + " bytes, limit " + std::to_string(max_body_bytes));
  switch (security::verify(secret, timestamp, signature, body, now, window)) {
    case security::Verdict::ok: return std::nullopt;
    case security::Verdict::missing_headers:
      return counters.answer(401, "missing_headers", "X-Qsim-Timestamp and X-Qsim-Signature are required");
    case security::Verdict::malformed_headers: return counters.answer(400, "malformed_headers");
    case security::Verdict::bad_signature: return counters.answer(401, "bad_signature");
    case security::Verdict::stale: return counters.answer(401, "stale_timestamp", "older than the accepted window");
    case security::Verdict::future: return counters.answer(401, "future_timestamp", "ahead of the accepted window");
  }
  return counters.answer(401, "bad_signature");
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void mount_signed_webhook(HttpService& http, const std::string& path, WebhookCounters& counters,
                          const std::string& metric, const std::string& help, SignedHandler handle) {
  http.post(path, [handle, path, &counters](const HttpRequest& req) {
    const auto start = std::chrono::steady_clock::now();
    auto r = handle(req.header(security::kTimestampHeader), req.header(security::kSignatureHeader), req.body, unix_now());
    counters.latency().observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    const log::Level level = r.status < 400 ? log::Level::info : log::Level::warn;
    if (log::enabled(level)) {
      // the verdict and whom it concerns, from the answer; never the headers or the body
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      auto field = [&](const char* k) {
        return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>().substr(0, 200) : std::string();
      };
      const std::string status = std::to_string(r.status), order = field("order_id"), detail = field("detail");
      log::event(level, "webhook", {{"path", path}, {"status", status}, {"result", r.result}, {"order", order}, {"detail", detail}});
    }
    return HttpResponse{r.status, r.body};
  });
  http.get("/health", [](const HttpRequest&) { return HttpResponse{200, R"({"status":"ok","pid":)" + std::to_string(::getpid()) + "}"}; });
  std::string histogram = metric;
  if (histogram.size() > 7 && histogram.ends_with("s_total")) histogram.resize(histogram.size() - 7);
  else if (histogram.ends_with("_total")) histogram.resize(histogram.size() - 6);
  histogram += "_duration_seconds";
  http.get("/metrics", [&counters, metric, help, histogram](const HttpRequest&) {
    return HttpResponse{200,
                        counters.prometheus(metric, help) +
                            counters.latency().render(histogram, "Time to handle one delivery, from the request to its answer."),
                        "text/plain; version=0.0.4"};
  });
  // Far past any accepted size: smaller bodies reach `handle`, which answers and counts them.
  http.on_too_large(16 * 1024 * 1024, [&counters](std::size_t bytes) {
    auto r = counters.answer(413, "body_too_large", std::to_string(bytes) + " bytes");
    return HttpResponse{r.status, r.body};
  });
}

}  // namespace qsim::components
