// portalctl import's parser (portalctl/json_io.cc: nlohmann's SAX parser and the field rules)
// on a document in memory; no data directory, nothing written. Bad input must end in
// UsageError (portalctl's exit 2), never another exception or a crash; what is accepted
// obeys the record rules, encodes and decodes unchanged, and reads back from its own export.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "domain/record.h"
#include "errors.h"
#include "fuzz.h"
#include "host/hostname.h"
#include "json_io.h"

using namespace portalctl;

namespace {

constexpr int64_t kNow = 1780000000;

struct Closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Parses text as read_import does from a file; false when it refuses it with UsageError.
bool import_text(const std::string& text, std::vector<ImportEntry>* out) {
  // fmemopen refuses a size of 0: an empty document is given as an empty file instead.
  static char empty[1];
  std::unique_ptr<std::FILE, Closer> f(
      text.empty() ? fmemopen(empty, 1, "r") : fmemopen(const_cast<char*>(text.data()), text.size(), "r"));
  FUZZ_CHECK(f != nullptr);
  if (text.empty()) std::fgetc(f.get());
  try {
    *out = read_import(f.get(), "fuzz.json", kNow);
    return true;
  } catch (const UsageError& e) {
    FUZZ_CHECK(*e.what() != '\0');
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<ImportEntry> entries;
  if (!import_text(text, &entries)) return 0;

  for (size_t i = 0; i < entries.size(); i++) {
    const ImportEntry& e = entries[i];
    const portal::Domain& d = e.domain;
    FUZZ_CHECK(e.index == i);
    std::string why, canon;
    FUZZ_CHECK(portal::canonical_host(d.host, canon) && canon == d.host);
    FUZZ_CHECK(portal::validate(d, &why));
    FUZZ_CHECK(e.has_created || d.created == kNow);

    portal::Domain back;
    back.host = d.host;
    FUZZ_CHECK(portal::decode(portal::encode(d), &back) && back == d);

    // What export writes for the domain imports as the same domain.
    std::vector<ImportEntry> again;
    FUZZ_CHECK(import_text("{\"domains\":[" + domain_json(d) + "]}", &again));
    FUZZ_CHECK(again.size() == 1 && again[0].domain == d && again[0].has_created);
  }
  return 0;
}
