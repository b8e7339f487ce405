#pragma once
// Assertions that stay on in release builds (NDEBUG removes `assert`). Use PAYCORE_ASSERT for
// cheap invariants whose violation means the state can no longer be trusted: the process stops
// rather than answer from a corrupt state. PAYCORE_DEBUG_ASSERT is for checks too costly for
// the hot path; it is compiled in when PAYCORE_INVARIANTS is set (debug and sanitizer presets).
//
// An assertion never does the work (docs/style.md rule 5): its argument has no side effect, so
// compiling it out changes nothing. clang-tidy's bugprone-assert-side-effect checks this for
// these macros (.clang-tidy). One condition per assertion; PAYCORE_ASSERT_EQ/NE/LT/LE/GT/GE
// print both values when they fail, which a bare `a < b` cannot.

#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace paycore::detail {

[[noreturn]] [[gnu::cold]] inline void assert_failed(const char* expr, const char* file,
                                                     int line) noexcept {
  std::fprintf(stderr, "paycore: assertion failed: %s at %s:%d\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}

// Integers and enums print as numbers; anything else prints as "?".
template <typename T>
void assert_print_value(const T& value) noexcept {
  if constexpr (std::is_enum_v<T>) {
    assert_print_value(static_cast<std::underlying_type_t<T>>(value));
  } else if constexpr (std::is_same_v<T, bool>) {
    std::fputs(value ? "true" : "false", stderr);
  } else if constexpr (std::signed_integral<T>) {
    std::fprintf(stderr, "%lld", static_cast<long long>(value));
  } else if constexpr (std::unsigned_integral<T>) {
    std::fprintf(stderr, "%llu", static_cast<unsigned long long>(value));
  } else if constexpr (std::is_pointer_v<T>) {
    std::fprintf(stderr, "%p", static_cast<const void*>(value));
  } else {
    std::fputs("?", stderr);
  }
}

template <typename A, typename B>
[[noreturn]] [[gnu::cold]] void assert_compare_failed(const char* expr, const A& a, const B& b,
                                                      const char* file, int line) noexcept {
  std::fprintf(stderr, "paycore: assertion failed: %s (", expr);
  assert_print_value(a);
  std::fputs(" vs ", stderr);
  assert_print_value(b);
  std::fprintf(stderr, ") at %s:%d\n", file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace paycore::detail

#define PAYCORE_ASSERT(expr)                                                        \
  do {                                                                              \
    if (!(expr)) [[unlikely]]                                                       \
      ::paycore::detail::assert_failed(#expr, __FILE__, __LINE__);                  \
  } while (0)

// Compares once, prints both sides on failure. Arguments are evaluated exactly once.
#define PAYCORE_ASSERT_COMPARE_(a, op, b)                                                   \
  do {                                                                                      \
    const auto& paycore_assert_a_ = (a);                                                    \
    const auto& paycore_assert_b_ = (b);                                                    \
    if (!(paycore_assert_a_ op paycore_assert_b_)) [[unlikely]]                             \
      ::paycore::detail::assert_compare_failed(#a " " #op " " #b, paycore_assert_a_,        \
                                               paycore_assert_b_, __FILE__, __LINE__);      \
  } while (0)

#define PAYCORE_ASSERT_EQ(a, b) PAYCORE_ASSERT_COMPARE_(a, ==, b)
#define PAYCORE_ASSERT_NE(a, b) PAYCORE_ASSERT_COMPARE_(a, !=, b)
#define PAYCORE_ASSERT_LT(a, b) PAYCORE_ASSERT_COMPARE_(a, <, b)
#define PAYCORE_ASSERT_LE(a, b) PAYCORE_ASSERT_COMPARE_(a, <=, b)
#define PAYCORE_ASSERT_GT(a, b) PAYCORE_ASSERT_COMPARE_(a, >, b)
#define PAYCORE_ASSERT_GE(a, b) PAYCORE_ASSERT_COMPARE_(a, >=, b)

#if defined(PAYCORE_INVARIANTS)
#define PAYCORE_DEBUG_ASSERT(expr) PAYCORE_ASSERT(expr)
#else
#define PAYCORE_DEBUG_ASSERT(expr) \
  do {                             \
  } while (0)
#endif
