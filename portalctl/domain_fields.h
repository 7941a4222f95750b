// The portal domain fields as options of "domain add" and "domain set": typed as text, checked
// by the core's rules before the snapshot is opened, applied to the record inside the write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/record.h"

namespace CLI {
class App;
}

namespace portalctl {

struct FieldArgs {
  std::string brand, customer_signup, carrier_signup, customer_limit, access, access_add, access_rm,
      status;
};

// --access-add and --access-rm only make sense on a record that exists: with_edits for "set".
void add_field_options(CLI::App& cmd, FieldArgs& args, bool with_edits);

// The options given, checked; what was not given stays as it is.
struct Change {
  std::optional<std::string> brand;
  std::optional<bool> customer_signup, carrier_signup;
  std::optional<uint64_t> customer_limit_cents;
  std::optional<std::vector<std::string>> access;
  std::vector<std::string> access_add, access_rm;
  std::optional<portal::DomainStatus> status;

  bool empty() const;
};

// Throws UsageError naming the option and the value, e.g. "--customer-limit: invalid ...".
Change parse_change(const CLI::App& cmd, const FieldArgs& args);
void apply(const Change& change, portal::Domain& d);

}  // namespace portalctl
