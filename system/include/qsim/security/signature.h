// Signed webhooks: the payment provider's call to payment intake and the worker's call to the
// finalize service carry
//
//   X-Qsim-Timestamp: <Unix seconds>
//   X-Qsim-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>
//
// The timestamp is inside the signed text, so it cannot be moved without breaking the
// signature, and a request is accepted only within `window` of the receiver's clock (both
// directions), which bounds how long a captured request can be replayed. The comparison is
// constant-time. Each reason to reject is its own Verdict: callers answer and count them apart.
//
// Secrets never travel in argv: load_secret() reads them from the environment or a file.
//
// Thread-safety: all functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qsim::security {

inline constexpr std::string_view kTimestampHeader = "X-Qsim-Timestamp";
inline constexpr std::string_view kSignatureHeader = "X-Qsim-Signature";

// How far a request's timestamp may be from the receiver's clock, either way (real time).
inline constexpr std::chrono::seconds kSignatureWindow{300};

enum class Verdict {
  ok,
  missing_headers,    // timestamp or signature header absent
  malformed_headers,  // timestamp not an integer, signature not "sha256=<64 hex>"
  bad_signature,      // wrong secret, tampered body or tampered timestamp
  stale,              // older than the window
  future,             // further ahead than the window
};

std::string_view to_string(Verdict v);

// The value for X-Qsim-Signature.
std::string sign(std::string_view secret, std::int64_t timestamp, std::string_view body);

// Checks headers (nullopt = absent) against `body` at receiver time `now`.
Verdict verify(std::string_view secret, std::optional<std::string_view> timestamp_header,
               std::optional<std::string_view> signature_header, std::string_view body, std::int64_t now,
               std::chrono::seconds window = kSignatureWindow);

bool constant_time_equal(std::string_view a, std::string_view b);

// `bytes` random bytes from the kernel (getrandom), as hex: secrets, session ids.
std::string random_hex(std::size_t bytes);

// The secret called NAME: the environment variable QSIM_<NAME>_SECRET, or else the first line
// of the file named by QSIM_<NAME>_SECRET_FILE. Throws std::runtime_error naming both when
// neither is set or the secret is empty.
std::string load_secret(std::string_view name);
// The same for a secret that may be absent (the dashboard's token: without it, read-only): none
// when neither variable is set; throws as load_secret when the file cannot be read or is empty.
std::optional<std::string> find_secret(std::string_view name);

}  // namespace qsim::security
