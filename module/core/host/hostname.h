// Hostname rules shared by portalctl, the nginx module and (later) the ACME engine.
#pragma once

#include <string>
#include <string_view>

namespace portal {

constexpr size_t kMaxHostLen = 253;
constexpr size_t kMaxLabelLen = 63;

enum class HostCheck { ok, bad_port, invalid };

// Canonical form of an ASCII host: lower-case, no trailing dot, no port, LDH labels of
// 1..63 bytes, at least two labels, a last label that is not all digits, at most 253 bytes.
// A port, if any, must be 1..65535 (an empty one is no port, RFC 3986 3.2.3).
// Says why (naming the value) when the input is not such a host.
// Allocation-free variant for the request path: writes at most kMaxHostLen bytes to out.
HostCheck canonical_host(std::string_view in, char* out, size_t* out_len,
                         std::string* why = nullptr);
bool canonical_host(std::string_view in, std::string& out, std::string* why = nullptr);
// The same rules checked step by step (what canonical_host falls back to for anything but a
// plain valid host): the reference the fast path is tested and fuzzed against.
HostCheck canonical_host_checked(std::string_view in, char* out, size_t* out_len,
                                 std::string* why = nullptr);

}  // namespace portal
