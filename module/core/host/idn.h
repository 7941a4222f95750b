// Write-time hostname input: IDN U-labels become A-labels (libidn2), then the canonical form.
#pragma once

#include <string>
#include <string_view>

namespace portal {

// For hostnames typed by an operator or imported: accepts UTF-8 (IDNA2008, UTS #46
// non-transitional) as well as ASCII, returns the canonical A-label form.
bool host_from_input(std::string_view in, std::string& out, std::string* why = nullptr);

}  // namespace portal
