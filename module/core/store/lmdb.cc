#include "lmdb.h"

namespace portal::lmdb {

Error::Error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}

void fail(const char* call, int rc, const std::string& path) {
  std::string what = call;
  if (!path.empty()) what += " \"" + path + "\"";
  what += ": ";
  what += mdb_strerror(rc);
  throw Error(what, rc);
}

Env::Env(const std::string& path, unsigned flags, mdb_mode_t mode, unsigned maxdbs,
         size_t mapsize, unsigned maxreaders)
    : path_(path) {
  int rc = mdb_env_create(&env_);
  if (rc) fail("mdb_env_create", rc);
  if ((rc = mdb_env_set_maxdbs(env_, maxdbs)) ||
      (mapsize && (rc = mdb_env_set_mapsize(env_, mapsize))) ||
      (maxreaders && (rc = mdb_env_set_maxreaders(env_, maxreaders))) ||
      (rc = mdb_env_open(env_, path.c_str(), flags, mode))) {
    mdb_env_close(env_);
    env_ = nullptr;
    fail("mdb_env_open", rc, path);
  }
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

Env& Env::operator=(Env&& o) noexcept {
  if (this != &o) {
    if (env_) mdb_env_close(env_);
    env_ = o.env_;
    path_ = std::move(o.path_);
    o.env_ = nullptr;
  }
  return *this;
}

size_t Env::mapsize() const {
  MDB_envinfo info;
  int rc = mdb_env_info(env_, &info);
  if (rc) fail("mdb_env_info", rc, path_);
  return info.me_mapsize;
}

void Env::set_mapsize(size_t size) {
  int rc = mdb_env_set_mapsize(env_, size);
  if (rc) fail("mdb_env_set_mapsize", rc, path_);
}

Txn::Txn(const Env& env, unsigned flags) {
  int rc = mdb_txn_begin(env.get(), nullptr, flags, &txn_);
  if (rc) {
    txn_ = nullptr;
    fail("mdb_txn_begin", rc, env.path());
  }
}

Txn& Txn::operator=(Txn&& o) noexcept {
  if (this != &o) {
    abort();
    txn_ = o.txn_;
    o.txn_ = nullptr;
  }
  return *this;
}

void Txn::commit() {
  MDB_txn* txn = txn_;
  txn_ = nullptr;  // mdb_txn_commit frees the handle whatever it returns
  int rc = mdb_txn_commit(txn);
  if (rc) fail("mdb_txn_commit", rc);
}

void Txn::abort() noexcept {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

bool Txn::get(MDB_dbi dbi, std::string_view key, std::string_view* value) const {
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) fail("mdb_get", rc);
  *value = view(v);
  return true;
}

void Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = val(key), v = val(value);
  int rc = mdb_put(txn_, dbi, &k, &v, flags);
  if (rc) fail("mdb_put", rc);
}

bool Txn::del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) fail("mdb_del", rc);
  return true;
}

void renew(Env& env, Txn& txn) {
  int rc = txn.renew();
  if (rc == MDB_MAP_RESIZED) {
    txn.abort();
    rc = mdb_env_set_mapsize(env.get(), 0);
    if (rc) fail("mdb_env_set_mapsize", rc, env.path());
    txn = Txn(env, MDB_RDONLY);
    return;
  }
  if (rc) fail("mdb_txn_renew", rc, env.path());
}

uint64_t get_u64(const Txn& txn, MDB_dbi dbi, std::string_view key) {
  std::string_view v;
  if (!txn.get(dbi, key, &v) || v.size() != 8) return 0;
  uint64_t n = 0;
  for (size_t i = 0; i < 8; i++) n |= uint64_t(static_cast<uint8_t>(v[i])) << (8 * i);
  return n;
}

void put_u64(Txn& txn, MDB_dbi dbi, std::string_view key, uint64_t value) {
  char buf[8];
  for (size_t i = 0; i < 8; i++) buf[i] = static_cast<char>(value >> (8 * i));
  txn.put(dbi, key, std::string_view(buf, 8));
}

Cursor::Cursor(const Txn& txn, MDB_dbi dbi) {
  int rc = mdb_cursor_open(txn.get(), dbi, &cur_);
  if (rc) fail("mdb_cursor_open", rc);
}

bool Cursor::get(std::string_view* key, std::string_view* value, MDB_cursor_op op) {
  MDB_val k{}, v{};
  if (op == MDB_SET_RANGE || op == MDB_SET) k = val(*key);
  int rc = mdb_cursor_get(cur_, &k, &v, op);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) fail("mdb_cursor_get", rc);
  *key = view(k);
  *value = view(v);
  return true;
}

void open_dbs(const Env& env, bool create, std::initializer_list<NamedDb> dbs) {
  Txn txn(env, create ? 0 : MDB_RDONLY);
  for (const NamedDb& db : dbs) {
    int rc = mdb_dbi_open(txn.get(), db.name, create ? MDB_CREATE : 0, db.dbi);
    if (rc) fail("mdb_dbi_open", rc, env.path());
  }
  txn.commit();
}

}  // namespace portal::lmdb
