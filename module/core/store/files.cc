#include "files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace portal {

std::string join(const std::string& dir, const char* name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

void sys_fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " \"" + path + "\": " + std::strerror(errno));
}

struct stat open_data_dir(const std::string& data_dir, bool create) {
  struct stat st;
  if (stat(data_dir.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) sys_fail("cannot open data directory", data_dir);
    if (mkdir(data_dir.c_str(), 0755) != 0) sys_fail("cannot create data directory", data_dir);
    if (stat(data_dir.c_str(), &st) != 0) sys_fail("stat", data_dir);
  }
  if (!S_ISDIR(st.st_mode))
    throw std::runtime_error("data directory \"" + data_dir + "\" is not a directory");
  return st;
}

void own_like(const std::string& path, const struct stat& owner) {
  struct stat st;
  if (geteuid() != 0 || stat(path.c_str(), &st) != 0) return;
  if (st.st_uid == owner.st_uid && st.st_gid == owner.st_gid) return;
  if (chown(path.c_str(), owner.st_uid, owner.st_gid) != 0) sys_fail("chown", path);
}

}  // namespace portal
