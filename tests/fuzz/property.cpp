// How a broken property is reported: see fuzz_target.hpp.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "fuzz_target.hpp"

namespace paycore::fuzz {

void property_failed(const char* target, const char* what, const char* file, int line) {
  const std::string message = std::string("fuzz target ") + target + ": property failed: " +
                              what + " at " + file + ":" + std::to_string(line);
#if defined(PAYCORE_LIBFUZZER)
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::abort();  // libFuzzer saves the input as crash-<sha1>
#else
  throw std::runtime_error(message);
#endif
}

}  // namespace paycore::fuzz
