#include <gtest/gtest.h>

#include "core/money.hpp"

namespace paycore {
namespace {

TEST(Money, CommonCurrenciesHaveTwoDecimals) {
  for (const char* code : {"CNY", "USD", "EUR", "GBP", "HKD", "SGD", "AUD", "CHF"}) {
    const auto c = currency_from_code(code);
    ASSERT_TRUE(c.has_value()) << code;
    EXPECT_EQ(currency_exponent(*c), 2) << code;
    EXPECT_EQ(currency_code(*c), code);
  }
}

TEST(Money, ZeroDecimalCurrencies) {
  for (const char* code : {"JPY", "KRW", "VND", "CLP", "ISK", "XAF"}) {
    EXPECT_EQ(currency_exponent(*currency_from_code(code)), 0) << code;
  }
}

TEST(Money, ThreeDecimalCurrencies) {
  for (const char* code : {"BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"}) {
    EXPECT_EQ(currency_exponent(*currency_from_code(code)), 3) << code;
  }
}

TEST(Money, UnknownOrMalformedCodesAreRefused) {
  for (const char* code : {"", "cny", "CN", "CNYY", "XYZ", "C1Y", "XAU"}) {
    EXPECT_FALSE(currency_from_code(code).has_value()) << code;
  }
}

TEST(Money, CheckedArithmeticDetectsOverflow) {
  Amount out = 7;
  EXPECT_FALSE(checked_add(INT64_MAX, 1, &out));
  EXPECT_EQ(out, 7);
  EXPECT_FALSE(checked_sub(INT64_MIN, 1, &out));
  EXPECT_TRUE(checked_add(40, 2, &out));
  EXPECT_EQ(out, 42);
}

TEST(Money, AmountRange) {
  EXPECT_FALSE(amount_is_valid(0, 100));
  EXPECT_FALSE(amount_is_valid(-1, 100));
  EXPECT_TRUE(amount_is_valid(100, 100));
  EXPECT_FALSE(amount_is_valid(101, 100));
}

TEST(Money, DecimalParsingIsExact) {
  const Currency cny = *currency_from_code("CNY");
  EXPECT_EQ(parse_decimal_amount("12.34", cny), 1234);
  EXPECT_EQ(parse_decimal_amount("12.3", cny), 1230);
  EXPECT_EQ(parse_decimal_amount("12", cny), 1200);
  EXPECT_EQ(parse_decimal_amount("0.01", cny), 1);
  EXPECT_EQ(parse_decimal_amount("-0.5", cny), -50);
  EXPECT_EQ(parse_decimal_amount("100.", cny), 10000);
  EXPECT_EQ(parse_decimal_amount("1000", *currency_from_code("JPY")), 1000);
  EXPECT_EQ(parse_decimal_amount("1.234", *currency_from_code("BHD")), 1234);
}

TEST(Money, DecimalParsingRefusesTooManyDecimalsAndJunk) {
  const Currency cny = *currency_from_code("CNY");
  for (const char* text : {"12.345", "1.2.3", "", "-", ".", "1e3", "12,34", " 1", "+1", "abc"}) {
    EXPECT_FALSE(parse_decimal_amount(text, cny).has_value()) << text;
  }
  EXPECT_FALSE(parse_decimal_amount("1.5", *currency_from_code("JPY")).has_value());
  EXPECT_FALSE(parse_decimal_amount("99999999999999999999", cny).has_value());
  EXPECT_FALSE(parse_decimal_amount("92233720368547758.08", cny).has_value());
}

}  // namespace
}  // namespace paycore
