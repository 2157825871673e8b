// The webhook guard (size, headers, signature, window), with the secret known so that valid
// signatures are reached: the input is flags, timestamp header, signature header and body; a set
// flag replaces the signature with the genuine one. Whatever passes the guard carries a genuine
// signature over exactly this body and a timestamp inside the window.
#include "fuzz.h"
#include "qsim/components/webhook.h"
#include "qsim/security/signature.h"

#include <charconv>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace qsim;
  static const std::string secret = "whsec_fuzz";
  constexpr std::int64_t now = 1'800'000'000;
  std::string_view parts[4];
  fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), parts);
  const std::string_view flags = parts[0];
  const bool has_ts = flags.find('t') != std::string_view::npos, has_sig = flags.find('s') != std::string_view::npos;
  const bool genuine = flags.find('g') != std::string_view::npos;
  std::string sig(parts[2]);
  if (genuine) {
    std::int64_t ts = 0;
    auto [p, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), ts);
    (void)p;
    if (ec == std::errc()) sig = security::sign(secret, ts, parts[3]);
  }
  components::WebhookCounters counters(components::guard_results());
  auto r = components::guard_signed_request(counters, secret, has_ts ? std::optional(parts[1]) : std::nullopt,
                                            has_sig ? std::optional<std::string_view>(sig) : std::nullopt, parts[3], now,
                                            std::chrono::seconds(300), 64 * 1024);
  if (!r) {
    std::int64_t ts = 0;
    auto [p, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), ts);
    if (!has_ts || !has_sig || ec != std::errc() || p != parts[1].data() + parts[1].size())
      fuzz::violated("accepted without a well-formed timestamp and a signature");
    if (ts < now - 300 || ts > now + 300) fuzz::violated("accepted outside the window");
    if (!security::constant_time_equal(sig, security::sign(secret, ts, parts[3])))
      fuzz::violated("accepted with a signature that is not the genuine one");
  } else if (r->status < 400 || r->status > 499) {
    fuzz::violated("a rejection that is not a 4xx: " + std::to_string(r->status));
  }
  return 0;
}
