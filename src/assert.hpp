#pragma once
// Assertions that stay on in release builds (NDEBUG removes `assert`). Use PAYCORE_ASSERT for
// cheap invariants whose violation means the state can no longer be trusted: the process stops
// rather than answer from a corrupt state. PAYCORE_DEBUG_ASSERT is for checks too costly for
// the hot path; it is compiled in when PAYCORE_INVARIANTS is set (debug and sanitizer presets).
// Header-only so that every target (wal included, which knows nothing else of src/) can use it.

#include <cstdio>
#include <cstdlib>

namespace paycore::detail {
[[noreturn]] [[gnu::cold]] inline void assert_failed(const char* expr, const char* file,
                                                     int line) noexcept {
  std::fprintf(stderr, "paycore: assertion failed: %s at %s:%d\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}
}  // namespace paycore::detail

#define PAYCORE_ASSERT(expr)                                                        \
  do {                                                                              \
    if (!(expr)) [[unlikely]]                                                       \
      ::paycore::detail::assert_failed(#expr, __FILE__, __LINE__);                  \
  } while (0)

#if defined(PAYCORE_INVARIANTS)
#define PAYCORE_DEBUG_ASSERT(expr) PAYCORE_ASSERT(expr)
#else
#define PAYCORE_DEBUG_ASSERT(expr) \
  do {                             \
  } while (0)
#endif
