#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "tls/pem.h"

using namespace portal;

namespace {

constexpr long kDay = 86400;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

Key ec_key(const char* curve) { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }
Key rsa_key(size_t bits) { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)); }

// A certificate for key, signed by signer (itself when null), valid from now + from to
// now + to (seconds), with these DNS names ("" for no subjectAltName at all).
Cert make_cert(EVP_PKEY* key, const std::string& cn, const std::string& dns_names,
               long from = -kDay, long to = 90 * kDay, EVP_PKEY* signer = nullptr,
               X509* issuer = nullptr, bool ca = false) {
  static long serial = 0x1234560;
  Cert x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), from);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), to);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Portal Test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    EXPECT_NE(ext, nullptr) << value;
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  };
  if (!dns_names.empty()) add(NID_subject_alt_name, dns_names);
  if (ca) add(NID_basic_constraints, "critical,CA:TRUE");
  EXPECT_GT(X509_sign(x.get(), signer ? signer : key, EVP_sha256()), 0);
  return x;
}

std::string bio_text(BIO* bio) {
  char* data;
  long n = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

std::string pem_of(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  return bio_text(bio);
}

enum class KeyForm { pkcs8, traditional, encrypted };

std::string pem_of(EVP_PKEY* k, KeyForm form = KeyForm::pkcs8) {
  BIO* bio = BIO_new(BIO_s_mem());
  switch (form) {
    case KeyForm::pkcs8:
      PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
      break;
    case KeyForm::traditional:
      PEM_write_bio_PrivateKey_traditional(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
      break;
    case KeyForm::encrypted:
      PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                    const_cast<char*>("secret"));
      break;
  }
  return bio_text(bio);
}

class PemTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ec_ = ec_key("P-256").release();
    ec384_ = ec_key("P-384").release();
    rsa_ = rsa_key(2048).release();
    other_ec_ = ec_key("P-256").release();
  }
  static void TearDownTestSuite() {
    for (EVP_PKEY* k : {ec_, ec384_, rsa_, other_ec_}) EVP_PKEY_free(k);
  }
  void TearDown() override {
    EXPECT_EQ(ERR_peek_error(), 0u) << "the OpenSSL error queue was left with an error";
  }

  // Runs load_pair; a refusal must say why, without a trace of the key.
  bool load(const std::string& host, const std::string& cert_pem, const std::string& key_pem,
            CertPair* out = nullptr, std::string* why_out = nullptr) {
    CertPair pair;
    std::string why;
    bool ok = load_pair(host, cert_pem, key_pem, "cert.pem", "key.pem", &pair, &why);
    EXPECT_EQ(ERR_peek_error(), 0u) << "error queue not cleared";
    if (out) *out = pair;
    if (why_out) *why_out = why;
    if (!ok) {
      EXPECT_FALSE(why.empty());
      expect_no_key_material(why, key_pem);
    }
    return ok;
  }

  // Not a line of the key PEM given, nor any 16 characters of one, nor its label.
  static void expect_no_key_material(const std::string& why, const std::string& key_pem) {
    EXPECT_EQ(why.find("PRIVATE KEY"), std::string::npos) << why;
    size_t at = 0;
    while (at < key_pem.size()) {
      size_t nl = key_pem.find('\n', at);
      std::string line = key_pem.substr(at, nl == std::string::npos ? nl : nl - at);
      at = nl == std::string::npos ? key_pem.size() : nl + 1;
      if (line.size() < 16 || line.rfind("-----", 0) == 0) continue;
      for (size_t k = 0; k + 16 <= line.size(); k += 4)
        EXPECT_EQ(why.find(line.substr(k, 16)), std::string::npos) << "key material in: " << why;
    }
  }

  static EVP_PKEY* ec_;
  static EVP_PKEY* ec384_;
  static EVP_PKEY* rsa_;
  static EVP_PKEY* other_ec_;
};

EVP_PKEY* PemTest::ec_;
EVP_PKEY* PemTest::ec384_;
EVP_PKEY* PemTest::rsa_;
EVP_PKEY* PemTest::other_ec_;

Key key_of(const std::string& der) {
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return Key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
}

}  // namespace

