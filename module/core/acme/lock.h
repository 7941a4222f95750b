// One ACME engine per data directory: an exclusive open-file-description lock (fcntl
// F_OFD_SETLK) on DATA_DIR/state/acme.lock, held for the engine's life and released by the
// kernel when its process dies (even SIGKILL). Unlike flock, another process can ask whether
// it is held (F_OFD_GETLK) without ever taking it.
// The file names the holder ("pid 1234 nginx worker"), for the message of whoever waits.
#pragma once

#include <optional>
#include <string>

namespace portal::acme {

class EngineLock {
 public:
  // Takes the lock without waiting: nullopt when another process holds it (*holder then
  // says who, if it could be read). Throws std::runtime_error when the file cannot be opened.
  static std::optional<EngineLock> try_acquire(const std::string& data_dir,
                                               const std::string& who, std::string* holder);
  // Whether an engine holds the lock now, and who (the file's line), without taking it.
  static bool held(const std::string& data_dir, std::string* holder);

  EngineLock(EngineLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  EngineLock& operator=(EngineLock&& o) noexcept;
  EngineLock(const EngineLock&) = delete;
  ~EngineLock();

 private:
  explicit EngineLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace portal::acme
