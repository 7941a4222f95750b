#include "snapshot.h"


#include <stdexcept>

#include "files.h"
#include "store_env.h"

namespace portal {

namespace {

constexpr const char* kDomainsDb = "domains";
constexpr const char* kMetaDb = "meta";
constexpr const char* kGenerationKey = "generation";
// Public data: readable by the data directory's group too; readers register in the lock
// file, so the group may write it whatever the umask.
constexpr StoreKind kSnapshotKind = {kSnapshotDir, "snapshot", 0755, 0640, 0660};
constexpr size_t kMaxReported = 1024;

uint64_t read_generation(const lmdb::Txn& txn, MDB_dbi meta) {
  return lmdb::get_u64(txn, meta, kGenerationKey);
}

void write_generation(lmdb::Txn& txn, MDB_dbi meta, uint64_t g) {
  lmdb::put_u64(txn, meta, kGenerationKey, g);
}

}  // namespace

std::optional<Domain> SnapshotTxn::get(std::string_view host) const {
  std::string_view value;
  if (!txn_.get(domains_, host, &value)) return std::nullopt;
  Domain d;
  if (!decode(value, &d)) return std::nullopt;
  d.host.assign(host);
  return d;
}

void SnapshotTxn::for_each(const std::function<void(const Domain&)>& fn,
                           const std::function<void(std::string_view)>& bad) const {
  lmdb::Cursor cur(txn_, domains_);
  std::string_view key, value;
  Domain d;
  for (bool ok = cur.get(&key, &value, MDB_FIRST); ok; ok = cur.get(&key, &value, MDB_NEXT)) {
    if (!decode(value, &d)) {
      if (bad) bad(key);
      continue;
    }
    d.host.assign(key);
    fn(d);
  }
}

size_t SnapshotTxn::count() const {
  return lmdb::entries(txn_, domains_);
}

uint64_t SnapshotTxn::generation() const { return read_generation(txn_, meta_); }

void SnapshotTxn::put(const Domain& d) {
  std::string why;
  if (!validate(d, &why)) throw std::invalid_argument(why);
  txn_.put(domains_, d.host, encode(d));
}

void SnapshotTxn::put_append(const Domain& d) {
  std::string why;
  if (!validate(d, &why)) throw std::invalid_argument(why);
  txn_.put(domains_, d.host, encode(d), MDB_APPEND);
}

bool SnapshotTxn::remove(std::string_view host) { return txn_.del(domains_, host); }

void SnapshotTxn::clear() {
  int rc = mdb_drop(txn_.get(), domains_, 0);
  if (rc) lmdb::fail("mdb_drop", rc);
}

SnapshotStore::SnapshotStore(const std::string& data_dir, bool create, size_t initial_map)
    : path_(join(data_dir, kSnapshotDir)),
      env_(open_store(data_dir, kSnapshotKind, create, initial_map)) {
  lmdb::open_dbs(*env_, create, {{kDomainsDb, &domains_}, {kMetaDb, &meta_}});
}

bool SnapshotStore::exists(const std::string& data_dir) {
  return store_exists(data_dir, kSnapshotKind);
}

void SnapshotStore::write(const std::function<void(SnapshotTxn&)>& fn) {
  write_store(env_, [&](lmdb::Txn& txn) {
    SnapshotTxn tx(txn, domains_, meta_);
    fn(tx);
    write_generation(txn, meta_, tx.generation() + 1);
  });
}

void SnapshotStore::read(const std::function<void(const SnapshotTxn&)>& fn) const {
  lmdb::Txn txn(*env_, MDB_RDONLY);
  const SnapshotTxn tx(txn, domains_, meta_);
  fn(tx);
}

SnapshotReader::SnapshotReader(const std::string& data_dir)
    : env_(open_store_reader(data_dir, kSnapshotKind)) {
  lmdb::open_dbs(*env_, false, {{kDomainsDb, &domains_}, {kMetaDb, &meta_}});
  txn_ = lmdb::Txn(*env_, MDB_RDONLY);
  txn_.reset();
}

SnapshotReader::~SnapshotReader() { txn_.abort(); }

void SnapshotReader::begin() {
  lmdb::renew(*env_, txn_);  // adopts the map portalctl may have grown
}

uint64_t SnapshotReader::generation() {
  begin();
  struct Reset {
    lmdb::Txn& txn;
    ~Reset() { txn.reset(); }
  } reset{txn_};
  return read_generation(txn_, meta_);
}

size_t SnapshotReader::count() {
  begin();
  struct Reset {
    lmdb::Txn& txn;
    ~Reset() { txn.reset(); }
  } reset{txn_};
  return SnapshotTxn(txn_, domains_, meta_).count();
}

void SnapshotReader::for_each(
    const std::function<void(std::string_view, const DomainView&)>& fn) {
  begin();
  struct Reset {
    lmdb::Txn& txn;
    ~Reset() { txn.reset(); }
  } reset{txn_};
  txnid_ = mdb_txn_id(txn_.get());
  lmdb::Cursor cur(txn_, domains_);
  std::string_view key, value;
  DomainView view;
  for (bool ok = cur.get(&key, &value, MDB_FIRST); ok; ok = cur.get(&key, &value, MDB_NEXT)) {
    if (decode(value, &view)) fn(key, view);
  }
}

uint64_t SnapshotReader::committed_txnid() const { return env_->last_txnid(); }

bool SnapshotReader::note_malformed(std::string_view host) {
  if (reported_.size() >= kMaxReported) return false;
  return reported_.emplace(host).second;
}

}  // namespace portal
