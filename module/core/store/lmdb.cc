#include "lmdb.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csetjmp>
#include <csignal>
#include <mutex>
#include <type_traits>

namespace portal::lmdb {

namespace {

// The innermost guarded read of each thread, in a thread-specific key rather than a
// thread_local: in a dlopen()ed module a thread_local may be allocated at its first use, and
// the handler may be that use; pthread_getspecific allocates nothing.
pthread_key_t g_guard_key;
struct sigaction g_previous;

sigjmp_buf* current_guard() { return static_cast<sigjmp_buf*>(pthread_getspecific(g_guard_key)); }
void set_guard(sigjmp_buf* jump) { pthread_setspecific(g_guard_key, jump); }

void on_sigbus(int sig, siginfo_t* info, void* context) {
  if (sigjmp_buf* jump = current_guard()) {
    set_guard(nullptr);
    siglongjmp(*jump, 1);
  }
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) {
      g_previous.sa_sigaction(sig, info, context);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Not a guarded read: back to the default action, which the faulting access, run again
  // on return, takes (the process dies of SIGBUS as it would have).
  signal(SIGBUS, SIG_DFL);
}

// Runs fn(arg); kShortFile when it raised SIGBUS. fn must own nothing that needs destroying
// (LMDB calls and plain loads only): the jump skips its frame. SA_NODEFER keeps SIGBUS
// unblocked, so no signal mask needs saving.
int guarded_call(int (*fn)(void*), void* arg) {
  sigjmp_buf jump;
  sigjmp_buf* outer = current_guard();
  if (sigsetjmp(jump, 0) != 0) {
    set_guard(outer);
    return kShortFile;
  }
  set_guard(&jump);
  int rc = fn(arg);
  set_guard(outer);
  return rc;
}

template <typename F>
int guarded(F&& fn) {
  using Fn = std::remove_reference_t<F>;
  static_assert(std::is_trivially_destructible_v<Fn>, "a guarded read owns nothing");
  return guarded_call([](void* p) { return (*static_cast<Fn*>(p))(); }, &fn);
}

// Reads one byte of every page of v (under the guard), so that a page past the end of the
// file faults here rather than in the caller.
void touch(const MDB_val& v) {
  auto* p = static_cast<const volatile char*>(v.mv_data);
  for (size_t off = 0; off < v.mv_size; off += 4096) (void)p[off];
  if (v.mv_size) (void)p[v.mv_size - 1];
}

std::string env_path(MDB_env* env) {
  const char* path = nullptr;
  return env && mdb_env_get_path(env, &path) == 0 && path ? path : "";
}

[[noreturn]] void short_file(const char* call, const std::string& path) {
  throw Error(std::string(call) + " \"" + path +
                  "\": the data file ends before the data it holds (truncated?); restore it "
                  "from a backup",
              kShortFile);
}

void check(int rc, const char* call, MDB_env* env) {
  if (rc == kShortFile) short_file(call, env_path(env));
  if (rc) fail(call, rc, env_path(env));
}

}  // namespace

void install_fault_guard() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pthread_key_create(&g_guard_key, nullptr) != 0) {
      throw std::runtime_error("pthread_key_create failed");
    }
    struct sigaction sa = {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous);
  });
}

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
  install_fault_guard();
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
  check(guarded([&] { return mdb_env_info(env_, &info); }), "mdb_env_info", env_);
  return info.me_mapsize;
}

uint64_t Env::last_txnid() const {
  MDB_envinfo info;
  check(guarded([&] { return mdb_env_info(env_, &info); }), "mdb_env_info", env_);
  return info.me_last_txnid;
}

void Env::check_file() const {
  MDB_envinfo info;
  MDB_stat st;
  check(guarded([&] {
          int rc = mdb_env_info(env_, &info);
          return rc ? rc : mdb_env_stat(env_, &st);
        }),
        "mdb_env_info", env_);
  int fd = -1;
  struct stat fs;
  if (mdb_env_get_fd(env_, &fd) != 0 || fstat(fd, &fs) != 0) return;  // nothing to compare
  uint64_t need = (uint64_t(info.me_last_pgno) + 1) * st.ms_psize;
  if (uint64_t(fs.st_size) < need) {
    throw Error("\"" + path_ + "/data.mdb\" is truncated: " + std::to_string(fs.st_size) +
                    " bytes, where its data takes " + std::to_string(need) +
                    "; restore it from a backup",
                kShortFile);
  }
}

