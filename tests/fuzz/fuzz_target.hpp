#pragma once
// One fuzz target = one function over arbitrary bytes. The same source compiles two ways:
//  - with PAYCORE_LIBFUZZER (clang, -fsanitize=fuzzer): the target is the binary's
//    LLVMFuzzerTestOneInput, and a broken property aborts so that libFuzzer saves a reproducer;
//  - without it (the normal gcc build): the target is paycore::fuzz::run_<name>, which
//    fuzz_replay_tests runs over the committed corpus and regressions, and a broken property
//    throws so that googletest reports it as a failure of that one input.
// Targets keep per-process objects (decoders, temp dirs) in function-local statics: libFuzzer
// calls them a million times.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace paycore::fuzz {

// Every target, once: X(name). The replay tests and scripts/fuzz use the same names, which are
// also the folder names under tests/fuzz/corpus/ and tests/fuzz/regressions/.
#define PAYCORE_FUZZ_TARGETS(X) \
  X(http_request)               \
  X(json_request)               \
  X(command)                    \
  X(command_record)             \
  X(wal_recovery)               \
  X(snapshot)                   \
  X(statement)                  \
  X(tls_handshake)

#define PAYCORE_FUZZ_DECLARE(name) int run_##name(const std::uint8_t* data, std::size_t size);
PAYCORE_FUZZ_TARGETS(PAYCORE_FUZZ_DECLARE)
#undef PAYCORE_FUZZ_DECLARE

// A property of the code under test does not hold for this input.
[[noreturn]] void property_failed(const char* target, const char* what, const char* file, int line);

inline std::span<const std::byte> as_bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace paycore::fuzz

#define FUZZ_CHECK(target, cond)                                                     \
  do {                                                                               \
    if (!(cond)) ::paycore::fuzz::property_failed(#target, #cond, __FILE__, __LINE__); \
  } while (0)

#if defined(PAYCORE_LIBFUZZER)
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
#define PAYCORE_FUZZ_TARGET(name)                                                       \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return ::paycore::fuzz::run_##name(data, size);                                   \
  }                                                                                     \
  int paycore::fuzz::run_##name(const std::uint8_t* data, std::size_t size)
#else
#define PAYCORE_FUZZ_TARGET(name) int paycore::fuzz::run_##name(const std::uint8_t* data, std::size_t size)
#endif
