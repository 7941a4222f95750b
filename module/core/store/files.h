// File-system helpers the stores share: paths, the data directory, ownership.
#pragma once

#include <sys/stat.h>

#include <string>

namespace portal {

std::string join(const std::string& dir, const char* name);

// Throws std::runtime_error: what "path": strerror(errno).
[[noreturn]] void sys_fail(const std::string& what, const std::string& path);

// Stats the data directory, creating it (0755) when missing and create is set. Throws
// std::runtime_error when it is missing (and not created) or is not a directory.
struct stat open_data_dir(const std::string& data_dir, bool create);

// Makes path owned like the data directory, so that workers running as its owner can use it.
// Only root changes ownership; for anyone else this does nothing.
void own_like(const std::string& path, const struct stat& owner);

}  // namespace portal
