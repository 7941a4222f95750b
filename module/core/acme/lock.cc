#include "lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../store/files.h"

namespace portal::acme {

namespace {

std::string lock_path(const std::string& data_dir) {
  return join(join(data_dir, "state"), "acme.lock");
}

struct flock whole_file(short type) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  return fl;
}

void read_holder(int fd, std::string* holder) {
  if (!holder) return;
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  holder->assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!holder->empty() && (holder->back() == '\n' || holder->back() == '\0')) holder->pop_back();
}

}  // namespace

bool EngineLock::held(const std::string& data_dir, std::string* holder) {
  int fd = open(lock_path(data_dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // no engine ever ran here
  struct flock fl = whole_file(F_WRLCK);
  bool busy = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  if (busy) read_holder(fd, holder);
  close(fd);
  return busy;
}

std::optional<EngineLock> EngineLock::try_acquire(const std::string& data_dir,
                                                  const std::string& who, std::string* holder) {
  std::string path = lock_path(data_dir);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) sys_fail("cannot open the ACME engine lock", path);
  struct stat owner;
  if (stat(data_dir.c_str(), &owner) == 0) own_like(path, owner);
  struct flock fl = whole_file(F_WRLCK);
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    int err = errno;
    read_holder(fd, holder);
    close(fd);
    if (err == EAGAIN || err == EACCES) return std::nullopt;
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
  if (fd_ >= 0) close(fd_);  // releases the lock
}

}  // namespace portal::acme