TEST_F(PemTest, EcdsaP256) {
  Cert c = make_cert(ec_, "a.example", "DNS:a.example,DNS:www.a.example");
  CertPair pair;
  ASSERT_TRUE(load("a.example", pem_of(c.get()), pem_of(ec_), &pair));
  EXPECT_EQ(pair.type, KeyType::ecdsa);
  ASSERT_EQ(pair.chain_der.size(), 1u);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(pair.chain_der[0].data());
  Cert back(d2i_X509(nullptr, &p, static_cast<long>(pair.chain_der[0].size())));
  ASSERT_TRUE(back);
  EXPECT_EQ(X509_cmp(back.get(), c.get()), 0);
  // The key is stored as PKCS #8 DER (a SEQUENCE starting with version 0) and is the same key.
  ASSERT_GT(pair.key_der.size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>(pair.key_der[0]), 0x30);
  Key k = key_of(pair.key_der);
  ASSERT_TRUE(k);
  EXPECT_EQ(EVP_PKEY_eq(k.get(), ec_), 1);
  time_t now = std::time(nullptr);
  EXPECT_NEAR(static_cast<double>(pair.not_before), static_cast<double>(now - kDay), 5);
  EXPECT_NEAR(static_cast<double>(pair.not_after), static_cast<double>(now + 90 * kDay), 5);
  EXPECT_TRUE(load("www.a.example", pem_of(c.get()), pem_of(ec_)));
  EXPECT_TRUE(load("a.example", pem_of(c.get()), pem_of(ec_, KeyForm::traditional)))
      << "a \"BEGIN EC PRIVATE KEY\" key";
}

TEST_F(PemTest, EcdsaP384) {
  Cert c = make_cert(ec384_, "a.example", "DNS:a.example");
  CertPair pair;
  ASSERT_TRUE(load("a.example", pem_of(c.get()), pem_of(ec384_), &pair));
  EXPECT_EQ(pair.type, KeyType::ecdsa);
}

TEST_F(PemTest, Rsa2048) {
  Cert c = make_cert(rsa_, "a.example", "DNS:a.example");
  CertPair pair;
  ASSERT_TRUE(load("a.example", pem_of(c.get()), pem_of(rsa_), &pair));
  EXPECT_EQ(pair.type, KeyType::rsa);
  Key k = key_of(pair.key_der);
  ASSERT_TRUE(k);
  EXPECT_EQ(EVP_PKEY_eq(k.get(), rsa_), 1);
  ASSERT_TRUE(load("a.example", pem_of(c.get()), pem_of(rsa_, KeyForm::traditional), &pair))
      << "a \"BEGIN RSA PRIVATE KEY\" key";
  EXPECT_EQ(EVP_PKEY_eq(key_of(pair.key_der).get(), rsa_), 1);
}

TEST_F(PemTest, AChainLeafFirst) {
  Key ca_key = ec_key("P-256");
  Cert ca = make_cert(ca_key.get(), "Test CA", "", -kDay, 365 * kDay, nullptr, nullptr, true);
  Cert leaf = make_cert(ec_, "a.example", "DNS:a.example", -kDay, 90 * kDay, ca_key.get(),
                        ca.get());
  CertPair pair;
  ASSERT_TRUE(load("a.example", pem_of(leaf.get()) + "\n" + pem_of(ca.get()), pem_of(ec_), &pair));
  ASSERT_EQ(pair.chain_der.size(), 2u);

  CertInfo info;
  std::string why;
  ASSERT_TRUE(describe(pair, &info, &why)) << why;
  EXPECT_EQ(info.subject, "CN=a.example,O=Portal Test");
  EXPECT_EQ(info.issuer, "CN=Test CA,O=Portal Test");
  EXPECT_EQ(info.sans, "a.example");

  // The CA first is the CA's key against the leaf's: refused as a mismatch.
  std::string wrong = pem_of(ca.get()) + pem_of(leaf.get());
  EXPECT_FALSE(load("a.example", wrong, pem_of(ec_), nullptr, &why));
  EXPECT_NE(why.find("does not match"), std::string::npos) << why;
}

TEST_F(PemTest, AtMostEightCertificates) {
  Cert c = make_cert(ec_, "a.example", "DNS:a.example");
  std::string chain;
  for (size_t i = 0; i < kMaxChain; i++) chain += pem_of(c.get());
  EXPECT_TRUE(load("a.example", chain, pem_of(ec_)));
  std::string why;
  EXPECT_FALSE(load("a.example", chain + pem_of(c.get()), pem_of(ec_), nullptr, &why));
  EXPECT_EQ(why, "cert.pem: more than 8 certificates");
}

