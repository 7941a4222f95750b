// Small text helpers for messages: every value quoted in an error is printable.
#pragma once

#include <string>
#include <string_view>

namespace portal {

// "value" with control bytes, quotes and backslashes escaped as \xNN; cut at 300 bytes.
std::string quoted(std::string_view value);

}  // namespace portal
