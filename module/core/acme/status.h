// Where a portal domain stands with the ACME engine (its lifecycle), as kept in the state
// store's status table and shown by `portalctl status` and portal_status:
//   pending_dns → validating → active → renewing → active; failed; moved.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "problem.h"

namespace portal::acme {

enum class Lifecycle { pending_dns, validating, active, renewing, failed, moved };

const char* lifecycle_name(Lifecycle s);
bool parse_lifecycle(std::string_view name, Lifecycle* out);

struct AcmeStatus {
  Lifecycle state = Lifecycle::pending_dns;
  std::string detail;          // one line: the DNS answer, the order step, why it failed
  Problem problem;             // the CA's last problem, kept until the next success
  int64_t last_attempt = 0;    // Unix times; 0: never / none
  int64_t next_attempt = 0;
  int64_t renew_at = 0;        // when the current certificate is renewed
  unsigned failures = 0;       // in a row, for the backoff
  unsigned dns_checks = 0;     // failed pre-checks in a row, for their schedule
  int64_t dns_checked = 0;     // last DNS look at a name that holds a certificate
  std::string order_url;       // the order in progress or the last one
  int64_t ari_start = 0, ari_end = 0, ari_next_check = 0;

  std::string to_json() const;
  // Lenient (a damaged record reads as a new domain); never throws.
  static AcmeStatus from_json(std::string_view text);
};

}  // namespace portal::acme
