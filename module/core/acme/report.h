// Where every portal domain stands: its lifecycle with the ACME engine, its certificate
// (issuer, not after, days left, source), the CA's last problem, the next attempt; the
// engine (running, and where) and the snapshot. One JSON document for `portalctl status
// --json` and portal_status; never any key material.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace portal::acme {

// Reads DATA_DIR's snapshot and state store (both must exist). now: Unix time. Throws
// std::runtime_error / lmdb::Error.
nlohmann::ordered_json status_report(const std::string& data_dir, int64_t now);

}  // namespace portal::acme