TEST_F(PemTest, KeyMismatch) {
  Cert c = make_cert(ec_, "a.example", "DNS:a.example");
  std::string why;
  EXPECT_FALSE(load("a.example", pem_of(c.get()), pem_of(other_ec_), nullptr, &why));
  EXPECT_EQ(why, "key.pem: the private key does not match the certificate (the first one in "
                 "cert.pem)");
  EXPECT_FALSE(load("a.example", pem_of(c.get()), pem_of(rsa_), nullptr, &why));
  EXPECT_NE(why.find("does not match"), std::string::npos);
}

TEST_F(PemTest, ExpiredAndNotYetValid) {
  Cert expired = make_cert(ec_, "a.example", "DNS:a.example", -90 * kDay, -kDay);
  std::string why;
  EXPECT_FALSE(load("a.example", pem_of(expired.get()), pem_of(ec_), nullptr, &why));
  EXPECT_EQ(why.rfind("cert.pem: the certificate has expired (not after ", 0), 0u) << why;
  Cert future = make_cert(ec_, "a.example", "DNS:a.example", kDay, 90 * kDay);
  EXPECT_FALSE(load("a.example", pem_of(future.get()), pem_of(ec_), nullptr, &why));
  EXPECT_EQ(why.rfind("cert.pem: the certificate is not valid yet (not before ", 0), 0u) << why;
}

TEST_F(PemTest, HostMustBeCovered) {
  Cert c = make_cert(ec_, "a.example", "DNS:a.example,DNS:b.example");
  std::string why;
  EXPECT_FALSE(load("c.example", pem_of(c.get()), pem_of(ec_), nullptr, &why));
  EXPECT_EQ(why, "cert.pem: the certificate does not cover \"c.example\" (its DNS names: "
                 "a.example,b.example)");
  EXPECT_FALSE(load("x.a.example", pem_of(c.get()), pem_of(ec_)));

  // The subject's CN counts for nothing (as for browsers): only subjectAltName does.
  Cert cn_only = make_cert(ec_, "a.example", "");
  EXPECT_FALSE(load("a.example", pem_of(cn_only.get()), pem_of(ec_), nullptr, &why));
  EXPECT_NE(why.find("(its DNS names: none)"), std::string::npos) << why;
}

TEST_F(PemTest, Wildcards) {
  Cert c = make_cert(ec_, "*.example.com", "DNS:*.example.com");
  std::string pem = pem_of(c.get()), key = pem_of(ec_);
  EXPECT_TRUE(load("a.example.com", pem, key));
  EXPECT_FALSE(load("a.b.example.com", pem, key)) << "a wildcard covers one label";
  EXPECT_FALSE(load("example.com", pem, key)) << "and not the parent name";

  Cert partial = make_cert(ec_, "a.example.com", "DNS:a*.example.com");
  EXPECT_FALSE(load("ab.example.com", pem_of(partial.get()), key)) << "no partial wildcards";
}

TEST_F(PemTest, GarbageIsRefused) {
  Cert c = make_cert(ec_, "a.example", "DNS:a.example");
  std::string cert = pem_of(c.get()), key = pem_of(ec_);
  std::string why;

  EXPECT_FALSE(load("a.example", "", key, nullptr, &why));
  EXPECT_EQ(why, "cert.pem: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") found");
  EXPECT_FALSE(load("a.example", "this is not PEM\n", key, nullptr, &why));
  EXPECT_EQ(why, "cert.pem: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") found");
  EXPECT_FALSE(load("a.example", key, key, nullptr, &why)) << "the key given as certificate";
  EXPECT_EQ(why, "cert.pem: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") found");

  std::string damaged = cert;
  damaged[damaged.size() / 2] = damaged[damaged.size() / 2] == 'A' ? 'B' : 'A';
  damaged.replace(40, 8, "!!!!!!!!");
  EXPECT_FALSE(load("a.example", damaged, key, nullptr, &why));
  EXPECT_EQ(why.rfind("cert.pem: cannot parse the certificate: ", 0), 0u) << why;
  EXPECT_FALSE(load("a.example", cert.substr(0, cert.size() / 2), key, nullptr, &why));
  EXPECT_EQ(why.rfind("cert.pem: cannot parse the certificate: ", 0), 0u) << why;
  EXPECT_FALSE(load("a.example", cert + cert.substr(0, cert.size() / 2), key, nullptr, &why));
  EXPECT_EQ(why.rfind("cert.pem: cannot parse certificate 2: ", 0), 0u) << why;

  EXPECT_FALSE(load("a.example", cert, "", nullptr, &why));
  EXPECT_EQ(why, "key.pem: no PEM private key found");
  EXPECT_FALSE(load("a.example", cert, cert, nullptr, &why)) << "the certificate given as key";
  EXPECT_EQ(why, "key.pem: no PEM private key found");
  std::string bad_key = key;
  bad_key.replace(40, 20, std::string(20, 'A'));
  EXPECT_FALSE(load("a.example", cert, bad_key, nullptr, &why));
  EXPECT_EQ(why, "key.pem: cannot parse the private key");
  EXPECT_FALSE(load("a.example", cert, key.substr(0, key.size() - 30), nullptr, &why));
  EXPECT_EQ(why, "key.pem: cannot parse the private key");
}

