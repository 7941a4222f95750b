#include "store_env.h"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>

#include "files.h"

namespace portal {

namespace {

constexpr size_t kInitialMapSize = size_t(1) << 30;
constexpr size_t kMaxMapSize = size_t(1) << 40;

}  // namespace

bool store_exists(const std::string& data_dir, const StoreKind& kind) {
  struct stat st;
  return stat(join(join(data_dir, kind.dir), "data.mdb").c_str(), &st) == 0;
}

lmdb::Env open_store(const std::string& data_dir, const StoreKind& kind, bool create,
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
  lmdb::Env env(path, 0, kind.lock_mode, 4, 0, lmdb::kMaxReaders);
  if (!initial_map) initial_map = kInitialMapSize;
  if (env.mapsize() < initial_map) env.set_mapsize(initial_map);
  own_like(path, dir_st);
  own_like(join(path, "data.mdb"), dir_st);
  own_like(join(path, "lock.mdb"), dir_st);
  chmod(join(path, "data.mdb").c_str(), kind.data_mode);
  chmod(join(path, "lock.mdb").c_str(), kind.lock_mode);
  return env;
}

void write_store(lmdb::Env& env, const std::function<void(lmdb::Txn&)>& fn) {
  for (;;) {
    try {
      lmdb::Txn txn(env, 0);
      fn(txn);
      txn.commit();
      return;
    } catch (const lmdb::Error& e) {
      if (e.code() != MDB_MAP_FULL) throw;
      size_t size = env.mapsize() * 2;
      if (size > kMaxMapSize) throw;
      env.set_mapsize(size);  // the transaction has been aborted: run it again, bigger
    }
  }
}

lmdb::Env open_store_reader(const std::string& data_dir, const StoreKind& kind) {
  lmdb::Env env(join(data_dir, kind.dir), MDB_RDONLY | MDB_NOTLS, kind.lock_mode, 4, 0,
                lmdb::kMaxReaders);
  int dead = 0;
  int rc = mdb_reader_check(env.get(), &dead);  // slots of readers that died (a SIGKILL)
  if (rc) lmdb::fail("mdb_reader_check", rc, env.path());
  return env;
}

}  // namespace portal
