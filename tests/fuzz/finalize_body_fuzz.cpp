// The finalize service's body parser: a non-empty order id, or nothing.
#include "fuzz.h"
#include "qsim/components/finalize_service.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto id = qsim::components::parse_finalize_body(std::string_view(reinterpret_cast<const char*>(data), size));
  if (id && id->empty()) qsim::fuzz::violated("an empty order id was accepted");
  return 0;
}
