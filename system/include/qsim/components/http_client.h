// A small HTTP client for calls between components (cpp-httplib underneath, not exposed).
// status 0 means no answer (connection refused, timeout): callers treat it as transient.
// The connection is kept alive between requests (and made anew when the server closed it).
//
// Thread-safety: one HttpClient per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace qsim::components {

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
  std::string error;
  bool answered() const { return status != 0; }
  bool ok() const { return status >= 200 && status < 300; }
  // Worth retrying: no answer, or a 5xx / 429. A 4xx is the caller's fault and permanent.
  bool transient() const { return status == 0 || status >= 500 || status == 429; }
};

// Sets SIGPIPE to be ignored, process-wide, once (HttpClient and HttpService do it themselves).
void ignore_sigpipe();

class HttpClient {
public:
  HttpClient(std::string host, int port, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  ~HttpClient();
  HttpResult post(const std::string& path, const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers = {});
  HttpResult get(const std::string& path);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsim::components
