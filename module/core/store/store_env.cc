#include "store_env.h"

#include <sys/stat.h>
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
    return env;
  }
  EnvPtr env = std::make_shared<lmdb::Env>(open());
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
  for (;;) {
    try {
      lmdb::Txn txn(*env, 0);
      fn(txn);
      txn.commit();
      return;
    } catch (const lmdb::Error& e) {
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

}  // namespace portal