void Env::set_mapsize(size_t size) {
  int rc = mdb_env_set_mapsize(env_, size);
  if (rc) fail("mdb_env_set_mapsize", rc, path_);
}

Txn::Txn(const Env& env, unsigned flags) {
  MDB_env* e = env.get();
  // A write transaction is not guarded: a jump out of it would keep LMDB's writer lock.
  int rc = (flags & MDB_RDONLY)
               ? guarded([&] { return mdb_txn_begin(e, nullptr, flags, &txn_); })
               : mdb_txn_begin(e, nullptr, flags, &txn_);
  if (rc) {
    if (rc == kShortFile && txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
    check(rc, "mdb_txn_begin", e);
  }
}

int Txn::renew() noexcept {
  MDB_txn* txn = txn_;
  return guarded([&] { return mdb_txn_renew(txn); });
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
  MDB_txn* txn = txn_;
  int rc = guarded([&] {
    int r = mdb_get(txn, dbi, &k, &v);
    if (r == 0) touch(v);
    return r;
  });
  if (rc == MDB_NOTFOUND) return false;
  if (rc) check(rc, "mdb_get", mdb_txn_env(txn_));
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
  if (!txn.get()) {  // a renewal that met a truncated file has let the transaction go
    txn = Txn(env, MDB_RDONLY);
    return;
  }
  int rc = txn.renew();
  if (rc == kShortFile) {
    txn.abort();
    short_file("mdb_txn_renew", env.path());
  }
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
  MDB_txn* t = txn.get();
  MDB_cursor* cur = nullptr;
  // mdb_stat first: it reads the database's root from the map with a cursor on its stack, so
  // that a fault there leaks nothing, and mdb_cursor_open (which mallocs) then reads no page.
  MDB_stat st;
  int rc = guarded([&] {
    int r = mdb_stat(t, dbi, &st);
    return r ? r : mdb_cursor_open(t, dbi, &cur);
  });
  if (rc) check(rc, "mdb_cursor_open", mdb_txn_env(t));
  cur_ = cur;
}

bool Cursor::get(std::string_view* key, std::string_view* value, MDB_cursor_op op) {
  MDB_val k{}, v{};
  if (op == MDB_SET_RANGE || op == MDB_SET) k = val(*key);
  MDB_cursor* cur = cur_;
  int rc = guarded([&] {
    int r = mdb_cursor_get(cur, &k, &v, op);
    if (r == 0) {
      touch(k);
      touch(v);
    }
    return r;
  });
  if (rc == MDB_NOTFOUND) return false;
  if (rc) check(rc, "mdb_cursor_get", mdb_txn_env(mdb_cursor_txn(cur_)));
  *key = view(k);
  *value = view(v);
  return true;
}

void open_dbs(const Env& env, bool create, std::initializer_list<NamedDb> dbs) {
  Txn txn(env, create ? 0 : MDB_RDONLY);
  MDB_txn* t = txn.get();
  for (const NamedDb& db : dbs) {
    unsigned flags = create ? MDB_CREATE : 0;
    MDB_dbi* dbi = db.dbi;
    const char* name = db.name;
    int rc = create ? mdb_dbi_open(t, name, flags, dbi)
                    : guarded([&] { return mdb_dbi_open(t, name, flags, dbi); });
    if (rc) check(rc, "mdb_dbi_open", env.get());
  }
  txn.commit();
}

size_t entries(const Txn& txn, MDB_dbi dbi) {
  MDB_stat st;
  MDB_txn* t = txn.get();
  int rc = guarded([&] { return mdb_stat(t, dbi, &st); });
  if (rc) check(rc, "mdb_stat", mdb_txn_env(t));
  return st.ms_entries;
}

}  // namespace portal::lmdb
