// What the fuzz targets share: a failed property ends the run as a crash, with the reason.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace qsim::fuzz {

[[noreturn]] inline void violated(const std::string& what) {
  std::fprintf(stderr, "property violated: %s\n", what.c_str());
  std::abort();
}

// Splits the input into n parts at its first n-1 newlines (missing parts are empty).
template <std::size_t N>
void split(std::string_view in, std::string_view (&parts)[N]) {
  for (std::size_t i = 0; i + 1 < N; ++i) {
    auto nl = in.find('\n');
    parts[i] = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  }
  parts[N - 1] = in;
}

}  // namespace qsim::fuzz
