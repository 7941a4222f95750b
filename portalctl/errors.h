// portalctl's exit statuses: 0 ok, 1 failure (any error), 2 bad usage or bad input.
#pragma once

#include <stdexcept>

namespace portalctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Bad usage or bad input, found before anything is written: exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace portalctl
