#include "qsim/security/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace qsim::security {

namespace {

constexpr std::string_view kPrefix = "sha256=";

std::string hex(const unsigned char* data, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xf]);
  }
  return out;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::missing_headers: return "missing_headers";
    case Verdict::malformed_headers: return "malformed_headers";
    case Verdict::bad_signature: return "bad_signature";
    case Verdict::stale: return "stale";
    case Verdict::future: return "future";
  }
  return "unknown";
}

std::string sign(std::string_view secret, std::int64_t timestamp, std::string_view body) {
  std::string message = std::to_string(timestamp);
  message.push_back('.');
  message.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return std::string(kPrefix) + hex(mac, len);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Verdict verify(std::string_view secret, std::optional<std::string_view> timestamp_header,
               std::optional<std::string_view> signature_header, std::string_view body, std::int64_t now,
               std::chrono::seconds window) {
  if (!timestamp_header || !signature_header || timestamp_header->empty() || signature_header->empty())
    return Verdict::missing_headers;
  std::int64_t ts = 0;
  auto [p, ec] = std::from_chars(timestamp_header->data(), timestamp_header->data() + timestamp_header->size(), ts);
  if (ec != std::errc() || p != timestamp_header->data() + timestamp_header->size()) return Verdict::malformed_headers;
  if (signature_header->size() != kPrefix.size() + 64 || signature_header->substr(0, kPrefix.size()) != kPrefix ||
      !is_lower_hex(signature_header->substr(kPrefix.size())))
    return Verdict::malformed_headers;
  // Authenticity first: a moved timestamp is a bad signature, not a stale request.
  if (!constant_time_equal(sign(secret, ts, body), *signature_header)) return Verdict::bad_signature;
  if (ts < now - window.count()) return Verdict::stale;
  if (ts > now + window.count()) return Verdict::future;
  return Verdict::ok;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  for (std::size_t got = 0; got < bytes;) {
    const ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) out += digits[c >> 4], out += digits[c & 15];
  return out;
}

namespace {

std::string secret_variable(std::string_view name) {
  std::string upper;
  for (char c : name) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return "QSIM_" + upper + "_SECRET";
}

}  // namespace

std::string load_secret(std::string_view name) {
  if (auto s = find_secret(name)) return std::move(*s);
  const std::string var = secret_variable(name);
  throw std::runtime_error("secret '" + std::string(name) + "' not set: set " + var + " or " + var +
                           "_FILE (secrets are never taken from the command line)");
}

std::optional<std::string> find_secret(std::string_view name) {
  const std::string var = secret_variable(name), file_var = var + "_FILE";
  if (const char* v = std::getenv(var.c_str()); v && *v) return v;
  if (const char* f = std::getenv(file_var.c_str()); f && *f) {
    std::ifstream in(f);
    if (!in) throw std::runtime_error(file_var + " names '" + f + "', which cannot be read");
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) throw std::runtime_error("the secret file '" + std::string(f) + "' (" + file_var + ") is empty");
    return line;
  }
  return std::nullopt;
}

}  // namespace qsim::security
