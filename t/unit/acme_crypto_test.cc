#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "acme/crypto.h"
#include "tls/ossl.h"

using namespace portal;
using namespace portal::acme;

namespace {

using namespace portal::ossl;

const unsigned char* u8(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string b64d(const std::string& text) {
  std::string out;
  EXPECT_TRUE(b64url_decode(text, &out)) << text;
  return out;
}

// The value of a string member in JSON text whose values need no unescaping (base64url).
std::string member(const std::string& json, const std::string& name) {
  std::string key = "\"" + name + "\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos) return "<missing>";
  at += key.size();
  return json.substr(at, json.find('"', at) - at);
}

// Verifies a JWS signature as a relying party would: ES256 R||S is turned back into DER.
bool verify(EVP_PKEY* pub, const std::string& data, const std::string& sig) {
  std::string der = sig;
  if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
    if (sig.size() != 64) return false;
    SigPtr ec(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(u8(sig), 32, nullptr);
    BIGNUM* s = BN_bin2bn(u8(sig) + 32, 32, nullptr);
    ECDSA_SIG_set0(ec.get(), r, s);
    int n = i2d_ECDSA_SIG(ec.get(), nullptr);
    der.assign(static_cast<size_t>(n), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_ECDSA_SIG(ec.get(), &p);
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pub, nullptr) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), u8(der), der.size(), u8(data), data.size()) == 1;
}

// An RSA public key from a JWK's base64url n and e.
PkeyPtr rsa_public(const std::string& n64, const std::string& e64) {
  std::string n = b64d(n64), e = b64d(e64);
  BnPtr bn(BN_bin2bn(u8(n), static_cast<int>(n.size()), nullptr));
  BnPtr be(BN_bin2bn(u8(e), static_cast<int>(e.size()), nullptr));
  BldPtr bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get());
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* pkey = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()), 1);
  return PkeyPtr(pkey);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  ASSERT_TRUE(ext);
  ASSERT_EQ(X509_add_ext(cert, ext.get(), -1), 1);
}

// A certificate for key with serial (hex) and these DNS names, signed by the issuer (itself
// when null); a CA gets a subjectKeyIdentifier, an issued one an authorityKeyIdentifier.
X509Ptr make_cert(EVP_PKEY* key, const char* cn, const char* serial_hex, const char* san,
                  int64_t not_before, int64_t not_after, EVP_PKEY* signer = nullptr,
                  X509* issuer = nullptr) {
  X509Ptr x(X509_new());
  X509_set_version(x.get(), X509_VERSION_3);
  BIGNUM* raw = nullptr;
  BN_hex2bn(&raw, serial_hex);
  BnPtr serial(raw);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()));
  ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(not_before));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(not_after));
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(x.get(), key);
  if (!issuer) add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash");
  if (issuer) add_ext(x.get(), issuer, NID_authority_key_identifier, "keyid:always");
  if (san) add_ext(x.get(), issuer ? issuer : x.get(), NID_subject_alt_name, san);
  EXPECT_GT(X509_sign(x.get(), signer ? signer : key, EVP_sha256()), 0);
  return x;
}

