#include "pem.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
#include <ctime>
#include <memory>
#include <vector>

#include "../util/text.h"
#include "ossl.h"

namespace portal {

namespace {

using namespace portal::ossl;

// Leaves OpenSSL's error queue empty on every way out, so no reason lingers for the next
// caller (nginx logs whatever it finds there).
struct ClearErrors {
  ClearErrors() { ERR_clear_error(); }
  ~ClearErrors() { ERR_clear_error(); }
};

// Never prompt on the terminal for a passphrase: an encrypted key is refused.
int no_password(char*, int, int, void*) { return -1; }

bool fail(std::string* why, const std::string& name, const std::string& problem) {
  if (why) *why = name + ": " + problem;
  return false;
}

// The reason of the newest queued error. Only ever used for certificate (public) data.
std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  if (!e) return "unknown error";
  if (const char* r = ERR_reason_error_string(e)) return r;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool no_start_line(unsigned long e) {
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

BioPtr memory_bio(std::string_view data) {
  if (data.size() > INT_MAX) return nullptr;
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

bool unix_time(const ASN1_TIME* t, int64_t* out) {
  struct tm tm = {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
  *out = static_cast<int64_t>(timegm(&tm));
  return true;
}

std::string iso_time(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  char buf[32];
  if (!gmtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return std::to_string(t);
  return buf;
}

// Printable ASCII as it is; anything else (a name is attacker-chosen) as \xNN.
std::string printable(const unsigned char* s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c > 0x20 && c < 0x7f && c != ',' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string dns_names(X509* x) {
  NamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  std::string out;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); i++) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_DNS) continue;
    if (!out.empty()) out += ',';
    out += printable(ASN1_STRING_get0_data(gn->d.dNSName),
                     static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName)));
  }
  return out;
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : "";
}

std::string der_of(X509* x) {
  int n = i2d_X509(x, nullptr);
  if (n <= 0) return "";
  std::string der(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  return i2d_X509(x, &p) == n ? der : "";
}

// The private key as unencrypted PKCS #8 DER, written straight into the string.
bool pkcs8_of(EVP_PKEY* key, std::string* out) {
  P8Ptr p8(EVP_PKEY2PKCS8(key));
  if (!p8) return false;
  int n = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr);
  if (n <= 0) return false;
  out->assign(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out->data());
  return i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &p) == n;
}

bool read_chain(std::string_view pem, const std::string& name, std::vector<X509Ptr>* chain,
                std::string* why) {
  BioPtr bio = memory_bio(pem);
  if (!bio) return fail(why, name, "cannot read the file into memory");
  for (;;) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr);
    if (!x) break;
    chain->emplace_back(x);
    if (chain->size() > kMaxChain)
      return fail(why, name, "more than " + std::to_string(kMaxChain) + " certificates");
  }
  // The loop ends at the first thing that is not a certificate: the end of the text is fine,
  // anything else is a damaged certificate.
  unsigned long e = ERR_peek_last_error();
  if (chain->empty()) {
    if (!e || no_start_line(e))
      return fail(why, name, "no PEM certificate (\"-----BEGIN CERTIFICATE-----\") found");
    return fail(why, name, "cannot parse the certificate: " + openssl_reason());
  }
  if (e && !no_start_line(e)) {
    return fail(why, name, "cannot parse certificate " + std::to_string(chain->size() + 1) +
                               ": " + openssl_reason());
  }
  return true;
}

// Messages about the key are fixed texts: nothing read from the key file is ever quoted.
bool read_key(std::string_view pem, const std::string& name, PkeyPtr* key, std::string* why) {
  if (pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
      pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos)
    return fail(why, name, "the private key is encrypted: give it unencrypted");
  // "-----BEGIN PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----", ...
  size_t begin = pem.find("-----BEGIN ");
  while (begin != std::string_view::npos) {
    size_t end = pem.find("-----", begin + 11);
    if (end == std::string_view::npos) break;
    std::string_view label = pem.substr(begin + 11, end - begin - 11);
    if (label.size() >= 11 && label.substr(label.size() - 11) == "PRIVATE KEY") break;
    begin = pem.find("-----BEGIN ", end + 5);
  }
  if (begin == std::string_view::npos) return fail(why, name, "no PEM private key found");
  BioPtr bio = memory_bio(pem);
  if (!bio) return fail(why, name, "cannot read the file into memory");
  key->reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (!*key) return fail(why, name, "cannot parse the private key");
  return true;
}

