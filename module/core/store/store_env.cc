#include "store_env.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <climits>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

#include "files.h"

namespace portal {

namespace {

constexpr size_t kInitialMapSize = size_t(1) << 30;
constexpr size_t kMaxMapSize = size_t(1) << 40;

// Every environment this process has open, by the real path of its directory.
struct Registry {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<lmdb::Env>> envs;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: workers may exit from any thread
  return *r;
}

// By process too: a child of fork() must not use its parent's environments.
std::string registry_key(const std::string& path) {
  char buf[PATH_MAX];
  return std::to_string(getpid()) + ":" + (realpath(path.c_str(), buf) ? buf : path.c_str());
}

bool read_only(const lmdb::Env& env) {
  unsigned flags = 0;
  mdb_env_get_flags(env.get(), &flags);
  return flags & MDB_RDONLY;
}

// A write that failed with EIO or ENOSPC: says so when the file system is (nearly) full.
// LMDB 0.9.24 reports a short write (the disk filling in the middle of one) as EIO, so the
// free space is what tells a full disk from a failing one.
void explain_write_error(const lmdb::Env& env, const lmdb::Error& e) {
  constexpr uint64_t kNearlyFull = uint64_t(1) << 20;
  struct statvfs fs;
  if (statvfs(env.path().c_str(), &fs) != 0) return;
  uint64_t free_bytes = uint64_t(fs.f_bavail) * fs.f_frsize;
  if (free_bytes >= kNearlyFull && e.code() != ENOSPC) return;
  throw lmdb::Error(std::string(e.what()) + ": the file system holding \"" + env.path() +
                        "\" is full (" + std::to_string(free_bytes / 1024) +
                        " KiB free); nothing was written",
                    e.code());
}

// LMDB takes an empty data.mdb for a new one and would start it afresh (a writer) or fail
// with "Bad file descriptor" (a reader): say what it is instead.
void check_not_empty(const std::string& path, const char* what) {
  std::string file = join(path, "data.mdb");
  struct stat st;
  if (stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
    throw std::runtime_error(std::string("the ") + what + " file \"" + file +
                             "\" is empty (0 bytes): restore it from a backup");
  }
}

template <typename Open>
EnvPtr shared(const std::string& path, bool writable, const char* what, Open open) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string key = registry_key(path);
  if (auto env = r.envs[key].lock()) {
    if (writable && read_only(*env)) {
      throw std::runtime_error(std::string("the ") + what + " \"" + path +
                               "\" is already open read-only in this process");
    }
    env->check_file();
    return env;
  }
  check_not_empty(path, what);
  EnvPtr env;
  try {
    env = std::make_shared<lmdb::Env>(open());
  } catch (const lmdb::Error& e) {
    if (e.code() != MDB_INVALID) throw;
    // LMDB's "File is not an LMDB file" is also what a cut-short copy of one gets
    std::string file = join(path, "data.mdb");
    struct stat st;
    throw std::runtime_error(std::string("the ") + what + " file \"" + file + "\" (" +
                             (stat(file.c_str(), &st) == 0 ? std::to_string(st.st_size) : "?") +
                             " bytes) is damaged or truncated: LMDB cannot read it; restore it "
                             "from a backup");
  }
  env->check_file();
  r.envs[key] = env;
  return env;
}

}  // namespace

bool store_exists(const std::string& data_dir, const StoreKind& kind) {
  struct stat st;
  return stat(join(join(data_dir, kind.dir), "data.mdb").c_str(), &st) == 0;
}

EnvPtr open_store(const std::string& data_dir, const StoreKind& kind, bool create,
                  size_t initial_map) {
  struct stat dir_st = open_data_dir(data_dir, create);
  std::string path = join(data_dir, kind.dir);
  if (!store_exists(data_dir, kind)) {
    if (!create) {
      throw std::runtime_error(std::string("no ") + kind.what + " in \"" + data_dir +
                               "\": create it with \"portalctl --data " + data_dir + " init\"");
    }
    if (mkdir(path.c_str(), kind.dir_mode) != 0 && errno != EEXIST) sys_fail("mkdir", path);
  }
  chmod(path.c_str(), kind.dir_mode);
  EnvPtr env = shared(path, true, kind.what, [&] {
    lmdb::Env e(path, MDB_NOTLS, kind.lock_mode, 8, 0, lmdb::kMaxReaders);
    if (!initial_map) initial_map = kInitialMapSize;
    if (e.mapsize() < initial_map) e.set_mapsize(initial_map);
    return e;
  });
  own_like(path, dir_st);
  own_like(join(path, "data.mdb"), dir_st);
  own_like(join(path, "lock.mdb"), dir_st);
  chmod(join(path, "data.mdb").c_str(), kind.data_mode);
  chmod(join(path, "lock.mdb").c_str(), kind.lock_mode);
  return env;
}

void write_store(const EnvPtr& env, const std::function<void(lmdb::Txn&)>& fn) {
  env->check_file();  // writes are not guarded (lmdb.h): a truncated file is refused first
  for (;;) {
    try {
      lmdb::Txn txn(*env, 0);
      fn(txn);
      txn.commit();
      return;
    } catch (const lmdb::Error& e) {
      if (e.code() == EIO || e.code() == ENOSPC) explain_write_error(*env, e);
      if (e.code() != MDB_MAP_FULL || env.use_count() > 1) throw;
      size_t size = env->mapsize() * 2;
      if (size > kMaxMapSize) throw;
      env->set_mapsize(size);  // the transaction has been aborted: run it again, bigger
    }
  }
}

EnvPtr open_store_reader(const std::string& data_dir, const StoreKind& kind) {
  std::string path = join(data_dir, kind.dir);
  return shared(path, false, kind.what, [&] {
    lmdb::Env env(path, MDB_RDONLY | MDB_NOTLS, kind.lock_mode, 8, 0, lmdb::kMaxReaders);
    int dead = 0;
    int rc = mdb_reader_check(env.get(), &dead);  // slots of readers that died (a SIGKILL)
    if (rc) lmdb::fail("mdb_reader_check", rc, env.path());
    return env;
  });
}

void check_store_file(const std::string& data_dir, const std::string& dir) {
  std::string path = join(data_dir, dir.c_str());
  check_not_empty(path, dir.c_str());
  lmdb::Env env(path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600, 8, 0);
  env.check_file();
}

}  // namespace portal
