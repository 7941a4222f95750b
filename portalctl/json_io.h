// The JSON form of portal domains: the import/export document
// {"domains":[{"host":..., "brand":..., ...}]} and the objects of show/list --json.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "domain/record.h"

namespace portalctl {

// One domain of an import document, checked by the core's rules.
struct ImportEntry {
  portal::Domain domain;  // created/updated are "now" where the document leaves them out
  size_t index = 0;       // position in "domains", for messages
  bool has_created = false;
};

// Reads a whole import document (streaming, with nlohmann's SAX parser) and validates every
// field; throws UsageError naming the field, e.g. "domains[3].customer_limit: ...", or the
// place of a JSON syntax error in the file called name.
std::vector<ImportEntry> read_import(std::FILE* in, const std::string& name, int64_t now);

// One domain as an import entry with its timestamps; indent as nlohmann's dump (-1: one line).
std::string domain_json(const portal::Domain& d, int indent = -1);

}  // namespace portalctl
