#include "cert_cache.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace portal {

namespace {

constexpr size_t kMaxReported = 1024;
constexpr size_t kMaxIntermediates = 64;  // distinct CA certificates remembered

}  // namespace

// What a cache miss costs is parsing, and OpenSSL 3.0 parses keys through its decoder
// framework, which looks every decoder up again at each d2i_AutoPrivateKey (about 460 us for
// a P-256 key here; 30 us through a decoder context made once per key type and reused).
// d2i_X509 has no such way around the decoding of the certificate's public key (about 240 us),
// so CA certificates, which many names share, are parsed once and shared.
class CertCache::Parser {
 public:
  ~Parser() {
    for (auto& d : decoders_) OSSL_DECODER_CTX_free(d.ctx);
    for (auto& [der, x] : intermediates_) X509_free(x);
  }

  EVP_PKEY* key(KeyType type, const std::string& der) {
    Decoder& d = decoders_[type == KeyType::rsa ? 1 : 0];
    if (!d.tried) {
      d.tried = true;
      d.ctx = OSSL_DECODER_CTX_new_for_pkey(&d.out, "DER", "PrivateKeyInfo",
                                            type == KeyType::rsa ? "RSA" : "EC",
                                            EVP_PKEY_KEYPAIR, nullptr, nullptr);
    }
    auto* p = reinterpret_cast<const unsigned char*>(der.data());
    if (d.ctx) {
      d.out = nullptr;
      size_t left = der.size();
      if (OSSL_DECODER_from_data(d.ctx, &p, &left) == 1 && left == 0 && d.out) return d.out;
      EVP_PKEY_free(d.out);
      d.out = nullptr;
      ERR_clear_error();
      p = reinterpret_cast<const unsigned char*>(der.data());
    }
    return d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));  // the long way
  }

  // A new reference to the parsed certificate; CA certificates are remembered.
  X509* cert(const std::string& der, bool intermediate) {
    if (intermediate) {
      auto it = intermediates_.find(der);
      if (it != intermediates_.end()) {
        X509_up_ref(it->second);
        return it->second;
      }
    }
    auto* p = reinterpret_cast<const unsigned char*>(der.data());
    const unsigned char* end = p + der.size();
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    if (!x || p != end) {
      X509_free(x);
      return nullptr;
    }
    if (intermediate && intermediates_.size() < kMaxIntermediates && X509_up_ref(x) == 1) {
      intermediates_.emplace(der, x);
    }
    return x;
  }

 private:
  struct Decoder {
    bool tried = false;
    OSSL_DECODER_CTX* ctx = nullptr;
    EVP_PKEY* out = nullptr;  // where the context puts what it decodes
  };
  Decoder decoders_[2];  // ecdsa, rsa
  std::unordered_map<std::string, X509*> intermediates_;
};

// A record parsed into OpenSSL objects; this cache holds one reference to each.
struct CertCache::Loaded {
  struct Pair {
    X509* leaf = nullptr;
    STACK_OF(X509)* chain = nullptr;  // intermediates, without the leaf
    EVP_PKEY* key = nullptr;
  };
  uint64_t generation = 0;
  uint64_t checked_txnid = 0;  // the store's transaction id when the record last matched
  std::vector<Pair> pairs;

  ~Loaded() {
    for (Pair& p : pairs) {
      X509_free(p.leaf);
      sk_X509_pop_free(p.chain, X509_free);
      EVP_PKEY_free(p.key);
    }
  }

  // False when any DER does not parse: the record is then treated as malformed.
  bool parse(const CertRecord& rec, Parser& parser) {
    generation = rec.generation;
    for (const CertPair& cp : rec.pairs) {
      Pair& p = pairs.emplace_back();
      if (cp.chain_der.empty()) return false;
      for (size_t i = 0; i < cp.chain_der.size(); i++) {
        X509* x = parser.cert(cp.chain_der[i], i > 0);
        if (!x) return false;
        if (i == 0) {
          p.leaf = x;
          p.chain = sk_X509_new_null();
          if (!p.chain) return false;
        } else if (!sk_X509_push(p.chain, x)) {
          X509_free(x);
          return false;
        }
      }
      p.key = parser.key(cp.type, cp.key_der);
      if (!p.key || X509_check_private_key(p.leaf, p.key) != 1) return false;
    }
    return !pairs.empty();
  }
};

CertCache::CertCache(const std::string& data_dir, size_t capacity)
    : reader_(data_dir), capacity_(capacity ? capacity : 1), parser_(std::make_unique<Parser>()) {}

CertCache::~CertCache() = default;

bool CertCache::has(std::string_view host) {
  return reader_.cert(host, [](std::string_view) {});
}

CertCache::Result CertCache::use(SSL* ssl, std::string_view host, bool* first_report) {
  Loaded* loaded = nullptr;
  uint64_t bad_generation = 0;
  bool malformed = false;

  key_.assign(host.data(), host.size());
  auto cached = map_.find(key_);
  if (cached != map_.end() && cached->second.first->checked_txnid == reader_.committed_txnid()) {
    lru_.splice(lru_.begin(), lru_, cached->second.second);  // nothing committed since
    return put_on(ssl, *cached->second.first);
  }

  bool found = reader_.cert(host, [&](std::string_view value) {
    uint64_t generation;
    if (!peek_generation(value, &generation)) {
      malformed = true;
      return;
    }
    auto it = cached;
    if (it != map_.end() && it->second.first->generation == generation) {
      lru_.splice(lru_.begin(), lru_, it->second.second);  // a hit parses nothing
      loaded = it->second.first.get();
      loaded->checked_txnid = reader_.last_txnid();
      return;
    }
    CertRecord rec;
    auto fresh = std::make_unique<Loaded>();
    if (!decode(value, &rec) || !fresh->parse(rec, *parser_)) {
      ERR_clear_error();
      malformed = true;
      bad_generation = generation;
      return;
    }
    fresh->checked_txnid = reader_.last_txnid();
    if (it != map_.end()) {  // a rotated certificate: the new one replaces the old
      it->second.first = std::move(fresh);
      lru_.splice(lru_.begin(), lru_, it->second.second);
      loaded = it->second.first.get();
      return;
    }
    if (map_.size() >= capacity_) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.emplace_front(host);
    loaded = fresh.get();
    map_.emplace(lru_.front(), std::make_pair(std::move(fresh), lru_.begin()));
  });

  if (!found) return Result::none;
  if (malformed) {
    bool first = false;
    auto rep = reported_.find(std::string(host));
    if (rep == reported_.end()) {
      first = reported_.size() < kMaxReported;
      if (first) reported_.emplace(host, bad_generation);
    } else if (rep->second != bad_generation) {
      first = true;
      rep->second = bad_generation;
    }
    if (first_report) *first_report = first;
    return Result::malformed;
  }

  return put_on(ssl, *loaded);
}

CertCache::Result CertCache::put_on(SSL* ssl, const Loaded& loaded) {
  // This name's pairs only: none of the server's own (fallback) certificates stays on.
  // One call per pair: SSL_use_certificate, SSL_use_PrivateKey and SSL_set1_chain would each
  // look the key type up again by name (OpenSSL 3.0), which is most of what a hit costs.
  SSL_certs_clear(ssl);
  for (const Loaded::Pair& p : loaded.pairs) {
    if (SSL_use_cert_and_key(ssl, p.leaf, p.key, p.chain, 1) != 1) {
      ERR_clear_error();
      throw std::runtime_error("cannot use the certificate on the connection");
    }
  }
  return Result::used;
}

}  // namespace portal
