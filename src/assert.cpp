#include "assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace paycore::detail {
void assert_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "paycore: assertion failed: %s at %s:%d\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}
}  // namespace paycore::detail
