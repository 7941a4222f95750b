// A worker's certificates for the TLS handshake: per SNI name, the parsed certificate,
// chain and key of each key type, kept in a bounded LRU cache, so that a cached name parses
// nothing and a rotated certificate is served from the next handshake on. An entry is
// checked against the state store's record (its generation number) only when the store has
// had a commit since the last check (LMDB's last transaction id, read without a
// transaction): a handshake for a cached name in a quiet store reads nothing from LMDB.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../store/state.h"

namespace portal {

class CertCache {
 public:
  CertCache(const std::string& data_dir, size_t capacity);
  ~CertCache();

  enum class Result { used, none, malformed };

  // Puts host's pairs on ssl in place of the server's own certificates; none: no record,
  // ssl unchanged; malformed: a record that does not parse, ssl unchanged (first_report is
  // set the first time for this host, so the caller logs once). Throws on LMDB errors.
  Result use(SSL* ssl, std::string_view host, bool* first_report);
  // Whether host has a certificate record (no parsing).
  bool has(std::string_view host);

  size_t size() const { return map_.size(); }

 private:
  struct Loaded;
  class Parser;
  using Lru = std::list<std::string>;

  Result put_on(SSL* ssl, const Loaded& loaded);

  StateReader reader_;
  size_t capacity_;
  std::string key_;  // the host being looked up, in a buffer that is reused
  Lru lru_;  // most recent first
  std::unordered_map<std::string, std::pair<std::unique_ptr<Loaded>, Lru::iterator>> map_;
  std::unordered_map<std::string, uint64_t> reported_;  // host -> generation logged bad
  std::unique_ptr<Parser> parser_;
};

}  // namespace portal
