// The ACME client's cryptography, on OpenSSL 3: account and certificate keys, JWK and its
// thumbprint (RFC 7638), JWS signatures (RFC 7515/8555: ES256, RS256; HS256 for external
// account binding), and the CSR for an order. Errors throw std::runtime_error with a message
// that never contains key material; the OpenSSL error queue is cleared on every failure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../domain/cert_record.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace portal::acme {

// base64url without padding (RFC 4648 §5), as ACME uses everywhere.
std::string b64url(std::string_view bytes);
// Strict: only [A-Za-z0-9_-], no padding, no whitespace; false otherwise.
bool b64url_decode(std::string_view text, std::string* out);
// Whether text is a non-empty base64url token (what an HTTP-01 token must be).
bool is_b64url_token(std::string_view text);

std::string sha256(std::string_view bytes);  // raw 32 bytes

// A private key (move-only). ECDSA P-256 or RSA (2048, 3072, 4096 bits).
class Key {
 public:
  Key() = default;
  Key(Key&& o) noexcept;
  Key& operator=(Key&& o) noexcept;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key();

  // type ecdsa: P-256 (bits ignored); rsa: bits (2048, 3072 or 4096).
  static Key generate(KeyType type, int bits = 2048);
  // From PKCS #8 DER (what the state store keeps).
  static Key from_der(std::string_view pkcs8_der);
  // Takes ownership of pkey (freed even when it throws); it may be a public key only, which
  // serves jwk() and thumbprint() but not sign() or to_der(). Same key rules as from_der.
  static Key adopt(EVP_PKEY* pkey);

  std::string to_der() const;  // PKCS #8 DER
  KeyType type() const;
  explicit operator bool() const { return pkey_ != nullptr; }
  EVP_PKEY* get() const { return pkey_; }

  // The public key as a JWK with only the required members in lexicographic order and no
  // whitespace (so that it is also the thumbprint input): {"crv":"P-256","kty":"EC","x":..,"y":..}
  // or {"e":..,"kty":"RSA","n":..}.
  std::string jwk() const;
  // base64url(SHA-256(jwk())): the account key's thumbprint of RFC 7638.
  std::string thumbprint() const;
  std::string jws_alg() const;  // "ES256" or "RS256"
  // The JWS signature over data: ES256 as the 64-byte R||S (not DER), RS256 PKCS#1 v1.5.
  std::string sign(std::string_view data) const;

 private:
  explicit Key(EVP_PKEY* p) : pkey_(p) {}
  EVP_PKEY* pkey_ = nullptr;
};

// A flattened JWS JSON serialization {"protected":..,"payload":..,"signature":..}.
// protected_json is the protected header as JSON text; payload the exact payload bytes
// ("" for POST-as-GET, giving "payload":"").
std::string jws_sign(const Key& key, std::string_view protected_json, std::string_view payload);

// External account binding (RFC 8555 §7.3.4): a JWS over the account key's JWK, with
// {"alg":"HS256","kid":key_id,"url":new_account_url} and HMAC-SHA256 under hmac_key
// (already base64url-decoded). Returns the flattened JWS as JSON text.
std::string eab_jws(const Key& account_key, std::string_view key_id, std::string_view hmac_key,
                    std::string_view new_account_url);

// A PKCS #10 CSR (DER) for names (first is the subject CN too; all in SAN), signed with key
// (SHA-256).
std::string make_csr(const Key& key, const std::vector<std::string>& names);

// A PEM certificate chain (leaf first, as ACME serves it) to DER certificates. Throws when
// there is none or one does not parse.
std::vector<std::string> pem_chain_to_der(std::string_view pem);

// From a DER certificate: notBefore / notAfter (Unix seconds), the issuer's common name (or
// the whole issuer DN when there is none), and the ARI certificate identifier of RFC 9773
// (base64url(authorityKeyIdentifier keyIdentifier) "." base64url(serial DER content bytes)),
// empty when the certificate has no AKI. Throws when der does not parse.
struct CertFacts {
  int64_t not_before = 0, not_after = 0;
  std::string issuer_cn;
  std::string ari_id;
  std::vector<std::string> dns_names;
};
CertFacts cert_facts(std::string_view der);

// Whether key matches the leaf certificate (DER).
bool key_matches(const Key& key, std::string_view leaf_der);

}  // namespace portal::acme
