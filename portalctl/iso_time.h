// Timestamps as portalctl shows and reads them: ISO 8601 in UTC, "2026-11-26T17:00:00Z".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace portalctl {

std::string format_time(int64_t unix_seconds);
// Accepts exactly the form format_time writes; says why (naming the value) otherwise.
bool parse_time(std::string_view text, int64_t* unix_seconds, std::string* why);

}  // namespace portalctl
