#include "record.h"

#include <algorithm>
#include <cstring>

#include "../util/text.h"
#include "varint.h"

namespace portal {

namespace {

constexpr uint8_t kFlagCustomerSignup = 1;
constexpr uint8_t kFlagCarrierSignup = 2;
constexpr uint8_t kFlagSuspended = 4;
constexpr uint8_t kKnownFlags = kFlagCustomerSignup | kFlagCarrierSignup | kFlagSuspended;

bool fail(std::string* why, const char* field, std::string_view value, const char* reason) {
  if (why) *why = std::string("invalid ") + field + " " + quoted(value) + ": " + reason;
  return false;
}

// Decodes UTF-8 one code point at a time; false on any invalid or overlong sequence.
bool next_code_point(std::string_view s, size_t* i, uint32_t* cp) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(*i);
  size_t n;
  uint32_t min;
  if (c < 0x80) { *cp = c; *i += 1; return true; }
  if ((c & 0xe0) == 0xc0) { n = 2; *cp = c & 0x1f; min = 0x80; }
  else if ((c & 0xf0) == 0xe0) { n = 3; *cp = c & 0x0f; min = 0x800; }
  else if ((c & 0xf8) == 0xf0) { n = 4; *cp = c & 0x07; min = 0x10000; }
  else return false;
  if (*i + n > s.size()) return false;
  for (size_t k = 1; k < n; k++) {
    if ((b(*i + k) & 0xc0) != 0x80) return false;
    *cp = (*cp << 6) | (b(*i + k) & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return false;
  *i += n;
  return true;
}

}  // namespace

bool Domain::operator==(const Domain& o) const {
  return host == o.host && brand == o.brand && customer_signup == o.customer_signup &&
         carrier_signup == o.carrier_signup && customer_limit_cents == o.customer_limit_cents &&
         access == o.access && status == o.status && created == o.created &&
         updated == o.updated;
}

bool valid_brand(std::string_view brand, std::string* why) {
  if (brand.empty()) return fail(why, "brand", brand, "empty");
  if (brand.size() > kMaxBrandLen) return fail(why, "brand", brand, "longer than 128 bytes");
  for (size_t i = 0; i < brand.size();) {
    uint32_t cp;
    if (!next_code_point(brand, &i, &cp)) return fail(why, "brand", brand, "not valid UTF-8");
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 || cp == 0x2029)
      return fail(why, "brand", brand, "control characters are not allowed");
  }
  return true;
}

bool valid_section(std::string_view name, std::string* why) {
  if (name.empty() || name.size() > kMaxSectionLen)
    return fail(why, "access section", name, "must be 1 to 32 of [a-z0-9_]");
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
      return fail(why, "access section", name, "must be 1 to 32 of [a-z0-9_]");
  }
  return true;
}

bool parse_limit(std::string_view text, uint64_t* cents, std::string* why) {
  const char* rule = "a decimal amount >= 0 with at most two decimal places, such as 100.00";
  if (!text.empty() && text.front() == '-')
    return fail(why, "customer limit", text, "negative amounts are not allowed");
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && frac.empty()) || frac.size() > 2)
    return fail(why, "customer limit", text, rule);
  uint64_t value = 0;
  for (char ch : whole) {
    if (ch < '0' || ch > '9') return fail(why, "customer limit", text, rule);
    if (value > kMaxLimitCents / 10) return fail(why, "customer limit", text, "too large");
    value = value * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (value > kMaxLimitCents / 100) return fail(why, "customer limit", text, "too large");
  value *= 100;
  for (size_t k = 0; k < 2; k++) {
    char ch = k < frac.size() ? frac[k] : '0';
    if (ch < '0' || ch > '9') return fail(why, "customer limit", text, rule);
    value += static_cast<uint64_t>(ch - '0') * (k == 0 ? 10 : 1);
  }
  *cents = value;
  return true;
}

size_t format_limit(uint64_t cents, char* out) {
  char tmp[24];
  size_t n = 0;
  uint64_t whole = cents / 100;
  do {
    tmp[n++] = static_cast<char>('0' + whole % 10);
    whole /= 10;
  } while (whole);
  size_t len = 0;
  while (n) out[len++] = tmp[--n];
  out[len++] = '.';
  out[len++] = static_cast<char>('0' + (cents / 10) % 10);
  out[len++] = static_cast<char>('0' + cents % 10);
  return len;
}

std::string format_limit(uint64_t cents) {
  char buf[24];
  return std::string(buf, format_limit(cents, buf));
}

bool parse_status(std::string_view text, DomainStatus* status, std::string* why) {
  if (text == "active") { *status = DomainStatus::active; return true; }
  if (text == "suspended") { *status = DomainStatus::suspended; return true; }
  return fail(why, "status", text, "must be active or suspended");
}

