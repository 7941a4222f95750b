// Move-only RAII over LMDB's environment and transaction.
//
// Error policy: every LMDB failure other than "not found" throws LmdbError (with the call,
// the path where known, and mdb_strerror); "not found" is a return value.
//
// A data file truncated under an open environment: LMDB maps the whole file, and reading a
// page past its new end raises SIGBUS. Every read here (transaction begin and renew, get,
// cursor steps, environment info) runs under a guard that turns that SIGBUS into
// lmdb::Error with code kShortFile, and get and the cursor touch every page of what they
// return, so that the caller's reads of it (microseconds later) find it mapped. Writes are not
// guarded (a write transaction holds LMDB's writer lock): writers check the file when they
// open it (Env::check_file). Destructors never
// throw; a transaction that was neither committed nor aborted is aborted by its destructor,
// and a failed commit leaves nothing to free twice. Nothing here may be used from C or from
// an OpenSSL callback without a try/catch around it (capi/ does that).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

namespace portal::lmdb {

// Reader slots (the lock file's size is fixed by whoever creates it): every worker, old
// workers finishing after a reload, and every portalctl take one. LMDB's default is 126.
constexpr unsigned kMaxReaders = 1024;

// The code of an Error raised by a read that met the end of a truncated data file.
constexpr int kShortFile = -30700;

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int code);
  int code() const { return code_; }

 private:
  int code_;
};

[[noreturn]] void fail(const char* call, int rc, const std::string& path = {});

inline MDB_val val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

class Env {
 public:
  Env() = default;
  // Opens (MDB_NOSUBDIR unset: path is a directory holding data.mdb and lock.mdb).
  Env(const std::string& path, unsigned flags, mdb_mode_t mode, unsigned maxdbs, size_t mapsize,
      unsigned maxreaders = 0);
  ~Env();
  Env(Env&& o) noexcept : env_(o.env_), path_(std::move(o.path_)) { o.env_ = nullptr; }
  Env& operator=(Env&& o) noexcept;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }
  const std::string& path() const { return path_; }
  size_t mapsize() const;
  void set_mapsize(size_t size);
  // The newest committed transaction id, read from the meta pages without a transaction.
  uint64_t last_txnid() const;
  // Throws Error(kShortFile) when data.mdb is shorter than the pages its newest meta page
  // says are in use: a file truncated or cut short by a copy.
  void check_file() const;

 private:
  MDB_env* env_ = nullptr;
  std::string path_;
};

class Txn {
 public:
  Txn() = default;
  Txn(const Env& env, unsigned flags);
  ~Txn() { abort(); }
  Txn(Txn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&& o) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  MDB_txn* get() const { return txn_; }
  void commit();
  void abort() noexcept;

  // For a long-lived read-only handle: reset releases the snapshot, renew takes the newest.
  void reset() noexcept { mdb_txn_reset(txn_); }
  int renew() noexcept;  // kShortFile when the meta pages are past the end of the file

  bool get(MDB_dbi dbi, std::string_view key, std::string_view* value) const;
  void put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  bool del(MDB_dbi dbi, std::string_view key);

 private:
  MDB_txn* txn_ = nullptr;
};

// Renews a long-lived read-only transaction (after reset) on the newest data. When a writer
// grew the map (MDB_MAP_RESIZED), adopts the new size and begins a fresh transaction instead.
void renew(Env& env, Txn& txn);

// A counter in a meta database: 8 bytes, little-endian; absent (or damaged) reads as 0.
uint64_t get_u64(const Txn& txn, MDB_dbi dbi, std::string_view key);
void put_u64(Txn& txn, MDB_dbi dbi, std::string_view key, uint64_t value);

// A cursor that walks a database in key order; closed with its scope.
class Cursor {
 public:
  Cursor(const Txn& txn, MDB_dbi dbi);
  ~Cursor() { mdb_cursor_close(cur_); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // MDB_FIRST / MDB_NEXT / MDB_SET_RANGE...; false at the end.
  bool get(std::string_view* key, std::string_view* value, MDB_cursor_op op);

 private:
  MDB_cursor* cur_ = nullptr;
};

// Opens named databases in one committed transaction (database handles outlive only a
// committed one, read-only ones included). With create, a write transaction that makes the
// missing ones; without, a read-only one: a reader never waits for a writer.
struct NamedDb {
  const char* name;
  MDB_dbi* dbi;
};
void open_dbs(const Env& env, bool create, std::initializer_list<NamedDb> dbs);

// Entries in a database (mdb_stat), guarded like a read.
size_t entries(const Txn& txn, MDB_dbi dbi);

// Installs the process's SIGBUS handler that the guard needs (once; done by every Env
// constructor). A SIGBUS outside a guarded read goes to the handler that was there before,
// or kills the process as it would have without this one.
void install_fault_guard();

}  // namespace portal::lmdb
