#include "crypto.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstring>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <utility>

#include "../tls/ossl.h"

namespace portal::acme {

namespace {

using namespace portal::ossl;

constexpr size_t kP256Bytes = 32;

// The message names the step only: OpenSSL's own reasons could echo input we were given.
[[noreturn]] void fail(const std::string& what) {
  ERR_clear_error();
  throw std::runtime_error("acme crypto: " + what);
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

long checked_len(std::string_view s, const char* what) {
  if (s.size() > static_cast<size_t>(LONG_MAX) / 2) fail(std::string(what) + " too large");
  return static_cast<long>(s.size());
}

// i2d_* in two calls (size, then bytes), as every OpenSSL DER writer works.
template <typename T, int (*I2d)(const T*, unsigned char**)>
std::string to_der_of(const T* obj, const char* what) {
  int n = I2d(obj, nullptr);
  if (n <= 0) fail(std::string("cannot encode ") + what);
  std::string out(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if (I2d(obj, &p) != n) fail(std::string("cannot encode ") + what);
  return out;
}

X509Ptr parse_cert(std::string_view der) {
  const unsigned char* p = bytes(der);
  long len = checked_len(der, "certificate");
  X509Ptr x(d2i_X509(nullptr, &p, len));
  if (!x || p != bytes(der) + der.size()) fail("certificate does not parse");
  return x;
}

std::string bn_bytes(const BIGNUM* n, size_t pad) {
  size_t len = pad ? pad : static_cast<size_t>(BN_num_bytes(n));
  std::string out(len, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  int got = pad ? BN_bn2binpad(n, p, static_cast<int>(pad)) : BN_bn2bin(n, p);
  if (got < 0 || static_cast<size_t>(got) != len) fail("cannot encode a key component");
  return out;
}

std::string key_param(const EVP_PKEY* pkey, const char* name, size_t pad) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1 || !raw) fail("cannot read the public key");
  BnPtr n(raw);
  return bn_bytes(n.get(), pad);
}

// What this client signs with: ES256 needs P-256; RS256 keys below 2048 bits are refused by CAs.
void check_supported(const EVP_PKEY* pkey) {
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_EC: {
      char group[64];
      size_t len = 0;
      if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) != 1) fail("EC key without a curve");
      if (OBJ_sn2nid(group) != NID_X9_62_prime256v1 && EC_curve_nist2nid(group) != NID_X9_62_prime256v1)
        fail("EC key is not on P-256");
      return;
    }
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(pkey);
      if (bits < 2048 || bits > 4096) fail("RSA key size is not between 2048 and 4096 bits");
      return;
    }
    default:
      fail("key is neither ECDSA nor RSA");
  }
}

std::string json_string(std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string flattened(std::string_view prot64, std::string_view payload64, std::string_view sig) {
  std::string out = "{\"protected\":\"";
  out.append(prot64).append("\",\"payload\":\"").append(payload64);
  out.append("\",\"signature\":\"").append(b64url(sig)).append("\"}");
  return out;
}

int64_t unix_time(const ASN1_TIME* t) {
  struct tm tm = {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) fail("certificate validity does not parse");
  return static_cast<int64_t>(timegm(&tm));
}

std::string asn1_utf8(const ASN1_STRING* s) {
  unsigned char* raw = nullptr;
  int n = ASN1_STRING_to_UTF8(&raw, s);
  if (n < 0) fail("certificate name does not parse");
  BytesPtr owned(raw);
  return std::string(reinterpret_cast<const char*>(raw), static_cast<size_t>(n));
}

std::string issuer_name(const X509* x) {
  const X509_NAME* issuer = X509_get_issuer_name(x);
  int i = X509_NAME_get_index_by_NID(issuer, NID_commonName, -1);
  if (i >= 0) return asn1_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(issuer, i)));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), issuer, 0, XN_FLAG_RFC2253) < 0)
    fail("cannot print the issuer");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len > 0 ? static_cast<size_t>(len) : 0);
}

std::vector<std::string> dns_names(const X509* x) {
  int crit = 0;
  NamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, &crit, nullptr)));
  // -1 is "absent"; anything else without a result is a duplicate or unparsable extension.
  if (!names && crit != -1) fail("certificate subjectAltName does not parse");
  std::vector<std::string> out;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); i++) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    if (g->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = g->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

// RFC 9773 §4.1: the serial is its DER INTEGER's content octets (sign byte included).
std::string serial_content(const X509* x) {
  std::string der = to_der_of<ASN1_INTEGER, i2d_ASN1_INTEGER>(X509_get0_serialNumber(x), "serial");
  if (der.size() < 3 || der[0] != V_ASN1_INTEGER) fail("certificate serial does not parse");
  auto first = static_cast<unsigned char>(der[1]);
  size_t header = first < 0x80 ? 2 : 2 + (first & 0x7f);
  if (header >= der.size()) fail("certificate serial does not parse");
  return der.substr(header);
}

std::string ari_id(const X509* x) {
  int crit = 0;
  AkidPtr akid(static_cast<AUTHORITY_KEYID*>(
      X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, nullptr)));
  if (!akid && crit != -1) fail("certificate authorityKeyIdentifier does not parse");
  if (!akid || !akid->keyid) return "";
  std::string_view keyid(reinterpret_cast<const char*>(ASN1_STRING_get0_data(akid->keyid)),
                         static_cast<size_t>(ASN1_STRING_length(akid->keyid)));
  return b64url(keyid) + "." + b64url(serial_content(x));
}

