// The state store: an LMDB environment DIR/state holding what the certificate side owns:
// each portal domain's certificate record (domain/cert_record.h), and later the ACME
// account, orders and challenges. Its files are 0600 (they hold private keys) and owned
// like the data directory, so the nginx workers (its owner) can read them.
//
// Writers (portalctl, the ACME engine) use StateStore; each nginx worker reads through one
// StateReader (read-only, MDB_NOTLS, one read transaction renewed per lookup, reset after).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "../domain/cert_record.h"
#include "lmdb.h"

namespace portal {

constexpr const char* kStateDir = "state";

class StateTxn {
 public:
  StateTxn(lmdb::Txn& txn, MDB_dbi certs, MDB_dbi meta) : txn_(txn), certs_(certs), meta_(meta) {}

  std::optional<CertRecord> get_cert(std::string_view host) const;
  // Visits every record in hostname order; one that does not decode goes to bad, if given.
  void for_each_cert(const std::function<void(std::string_view host, const CertRecord&)>& fn,
                     const std::function<void(std::string_view host)>& bad = {}) const;
  // Writes the record with a new generation (unique in this store, never reused) and
  // returns it. Pairs are stored in key type order (ecdsa first). A record the encoding
  // refuses (no pair, two of one type, an empty chain or key) throws std::invalid_argument.
  uint64_t put_cert(std::string_view host, CertRecord record);
  bool remove_cert(std::string_view host);

 private:
  lmdb::Txn& txn_;
  MDB_dbi certs_;
  MDB_dbi meta_;
};

class StateStore {
 public:
  // Opens DATA_DIR/state, creating it (0700, files 0600, owned like DATA_DIR) with create.
  // initial_map (bytes) is for tests of map growth; 0 is the default, 1 GiB.
  StateStore(const std::string& data_dir, bool create, size_t initial_map = 0);
  static bool exists(const std::string& data_dir);

  // One write transaction, committed whole or not at all (see SnapshotStore::write).
  void write(const std::function<void(StateTxn&)>& fn);
  void read(const std::function<void(const StateTxn&)>& fn) const;

 private:
  std::string path_;
  lmdb::Env env_;
  MDB_dbi certs_ = 0;
  MDB_dbi meta_ = 0;
};

// The nginx worker's side, opened after fork.
class StateReader {
 public:
  explicit StateReader(const std::string& data_dir);
  ~StateReader();

  // On found, fn sees the encoded certificate record inside the read transaction; nothing
  // it sees may be kept after fn returns. Throws lmdb::Error.
  template <typename F>
  bool cert(std::string_view host, F&& fn) {
    begin();
    struct Reset {
      lmdb::Txn& txn;
      ~Reset() { txn.reset(); }
    } reset{txn_};
    std::string_view value;
    if (!txn_.get(certs_, host, &value)) return false;
    fn(value);
    return true;
  }

 private:
  void begin();

  lmdb::Env env_;
  lmdb::Txn txn_;
  MDB_dbi certs_ = 0;
  MDB_dbi meta_ = 0;
};

}  // namespace portal
