// The unsigned LEB128 varints of the record encodings (domain/record.h, domain/cert_record.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace portal {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// Takes one varint off the front of in; false if it is cut short or overflows 64 bits.
inline bool get_varint(std::string_view& in, uint64_t* v) {
  uint64_t result = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (shift == 63 && byte > 1) return false;  // would overflow 64 bits
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace portal
