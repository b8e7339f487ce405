#include "base/random_hex.hpp"

#include <openssl/rand.h>

#include "base/assert.hpp"
#include "base/hex.hpp"

namespace paycore {

std::string random_hex(std::size_t bytes) {
  PAYCORE_ASSERT(bytes >= 1 && bytes <= 64);
  unsigned char raw[64];
  const int random_ok = RAND_bytes(raw, static_cast<int>(bytes));
  PAYCORE_ASSERT_EQ(random_ok, 1);
  std::string text;
  append_hex(text, std::span<const unsigned char>(raw, bytes));
  return text;
}

}  // namespace paycore
