// The portal domain record of the seed, its field rules and its versioned binary encoding.
//
// Encoding, version 1 (the key is the canonical hostname, so the value does not repeat it):
//   u8 version (1) | u8 flags (bit 0 customer sign-up, bit 1 carrier sign-up, bit 2 suspended)
//   | varint customer limit in cents | varint created | varint updated (Unix seconds)
//   | varint brand length, brand bytes | u8 section count, then per section u8 length, bytes
// A decoder accepts exactly this: an unknown version, an unknown flag, a field out of its
// rules, a short or a long value are all "malformed", never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portal {

constexpr uint8_t kRecordVersion = 1;
constexpr size_t kMaxBrandLen = 128;
constexpr size_t kMaxSectionLen = 32;
constexpr size_t kMaxSections = 64;
constexpr uint64_t kMaxLimitCents = 99999999999999ULL;  // 999,999,999,999.99

enum class DomainStatus : uint8_t { active, suspended };

struct Domain {
  std::string host;
  std::string brand;
  bool customer_signup = false;
  bool carrier_signup = false;
  uint64_t customer_limit_cents = 0;
  std::vector<std::string> access;  // sorted, unique
  DomainStatus status = DomainStatus::active;
  int64_t created = 0;
  int64_t updated = 0;

  bool operator==(const Domain& o) const;
};

// A decoded record whose strings point into the encoded value (valid while it is).
struct DomainView {
  std::string_view brand;
  bool customer_signup = false;
  bool carrier_signup = false;
  bool suspended = false;
  uint64_t customer_limit_cents = 0;
  int64_t created = 0;
  int64_t updated = 0;
  size_t nsections = 0;
  std::string_view sections[kMaxSections];
};

// Field rules. Each returns false and a message naming the field and the value.
bool valid_brand(std::string_view brand, std::string* why = nullptr);
bool valid_section(std::string_view name, std::string* why = nullptr);
// "100", "100.5", "100.50" -> 10050; no sign, no exponent, at most two decimal places.
bool parse_limit(std::string_view text, uint64_t* cents, std::string* why = nullptr);
std::string format_limit(uint64_t cents);
// Writes the "100.00" form into out (at least 24 bytes); returns its length.
size_t format_limit(uint64_t cents, char* out);
bool parse_status(std::string_view text, DomainStatus* status, std::string* why = nullptr);
const char* status_name(DomainStatus status);
// "cdr,balance" -> sorted unique sections; empty text -> none.
bool parse_access(std::string_view text, std::vector<std::string>* out, std::string* why = nullptr);
// Sorts, removes duplicates and checks every name and the count.
bool normalise_access(std::vector<std::string>* access, std::string* why = nullptr);
// Checks every field of a record about to be written (host must already be canonical).
bool validate(const Domain& d, std::string* why = nullptr);

std::string encode(const Domain& d);
bool decode(std::string_view value, DomainView* out);
bool decode(std::string_view value, Domain* out);  // host is left as it was

}  // namespace portal