TEST_F(PemTest, EncryptedKeysAreRefusedWithoutAPrompt) {
  Cert c = make_cert(ec_, "a.example", "DNS:a.example");
  std::string why;
  EXPECT_FALSE(load("a.example", pem_of(c.get()), pem_of(ec_, KeyForm::encrypted), nullptr, &why));
  EXPECT_EQ(why, "key.pem: the private key is encrypted: give it unencrypted");
}

TEST_F(PemTest, WeakOrOtherKeysAreRefused) {
  Key rsa1024 = rsa_key(1024);
  Cert c = make_cert(rsa1024.get(), "a.example", "DNS:a.example");
  std::string why;
  EXPECT_FALSE(load("a.example", pem_of(c.get()), pem_of(rsa1024.get()), nullptr, &why));
  EXPECT_EQ(why, "key.pem: RSA key of 1024 bits: only ECDSA P-256 or P-384 and RSA of 2048 bits "
                 "or more are accepted");

  Key p521 = ec_key("P-521");
  Cert c521 = make_cert(p521.get(), "a.example", "DNS:a.example");
  EXPECT_FALSE(load("a.example", pem_of(c521.get()), pem_of(p521.get()), nullptr, &why));
  EXPECT_EQ(why.rfind("key.pem: ECDSA key on curve secp521r1: only", 0), 0u) << why;

  Key ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  Cert ced(X509_new());
  {  // Ed25519 signs without a digest: built by hand.
    X509_set_version(ced.get(), 2);
    X509_gmtime_adj(X509_getm_notBefore(ced.get()), -kDay);
    X509_gmtime_adj(X509_getm_notAfter(ced.get()), kDay);
    X509_set_pubkey(ced.get(), ed.get());
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ced.get(), ced.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:a.example");
    X509_add_ext(ced.get(), ext, -1);
    X509_EXTENSION_free(ext);
    ASSERT_GT(X509_sign(ced.get(), ed.get(), nullptr), 0);
  }
  EXPECT_FALSE(load("a.example", pem_of(ced.get()), pem_of(ed.get()), nullptr, &why));
  EXPECT_EQ(why.rfind("key.pem: ED25519 key: only", 0), 0u) << why;
}

TEST_F(PemTest, Describe) {
  Cert c = make_cert(rsa_, "a.example", "DNS:a.example,DNS:*.a.example");
  CertPair pair;
  ASSERT_TRUE(load("a.example", pem_of(c.get()), pem_of(rsa_), &pair));
  CertInfo info;
  std::string why;
  ASSERT_TRUE(describe(pair, &info, &why)) << why;
  EXPECT_EQ(info.subject, "CN=a.example,O=Portal Test");
  EXPECT_EQ(info.issuer, info.subject);
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c.get()), nullptr);
  char* hex = BN_bn2hex(bn);
  EXPECT_EQ(info.serial, hex);
  OPENSSL_free(hex);
  BN_free(bn);
  EXPECT_EQ(info.sans, "a.example,*.a.example");
  EXPECT_EQ(info.not_before, pair.not_before);
  EXPECT_EQ(info.not_after, pair.not_after);

  CertPair broken = pair;
  broken.chain_der[0] = "not DER";
  EXPECT_FALSE(describe(broken, &info, &why));
  EXPECT_EQ(why.rfind("cannot parse the stored certificate", 0), 0u) << why;
  broken.chain_der.clear();
  EXPECT_FALSE(describe(broken, &info, &why));
}
