#include "money.hpp"

#include <array>
#include <iterator>

#include "base/assert.hpp"

namespace paycore {
namespace {

struct CurrencyInfo {
  std::string_view code;
  int exponent;
};

// ISO 4217 active currencies and their minor-unit exponents (funds codes included, precious
// metals and test codes left out). Order is part of nothing on disk: snapshots and logs store
// the three-letter code, never the index.
constexpr CurrencyInfo table[] = {
    {"", 0},    // index 0: no currency
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2},
    {"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2},
    {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BOV", 2}, {"BRL", 2},
    {"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2},
    {"CHE", 2}, {"CHF", 2}, {"CHW", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2},
    {"COU", 2}, {"CRC", 2}, {"CUC", 2}, {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0},
    {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2},
    {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2},
    {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2}, {"HTG", 2}, {"HUF", 2},
    {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"ISK", 0}, {"JMD", 2},
    {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KPW", 2},
    {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2},
    {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2},
    {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2}, {"MWK", 2},
    {"MXN", 2}, {"MXV", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2}, {"NIO", 2},
    {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2}, {"PGK", 2},
    {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2}, {"RSD", 2},
    {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2},
    {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SLL", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2},
    {"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2},
    {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2},
    {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0}, {"UYU", 2}, {"UYW", 4}, {"UZS", 2},
    {"VED", 2}, {"VES", 2}, {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0}, {"XCD", 2},
    {"XCG", 2}, {"XOF", 0}, {"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2},
    {"ZWL", 2},
};
constexpr std::size_t table_size = std::size(table);
static_assert(table_size < 256, "Currency indexes fit comfortably in 16 bits");

constexpr int letters = 26;

// Direct lookup by the three letters: 26^3 slots, built once.
struct CodeIndex {
  std::array<std::uint16_t, letters * letters * letters> slots{};
  CodeIndex() {
    for (std::size_t i = 1; i < table_size; ++i) {
      const std::string_view code = table[i].code;
      const std::size_t slot = static_cast<std::size_t>(
          ((code[0] - 'A') * letters + (code[1] - 'A')) * letters + (code[2] - 'A'));
      if (slots[slot] == 0) slots[slot] = static_cast<std::uint16_t>(i);  // first one wins
    }
  }
};

const CodeIndex& code_index() {
  static const CodeIndex index;
  return index;
}

}  // namespace

std::optional<Currency> currency_from_code(std::string_view code) {
  if (code.size() != 3) return std::nullopt;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return std::nullopt;
  }
  const std::size_t slot = static_cast<std::size_t>(
      ((code[0] - 'A') * letters + (code[1] - 'A')) * letters + (code[2] - 'A'));
  const std::uint16_t index = code_index().slots[slot];
  if (index == 0) return std::nullopt;
  return Currency{index};
}

std::string_view currency_code(Currency currency) {
  if (currency.index >= table_size) return {};
  return table[currency.index].code;
}

int currency_exponent(Currency currency) {
  PAYCORE_ASSERT(currency.index < table_size);
  return table[currency.index].exponent;
}

std::uint16_t currency_table_size() { return static_cast<std::uint16_t>(table_size); }

std::optional<Amount> parse_decimal_amount(std::string_view text, Currency currency) {
  if (!currency.valid() || currency.index >= table_size) return std::nullopt;
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  const int exponent = table[currency.index].exponent;
  Amount value = 0;
  int decimals = -1;  // -1: no '.' seen yet
  bool any_digit = false;
  for (char c : text) {
    if (c == '.') {
      if (decimals >= 0) return std::nullopt;
      decimals = 0;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    if (decimals >= 0 && ++decimals > exponent) return std::nullopt;
    any_digit = true;
    if (__builtin_mul_overflow(value, Amount{10}, &value)) return std::nullopt;
    if (__builtin_add_overflow(value, Amount{c - '0'}, &value)) return std::nullopt;
  }
  if (!any_digit) return std::nullopt;
  for (int scale = decimals < 0 ? 0 : decimals; scale < exponent; ++scale) {
    if (__builtin_mul_overflow(value, Amount{10}, &value)) return std::nullopt;
  }
  return negative ? -value : value;
}

}  // namespace paycore
