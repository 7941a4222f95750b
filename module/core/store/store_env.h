// How every store of the data directory (snapshot/, state/) opens its LMDB environment,
// writes, and is read by an nginx worker: one way, so the stores differ only in their data.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
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

// An environment is opened once per process and shared (LMDB's rule: closing a second
// handle on the same files drops the process's locks). Inside an nginx worker the certificate
// callback, the challenge responder and the ACME engine's thread share one.
using EnvPtr = std::shared_ptr<lmdb::Env>;

// The writer's environment: with create, makes DATA_DIR and the store when missing; files
// take the owner and group of DATA_DIR (when run as root) and the kind's modes; the map is
// at least initial_map bytes (0: 1 GiB). Throws std::runtime_error / lmdb::Error.
// When the process already has the store open read-only, throws std::runtime_error.
EnvPtr open_store(const std::string& data_dir, const StoreKind& kind, bool create,
                  size_t initial_map);

// Runs fn in one write transaction and commits it: all of it or nothing. When the map is
// full, the transaction is aborted, the map doubled and fn run again, unless other threads of
// this process share the environment (growing it under their read transactions is not
// allowed): then MDB_MAP_FULL is thrown.
void write_store(const EnvPtr& env, const std::function<void(lmdb::Txn&)>& fn);

// A worker's read-only environment (MDB_NOTLS), with the slots of dead readers freed; the
// process's read-write one when it already has it open.
EnvPtr open_store_reader(const std::string& data_dir, const StoreKind& kind);

// Checks DATA_DIR/DIR/data.mdb (a store's directory name) without keeping it open: not empty,
// not shorter than its data. Read-only and without LMDB's lock file, so nothing is created
// (nginx -t runs it as root in the master). Throws std::runtime_error / lmdb::Error.
void check_store_file(const std::string& data_dir, const std::string& dir);

}  // namespace portal
