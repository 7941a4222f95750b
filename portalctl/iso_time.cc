#include "iso_time.h"

#include <ctime>

#include "util/text.h"

namespace portalctl {

std::string format_time(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  char buf[32];
  if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return std::to_string(unix_seconds);
  return buf;
}

bool parse_time(std::string_view text, int64_t* unix_seconds, std::string* why) {
  static constexpr std::string_view kForm = "dddd-dd-ddTdd:dd:ddZ";
  bool ok = text.size() == kForm.size();
  for (size_t i = 0; ok && i < kForm.size(); i++) {
    ok = kForm[i] == 'd' ? text[i] >= '0' && text[i] <= '9' : text[i] == kForm[i];
  }
  if (ok) {
    auto num = [&](size_t at, size_t len) {
      int v = 0;
      for (size_t i = at; i < at + len; i++) v = v * 10 + (text[i] - '0');
      return v;
    };
    struct tm tm = {};
    tm.tm_year = num(0, 4) - 1900;
    tm.tm_mon = num(5, 2) - 1;
    tm.tm_mday = num(8, 2);
    tm.tm_hour = num(11, 2);
    tm.tm_min = num(14, 2);
    tm.tm_sec = num(17, 2);
    time_t t = timegm(&tm);
    // timegm normalises "02-30" into March: a date that does not format back is not a date.
    ok = t >= 0 && format_time(t) == text;
    if (ok) *unix_seconds = t;
  }
  if (!ok && why) {
    *why = "invalid timestamp " + portal::quoted(text) +
           ": must be a UTC time from 1970 on, such as 2026-11-26T17:00:00Z";
  }
  return ok;
}

}  // namespace portalctl
