// Text into HTML: the one escaper of the reports and the dashboard.
#pragma once

#include <string>
#include <string_view>

namespace qsim {

// Safe in element text and in double-quoted attribute values.
inline std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace qsim
