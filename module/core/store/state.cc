#include "state.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "../util/text.h"
#include "files.h"

namespace portal {

namespace {

constexpr const char* kCertsDb = "certs";
constexpr const char* kMetaDb = "meta";
constexpr const char* kNextGenerationKey = "next_generation";
constexpr size_t kInitialMapSize = size_t(1) << 30;
constexpr size_t kMaxMapSize = size_t(1) << 40;

}  // namespace

std::optional<CertRecord> StateTxn::get_cert(std::string_view host) const {
  std::string_view value;
  if (!txn_.get(certs_, host, &value)) return std::nullopt;
  CertRecord r;
  if (!decode(value, &r)) return std::nullopt;
  return r;
}

void StateTxn::for_each_cert(const std::function<void(std::string_view, const CertRecord&)>& fn,
                             const std::function<void(std::string_view)>& bad) const {
  lmdb::Cursor cur(txn_, certs_);
  std::string_view key, value;
  CertRecord r;
  for (bool ok = cur.get(&key, &value, MDB_FIRST); ok; ok = cur.get(&key, &value, MDB_NEXT)) {
    if (!decode(value, &r)) {
      if (bad) bad(key);
      continue;
    }
    fn(key, r);
  }
}

uint64_t StateTxn::put_cert(std::string_view host, CertRecord record) {
  std::sort(record.pairs.begin(), record.pairs.end(),
            [](const CertPair& a, const CertPair& b) { return a.type < b.type; });
  // Generations start at 1 (0 is "none" to a cache) and the counter only goes up, so a host
  // removed and added again never gets a number a worker may still hold.
  uint64_t generation = std::max<uint64_t>(lmdb::get_u64(txn_, meta_, kNextGenerationKey), 1);
  record.generation = generation;
  std::string value = encode(record);
  CertRecord check;
  if (host.empty() || !decode(value, &check)) {
    throw std::invalid_argument("invalid certificate record for " + quoted(host) +
                                ": 1 or 2 pairs of distinct key types, each with a chain of 1 "
                                "to 8 certificates and a key, times from 1970 on");
  }
  txn_.put(certs_, host, value);
  lmdb::put_u64(txn_, meta_, kNextGenerationKey, generation + 1);
  return generation;
}

bool StateTxn::remove_cert(std::string_view host) { return txn_.del(certs_, host); }

StateStore::StateStore(const std::string& data_dir, bool create, size_t initial_map)
    : path_(join(data_dir, kStateDir)) {
  struct stat dir_st = open_data_dir(data_dir, create);
  if (!exists(data_dir)) {
    if (!create) {
      throw std::runtime_error("no state store in \"" + data_dir +
                               "\": create it with \"portalctl --data " + data_dir + " init\"");
    }
    if (mkdir(path_.c_str(), 0700) != 0 && errno != EEXIST) sys_fail("mkdir", path_);
  }
  // Private keys: only the owner (the workers' user, see own_like) may read or open them.
  chmod(path_.c_str(), 0700);
  env_ = lmdb::Env(path_, 0, 0600, 4, 0, lmdb::kMaxReaders);
  if (!initial_map) initial_map = kInitialMapSize;
  if (env_.mapsize() < initial_map) env_.set_mapsize(initial_map);
  lmdb::open_dbs(env_, create, {{kCertsDb, &certs_}, {kMetaDb, &meta_}});
  own_like(path_, dir_st);
  own_like(join(path_, "data.mdb"), dir_st);
  own_like(join(path_, "lock.mdb"), dir_st);
  chmod(join(path_, "data.mdb").c_str(), 0600);
  chmod(join(path_, "lock.mdb").c_str(), 0600);
}

bool StateStore::exists(const std::string& data_dir) {
  struct stat st;
  return stat(join(join(data_dir, kStateDir), "data.mdb").c_str(), &st) == 0;
}

void StateStore::write(const std::function<void(StateTxn&)>& fn) {
  for (;;) {
    try {
      lmdb::Txn txn(env_, 0);
      StateTxn tx(txn, certs_, meta_);
      fn(tx);
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

void StateStore::read(const std::function<void(const StateTxn&)>& fn) const {
  lmdb::Txn txn(env_, MDB_RDONLY);
  const StateTxn tx(txn, certs_, meta_);
  fn(tx);
}

StateReader::StateReader(const std::string& data_dir)
    : env_(join(data_dir, kStateDir), MDB_RDONLY | MDB_NOTLS, 0600, 4, 0, lmdb::kMaxReaders) {
  int dead = 0;
  int rc = mdb_reader_check(env_.get(), &dead);  // slots of readers that died (a SIGKILL)
  if (rc) lmdb::fail("mdb_reader_check", rc, env_.path());
  lmdb::open_dbs(env_, false, {{kCertsDb, &certs_}, {kMetaDb, &meta_}});
  txn_ = lmdb::Txn(env_, MDB_RDONLY);
  txn_.reset();
}

StateReader::~StateReader() { txn_.abort(); }

void StateReader::begin() {
  lmdb::renew(env_, txn_);  // adopts the map a writer may have grown
}

}  // namespace portal
