// The TLS benchmark's certificates, fast (the openssl CLI takes ~60 ms a certificate):
//   tls-certs DIR NAMES [KEYS]
// DIR/ca.crt, DIR/ca.key     a test root CA (ECDSA P-256)
// DIR/int.crt                an intermediate CA it signs, which signs every leaf
// DIR/leaf.key               ONE ECDSA P-256 key (PKCS#8 PEM) shared by every leaf: the
//                            handshake costs the same with one key per name, and keys
//                            are the slow part to make
// DIR/certs/NAME.crt         per line of NAMES: leaf (CN and SAN = NAME) + intermediate
// DIR/certs/NAME.key         for the first KEYS names (0): a copy of leaf.key each, for
//                            nginx's "ssl_certificate_key .../$ssl_server_name.key"
// DIR/static.crt             a leaf for "static.bench.example" + intermediate
// Leaves are valid from a day ago for 90 days. Exit 1 on any failure.
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "tls-certs: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

EVP_PKEY* new_key() {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (!k) fail("cannot make an ECDSA P-256 key");
  return k;
}

void add_ext(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!e || !X509_add_ext(x, e, -1)) fail("cannot add an extension");
  X509_EXTENSION_free(e);
}

// A certificate for key, named cn, signed by issuer_key (self-signed when issuer is null).
// same: extensions made once and copied into every leaf (all leaves share key and issuer).
X509* make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                long serial, bool ca, STACK_OF(X509_EXTENSION)* same = nullptr) {
  X509* x = X509_new();
  if (!x) fail("X509_new");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400L);
  X509_gmtime_adj(X509_getm_notAfter(x), 90L * 86400L);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(x, key);
  X509* signer = issuer ? issuer : x;
  if (ca) {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else if (same) {
    for (int i = 0; i < sk_X509_EXTENSION_num(same); i++)
      if (!X509_add_ext(x, sk_X509_EXTENSION_value(same, i), -1)) fail("X509_add_ext");
  } else {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage, "critical,digitalSignature");
    add_ext(x, signer, NID_ext_key_usage, "serverAuth");
  }
  if (!ca) add_ext(x, signer, NID_subject_alt_name, ("DNS:" + cn).c_str());
  if (!same) {
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, signer, NID_authority_key_identifier, "keyid");
  }
  if (!X509_sign(x, issuer_key, EVP_sha256())) fail("cannot sign " + cn);
  return x;
}

std::string pem_cert(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  if (!b || !PEM_write_bio_X509(b, x)) fail("PEM_write_bio_X509");
  char* p;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, n);
  BIO_free(b);
  return s;
}

std::string pem_key(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  if (!b || !PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr))
    fail("PEM_write_bio_PrivateKey");
  char* p;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, n);
  BIO_free(b);
  return s;
}

void write_file(const std::string& path, const std::string& data, mode_t mode) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f || std::fwrite(data.data(), 1, data.size(), f) != data.size() || std::fclose(f))
    fail("cannot write " + path);
  chmod(path.c_str(), mode);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: tls-certs DIR NAMES [KEYS]\n");
    return 2;
  }
  std::string dir = argv[1];
  long keys = argc == 4 ? std::atol(argv[3]) : 0;
  std::ifstream names(argv[2]);
  if (!names) fail(std::string("cannot read ") + argv[2]);
  mkdir((dir + "/certs").c_str(), 0755);

  EVP_PKEY* ca_key = new_key();
  X509* ca = make_cert("Portal Bench Root CA", ca_key, nullptr, ca_key, 1, true);
  EVP_PKEY* int_key = new_key();
  X509* inter = make_cert("Portal Bench Intermediate CA", int_key, ca, ca_key, 2, true);
  EVP_PKEY* leaf_key = new_key();
  std::string inter_pem = pem_cert(inter), key_pem = pem_key(leaf_key);
  write_file(dir + "/ca.crt", pem_cert(ca), 0644);
  write_file(dir + "/ca.key", pem_key(ca_key), 0600);
  write_file(dir + "/int.crt", inter_pem, 0644);
  write_file(dir + "/leaf.key", key_pem, 0644);  // a throwaway test key the workers read

  long serial = 1000;
  X509* st = make_cert("static.bench.example", leaf_key, inter, int_key, serial++, false);
  STACK_OF(X509_EXTENSION)* same = sk_X509_EXTENSION_new_null();
  for (int i = 0; i < X509_get_ext_count(st); i++) {
    X509_EXTENSION* e = X509_get_ext(st, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name)
      sk_X509_EXTENSION_push(same, e);
  }
  write_file(dir + "/static.crt", pem_cert(st) + inter_pem, 0644);

  std::string name;
  while (std::getline(names, name)) {
    if (name.empty()) continue;
    X509* x = make_cert(name, leaf_key, inter, int_key, serial++, false, same);
    write_file(dir + "/certs/" + name + ".crt", pem_cert(x) + inter_pem, 0644);
    if (keys-- > 0) write_file(dir + "/certs/" + name + ".key", key_pem, 0644);
    X509_free(x);
  }
  sk_X509_EXTENSION_free(same);  // the extensions belong to st
  X509_free(st);
  X509_free(ca);
  X509_free(inter);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(int_key);
  EVP_PKEY_free(leaf_key);
  return 0;
}
