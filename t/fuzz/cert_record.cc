// The certificate record decoder (domain/cert_record.h): any bytes decode or are refused,
// never a crash; peek_generation agrees with decode; what decodes survives encode -> decode.
// (pem_der parses the DER inside a record as the worker's cache does.)
#include <cstdint>
#include <string>

#include "domain/cert_record.h"
#include "fuzz.h"

using namespace portal;

namespace {

bool same(const CertRecord& a, const CertRecord& b) {
  if (a.source != b.source || a.generation != b.generation || a.updated != b.updated ||
      a.pairs.size() != b.pairs.size())
    return false;
  for (size_t i = 0; i < a.pairs.size(); i++) {
    const CertPair& p = a.pairs[i];
    const CertPair& q = b.pairs[i];
    if (p.type != q.type || p.not_before != q.not_before || p.not_after != q.not_after ||
        p.chain_der != q.chain_der || p.key_der != q.key_der)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz_input(data, size);

  CertRecord rec;
  rec.generation = 12345;
  bool ok = decode(in, &rec);
  uint64_t generation = 0;
  bool peeked = peek_generation(in, &generation);
  if (!ok) {
    FUZZ_CHECK(rec.generation == 12345 && rec.pairs.empty());  // untouched on failure
    return 0;
  }
  FUZZ_CHECK(peeked && generation == rec.generation);
  FUZZ_CHECK(!rec.pairs.empty() && rec.pairs.size() <= 2);
  FUZZ_CHECK(rec.pairs.size() < 2 || rec.pairs[0].type != rec.pairs[1].type);
  for (const CertPair& p : rec.pairs) {
    FUZZ_CHECK(!p.chain_der.empty() && p.chain_der.size() <= kMaxChain);
    FUZZ_CHECK(p.not_before >= 0 && p.not_after >= p.not_before && !p.key_der.empty());
    for (const std::string& der : p.chain_der) FUZZ_CHECK(!der.empty());
  }
  FUZZ_CHECK(rec.updated >= 0);

  std::string enc = encode(rec);
  FUZZ_CHECK(enc.size() <= in.size());  // the encoder's varints are the shortest form
  CertRecord back;
  FUZZ_CHECK(decode(enc, &back) && same(back, rec));
  FUZZ_CHECK(encode(back) == enc);
  return 0;
}
