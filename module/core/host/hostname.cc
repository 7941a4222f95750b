#include "hostname.h"

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

}  // namespace

HostCheck canonical_host(std::string_view in, char* out, size_t* out_len, std::string* why) {
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
