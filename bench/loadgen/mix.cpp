#include "bench/loadgen/mix.hpp"

#include <charconv>

#include "base/assert.hpp"

namespace paycore::loadgen {
namespace {
constexpr std::array<std::string_view, ops_count> op_names = {
    "pay", "ext", "notify", "get", "refund", "batch", "list", "open_account", "deposit",
    "mandate"};

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}
}  // namespace

std::string_view op_name(Op op) {
  const auto index = static_cast<std::size_t>(op);
  PAYCORE_ASSERT(index < ops_count);
  return op_names[index];
}

Op Mix::pick(std::uint64_t draw) const {
  PAYCORE_ASSERT_GT(total, 0u);
  PAYCORE_ASSERT_LT(draw, total);
  std::uint64_t upto = 0;
  for (std::size_t i = 0; i < mix_ops_count; ++i) {
    upto += weights[i];
    if (draw < upto) return static_cast<Op>(i);
  }
  PAYCORE_ASSERT(false && "weights do not add up to total");
  return Op::pay;
}

std::string Mix::to_string() const {
  std::string text;
  for (std::size_t i = 0; i < mix_ops_count; ++i) {
    if (weights[i] == 0) continue;
    if (!text.empty()) text += ',';
    text += op_names[i];
    text += '=';
    text += std::to_string(weights[i]);
  }
  return text;
}

MixParseResult parse_mix(std::string_view text) {
  MixParseResult result;
  std::array<bool, mix_ops_count> seen{};
  std::uint64_t total = 0;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      result.error = "mix item '" + std::string(item) + "' is not name=weight";
      return result;
    }
    const std::string_view name = trim(item.substr(0, equals));
    const std::string_view number = trim(item.substr(equals + 1));
    std::size_t op = mix_ops_count;
    for (std::size_t i = 0; i < mix_ops_count; ++i) {
      if (op_names[i] == name) op = i;
    }
    if (op == mix_ops_count) {
      result.error = "unknown operation '" + std::string(name) +
                     "' in mix (known: pay, ext, notify, get, refund, batch, list)";
      return result;
    }
    if (seen[op]) {
      result.error = "operation '" + std::string(name) + "' appears twice in mix";
      return result;
    }
    seen[op] = true;
    std::uint32_t weight = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), weight);
    if (ec != std::errc{} || end != number.data() + number.size() || number.empty() ||
        weight > mix_weight_max) {
      result.error = "weight of '" + std::string(name) + "' must be an integer 0.." +
                     std::to_string(mix_weight_max) + ", not '" + std::string(number) + "'";
      return result;
    }
    result.mix.weights[op] = weight;
    total += weight;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (total == 0) {
    result.error = "mix has no operation with a non-zero weight";
    return result;
  }
  static_assert(mix_weight_max * mix_ops_count < UINT32_MAX);
  result.mix.total = static_cast<std::uint32_t>(total);
  return result;
}

}  // namespace paycore::loadgen
