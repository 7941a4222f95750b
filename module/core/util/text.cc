#include "text.h"

#include <ctime>

namespace portal {

std::string quoted(std::string_view value) {
  static const char hex[] = "0123456789abcdef";
  constexpr size_t kMax = 300;
  std::string out = "\"";
  for (unsigned char ch : value.substr(0, kMax)) {
    if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') {
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (value.size() > kMax) out += "...";
  out += '"';
  return out;
}

std::string iso8601(int64_t unix_seconds) {
  char buf[32];
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace portal
