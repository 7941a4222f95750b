// Certificates and keys as they arrive (PEM: portalctl cert import's load_pair, the ACME
// download's pem_chain_to_der) and as the state store keeps them (DER: a certificate record
// decoded and parsed as the worker's CertCache does, describe, cert_facts, Key::from_der).
// Input: the certificate PEM, a line "%%", the key PEM (without the line, the whole input is
// both); the whole input is also tried as one DER certificate, one PKCS #8 key and one
// certificate record. Never a crash, an exception other than std::runtime_error from the
// acme/ functions, or an error left on OpenSSL's queue by tls/.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "acme/crypto.h"
#include "domain/cert_record.h"
#include "fuzz.h"
#include "tls/pem.h"

using namespace portal;

namespace {

constexpr const char kHost[] = "fuzz.example";

// tls/cert_cache.cc's CertCache::Loaded::parse, which is private to that file: every DER of a
// record into OpenSSL objects, the key checked against the leaf.
bool cache_parse(const CertRecord& rec) {
  bool ok = !rec.pairs.empty();
  for (const CertPair& cp : rec.pairs) {
    if (!ok || cp.chain_der.empty()) return false;
    X509* leaf = nullptr;
    STACK_OF(X509)* chain = sk_X509_new_null();
    for (size_t i = 0; ok && i < cp.chain_der.size(); i++) {
      auto* der = reinterpret_cast<const unsigned char*>(cp.chain_der[i].data());
      const unsigned char* end = der + cp.chain_der[i].size();
      X509* x = d2i_X509(nullptr, &der, static_cast<long>(cp.chain_der[i].size()));
      ok = x && der == end;
      if (ok && i == 0) {
        leaf = x;
      } else if (!ok || !sk_X509_push(chain, x)) {
        X509_free(x);
        ok = false;
      }
    }
    EVP_PKEY* key = nullptr;
    if (ok) {
      auto* der = reinterpret_cast<const unsigned char*>(cp.key_der.data());
      key = d2i_AutoPrivateKey(nullptr, &der, static_cast<long>(cp.key_der.size()));
      ok = key && X509_check_private_key(leaf, key) == 1;
    }
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
  }
  ERR_clear_error();
  return ok;
}

// The acme/ functions throw std::runtime_error on bad input; anything else escapes and crashes.
template <typename F>
bool attempt(F f) {
  try {
    f();
    return true;
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(*e.what() != '\0');
    return false;
  }
}

void der_cert(const std::string& der) {
  acme::CertFacts facts;
  bool ok = attempt([&] { facts = acme::cert_facts(der); });
  CertPair pair;
  pair.chain_der = {der};
  CertInfo info;
  std::string why;
  bool described = describe(pair, &info, &why);
  FUZZ_CHECK(ERR_peek_error() == 0);
  FUZZ_CHECK(described || !why.empty());
  if (ok && described) FUZZ_CHECK(info.not_after == facts.not_after);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t sep = in.find("\n%%\n");
  std::string cert_pem = sep == std::string::npos ? in : in.substr(0, sep + 1);
  std::string key_pem = sep == std::string::npos ? in : in.substr(sep + 4);

  // The PEM an operator imports.
  CertPair pair;
  std::string why;
  bool loaded = load_pair(kHost, cert_pem, key_pem, "cert.pem", "key.pem", &pair, &why);
  FUZZ_CHECK(ERR_peek_error() == 0);
  FUZZ_CHECK(loaded || !why.empty());
  if (loaded) {
    FUZZ_CHECK(!pair.chain_der.empty() && pair.chain_der.size() <= kMaxChain);
    CertInfo info;
    FUZZ_CHECK(describe(pair, &info, &why));
    FUZZ_CHECK(info.not_before <= pair.not_after && info.not_after == pair.not_after);
    // The ACME client's own keys are narrower (P-256, RSA up to 4096): it may refuse this one.
    acme::Key key;
    if (attempt([&] { key = acme::Key::from_der(pair.key_der); }))
      FUZZ_CHECK(key.type() == pair.type && acme::key_matches(key, pair.chain_der.front()));
    // cert_facts is stricter (an unparsable authorityKeyIdentifier, which load_pair never
    // reads, is refused); the engine then renews by lifetime. When it reads, it agrees.
    acme::CertFacts facts;
    if (attempt([&] { facts = acme::cert_facts(pair.chain_der.front()); }))
      FUZZ_CHECK(facts.not_after == pair.not_after);
    // Stored and read back as a worker does.
    CertRecord rec;
    rec.generation = 1;
    rec.pairs.push_back(pair);
    CertRecord back;
    FUZZ_CHECK(decode(encode(rec), &back) && cache_parse(back));
  }

  // The PEM chain an ACME CA serves.
  std::vector<std::string> ders;
  if (attempt([&] { ders = acme::pem_chain_to_der(cert_pem); })) {
    FUZZ_CHECK(!ders.empty());
    for (const std::string& der : ders) der_cert(der);
  }
  FUZZ_CHECK(ERR_peek_error() == 0);

  // The DER the state store keeps.
  der_cert(in);
  acme::Key key;
  if (attempt([&] { key = acme::Key::from_der(in); })) {
    std::string again;
    FUZZ_CHECK(attempt([&] { again = key.to_der(); }));
    FUZZ_CHECK(attempt([&] { acme::Key::from_der(again); }));
    FUZZ_CHECK(!key.jwk().empty() && !key.thumbprint().empty());
  }
  FUZZ_CHECK(ERR_peek_error() == 0);
  CertRecord rec;
  if (decode(in, &rec)) {
    cache_parse(rec);
    for (const CertPair& p : rec.pairs) {
      CertInfo info;
      describe(p, &info, &why);
    }
  }
  return 0;
}
