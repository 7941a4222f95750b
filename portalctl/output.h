// What portalctl prints on standard output: the human forms of show and list, buffered,
// with a write error (a full disk, a closed pipe) reported once at the end.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "domain/record.h"
#include "store/snapshot.h"

namespace portalctl {

void out(std::string_view text);
// Flushes standard output; throws std::runtime_error if anything failed to be written.
void finish_output();

// "field: value" lines, in the order of an import entry.
std::string domain_text(const portal::Domain& d);
std::string table_header();
std::string table_row(const portal::Domain& d);

// The "bad" visitor of SnapshotTxn::for_each: warns on stderr for each record that does not
// decode; check() then fails the command, so that a list or an export is never silently short.
class MalformedRecords {
 public:
  // what: the kind of record, as in "skipping the malformed record of portal domain "x"".
  explicit MalformedRecords(const char* what = "record of portal domain") : what_(what) {}
  void operator()(std::string_view host);
  void check() const;

 private:
  const char* what_;
  size_t count_ = 0;
};

// Streams every portal domain of tx as a JSON array (the shape of import entries), one
// per line, skipping (and reporting to malformed) those that do not decode.
void out_domains_json(const portal::SnapshotTxn& tx, MalformedRecords& malformed);

}  // namespace portalctl
