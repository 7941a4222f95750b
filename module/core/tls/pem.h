// Certificates an operator brings (portalctl cert import): PEM in, a checked CertPair out.
#pragma once

#include <string>
#include <string_view>

#include "../domain/cert_record.h"

namespace portal {

// Parses a PEM chain (leaf first) and a PEM private key, and checks that: both parse; the
// key matches the leaf; the leaf covers host (SAN, wildcards as X509_check_host has them);
// it is valid now (not before its notBefore, not after its notAfter); its key is ECDSA
// P-256/P-384 or RSA >= 2048. Returns false with a message that names the file and the
// problem and never contains key material.
bool load_pair(std::string_view host, std::string_view cert_pem, std::string_view key_pem,
               const std::string& cert_name, const std::string& key_name, CertPair* out,
               std::string* why);

// What `cert show` / `cert list` print: subject, issuer, serial (hex), SANs, not after.
struct CertInfo {
  std::string subject, issuer, serial;
  std::string sans;  // comma-separated DNS names
  int64_t not_before = 0, not_after = 0;
};
bool describe(const CertPair& pair, CertInfo* out, std::string* why);

}  // namespace portal
