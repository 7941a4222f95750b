#include "hostname.h"

#include <cstring>

#include "../util/text.h"

namespace portal {

namespace {

HostCheck fail(std::string* why, std::string_view in, const char* reason,
               HostCheck rc = HostCheck::invalid) {
  if (why) *why = "invalid hostname " + quoted(in) + ": " + reason;
  return rc;
}

bool valid_port(std::string_view port) {
  if (port.size() > 5) return false;
  unsigned value = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + static_cast<unsigned>(ch - '0');
  }
  return port.empty() || (value > 0 && value <= 65535);
}

bool is_ldh(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

// Each byte's lower-case form if it may appear in a canonical host ('.' included), else 0.
struct HostBytes {
  char map[256] = {};
  constexpr HostBytes() {
    for (int c = 'a'; c <= 'z'; c++) map[c] = static_cast<char>(c);
    for (int c = 'A'; c <= 'Z'; c++) map[c] = static_cast<char>(c | 0x20);
    for (int c = '0'; c <= '9'; c++) map[c] = static_cast<char>(c);
    map[static_cast<int>('-')] = '-';
    map[static_cast<int>('.')] = '.';
  }
};
constexpr HostBytes kHostBytes;

// The request path's common case in one pass of a table: a valid host with no port. Anything
// else (a port, an IP literal, a bad byte or label) is left to canonical_host_checked, which
// decides and says why; both accept exactly the same hosts.
bool canonical_fast(std::string_view in, char* out, size_t* out_len) {
  size_t n = in.size();
  if (n && in[n - 1] == '.') n--;
  if (n == 0 || n > kMaxHostLen) return false;
  const char* src = in.data();
  for (size_t i = 0; i < n; i++) {
    char c = kHostBytes.map[static_cast<unsigned char>(src[i])];
    if (c == 0) return false;
    out[i] = c;
  }
  const char* end = out + n;
  const char* label = out;
  size_t labels = 0;
  for (;;) {
    auto* dot = static_cast<const char*>(std::memchr(label, '.', static_cast<size_t>(end - label)));
    const char* label_end = dot ? dot : end;
    size_t len = static_cast<size_t>(label_end - label);
    if (len == 0 || len > kMaxLabelLen || label[0] == '-' || label_end[-1] == '-') return false;
    labels++;
    if (!dot) break;
    label = dot + 1;
  }
  if (labels < 2) return false;
  const char* p = label;
  while (p < end && *p >= '0' && *p <= '9') p++;
  if (p == end) return false;  // the last label is all digits
  *out_len = n;
  return true;
}

}  // namespace

HostCheck canonical_host(std::string_view in, char* out, size_t* out_len, std::string* why) {
  if (canonical_fast(in, out, out_len)) return HostCheck::ok;
  return canonical_host_checked(in, out, out_len, why);
}

HostCheck canonical_host_checked(std::string_view in, char* out, size_t* out_len,
                                 std::string* why) {
  std::string_view name = in;

  // An IP literal ("[::1]", "[::1]:443") is never a portal domain; only its port can be bad.
  if (!name.empty() && name.front() == '[') {
    size_t close = name.find(']');
    std::string_view rest = close == std::string_view::npos ? "" : name.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !valid_port(rest.substr(1))))
      return fail(why, in, "bad port", HostCheck::bad_port);
    return fail(why, in, "an IP address is not a portal domain");
  }

  // A port is allowed (a Host header carries one); an empty port means none (RFC 3986 3.2.3).
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos) {
    if (!valid_port(name.substr(colon + 1))) return fail(why, in, "bad port", HostCheck::bad_port);
    name = name.substr(0, colon);
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return fail(why, in, "empty name");
  if (name.size() > kMaxHostLen) return fail(why, in, "longer than 253 bytes");

  size_t label_start = 0, labels = 0;
  bool label_all_digits = true;
  for (size_t i = 0; i <= name.size(); i++) {
    if (i == name.size() || name[i] == '.') {
      size_t len = i - label_start;
      if (len == 0) return fail(why, in, "empty label");
      if (len > kMaxLabelLen) return fail(why, in, "label longer than 63 bytes");
      if (out[i - 1] == '-' || out[label_start] == '-')
        return fail(why, in, "label starts or ends with a hyphen");
      labels++;
      if (i == name.size()) break;
      out[i] = '.';
      label_start = i + 1;
      label_all_digits = true;
      continue;
    }
    unsigned char ch = static_cast<unsigned char>(name[i]);
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<unsigned char>(ch | 0x20);
    if (!is_ldh(ch)) {
      return fail(why, in, ch >= 0x80 ? "not ASCII (IDN names are converted by portalctl)"
                                      : "only letters, digits, hyphens and dots are allowed");
    }
    if (ch < '0' || ch > '9') label_all_digits = false;
    out[i] = static_cast<char>(ch);
  }
  if (labels < 2) return fail(why, in, "a portal domain has at least two labels");
  if (label_all_digits) return fail(why, in, "the last label is all digits (an IP address?)");
  *out_len = name.size();
  return HostCheck::ok;
}

bool canonical_host(std::string_view in, std::string& out, std::string* why) {
  char buf[kMaxHostLen];
  size_t len = 0;
  if (canonical_host(in, buf, &len, why) != HostCheck::ok) return false;
  out.assign(buf, len);
  return true;
}

}  // namespace portal