void add_san(X509_REQ* req, const std::vector<std::string>& names) {
  NamesPtr gens(GENERAL_NAMES_new());
  if (!gens) fail("out of memory");
  for (const std::string& n : names) {
    GENERAL_NAME* g = GENERAL_NAME_new();
    if (!g) fail("out of memory");
    if (sk_GENERAL_NAME_push(gens.get(), g) <= 0) {
      GENERAL_NAME_free(g);
      fail("out of memory");
    }
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (!s) fail("out of memory");
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    if (ASN1_STRING_set(s, n.data(), static_cast<int>(n.size())) != 1) fail("out of memory");
  }
  ExtsPtr exts(sk_X509_EXTENSION_new_null());
  ExtPtr ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, gens.get()));
  if (!exts || !ext || sk_X509_EXTENSION_push(exts.get(), ext.get()) <= 0)
    fail("cannot build the subjectAltName");
  ext.release();  // now owned by exts
  if (X509_REQ_add_extensions(req, exts.get()) != 1) fail("cannot add the subjectAltName");
}

}  // namespace

std::string b64url(std::string_view in) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                 static_cast<uint8_t>(in[i + 2]);
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += abc[v & 63];
  }
  if (size_t rest = in.size() - i) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += abc[v >> 18];
    out += abc[(v >> 12) & 63];
    if (rest == 2) out += abc[(v >> 6) & 63];
  }
  return out;
}

namespace {
int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}
}  // namespace

bool b64url_decode(std::string_view text, std::string* out) {
  // One leftover character carries fewer than 8 bits: no encoder produces that.
  if (text.size() % 4 == 1) return false;
  std::string res;
  res.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64url_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      res += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Non-zero unused bits mean a second spelling of the same bytes: refused as not canonical.
  if (acc & ((1u << bits) - 1)) return false;
  if (out) *out = std::move(res);
  return true;
}

bool is_b64url_token(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (b64url_value(c) < 0) return false;
  return true;
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != 32)
    fail("SHA-256 failed");
  return std::string(reinterpret_cast<char*>(md), len);
}

Key::Key(Key&& o) noexcept : pkey_(std::exchange(o.pkey_, nullptr)) {}

Key& Key::operator=(Key&& o) noexcept {
  if (this != &o) {
    EVP_PKEY_free(pkey_);
    pkey_ = std::exchange(o.pkey_, nullptr);
  }
  return *this;
}

Key::~Key() { EVP_PKEY_free(pkey_); }

Key Key::generate(KeyType type, int bits) {
  PkeyPtr p;
  if (type == KeyType::ecdsa) {
    p.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  } else if (type == KeyType::rsa) {
    if (bits != 2048 && bits != 3072 && bits != 4096) fail("RSA key size must be 2048, 3072 or 4096");
    p.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  } else {
    fail("unknown key type");
  }
  if (!p) fail("key generation failed");
  return Key(p.release());
}

Key Key::from_der(std::string_view der) {
  const unsigned char* p = bytes(der);
  long len = checked_len(der, "private key");
  P8Ptr p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, len));
  if (!p8 || p != bytes(der) + der.size()) fail("private key is not PKCS #8 DER");
  PkeyPtr pkey(EVP_PKCS82PKEY(p8.get()));
  if (!pkey) fail("private key does not parse");
  return adopt(pkey.release());
}

Key Key::adopt(EVP_PKEY* pkey) {
  PkeyPtr owned(pkey);
  if (!owned) fail("no key");
  check_supported(owned.get());
  return Key(owned.release());
}

std::string Key::to_der() const {
  if (!pkey_) fail("no key");
  P8Ptr p8(EVP_PKEY2PKCS8(pkey_));
  if (!p8) fail("cannot encode the private key");
  return to_der_of<PKCS8_PRIV_KEY_INFO, i2d_PKCS8_PRIV_KEY_INFO>(p8.get(), "private key");
}

KeyType Key::type() const {
  if (!pkey_) fail("no key");
  return EVP_PKEY_get_base_id(pkey_) == EVP_PKEY_EC ? KeyType::ecdsa : KeyType::rsa;
}

std::string Key::jwk() const {
  if (type() == KeyType::ecdsa) {
    std::string x = key_param(pkey_, OSSL_PKEY_PARAM_EC_PUB_X, kP256Bytes);
    std::string y = key_param(pkey_, OSSL_PKEY_PARAM_EC_PUB_Y, kP256Bytes);
    return "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + b64url(x) + "\",\"y\":\"" + b64url(y) + "\"}";
  }
  std::string n = key_param(pkey_, OSSL_PKEY_PARAM_RSA_N, 0);
  std::string e = key_param(pkey_, OSSL_PKEY_PARAM_RSA_E, 0);
  return "{\"e\":\"" + b64url(e) + "\",\"kty\":\"RSA\",\"n\":\"" + b64url(n) + "\"}";
}

