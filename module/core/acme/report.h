// Where every portal domain stands: its lifecycle with the ACME engine, its certificate
// (issuer, not after, days left, source), the CA's last problem, the next attempt; the
// engine (running where, last run), the orders so far, and the snapshot. One JSON document
// for `portalctl status --json` and portal_status, and its Prometheus form; never any key
// material.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace portal {
class SnapshotReader;
class StateReader;
}  // namespace portal

namespace portal::acme {

// Reads through the caller's readers (a worker's, or portalctl's). now: Unix time. Throws
// lmdb::Error.
nlohmann::ordered_json status_report(SnapshotReader& snapshot, StateReader& state,
                                     const std::string& data_dir, int64_t now);

// Lookups answered by nginx since its start (all workers), for portal_requests_total.
struct RequestCounts {
  uint64_t hit = 0, miss = 0;
};

// The Prometheus text exposition (version 0.0.4) of a report.
std::string status_prometheus(const nlohmann::ordered_json& report, const RequestCounts* requests);

}  // namespace portal::acme
