// The snapshot: an LMDB environment DIR/snapshot holding every portal domain, keyed by
// canonical hostname, plus a generation number bumped by every commit.
//
// portalctl writes it through SnapshotStore (one write transaction per command, all or
// nothing); each nginx worker reads it through SnapshotReader (one read transaction per
// worker, renewed per lookup and reset after it). LMDB's MVCC is the snapshot mechanism: a
// reader sees the data before or after a commit, never a mix, and nobody reloads anything.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "../domain/record.h"
#include "lmdb.h"
#include "store_env.h"

namespace portal {

constexpr const char* kSnapshotDir = "snapshot";

// Access to the snapshot inside one transaction (read-only or read-write).
class SnapshotTxn {
 public:
  SnapshotTxn(lmdb::Txn& txn, MDB_dbi domains, MDB_dbi meta)
      : txn_(txn), domains_(domains), meta_(meta) {}

  std::optional<Domain> get(std::string_view host) const;
  // Visits every domain in hostname order; a record that does not decode is passed to
  // bad (if given) and skipped.
  void for_each(const std::function<void(const Domain&)>& fn,
                const std::function<void(std::string_view host)>& bad = {}) const;
  size_t count() const;
  uint64_t generation() const;

  void put(const Domain& d);  // validates first; throws std::invalid_argument on a bad record
  // Like put, for a bulk load in key order into an empty database: MDB_APPEND fills every
  // page instead of splitting it in half. A host not after the last one throws lmdb::Error.
  void put_append(const Domain& d);
  bool remove(std::string_view host);
  void clear();

 private:
  lmdb::Txn& txn_;
  MDB_dbi domains_;
  MDB_dbi meta_;
};

class SnapshotStore {
 public:
  // Opens DATA_DIR/snapshot for reading and writing. With create, makes the directory and an
  // empty snapshot when missing; files it creates take the owner and group of DATA_DIR, so
  // that nginx workers running as that user can read them. Throws std::runtime_error.
  // initial_map (bytes) is for tests of map growth; 0 is the default, 1 GiB.
  SnapshotStore(const std::string& data_dir, bool create, size_t initial_map = 0);

  static bool exists(const std::string& data_dir);

  // Runs fn in one write transaction and commits it with the generation bumped: all of it is
  // visible at once, or nothing when fn throws. fn may run again if the map had to grow.
  void write(const std::function<void(SnapshotTxn&)>& fn);
  void read(const std::function<void(const SnapshotTxn&)>& fn) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  EnvPtr env_;
  MDB_dbi domains_ = 0;
  MDB_dbi meta_ = 0;
};

// The nginx worker's side: opened after fork, read-only, MDB_NOTLS.
class SnapshotReader {
 public:
  explicit SnapshotReader(const std::string& data_dir);
  ~SnapshotReader();

  enum class Result { found, not_found, malformed };

  // Looks host (canonical) up; on found, fn sees the record inside the read transaction, and
  // nothing it sees may be kept after fn returns. On malformed, *first_report is true the
  // first time this host is met malformed (so the caller logs once). Throws lmdb::Error.
  template <typename F>
  Result lookup(std::string_view host, F&& fn, bool* first_report = nullptr) {
    begin();
    struct Reset {
      lmdb::Txn& txn;
      ~Reset() { txn.reset(); }
    } reset{txn_};
    txnid_ = mdb_txn_id(txn_.get());
    std::string_view value;
    if (!txn_.get(domains_, host, &value)) return Result::not_found;
    DomainView view;
    if (!decode(value, &view)) {
      bool first = note_malformed(host);
      if (first_report) *first_report = first;
      return Result::malformed;
    }
    fn(view);
    return Result::found;
  }

  uint64_t generation();
  size_t count();
  // Visits every well-formed record in hostname order inside one read transaction (the ACME
  // engine's list of wanted names); nothing fn sees may be kept after it returns.
  void for_each(const std::function<void(std::string_view host, const DomainView&)>& fn);
  const std::string& path() const { return env_->path(); }

  // The LMDB transaction id the last lookup read, and the newest one committed (read from
  // the meta pages without a transaction: a cheap "has anything changed?").
  uint64_t last_txnid() const { return txnid_; }
  uint64_t committed_txnid() const;

 private:
  void begin();
  bool note_malformed(std::string_view host);

  EnvPtr env_;
  lmdb::Txn txn_;
  MDB_dbi domains_ = 0;
  MDB_dbi meta_ = 0;
  uint64_t txnid_ = 0;
  std::unordered_set<std::string> reported_;
};

}  // namespace portal
