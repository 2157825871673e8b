// The payment intake's body parser: a payment with non-empty ids and a non-negative amount, or
// a reason that names a JSON path (or the body as a whole).
#include "fuzz.h"
#include "qsim/components/payment_intake.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why;
  auto p = qsim::components::parse_payment_body(std::string_view(reinterpret_cast<const char*>(data), size), why);
  if (p) {
    if (p->order_id.empty() || p->txn_id.empty() || p->amount < 0) qsim::fuzz::violated("an invalid payment was accepted");
  } else if (why.empty()) {
    qsim::fuzz::violated("a refusal without a reason");
  }
  return 0;
}
