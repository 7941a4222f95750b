// The DNS pre-check before any ACME order (c-ares): does NAME point at this edge? It does
// when its CNAME chain reaches the portal's CNAME target, or, without a CNAME, when it has
// A/AAAA records and every one of them is among the edge addresses. Asked of one resolver
// (ADDR[:PORT]), blocking with a timeout: run it only off nginx's event loop (the engine).
#pragma once

#include <string>
#include <vector>

namespace portal::acme {

struct DnsCheckConfig {
  std::string resolver;                     // "127.0.0.1:8053", "[::1]:53", "10.0.0.2"; empty: the system's
  std::string cname_target;                 // canonical hostname, "" when not used
  std::vector<std::string> edge_addresses;  // textual IPv4/IPv6, "" entries never present
  int timeout_ms = 3000;                    // per query, overall per check at most ~2x
};

enum class DnsVerdict {
  points_here,  // the CNAME chain reaches cname_target, or all A/AAAA are edge addresses
  elsewhere,    // resolves, but not to this edge (including NXDOMAIN / no data)
  error,        // the resolver failed (timeout, SERVFAIL, refused): no conclusion
};

struct DnsCheckResult {
  DnsVerdict verdict = DnsVerdict::error;
  std::string detail;  // one line for status/logs: "CNAME portal.yourwebsite.com -> x.example",
                       // "A 192.0.2.1 is not an edge address", "no A/AAAA/CNAME", "timeout"
};

class DnsChecker {
 public:
  // Throws std::invalid_argument for a resolver address or edge address that does not parse
  // (or timeout_ms <= 0); std::runtime_error when c-ares cannot make its channel.
  explicit DnsChecker(DnsCheckConfig config);
  ~DnsChecker();
  DnsChecker(const DnsChecker&) = delete;
  DnsChecker& operator=(const DnsChecker&) = delete;

  // host is canonical (lower-case A-labels, no trailing dot). Never throws.
  DnsCheckResult check(const std::string& host);

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace portal::acme
