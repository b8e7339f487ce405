#pragma once
// Money is an int64 count of a currency's minor unit; never a double. Currencies are ISO 4217
// codes, held in memory as a small index into the table in money.cpp.

#include <cstdint>
#include <optional>
#include <string_view>

namespace paycore {

using Amount = std::int64_t;  // minor units

// Index into the ISO 4217 table; 0 is "no currency".
struct Currency {
  std::uint16_t index = 0;
  constexpr bool valid() const { return index != 0; }
  friend constexpr bool operator==(Currency, Currency) = default;
};

// "CNY" -> Currency; nullopt for anything not in the table (case-sensitive, exactly 3 letters).
std::optional<Currency> currency_from_code(std::string_view code);
// The three-letter code; "" for an invalid currency.
std::string_view currency_code(Currency currency);
// Digits after the decimal point of the minor unit: 2 for CNY, 0 for JPY, 3 for BHD.
int currency_exponent(Currency currency);
// Number of entries in the table, including the invalid entry 0.
std::uint16_t currency_table_size();

// The largest amount any single operation may carry unless configured lower; chosen so that
// sums of many amounts stay far from int64 overflow.
inline constexpr Amount amount_max_default = 1'000'000'000'000'000;  // 1e15 minor units

// An amount accepted for a payment, deposit or refund: 1 ..= amount_max.
constexpr bool amount_is_valid(Amount amount, Amount amount_max) {
  return amount > 0 && amount <= amount_max;
}

// Overflow-checked arithmetic; false (and *out untouched) on overflow.
[[nodiscard]] inline bool checked_add(Amount a, Amount b, Amount* out) {
  Amount sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return false;
  *out = sum;
  return true;
}
[[nodiscard]] inline bool checked_sub(Amount a, Amount b, Amount* out) {
  Amount difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) return false;
  *out = difference;
  return true;
}

// Parses a decimal major-unit string ("12.34", "-0.5", "100") into minor units of `currency`
// exactly, without floating point. Fails on more decimals than the currency allows, on
// anything but digits with one optional '.' and leading '-', and on overflow.
std::optional<Amount> parse_decimal_amount(std::string_view text, Currency currency);

}  // namespace paycore
