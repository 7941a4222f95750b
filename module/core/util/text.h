// Small text helpers for messages: every value quoted in an error is printable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace portal {

// "value" with control bytes, quotes and backslashes escaped as \xNN; cut at 300 bytes.
std::string quoted(std::string_view value);

// ISO 8601 in UTC, as logs, status and portalctl show times: "2026-11-26T17:00:00Z".
std::string iso8601(int64_t unix_seconds);

}  // namespace portal
