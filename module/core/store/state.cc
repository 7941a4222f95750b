#include "state.h"


#include <algorithm>
#include <stdexcept>

#include "../util/text.h"
#include "files.h"
#include "store_env.h"

namespace portal {

namespace {

constexpr const char* kCertsDb = "certs";
constexpr const char* kMetaDb = "meta";
constexpr const char* kTableNames[kStateTables] = {"acme", "orders", "challenges", "status",
                                                    "requests"};
constexpr const char* kNextGenerationKey = "next_generation";
// Private keys: only the owner (the workers' user, see own_like) may open or read them.
constexpr StoreKind kStateKind = {kStateDir, "state store", 0700, 0600, 0600};

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

std::optional<std::string> StateTxn::get(StateTable t, std::string_view key) const {
  std::string_view value;
  if (!txn_.get(dbi(t), key, &value)) return std::nullopt;
  return std::string(value);
}

void StateTxn::put(StateTable t, std::string_view key, std::string_view value) {
  txn_.put(dbi(t), key, value);
}

bool StateTxn::remove(StateTable t, std::string_view key) { return txn_.del(dbi(t), key); }

void StateTxn::for_each(StateTable t,
                        const std::function<void(std::string_view, std::string_view)>& fn) const {
  lmdb::Cursor cur(txn_, dbi(t));
  std::string_view key, value;
  for (bool ok = cur.get(&key, &value, MDB_FIRST); ok; ok = cur.get(&key, &value, MDB_NEXT))
    fn(key, value);
}

namespace {

// Stores made before the ACME tables existed get them from the first writer; a reader
// of such a store sees them empty (dbi 0 is never a named database's handle).
void open_state_dbs(const lmdb::Env& env, bool create, StateDbs* dbs) {
  lmdb::open_dbs(env, create, {{kCertsDb, &dbs->certs}, {kMetaDb, &dbs->meta}});
  for (int i = 0; i < kStateTables; i++) {
    try {
      lmdb::open_dbs(env, create, {{kTableNames[i], &dbs->tables[i]}});
    } catch (const lmdb::Error& e) {
      if (e.code() != MDB_NOTFOUND) throw;
      dbs->tables[i] = 0;
    }
  }
}

}  // namespace

StateStore::StateStore(const std::string& data_dir, bool create, size_t initial_map)
    : path_(join(data_dir, kStateDir)),
      env_(open_store(data_dir, kStateKind, create, initial_map)) {
  open_state_dbs(*env_, true, &dbs_);
}

uint64_t StateStore::committed_txnid() const { return env_->last_txnid(); }

bool StateStore::exists(const std::string& data_dir) { return store_exists(data_dir, kStateKind); }

void StateStore::write(const std::function<void(StateTxn&)>& fn) {
  write_store(env_, [&](lmdb::Txn& txn) {
    StateTxn tx(txn, dbs_);
    fn(tx);
  });
}

void StateStore::read(const std::function<void(const StateTxn&)>& fn) const {
  lmdb::Txn txn(*env_, MDB_RDONLY);
  const StateTxn tx(txn, dbs_);
  fn(tx);
}

StateReader::StateReader(const std::string& data_dir)
    : env_(open_store_reader(data_dir, kStateKind)) {
  open_state_dbs(*env_, false, &dbs_);
  txn_ = lmdb::Txn(*env_, MDB_RDONLY);
  txn_.reset();
}

StateReader::~StateReader() { txn_.abort(); }

void StateReader::begin() {
  lmdb::renew(*env_, txn_);  // adopts the map a writer may have grown
}

std::optional<std::string> StateReader::get(StateTable t, std::string_view key) {
  MDB_dbi dbi = dbs_.tables[static_cast<int>(t)];
  if (!dbi) return std::nullopt;
  begin();
  struct Reset {
    lmdb::Txn& txn;
    ~Reset() { txn.reset(); }
  } reset{txn_};
  std::string_view value;
  if (!txn_.get(dbi, key, &value)) return std::nullopt;
  return std::string(value);
}

std::optional<std::string> StateReader::challenge(std::string_view token) {
  return get(StateTable::challenges, token);
}

void StateReader::for_each(StateTable t,
                           const std::function<void(std::string_view, std::string_view)>& fn) {
  MDB_dbi dbi = dbs_.tables[static_cast<int>(t)];
  if (!dbi) return;
  begin();
  struct Reset {
    lmdb::Txn& txn;
    ~Reset() { txn.reset(); }
  } reset{txn_};
  lmdb::Cursor cur(txn_, dbi);
  std::string_view key, value;
  for (bool ok = cur.get(&key, &value, MDB_FIRST); ok; ok = cur.get(&key, &value, MDB_NEXT))
    fn(key, value);
}

std::optional<CertRecord> StateReader::get_cert(std::string_view host) {
  std::optional<CertRecord> out;
  cert(host, [&](std::string_view value) {
    CertRecord r;
    if (decode(value, &r)) out = std::move(r);
  });
  return out;
}

}  // namespace portal
