#include "snapshot.h"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>

#include "files.h"

namespace portal {

namespace {

constexpr const char* kDomainsDb = "domains";
constexpr const char* kMetaDb = "meta";
constexpr const char* kGenerationKey = "generation";
constexpr size_t kInitialMapSize = size_t(1) << 30;
constexpr size_t kMaxMapSize = size_t(1) << 40;
constexpr size_t kMaxReported = 1024;
using lmdb::kMaxReaders;

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
  MDB_stat st;
  int rc = mdb_stat(txn_.get(), domains_, &st);
  if (rc) lmdb::fail("mdb_stat", rc);
  return st.ms_entries;
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
    : path_(join(data_dir, kSnapshotDir)) {
  struct stat dir_st = open_data_dir(data_dir, create);

  bool fresh = !exists(data_dir);
  if (fresh) {
    if (!create) {
      throw std::runtime_error("no snapshot in \"" + data_dir +
                               "\": create it with \"portalctl --data " + data_dir + " init\"");
    }
    if (mkdir(path_.c_str(), 0755) != 0 && errno != EEXIST) sys_fail("mkdir", path_);
  }
  env_ = lmdb::Env(path_, 0, 0660, 4, 0, kMaxReaders);
  if (!initial_map) initial_map = kInitialMapSize;
  if (env_.mapsize() < initial_map) env_.set_mapsize(initial_map);
  lmdb::open_dbs(env_, create, {{kDomainsDb, &domains_}, {kMetaDb, &meta_}});
  own_like(path_, dir_st);
  own_like(join(path_, "data.mdb"), dir_st);
  own_like(join(path_, "lock.mdb"), dir_st);
  // Readers register in the lock file, so the group may write it whatever the umask; the
  // data is read-only for anyone but the owner.
  chmod(join(path_, "data.mdb").c_str(), 0640);
  chmod(join(path_, "lock.mdb").c_str(), 0660);
}

bool SnapshotStore::exists(const std::string& data_dir) {
  struct stat st;
  return stat(join(join(data_dir, kSnapshotDir), "data.mdb").c_str(), &st) == 0;
}

void SnapshotStore::write(const std::function<void(SnapshotTxn&)>& fn) {
  for (;;) {
    try {
      lmdb::Txn txn(env_, 0);
      SnapshotTxn tx(txn, domains_, meta_);
      fn(tx);
      write_generation(txn, meta_, tx.generation() + 1);
      txn.commit();
      return;
    } catch (const lmdb::Error& e) {
      if (e.code() != MDB_MAP_FULL) throw;
      size_t size = env_.mapsize() * 2;
      if (size > kMaxMapSize) throw;
      env_.set_mapsize(size);  // the transaction has been aborted: run it again, bigger
    }
  }
}

void SnapshotStore::read(const std::function<void(const SnapshotTxn&)>& fn) const {
  lmdb::Txn txn(env_, MDB_RDONLY);
  const SnapshotTxn tx(txn, domains_, meta_);
  fn(tx);
}

SnapshotReader::SnapshotReader(const std::string& data_dir)
    : env_(join(data_dir, kSnapshotDir), MDB_RDONLY | MDB_NOTLS, 0640, 4, 0, kMaxReaders) {
  int dead = 0;
  int rc = mdb_reader_check(env_.get(), &dead);  // slots of readers that died (a SIGKILL)
  if (rc) lmdb::fail("mdb_reader_check", rc, env_.path());
  lmdb::open_dbs(env_, false, {{kDomainsDb, &domains_}, {kMetaDb, &meta_}});
  txn_ = lmdb::Txn(env_, MDB_RDONLY);
  txn_.reset();
}

SnapshotReader::~SnapshotReader() { txn_.abort(); }

void SnapshotReader::begin() {
  lmdb::renew(env_, txn_);  // adopts the map portalctl may have grown
}

uint64_t SnapshotReader::generation() {
  begin();
  struct Reset {
    lmdb::Txn& txn;
    ~Reset() { txn.reset(); }
  } reset{txn_};
  return read_generation(txn_, meta_);
}

uint64_t SnapshotReader::committed_txnid() const {
  MDB_envinfo info;
  int rc = mdb_env_info(env_.get(), &info);
  if (rc) lmdb::fail("mdb_env_info", rc, env_.path());
  return info.me_last_txnid;
}

bool SnapshotReader::note_malformed(std::string_view host) {
  if (reported_.size() >= kMaxReported) return false;
  return reported_.emplace(host).second;
}

}  // namespace portal
