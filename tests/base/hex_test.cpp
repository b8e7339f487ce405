// Lowercase hex (base/hex.hpp).

#include "base/hex.hpp"

#include <gtest/gtest.h>

#include <string>

namespace paycore {
namespace {

TEST(BaseHex, BytesEncodeLowercaseTwoDigitsEach) {
  const unsigned char bytes[] = {0x00, 0x0f, 0xab, 0xff};
  std::string out;
  append_hex(out, bytes);
  EXPECT_EQ(out, "000fabff");
}

TEST(BaseHex, Rfc4648TestVectors) {  // RFC 4648 section 10, in lowercase
  const std::string_view text = "foobar";
  const char* expected[] = {"", "66", "666f", "666f6f", "666f6f62", "666f6f6261", "666f6f626172"};
  for (std::size_t n = 0; n <= text.size(); ++n) {
    std::string out;
    append_hex(out, {reinterpret_cast<const unsigned char*>(text.data()), n});
    EXPECT_EQ(out, expected[n]) << n;
  }
}

TEST(BaseHex, ValueIsZeroPaddedToWidth) {
  std::string out;
  append_hex(out, 0xab, 4);
  EXPECT_EQ(out, "00ab");
}

TEST(BaseHex, ValueKeepsOnlyLowDigits) {
  std::string out;
  append_hex(out, 0x1234, 2);
  EXPECT_EQ(out, "34");
}

TEST(BaseHex, FullWidthValue) {
  std::string out;
  append_hex(out, 0x0123456789abcdefULL, 16);
  EXPECT_EQ(out, "0123456789abcdef");
}

TEST(BaseHex, EncodeWritesIntoBuffer) {
  const unsigned char bytes[] = {0xde, 0xad};
  char out[4];
  hex_encode(bytes, out);
  EXPECT_EQ(std::string_view(out, 4), "dead");
}

}  // namespace
}  // namespace paycore