const char* status_name(DomainStatus status) {
  return status == DomainStatus::suspended ? "suspended" : "active";
}

bool normalise_access(std::vector<std::string>* access, std::string* why) {
  for (const auto& name : *access) {
    if (!valid_section(name, why)) return false;
  }
  std::sort(access->begin(), access->end());
  access->erase(std::unique(access->begin(), access->end()), access->end());
  if (access->size() > kMaxSections) {
    if (why) *why = "invalid access: more than 64 sections";
    return false;
  }
  return true;
}

bool parse_access(std::string_view text, std::vector<std::string>* out, std::string* why) {
  std::vector<std::string> names;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view name = text.substr(0, comma);
    // Spaces around names are a typing habit ("cdr, balance"), not part of a name.
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) names.emplace_back();  // a trailing comma is an empty name
  }
  if (!normalise_access(&names, why)) return false;
  *out = std::move(names);
  return true;
}

bool validate(const Domain& d, std::string* why) {
  if (!valid_brand(d.brand, why)) return false;
  if (d.customer_limit_cents > kMaxLimitCents)
    return fail(why, "customer limit", format_limit(d.customer_limit_cents), "too large");
  std::vector<std::string> access = d.access;
  if (!normalise_access(&access, why)) return false;
  if (access != d.access) {
    if (why) *why = "invalid access: sections must be sorted and unique";
    return false;
  }
  if (d.created < 0 || d.updated < 0) {
    if (why) *why = "invalid timestamp: before 1970";
    return false;
  }
  return true;
}

std::string encode(const Domain& d) {
  std::string out;
  out.reserve(16 + d.brand.size() + d.access.size() * 12);
  out += static_cast<char>(kRecordVersion);
  uint8_t flags = (d.customer_signup ? kFlagCustomerSignup : 0) |
                  (d.carrier_signup ? kFlagCarrierSignup : 0) |
                  (d.status == DomainStatus::suspended ? kFlagSuspended : 0);
  out += static_cast<char>(flags);
  put_varint(out, d.customer_limit_cents);
  put_varint(out, static_cast<uint64_t>(d.created));
  put_varint(out, static_cast<uint64_t>(d.updated));
  put_varint(out, d.brand.size());
  out += d.brand;
  out += static_cast<char>(d.access.size());
  for (const auto& name : d.access) {
    out += static_cast<char>(name.size());
    out += name;
  }
  return out;
}

bool decode(std::string_view in, DomainView* out) {
  if (in.size() < 2 || static_cast<uint8_t>(in[0]) != kRecordVersion) return false;
  auto flags = static_cast<uint8_t>(in[1]);
  if (flags & ~kKnownFlags) return false;
  in.remove_prefix(2);
  uint64_t limit, created, updated, brand_len;
  if (!get_varint(in, &limit) || limit > kMaxLimitCents) return false;
  if (!get_varint(in, &created) || created > INT64_MAX) return false;
  if (!get_varint(in, &updated) || updated > INT64_MAX) return false;
  if (!get_varint(in, &brand_len) || brand_len > kMaxBrandLen || brand_len > in.size())
    return false;
  std::string_view brand = in.substr(0, brand_len);
  if (!valid_brand(brand)) return false;
  in.remove_prefix(brand_len);
  if (in.empty()) return false;
  size_t count = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  if (count > kMaxSections) return false;
  for (size_t k = 0; k < count; k++) {
    if (in.empty()) return false;
    size_t len = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (len > in.size()) return false;
    std::string_view name = in.substr(0, len);
    if (!valid_section(name)) return false;
    if (k > 0 && !(out->sections[k - 1] < name)) return false;  // sorted and unique
    out->sections[k] = name;
    in.remove_prefix(len);
  }
  if (!in.empty()) return false;
  out->nsections = count;
  out->brand = brand;
  out->customer_signup = flags & kFlagCustomerSignup;
  out->carrier_signup = flags & kFlagCarrierSignup;
  out->suspended = flags & kFlagSuspended;
  out->customer_limit_cents = limit;
  out->created = static_cast<int64_t>(created);
  out->updated = static_cast<int64_t>(updated);
  return true;
}

bool decode(std::string_view value, Domain* out) {
  DomainView v;
  if (!decode(value, &v)) return false;
  out->brand.assign(v.brand);
  out->customer_signup = v.customer_signup;
  out->carrier_signup = v.carrier_signup;
  out->status = v.suspended ? DomainStatus::suspended : DomainStatus::active;
  out->customer_limit_cents = v.customer_limit_cents;
  out->created = v.created;
  out->updated = v.updated;
  out->access.assign(v.sections, v.sections + v.nsections);
  return true;
}

}  // namespace portal
