#include "config.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "crypto.h"

namespace portal::acme {

bool parse_key_type_spec(std::string_view text, KeyType* type, int* bits) {
  if (text == "ecdsa-p256") {
    *type = KeyType::ecdsa;
    *bits = 256;
    return true;
  }
  for (int b : {2048, 3072, 4096}) {
    if (text == "rsa-" + std::to_string(b)) {
      *type = KeyType::rsa;
      *bits = b;
      return true;
    }
  }
  return false;
}

std::string read_eab_key(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the external account key file \"" + file + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  std::string key;
  if (text.empty() || !b64url_decode(text, &key)) {
    throw std::runtime_error("the external account key file \"" + file +
                             "\" does not hold one base64url key");
  }
  return key;
}

void check_config(const EngineConfig& c) {
  if (c.directory_url.rfind("https://", 0) != 0 && c.directory_url.rfind("http://", 0) != 0) {
    throw std::invalid_argument("the ACME directory \"" + c.directory_url +
                                "\" is not an http(s) URL");
  }
  if (c.dns.cname_target.empty() && c.dns.edge_addresses.empty()) {
    throw std::invalid_argument(
        "the DNS pre-check needs a CNAME target or edge addresses (portal_acme_cname_target, "
        "portal_acme_edge_addresses)");
  }
  DnsChecker check(c.dns);  // throws std::invalid_argument for a bad resolver or address
  if (!c.ca_file.empty()) {
    std::ifstream in(c.ca_file);
    if (!in) throw std::invalid_argument("cannot read the CA certificate file \"" + c.ca_file + "\"");
  }
  if (c.dns_recheck <= 0) throw std::invalid_argument("the DNS recheck interval must be positive");
  if (!c.eab_kid.empty() && c.eab_hmac_key.empty()) {
    throw std::invalid_argument("an external account binding needs its HMAC key");
  }
}

}  // namespace portal::acme
