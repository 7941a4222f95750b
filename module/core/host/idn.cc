#include "idn.h"

#include <idn2.h>

#include <cstdlib>
#include <memory>

#include "../util/text.h"
#include "hostname.h"

namespace portal {

bool host_from_input(std::string_view in, std::string& out, std::string* why) {
  bool ascii = true;
  for (unsigned char ch : in) {
    if (ch >= 0x80) ascii = false;
    if (ch == 0) return canonical_host(in, out, why);  // rejected there, with the reason
  }
  if (ascii) return canonical_host(in, out, why);

  std::string name(in);
  char* alabel = nullptr;
  int rc = idn2_to_ascii_8z(name.c_str(), &alabel,
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  std::unique_ptr<char, decltype(&idn2_free)> guard(alabel, &idn2_free);
  if (rc != IDN2_OK) {
    if (why) *why = "invalid hostname " + quoted(in) + ": " + idn2_strerror(rc);
    return false;
  }
  return canonical_host(alabel, out, why);
}

}  // namespace portal