std::string Key::thumbprint() const { return b64url(sha256(jwk())); }

std::string Key::jws_alg() const { return type() == KeyType::ecdsa ? "ES256" : "RS256"; }

std::string Key::sign(std::string_view data) const {
  KeyType t = type();
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pkey_, nullptr) != 1)
    fail("cannot start signing");
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, bytes(data), data.size()) != 1) fail("signing failed");
  std::string sig(len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sig.data());
  if (EVP_DigestSign(ctx.get(), out, &len, bytes(data), data.size()) != 1) fail("signing failed");
  sig.resize(len);
  if (t == KeyType::rsa) return sig;
  // JWS wants the fixed-size R||S (RFC 7518 §3.4), OpenSSL gives an ASN.1 ECDSA-Sig-Value.
  const unsigned char* p = bytes(sig);
  SigPtr ec(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!ec) fail("signing failed");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(ec.get(), &r, &s);
  return bn_bytes(r, kP256Bytes) + bn_bytes(s, kP256Bytes);
}

std::string jws_sign(const Key& key, std::string_view protected_json, std::string_view payload) {
  std::string prot64 = b64url(protected_json);
  std::string payload64 = b64url(payload);
  return flattened(prot64, payload64, key.sign(prot64 + "." + payload64));
}

std::string eab_jws(const Key& account_key, std::string_view key_id, std::string_view hmac_key,
                    std::string_view new_account_url) {
  if (hmac_key.empty()) fail("external account binding HMAC key is empty");
  std::string prot = "{\"alg\":\"HS256\",\"kid\":" + json_string(key_id) +
                     ",\"url\":" + json_string(new_account_url) + "}";
  std::string prot64 = b64url(prot);
  std::string payload64 = b64url(account_key.jwk());
  std::string input = prot64 + "." + payload64;

  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  MacCtxPtr ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), bytes(hmac_key), hmac_key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), bytes(input), input.size()) != 1)
    fail("HMAC-SHA256 failed");
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out, &len, sizeof out) != 1) fail("HMAC-SHA256 failed");
  return flattened(prot64, payload64, std::string(reinterpret_cast<char*>(out), len));
}

std::string make_csr(const Key& key, const std::vector<std::string>& names) {
  if (!key) fail("no key");
  if (names.empty()) fail("CSR without names");
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 253) fail("CSR name is empty or too long");
    for (unsigned char c : n)
      if (c <= 0x20 || c >= 0x7f) fail("CSR name is not printable ASCII");
  }
  ReqPtr req(X509_REQ_new());
  NamePtr subject(X509_NAME_new());
  if (!req || !subject || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1)
    fail("out of memory");
  // A CN holds at most 64 characters (RFC 5280 ub-common-name); longer names live in SAN only.
  const std::string& cn = names.front();
  if (cn.size() <= 64 &&
      X509_NAME_add_entry_by_NID(subject.get(), NID_commonName, MBSTRING_ASC, bytes(cn),
                                 static_cast<int>(cn.size()), -1, 0) != 1)
    fail("cannot set the CSR subject");
  if (X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1)
    fail("cannot build the CSR");
  add_san(req.get(), names);
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) fail("cannot sign the CSR");
  return to_der_of<X509_REQ, i2d_X509_REQ>(req.get(), "CSR");
}

std::vector<std::string> pem_chain_to_der(std::string_view pem) {
  if (pem.size() > INT_MAX) fail("certificate chain too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("out of memory");
  std::vector<std::string> out;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      unsigned long e = ERR_peek_last_error();
      bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
      ERR_clear_error();
      if (!end) fail("certificate chain PEM does not parse");
      break;
    }
    BytesPtr name_owned(reinterpret_cast<unsigned char*>(name));
    BytesPtr header_owned(reinterpret_cast<unsigned char*>(header));
    BytesPtr data_owned(data);
    if (std::strcmp(name, PEM_STRING_X509) != 0) fail("certificate chain holds a non-certificate block");
    std::string der(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
    parse_cert(der);
    out.push_back(std::move(der));
  }
  if (out.empty()) fail("certificate chain holds no certificate");
  return out;
}

CertFacts cert_facts(std::string_view der) {
  X509Ptr x = parse_cert(der);
  CertFacts f;
  f.not_before = unix_time(X509_get0_notBefore(x.get()));
  f.not_after = unix_time(X509_get0_notAfter(x.get()));
  f.issuer_cn = issuer_name(x.get());
  f.ari_id = ari_id(x.get());
  f.dns_names = dns_names(x.get());
  return f;
}

bool key_matches(const Key& key, std::string_view leaf_der) {
  if (!key) fail("no key");
  X509Ptr x = parse_cert(leaf_der);
  EVP_PKEY* pub = X509_get0_pubkey(x.get());
  if (!pub) fail("certificate public key does not parse");
  bool same = EVP_PKEY_eq(key.get(), pub) == 1;
  ERR_clear_error();  // a type mismatch leaves a reason behind; it is an answer, not an error
  return same;
}

}  // namespace portal::acme