std::string der_of(X509* x) {
  int n = i2d_X509(x, nullptr);
  std::string out(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509(x, &p);
  return out;
}

std::string pem_of(X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// RFC 7638 §3.1.
const char* kRfc7638N =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

// RFC 9773 Appendix A: AKI 69:88:5B:..., serial 0x87654321, certID aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.
const char* kRfc9773Pem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt\n"
    "cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS\n"
    "BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu\n"
    "7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf\n"
    "qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B\n"
    "yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb\n"
    "+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK\n"
    "-----END CERTIFICATE-----\n";

const Key& ec_key() {
  static Key k = Key::generate(KeyType::ecdsa);
  return k;
}
const Key& rsa_key() {
  static Key k = Key::generate(KeyType::rsa, 2048);
  return k;
}

}  // namespace

TEST(AcmeCrypto, B64urlKnownValuesAndRoundTrip) {
  EXPECT_EQ(b64url(""), "");
  EXPECT_EQ(b64url("f"), "Zg");
  EXPECT_EQ(b64url("fo"), "Zm8");
  EXPECT_EQ(b64url("foo"), "Zm9v");
  EXPECT_EQ(b64url(std::string("\xfb\xff\xfe", 3)), "-__-");
  std::string all;
  for (int i = 0; i < 256; i++) all += static_cast<char>(i);
  for (size_t len = 0; len <= all.size(); len += 37) {
    std::string out;
    ASSERT_TRUE(b64url_decode(b64url(all.substr(0, len)), &out));
    EXPECT_EQ(out, all.substr(0, len));
  }
}

TEST(AcmeCrypto, B64urlDecodeIsStrict) {
  std::string out = "untouched";
  EXPECT_FALSE(b64url_decode("Zg==", &out));  // padding
  EXPECT_FALSE(b64url_decode("Zm9v+/", &out));  // standard alphabet
  EXPECT_FALSE(b64url_decode("Zm 9v", &out));
  EXPECT_FALSE(b64url_decode("Zm9v\n", &out));
  EXPECT_FALSE(b64url_decode("Z", &out));   // a lone 6 bits is no byte
  EXPECT_FALSE(b64url_decode("Zh", &out));  // non-zero unused bits
  EXPECT_EQ(out, "untouched");
  EXPECT_TRUE(b64url_decode("", &out));
  EXPECT_EQ(out, "");
  EXPECT_TRUE(is_b64url_token("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"));
  EXPECT_FALSE(is_b64url_token(""));
  EXPECT_FALSE(is_b64url_token("a.b"));
  EXPECT_FALSE(is_b64url_token("../x"));
  EXPECT_FALSE(is_b64url_token("abc="));
}

TEST(AcmeCrypto, Sha256KnownValue) {
  EXPECT_EQ(b64url(sha256("abc")), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

TEST(AcmeCrypto, Rfc7638ThumbprintExample) {
  Key k = Key::adopt(rsa_public(kRfc7638N, "AQAB").release());
  EXPECT_EQ(k.type(), KeyType::rsa);
  EXPECT_EQ(k.jwk(), std::string("{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"") + kRfc7638N + "\"}");
  EXPECT_EQ(k.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_THROW(k.sign("x"), std::runtime_error);  // public only
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(AcmeCrypto, EcJwkHasFixedSizeCoordinatesAndThumbprint) {
  const Key& k = ec_key();
  EXPECT_EQ(k.type(), KeyType::ecdsa);
  EXPECT_EQ(k.jws_alg(), "ES256");
  std::string jwk = k.jwk();
  EXPECT_EQ(jwk.rfind("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 0), 0u) << jwk;
  EXPECT_EQ(b64d(member(jwk, "x")).size(), 32u);
  EXPECT_EQ(b64d(member(jwk, "y")).size(), 32u);
  EXPECT_EQ(jwk.find(' '), std::string::npos);
  EXPECT_EQ(k.thumbprint(), b64url(sha256(jwk)));
  EXPECT_EQ(rsa_key().jws_alg(), "RS256");
  EXPECT_EQ(member(rsa_key().jwk(), "e"), "AQAB");
}

TEST(AcmeCrypto, Es256SignatureIsRawRsAndVerifies) {
  const Key& k = ec_key();
  bool padded = false;  // sign until R or S is short (1 in 128), so the padding is exercised
  for (int i = 0; i < 3000 && !(padded && i >= 20); i++) {
    std::string data = "payload " + std::to_string(i);
    std::string sig = k.sign(data);
    ASSERT_EQ(sig.size(), 64u);
    ASSERT_TRUE(verify(k.get(), data, sig));
    ASSERT_FALSE(verify(k.get(), data + "!", sig));
    padded = padded || sig[0] == 0 || sig[32] == 0;
  }
  EXPECT_TRUE(padded);
}

TEST(AcmeCrypto, Rs256SignatureVerifies) {
  const Key& k = rsa_key();
  std::string sig = k.sign("hello");
  EXPECT_EQ(sig.size(), 256u);
  EXPECT_TRUE(verify(k.get(), "hello", sig));
  EXPECT_FALSE(verify(k.get(), "hellO", sig));
}

TEST(AcmeCrypto, FlattenedJwsVerifiesOverProtectedAndPayload) {
  for (const Key* k : {&ec_key(), &rsa_key()}) {
    std::string prot = "{\"alg\":\"" + k->jws_alg() + "\",\"nonce\":\"n\",\"url\":\"https://ca/x\"}";
    std::string jws = jws_sign(*k, prot, "{\"termsOfServiceAgreed\":true}");
    EXPECT_EQ(jws.front(), '{');
    EXPECT_EQ(b64d(member(jws, "protected")), prot);
    EXPECT_EQ(b64d(member(jws, "payload")), "{\"termsOfServiceAgreed\":true}");
    std::string input = member(jws, "protected") + "." + member(jws, "payload");
    EXPECT_TRUE(verify(k->get(), input, b64d(member(jws, "signature"))));
  }
  std::string post_as_get = jws_sign(ec_key(), "{}", "");
  EXPECT_NE(post_as_get.find("\"payload\":\"\""), std::string::npos);
  EXPECT_TRUE(verify(ec_key().get(), member(post_as_get, "protected") + ".",
                     b64d(member(post_as_get, "signature"))));
}

TEST(AcmeCrypto, EabJwsIsHs256OverTheAccountJwk) {
  std::string hmac_key = "0123456789abcdef0123456789abcdef";
  std::string jws = eab_jws(ec_key(), "kid-\"1\"", hmac_key, "https://ca/acme/new-account");
  std::string prot = b64d(member(jws, "protected"));
  EXPECT_EQ(prot, "{\"alg\":\"HS256\",\"kid\":\"kid-\\\"1\\\"\",\"url\":\"https://ca/acme/new-account\"}");
  EXPECT_EQ(b64d(member(jws, "payload")), ec_key().jwk());
  std::string input = member(jws, "protected") + "." + member(jws, "payload");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_TRUE(HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()), u8(input),
                   input.size(), mac, &len));
  EXPECT_EQ(b64d(member(jws, "signature")), std::string(reinterpret_cast<char*>(mac), len));
  EXPECT_THROW(eab_jws(ec_key(), "kid", "", "https://ca/acme/new-account"), std::runtime_error);
}

TEST(AcmeCrypto, CsrParsesVerifiesAndNamesEverything) {
  std::string long_name = std::string(60, 'a') + ".example.com";  // over the 64-character CN limit
  for (const Key* k : {&ec_key(), &rsa_key()}) {
    std::vector<std::string> names = {"example.com", "www.example.com", long_name};
    std::string der = make_csr(*k, names);
    const unsigned char* p = u8(der);
    ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    ASSERT_TRUE(req);
    EXPECT_EQ(X509_REQ_verify(req.get(), k->get()), 1);
    EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
    ASSERT_TRUE(pub);
    EXPECT_EQ(EVP_PKEY_eq(pub, k->get()), 1);
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, cn, sizeof cn);
    EXPECT_STREQ(cn, "example.com");

    ExtsPtr exts(X509_REQ_get_extensions(req.get()));
    ASSERT_TRUE(exts);
    std::vector<std::string> got;
    for (int i = 0; i < sk_X509_EXTENSION_num(exts.get()); i++) {
      X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
      if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
      NamesPtr gens(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
      ASSERT_TRUE(gens);
      for (int j = 0; j < sk_GENERAL_NAME_num(gens.get()); j++) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens.get(), j);
        ASSERT_EQ(g->type, GEN_DNS);
        got.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                         ASN1_STRING_length(g->d.dNSName));
      }
    }
    EXPECT_EQ(got, names);
  }
  std::string der = make_csr(ec_key(), {long_name});
  const unsigned char* p = u8(der);
  ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_TRUE(req);
  EXPECT_EQ(X509_NAME_entry_count(X509_REQ_get_subject_name(req.get())), 0);
  EXPECT_THROW(make_csr(ec_key(), {}), std::runtime_error);
  EXPECT_THROW(make_csr(ec_key(), {"a b.example"}), std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(AcmeCrypto, PemChainToDer) {
  PkeyPtr ca_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509Ptr ca = make_cert(ca_key.get(), "Test CA", "01", nullptr, 1700000000, 1800000000);
  X509Ptr leaf = make_cert(ec_key().get(), "a.example", "02", "DNS:a.example", 1700000000,
                           1710000000, ca_key.get(), ca.get());
  std::string pem = pem_of(leaf.get()) + "\n" + pem_of(ca.get());
  std::vector<std::string> ders = pem_chain_to_der(pem);
  ASSERT_EQ(ders.size(), 2u);
  EXPECT_EQ(ders[0], der_of(leaf.get()));
  EXPECT_EQ(ders[1], der_of(ca.get()));

  EXPECT_THROW(pem_chain_to_der(""), std::runtime_error);
  EXPECT_THROW(pem_chain_to_der("no certificates here\n"), std::runtime_error);
  std::string broken = pem_of(leaf.get());
  broken.replace(broken.find("\n") + 5, 4, "!!!!");
  EXPECT_THROW(pem_chain_to_der(broken), std::runtime_error);
  std::string cut = pem_of(leaf.get());
  EXPECT_THROW(pem_chain_to_der(cut.substr(0, cut.size() / 2)), std::runtime_error);
  EXPECT_THROW(pem_chain_to_der("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"),
               std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(AcmeCrypto, CertFactsOfAnIssuedCertificate) {
  PkeyPtr ca_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509Ptr ca = make_cert(ca_key.get(), "Test CA", "01", nullptr, 1700000000, 1800000000);
  X509Ptr leaf = make_cert(ec_key().get(), "a.example", "80112233", "DNS:a.example,DNS:b.example",
                           1700000000, 1707776000, ca_key.get(), ca.get());
  CertFacts f = cert_facts(der_of(leaf.get()));
  EXPECT_EQ(f.not_before, 1700000000);
  EXPECT_EQ(f.not_after, 1707776000);
  EXPECT_EQ(f.issuer_cn, "Test CA");
  EXPECT_EQ(f.dns_names, (std::vector<std::string>{"a.example", "b.example"}));
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca.get());
  ASSERT_TRUE(ski);
  std::string keyid(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ski)), ASN1_STRING_length(ski));
  // The serial's high bit is set, so its DER content starts with a 0x00 sign byte.
  EXPECT_EQ(f.ari_id, b64url(keyid) + "." + b64url(std::string("\x00\x80\x11\x22\x33", 5)));

  CertFacts self = cert_facts(der_of(ca.get()));  // no AKI, no SAN
  EXPECT_EQ(self.ari_id, "");
  EXPECT_TRUE(self.dns_names.empty());
  EXPECT_EQ(self.issuer_cn, "Test CA");

  EXPECT_THROW(cert_facts("not a certificate"), std::runtime_error);
  EXPECT_THROW(cert_facts(der_of(leaf.get()) + "x"), std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(AcmeCrypto, CertFactsIssuerWithoutCommonName) {
  PkeyPtr ca_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509Ptr x = make_cert(ca_key.get(), "x", "05", nullptr, 1700000000, 1800000000);
  X509_NAME* dn = X509_NAME_new();
  X509_NAME_add_entry_by_txt(dn, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Org"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(dn, "C", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("DE"), -1, -1, 0);
  X509_set_issuer_name(x.get(), dn);
  X509_NAME_free(dn);
  X509_sign(x.get(), ca_key.get(), EVP_sha256());
  EXPECT_EQ(cert_facts(der_of(x.get())).issuer_cn, "C=DE,O=Org");
}

TEST(AcmeCrypto, CertFactsRfc9773Example) {
  std::vector<std::string> ders = pem_chain_to_der(kRfc9773Pem);
  ASSERT_EQ(ders.size(), 1u);
  CertFacts f = cert_facts(ders[0]);
  EXPECT_EQ(f.ari_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  EXPECT_EQ(f.issuer_cn, "Example CA");
}

TEST(AcmeCrypto, KeyMatches) {
  PkeyPtr ca_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509Ptr ca = make_cert(ca_key.get(), "Test CA", "01", nullptr, 1700000000, 1800000000);
  X509Ptr leaf = make_cert(ec_key().get(), "a.example", "02", "DNS:a.example", 1700000000,
                           1710000000, ca_key.get(), ca.get());
  std::string der = der_of(leaf.get());
  EXPECT_TRUE(key_matches(ec_key(), der));
  EXPECT_FALSE(key_matches(Key::generate(KeyType::ecdsa), der));
  EXPECT_FALSE(key_matches(rsa_key(), der));
  EXPECT_THROW(key_matches(ec_key(), "junk"), std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(AcmeCrypto, KeyDerRoundTripKeepsThumbprint) {
  for (const Key* k : {&ec_key(), &rsa_key()}) {
    std::string der = k->to_der();
    Key back = Key::from_der(der);
    EXPECT_EQ(back.type(), k->type());
    EXPECT_EQ(back.thumbprint(), k->thumbprint());
    EXPECT_EQ(back.to_der(), der);
    EXPECT_TRUE(verify(k->get(), "x", back.sign("x")));
  }
  Key moved = Key::from_der(ec_key().to_der());
  Key other = std::move(moved);
  EXPECT_FALSE(moved);
  EXPECT_TRUE(other);
}

TEST(AcmeCrypto, KeyRulesAreEnforced) {
  EXPECT_THROW(Key::from_der("garbage"), std::runtime_error);
  EXPECT_THROW(Key::from_der(ec_key().to_der() + "x"), std::runtime_error);
  EXPECT_THROW(Key::generate(KeyType::rsa, 1024), std::runtime_error);
  EXPECT_THROW(Key::adopt(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")), std::runtime_error);
  EXPECT_THROW(Key::adopt(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")), std::runtime_error);
  EXPECT_THROW(Key::adopt(nullptr), std::runtime_error);
  EXPECT_THROW(Key().jwk(), std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u);
}