bool check_key_type(EVP_PKEY* key, const std::string& name, KeyType* type, std::string* why) {
  const char* rule = "only ECDSA P-256 or P-384 and RSA of 2048 bits or more are accepted";
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char curve[80] = "";
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, curve, sizeof curve, &len) != 1)
        return fail(why, name, std::string("ECDSA key on an unnamed curve: ") + rule);
      int nid = OBJ_sn2nid(curve);
      if (nid == NID_undef) nid = EC_curve_nist2nid(curve);
      if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1)
        return fail(why, name, "ECDSA key on curve " + std::string(curve) + ": " + rule);
      *type = KeyType::ecdsa;
      return true;
    }
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits < 2048)
        return fail(why, name, "RSA key of " + std::to_string(bits) + " bits: " + rule);
      *type = KeyType::rsa;
      return true;
    }
    default: {
      const char* kind = EVP_PKEY_get0_type_name(key);
      return fail(why, name, std::string(kind ? kind : "unknown") + " key: " + rule);
    }
  }
}

}  // namespace

bool load_pair(std::string_view host, std::string_view cert_pem, std::string_view key_pem,
               const std::string& cert_name, const std::string& key_name, CertPair* out,
               std::string* why) {
  ClearErrors clear;
  std::vector<X509Ptr> chain;
  if (!read_chain(cert_pem, cert_name, &chain, why)) return false;
  X509* leaf = chain.front().get();
  PkeyPtr key;
  if (!read_key(key_pem, key_name, &key, why)) return false;

  EVP_PKEY* leaf_key = X509_get0_pubkey(leaf);
  if (!leaf_key)
    return fail(why, cert_name, "cannot read the public key of the certificate: " +
                                    openssl_reason());
  if (EVP_PKEY_eq(leaf_key, key.get()) != 1) {
    return fail(why, key_name,
                "the private key does not match the certificate (the first one in " +
                    cert_name + ")");
  }
  CertPair pair;
  if (!check_key_type(key.get(), key_name, &pair.type, why)) return false;

  unsigned flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  if (X509_check_host(leaf, host.data(), host.size(), flags, nullptr) != 1) {
    std::string names = dns_names(leaf);
    return fail(why, cert_name,
                "the certificate does not cover " + quoted(host) + " (its DNS names: " +
                    (names.empty() ? "none" : names) + ")");
  }

  if (!unix_time(X509_get0_notBefore(leaf), &pair.not_before) ||
      !unix_time(X509_get0_notAfter(leaf), &pair.not_after))
    return fail(why, cert_name, "cannot read the validity period of the certificate");
  int64_t now = std::time(nullptr);
  if (now < pair.not_before) {
    return fail(why, cert_name,
                "the certificate is not valid yet (not before " + iso_time(pair.not_before) + ")");
  }
  if (now > pair.not_after) {
    return fail(why, cert_name,
                "the certificate has expired (not after " + iso_time(pair.not_after) + ")");
  }
  if (pair.not_before < 0) pair.not_before = 0;  // the record keeps times from 1970 on

  for (const X509Ptr& x : chain) {
    pair.chain_der.push_back(der_of(x.get()));
    if (pair.chain_der.back().empty())
      return fail(why, cert_name, "cannot encode the certificate: " + openssl_reason());
  }
  if (!pkcs8_of(key.get(), &pair.key_der)) return fail(why, key_name, "cannot encode the key");
  *out = std::move(pair);
  return true;
}

bool describe(const CertPair& pair, CertInfo* out, std::string* why) {
  ClearErrors clear;
  if (pair.chain_der.empty()) {
    if (why) *why = "no certificate in the pair";
    return false;
  }
  const std::string& der = pair.chain_der.front();
  auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x) {
    if (why) *why = "cannot parse the stored certificate: " + openssl_reason();
    return false;
  }
  CertInfo info;
  info.subject = name_text(X509_get_subject_name(x.get()));
  info.issuer = name_text(X509_get_issuer_name(x.get()));
  BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr));
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex) info.serial = hex;
    OPENSSL_free(hex);
  }
  info.sans = dns_names(x.get());
  if (!unix_time(X509_get0_notBefore(x.get()), &info.not_before) ||
      !unix_time(X509_get0_notAfter(x.get()), &info.not_after)) {
    if (why) *why = "cannot read the validity period of the stored certificate";
    return false;
  }
  *out = std::move(info);
  return true;
}

}  // namespace portal
