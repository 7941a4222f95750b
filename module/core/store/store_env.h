// How every store of the data directory (snapshot/, state/) opens its LMDB environment,
// writes, and is read by an nginx worker: one way, so the stores differ only in their data.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "lmdb.h"

namespace portal {

struct StoreKind {
  const char* dir;       // "snapshot", "state"
  const char* what;      // "snapshot", "state store": for messages
  mode_t dir_mode;       // of DATA_DIR/dir
  mode_t data_mode;      // of data.mdb
  mode_t lock_mode;      // of lock.mdb (readers write there)
};

bool store_exists(const std::string& data_dir, const StoreKind& kind);

// The writer's environment: with create, makes DATA_DIR and the store when missing; files
// take the owner and group of DATA_DIR (when run as root) and the kind's modes; the map is
// at least initial_map bytes (0: 1 GiB). Throws std::runtime_error / lmdb::Error.
lmdb::Env open_store(const std::string& data_dir, const StoreKind& kind, bool create,
                     size_t initial_map);

// Runs fn in one write transaction and commits it: all of it or nothing. When the map is
// full, the transaction is aborted, the map doubled and fn run again.
void write_store(lmdb::Env& env, const std::function<void(lmdb::Txn&)>& fn);

// A worker's read-only environment (MDB_NOTLS), with the slots of dead readers freed.
lmdb::Env open_store_reader(const std::string& data_dir, const StoreKind& kind);

}  // namespace portal
