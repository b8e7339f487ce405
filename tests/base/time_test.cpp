// RFC 3339 with microseconds (base/time.hpp): formatting, parsing under both rule sets, and
// one test per way a time is refused.

#include "base/time.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace paycore {
namespace {

constexpr std::int64_t example_us = 1'795'670'354'123'456;  // 2026-11-26T05:19:14.123456Z

std::optional<std::int64_t> api(std::string_view text) {
  std::int64_t unix_us = 0;
  if (!parse_rfc3339_us(text, &unix_us)) return std::nullopt;
  return unix_us;
}

std::optional<std::int64_t> statement(std::string_view text) {
  std::int64_t unix_us = 0;
  if (!parse_rfc3339_us(text, &unix_us, rfc3339_statement_rules)) return std::nullopt;
  return unix_us;
}

TEST(BaseTime, FormatsMicrosecondsInUtc) {
  EXPECT_EQ(format_rfc3339_us(example_us), "2026-11-26T05:19:14.123456Z");
  EXPECT_EQ(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
}

TEST(BaseTime, FormatsInstantsBefore1970) {
  EXPECT_EQ(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(BaseTime, FixedFormatRefusesYearsPast9999) {
  char text[rfc3339_us_bytes];
  const std::int64_t year_10000_us = 253'402'300'800'000'000;
  EXPECT_FALSE(format_rfc3339_us(year_10000_us, text));
  EXPECT_TRUE(format_rfc3339_us(year_10000_us - 1, text));
  EXPECT_EQ(std::string(text, rfc3339_us_bytes), "9999-12-31T23:59:59.999999Z");
}

TEST(BaseTime, StringFormatWidensYearsPast9999) {
  EXPECT_EQ(format_rfc3339_us(253'402'300'800'000'000), "10000-01-01T00:00:00.000000Z");
}

TEST(BaseTime, ParsesZuluOffsetsAndFractions) {
  EXPECT_EQ(api("2026-11-26T05:19:14.123456Z"), example_us);
  EXPECT_EQ(api("2026-11-26T13:19:14.123456+08:00"), example_us);
  EXPECT_EQ(api("2026-11-25T23:19:14.123456-06:00"), example_us);
  EXPECT_EQ(api("2026-11-26T05:19:14.1z"), example_us - 23'456);
  EXPECT_EQ(api("2024-02-29T00:00:00Z"), 1'709'164'800'000'000);  // leap day
}

TEST(BaseTime, FormatThenParseRoundTrips) {
  for (const std::int64_t us : {std::int64_t{0}, example_us, std::int64_t{-1}}) {
    EXPECT_EQ(api(format_rfc3339_us(us)), us);
    EXPECT_EQ(statement(format_rfc3339_us(us)), us);
  }
}

TEST(BaseTime, MissingZoneIsRefused) { EXPECT_FALSE(api("2026-11-26T05:19:14")); }
TEST(BaseTime, OffsetWithoutColonIsRefused) { EXPECT_FALSE(api("2026-11-26T05:19:14+0800")); }
TEST(BaseTime, OffsetHourPast23IsRefused) { EXPECT_FALSE(api("2026-11-26T05:19:14+24:00")); }
TEST(BaseTime, TextAfterZoneIsRefused) { EXPECT_FALSE(api("2026-11-26T05:19:14Zjunk")); }
TEST(BaseTime, SpaceSeparatorIsRefused) { EXPECT_FALSE(api("2026-11-26 05:19:14Z")); }
TEST(BaseTime, DateOnlyIsRefused) { EXPECT_FALSE(api("2026-11-26")); }
TEST(BaseTime, EmptyIsRefused) { EXPECT_FALSE(api("")); }
TEST(BaseTime, MonthThirteenIsRefused) { EXPECT_FALSE(api("2026-13-01T00:00:00Z")); }
TEST(BaseTime, February30IsRefused) { EXPECT_FALSE(api("2026-02-30T00:00:00Z")); }
TEST(BaseTime, February29OfCommonYearIsRefused) { EXPECT_FALSE(api("2025-02-29T00:00:00Z")); }
TEST(BaseTime, Hour24IsRefused) { EXPECT_FALSE(api("2026-11-26T24:00:00Z")); }
TEST(BaseTime, EmptyFractionIsRefused) { EXPECT_FALSE(api("2026-11-26T05:19:14.Z")); }
TEST(BaseTime, NonDigitInDateIsRefused) { EXPECT_FALSE(api("2026-1a-26T05:19:14Z")); }

TEST(BaseTime, ApiTruncatesDigitsPastMicroseconds) {
  EXPECT_EQ(api("2026-11-26T05:19:14.123456789Z"), example_us);
  EXPECT_FALSE(api("2026-11-26T05:19:14.1234567891Z"));  // a tenth digit
}

TEST(BaseTime, StatementRefusesDigitsPastMicroseconds) {
  EXPECT_FALSE(statement("2026-11-26T05:19:14.1234567Z"));
}

TEST(BaseTime, ApiAcceptsLowercaseTStatementDoesNot) {
  EXPECT_EQ(api("2026-11-26t05:19:14.123456Z"), example_us);
  EXPECT_FALSE(statement("2026-11-26t05:19:14.123456Z"));
}

TEST(BaseTime, LeapSecondIsRefusedByApiReadByStatement) {
  EXPECT_FALSE(api("2016-12-31T23:59:60Z"));
  EXPECT_EQ(statement("2016-12-31T23:59:60Z"), api("2017-01-01T00:00:00Z"));
}

TEST(BaseTime, WallTimeReadsAsUtc) {
  std::int64_t seconds = 0;
  ASSERT_TRUE(parse_wall_time_s("2026-11-26 16:00:01", ' ', false, &seconds));
  EXPECT_EQ(seconds, 1'795'708'801);
  EXPECT_FALSE(parse_wall_time_s("2026/11/26 16:00:01", ' ', false, &seconds));
}

TEST(BaseTime, WallClockIsAfter2020) {
  EXPECT_GT(wall_clock_us(), std::int64_t{1'577'836'800'000'000});
}

}  // namespace
}  // namespace paycore
