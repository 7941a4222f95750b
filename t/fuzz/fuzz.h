// What the fuzz targets share: an invariant check that aborts (so libFuzzer keeps the input)
// with a message naming the broken rule.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

inline std::string_view fuzz_input(const unsigned char* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
