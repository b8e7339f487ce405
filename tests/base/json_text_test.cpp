// JSON string escaping (base/json_text.hpp): what is escaped, how, and a bounded sink.

#include "base/json_text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace paycore {
namespace {

TEST(BaseJsonText, QuoteAndBackslashAreEscaped) {
  EXPECT_EQ(json_escape("a\"b\\c"), "a\\\"b\\\\c");
}

TEST(BaseJsonText, NewlineReturnTabUseShortEscapes) {
  EXPECT_EQ(json_escape("\n\r\t"), "\\n\\r\\t");
}

TEST(BaseJsonText, OtherControlCharsAreUnicodeEscaped) {
  EXPECT_EQ(json_escape(std::string_view("\x00\x01\x1f", 3)), "\\u0000\\u0001\\u001f");
}

TEST(BaseJsonText, DeleteAndUtf8AreCopied) {
  EXPECT_EQ(json_escape("\x7f"), "\x7f");
  EXPECT_EQ(json_escape("支付 ok"), "支付 ok");
}

TEST(BaseJsonText, AppendJsonStringAddsQuotes) {
  std::string out = "x=";
  append_json_string(out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, "x=\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(BaseJsonText, FullSinkStopsTheEscape) {
  std::string out;
  const auto bounded = [&out](std::string_view bytes) {
    if (out.size() + bytes.size() > 4) return false;
    out += bytes;
    return true;
  };
  EXPECT_FALSE(json_escape_into("ab\"cdef", bounded));
  EXPECT_TRUE(json_escape_into("ab", [](std::string_view) { return true; }));
}

TEST(BaseJsonText, UnescapedTextIsAppendedInOneRun) {
  int appends_count = 0;
  const bool ok = json_escape_into("plain text without escapes", [&](std::string_view) {
    ++appends_count;
    return true;
  });
  EXPECT_TRUE(ok);
  EXPECT_EQ(appends_count, 1);
}

}  // namespace
}  // namespace paycore
