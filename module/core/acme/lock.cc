#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../store/files.h"

namespace portal::acme {

std::optional<EngineLock> EngineLock::try_acquire(const std::string& data_dir,
                                                  const std::string& who, std::string* holder) {
  std::string path = join(join(data_dir, "state"), "acme.lock");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) sys_fail("cannot open the ACME engine lock", path);
  struct stat owner;
  if (stat(data_dir.c_str(), &owner) == 0) own_like(path, owner);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (holder) {
      char buf[256];
      ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
      holder->assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
      while (!holder->empty() && (holder->back() == '\n' || holder->back() == '\0'))
        holder->pop_back();
    }
    close(fd);
    if (err == EWOULDBLOCK) return std::nullopt;
    errno = err;
    sys_fail("cannot lock", path);
  }
  std::string line = "pid " + std::to_string(getpid()) + " " + who + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, line.data(), line.size(), 0) < 0) {
    // the lock holds all the same; only the message for others is missing
  }
  return EngineLock(fd);
}

EngineLock& EngineLock::operator=(EngineLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

EngineLock::~EngineLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

}  // namespace portal::acme
