// Times, CSV fields and exact decimal conversion.

#include <gtest/gtest.h>

#include "recon/report.hpp"
#include "recon/text.hpp"
#include "core/money.hpp"
#include "test_util.hpp"

namespace paycore::recon {
namespace {

using test::currency;

TEST(ReconText, Rfc3339ParsesZuluOffsetsAndFractions) {
  EXPECT_EQ(parse_statement_time_us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_statement_time_us("2026-11-26T08:00:01Z"), 1'795'680'001'000'000);
  EXPECT_EQ(parse_statement_time_us("2026-11-26T16:00:01+08:00"), 1'795'680'001'000'000);
  EXPECT_EQ(parse_statement_time_us("2026-11-26T08:00:01.5Z"), 1'795'680'001'500'000);
  EXPECT_EQ(parse_statement_time_us("2026-11-26T05:19:14.123456Z"), 1'795'670'354'123'456);
  EXPECT_EQ(parse_statement_time_us("2024-02-29T00:00:00Z"), 1'709'164'800'000'000);  // leap day
}

TEST(ReconText, Rfc3339RejectsMalformedTimes) {
  for (const char* bad : {"", "2026-11-26", "2026-11-26 08:00:01Z", "2026-11-26T08:00:01",
                          "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-26T24:00:00Z",
                          "2026-11-26T08:00:01.Z", "2026-11-26T08:00:01.1234567Z",
                          "2026-11-26T08:00:01+0800", "2026-11-26T08:00:01Zjunk"}) {
    EXPECT_FALSE(parse_statement_time_us(bad).has_value()) << bad;
  }
}

TEST(ReconText, FormatRfc3339RoundTrips) {
  for (const std::int64_t us : {std::int64_t{0}, std::int64_t{1'795'670'354'123'456},
                                std::int64_t{-1}, std::int64_t{951'782'400'000'001}}) {
    EXPECT_EQ(parse_statement_time_us(format_rfc3339_us(us)), us);
  }
  EXPECT_EQ(format_rfc3339_us(1'795'670'354'123'456), "2026-11-26T05:19:14.123456Z");
}

TEST(ReconText, BillTimesAreBeijingTime) {
  EXPECT_EQ(parse_local_datetime_us("2026-11-26 16:00:01", 480),
            parse_statement_time_us("2026-11-26T08:00:01Z"));
  EXPECT_FALSE(parse_local_datetime_us("2026-11-26T16:00:01", 480).has_value());
  EXPECT_FALSE(parse_local_datetime_us("2026/11/26 16:00:01", 480).has_value());
}

TEST(ReconText, DecimalYuanConvertsExactlyWhereDoublesDoNot) {
  const Currency cny = currency("CNY");
  // Values whose double times 100 truncates to one cent less.
  EXPECT_EQ(parse_decimal_amount("0.29", cny), 29);
  EXPECT_EQ(parse_decimal_amount("1.15", cny), 115);
  EXPECT_EQ(parse_decimal_amount("19.99", cny), 1999);
  EXPECT_EQ(parse_decimal_amount("4.35", cny), 435);
  EXPECT_EQ(parse_decimal_amount("0.1", cny), 10);
  EXPECT_EQ(parse_decimal_amount("100", cny), 10000);
  EXPECT_EQ(parse_decimal_amount("-2.34", cny), -234);
  EXPECT_EQ(parse_decimal_amount("92233720368547758.07", cny), INT64_MAX);
  EXPECT_FALSE(parse_decimal_amount("92233720368547758.08", cny).has_value());  // overflow
  EXPECT_FALSE(parse_decimal_amount("5.001", cny).has_value());  // more decimals than CNY has
  EXPECT_FALSE(parse_decimal_amount("1e3", cny).has_value());
  EXPECT_FALSE(parse_decimal_amount("1,000.00", cny).has_value());
  EXPECT_FALSE(parse_decimal_amount("", cny).has_value());
  EXPECT_EQ(parse_decimal_amount("1500", currency("JPY")), 1500);
  EXPECT_FALSE(parse_decimal_amount("1500.5", currency("JPY")).has_value());
  EXPECT_EQ(parse_decimal_amount("1.234", currency("BHD")), 1234);
}

TEST(ReconText, FormatAmountIsExact) {
  EXPECT_EQ(format_amount(1234, currency("CNY")), "12.34 CNY");
  EXPECT_EQ(format_amount(5, currency("CNY")), "0.05 CNY");
  EXPECT_EQ(format_amount(-205, currency("CNY")), "-2.05 CNY");
  EXPECT_EQ(format_amount(1500, currency("JPY")), "1500 JPY");
  AmountSum big = INT64_MAX;
  big *= 10;
  EXPECT_EQ(format_amount(big, currency("CNY")), "922337203685477580.70 CNY");
}

TEST(ReconText, CsvSplitHandlesQuotesAndEmptyFields) {
  std::vector<std::string_view> fields;
  std::string scratch;
  ASSERT_TRUE(split_csv_line("a,,\"b,c\",\"say \"\"hi\"\"\",", &fields, &scratch));
  ASSERT_EQ(fields.size(), 5u);
  EXPECT_EQ(fields[0], "a");
  EXPECT_EQ(fields[1], "");
  EXPECT_EQ(fields[2], "b,c");
  EXPECT_EQ(fields[3], "say \"hi\"");
  EXPECT_EQ(fields[4], "");
  EXPECT_FALSE(split_csv_line("a,\"open", &fields, &scratch));
  EXPECT_FALSE(split_csv_line("\"x\"y,b", &fields, &scratch));
}

TEST(ReconText, GbkRoundTripsThroughIconv) {
  std::string gbk, utf8;
  ASSERT_TRUE(utf8_to_gbk("支付宝交易号", &gbk));
  EXPECT_EQ(gbk, "\xD6\xA7\xB8\xB6\xB1\xA6\xBD\xBB\xD2\xD7\xBA\xC5");
  ASSERT_TRUE(gbk_to_utf8(gbk, &utf8));
  EXPECT_EQ(utf8, "支付宝交易号");
  EXPECT_FALSE(gbk_to_utf8("\x81", &utf8));  // a lead byte with nothing after it
}

TEST(ReconText, JsonAndCsvEscaping) {
  std::string json;
  append_json_string(json, "a\"b\\c\n\x01");
  EXPECT_EQ(json, "\"a\\\"b\\\\c\\n\\u0001\"");
  std::string csv;
  append_csv_field(&csv, "x,\"y\"");
  EXPECT_EQ(csv, "\"x,\"\"y\"\"\"");
}

}  // namespace
}  // namespace paycore::recon
