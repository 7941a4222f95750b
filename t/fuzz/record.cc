// The portal domain record decoder (domain/record.h): any bytes decode or are refused, never
// a crash; what decodes obeys the field rules and survives encode -> decode unchanged; the
// view and the owning decoder agree.
#include <cstdint>
#include <string>

#include "domain/record.h"
#include "fuzz.h"

using namespace portal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz_input(data, size);

  DomainView view;
  bool view_ok = decode(in, &view);
  Domain d;
  d.host = "fuzz.example";
  bool ok = decode(in, &d);
  FUZZ_CHECK(ok == view_ok);
  if (!ok) return 0;

  FUZZ_CHECK(d.host == "fuzz.example");  // the decoder leaves the key alone
  FUZZ_CHECK(d.brand == view.brand && d.access.size() == view.nsections);
  FUZZ_CHECK(d.customer_limit_cents == view.customer_limit_cents);
  FUZZ_CHECK(d.created == view.created && d.updated == view.updated);
  FUZZ_CHECK((d.status == DomainStatus::suspended) == view.suspended);
  std::string why;
  FUZZ_CHECK(validate(d, &why));  // the decoder accepts only what a write may store

  std::string enc = encode(d);
  FUZZ_CHECK(enc.size() <= in.size());  // the encoder's varints are the shortest form
  Domain back;
  back.host = d.host;
  FUZZ_CHECK(decode(enc, &back) && back == d);
  FUZZ_CHECK(encode(back) == enc);

  // The limit's text form parses back to the same cents.
  uint64_t cents = 0;
  FUZZ_CHECK(parse_limit(format_limit(d.customer_limit_cents), &cents) &&
             cents == d.customer_limit_cents);
  return 0;
}
