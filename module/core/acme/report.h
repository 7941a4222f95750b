// Where every portal domain stands: its lifecycle with the ACME engine, its certificate
// (issuer, not after, days left, source), the CA's last problem, the next attempt; the
// engine (running where, last run), the orders so far, and the snapshot. One JSON document
// for `portalctl status --json` and portal_status, and its Prometheus form; never any key
// material.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace portal {
class SnapshotReader;
class StateReader;
}  // namespace portal

namespace portal::acme {

// What a domain's certificate record says (issuer, not after, serials...), kept per record
// generation: describing parses every certificate with OpenSSL, too slow to repeat for every
// domain at every status request of a worker.
class CertDescriptions {
 public:
  // host's "certificate" object (days_left as of now), or null when it has none.
  nlohmann::ordered_json get(StateReader& state, const std::string& host, int64_t now);
  // Forgets the hosts not asked for since the last call (removed domains).
  void prune();

 private:
  struct Entry {
    uint64_t generation = 0;
    nlohmann::ordered_json json;
    bool seen = false;
  };
  std::unordered_map<std::string, Entry> entries_;
};

// Reads through the caller's readers (a worker's, or portalctl's). now: Unix time. memo, if
// given, is kept by the caller from one report to the next. Throws lmdb::Error.
nlohmann::ordered_json status_report(SnapshotReader& snapshot, StateReader& state,
                                     const std::string& data_dir, int64_t now,
                                     CertDescriptions* memo = nullptr);

// Lookups answered by nginx since its start (all workers), for portal_requests_total.
struct RequestCounts {
  uint64_t hit = 0, miss = 0;
};

// The Prometheus text exposition (version 0.0.4) of a report.
std::string status_prometheus(const nlohmann::ordered_json& report, const RequestCounts* requests);

}  // namespace portal::acme
