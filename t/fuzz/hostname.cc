// canonical_host (both forms; its one-pass fast path against canonical_host_checked) and
// host_from_input: never a crash, never more than 253 bytes out, and the canonical form is a
// fixed point of every entry.
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz.h"
#include "host/hostname.h"
#include "host/idn.h"

using namespace portal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz_input(data, size);

  // The request path's form into an exact-size buffer (ASan sees a write past it).
  char buf[kMaxHostLen];
  size_t len = 0;
  std::string why;
  HostCheck rc = canonical_host(in, buf, &len, &why);
  std::string canon;
  bool ok = canonical_host(in, canon);
  FUZZ_CHECK(ok == (rc == HostCheck::ok));
  FUZZ_CHECK(ok ? why.empty() : !why.empty());
  // The one-pass fast path and the step-by-step rules decide alike, with the same output.
  char checked[kMaxHostLen];
  size_t checked_len = 0;
  FUZZ_CHECK(canonical_host_checked(in, checked, &checked_len) == rc);
  if (ok) FUZZ_CHECK(checked_len == len && std::memcmp(checked, buf, len) == 0);
  if (ok) {
    FUZZ_CHECK(len == canon.size() && std::string_view(buf, len) == canon);
    FUZZ_CHECK(len >= 3 && len <= kMaxHostLen);
    std::string again;
    FUZZ_CHECK(canonical_host(canon, again) && again == canon);
    // The operator's entry accepts every canonical name and gives it back unchanged.
    std::string idn;
    FUZZ_CHECK(host_from_input(canon, idn) && idn == canon);
  }

  std::string from_input;
  if (host_from_input(in, from_input, &why)) {
    std::string again;
    FUZZ_CHECK(canonical_host(from_input, again) && again == from_input);
    FUZZ_CHECK(host_from_input(from_input, again) && again == from_input);
  }
  return 0;
}
