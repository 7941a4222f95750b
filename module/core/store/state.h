// The state store: an LMDB environment DIR/state holding what the certificate side owns:
// each portal domain's certificate record (domain/cert_record.h), and the ACME engine's
// tables: its account, orders in progress, HTTP-01 challenges, each domain's lifecycle
// status, and requests from portalctl (a forced renewal). Its files are 0600 (they hold private keys) and owned
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
#include "store_env.h"

namespace portal {

constexpr const char* kStateDir = "state";

// The ACME engine's tables: values are its own (JSON text; a challenge's value is the key
// authorization itself, which the workers serve as it is).
enum class StateTable { acme, orders, challenges, status, requests };
constexpr int kStateTables = 5;

struct StateDbs {
  MDB_dbi certs = 0, meta = 0;
  MDB_dbi tables[kStateTables] = {};
};

class StateTxn {
 public:
  StateTxn(lmdb::Txn& txn, const StateDbs& dbs)
      : txn_(txn), certs_(dbs.certs), meta_(dbs.meta), dbs_(dbs) {}

  std::optional<CertRecord> get_cert(std::string_view host) const;
  // Visits every record in hostname order; one that does not decode goes to bad, if given.
  void for_each_cert(const std::function<void(std::string_view host, const CertRecord&)>& fn,
                     const std::function<void(std::string_view host)>& bad = {}) const;
  // Writes the record with a new generation (unique in this store, never reused) and
  // returns it. Pairs are stored in key type order (ecdsa first). A record the encoding
  // refuses (no pair, two of one type, an empty chain or key) throws std::invalid_argument.
  uint64_t put_cert(std::string_view host, CertRecord record);
  bool remove_cert(std::string_view host);

  std::optional<std::string> get(StateTable t, std::string_view key) const;
  void put(StateTable t, std::string_view key, std::string_view value);
  bool remove(StateTable t, std::string_view key);
  void for_each(StateTable t,
                const std::function<void(std::string_view key, std::string_view value)>& fn) const;

 private:
  MDB_dbi dbi(StateTable t) const { return dbs_.tables[static_cast<int>(t)]; }

  lmdb::Txn& txn_;
  MDB_dbi certs_;
  MDB_dbi meta_;
  const StateDbs& dbs_;
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
  // The newest committed transaction id: a cheap "has anything changed?".
  uint64_t committed_txnid() const;

 private:
  std::string path_;
  EnvPtr env_;
  StateDbs dbs_;
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
    txnid_ = mdb_txn_id(txn_.get());
    std::string_view value;
    if (!txn_.get(dbs_.certs, host, &value)) return false;
    fn(value);
    return true;
  }

  // The transaction id the last cert() read, and the newest one committed (from the meta
  // pages, without a transaction): equal, nothing has changed since.
  uint64_t last_txnid() const { return txnid_; }
  uint64_t committed_txnid() const { return env_->last_txnid(); }

  // The key authorization of an HTTP-01 token, copied: nullopt when unknown.
  std::optional<std::string> challenge(std::string_view token);
  // A table's value, copied.
  std::optional<std::string> get(StateTable t, std::string_view key);
  // Visits a table inside one read transaction; nothing seen may be kept.
  void for_each(StateTable t,
                const std::function<void(std::string_view key, std::string_view value)>& fn);
  std::optional<CertRecord> get_cert(std::string_view host);

 private:
  void begin();

  EnvPtr env_;
  lmdb::Txn txn_;
  StateDbs dbs_;
  uint64_t txnid_ = 0;
};

}  // namespace portal
