#pragma once
// Identifiers (account_id, merchant_id, order_id, request_id, channel_txn_id, channel names):
// 1-64 characters of [A-Za-z0-9_.:-] (docs/api.md "Conventions"), validated once at the edge.
// `Id` is the fixed-size, trivially copyable form carried inside commands and results.

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "base/assert.hpp"

namespace paycore {

inline constexpr std::size_t id_bytes_max = 64;

constexpr bool id_char_is_valid(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == ':' || c == '-';
}

namespace detail {
struct IdCharTable {
  bool valid[256] = {};
  constexpr IdCharTable() {
    for (int c = 0; c < 256; ++c) valid[c] = id_char_is_valid(static_cast<char>(c));
  }
};
inline constexpr IdCharTable id_char_table{};
}  // namespace detail

constexpr bool id_is_valid(std::string_view text) {
  if (text.empty() || text.size() > id_bytes_max) return false;
  bool ok = true;
  for (char c : text) ok &= detail::id_char_table.valid[static_cast<unsigned char>(c)];
  return ok;
}

// An id stored inline: `size` bytes of `bytes` are meaningful, the rest are zero (so that two
// equal ids are equal byte for byte, and commands encode deterministically). size 0 = absent.
struct Id {
  std::array<char, id_bytes_max> bytes{};
  std::uint8_t size = 0;

  // Copies `text` if it is a valid id; returns false (leaving *out empty) otherwise.
  [[nodiscard]] static bool from(std::string_view text, Id* out) {
    *out = Id{};
    if (!id_is_valid(text)) return false;
    std::memcpy(out->bytes.data(), text.data(), text.size());
    out->size = static_cast<std::uint8_t>(text.size());
    return true;
  }
  // Copies an id that was validated when it entered the state (no per-character check).
  static Id trusted(std::string_view text) {
    Id id;
    PAYCORE_DEBUG_ASSERT(text.size() <= id_bytes_max);
    std::memcpy(id.bytes.data(), text.data(), text.size());
    id.size = static_cast<std::uint8_t>(text.size());
    return id;
  }
  // For trusted literals and tests: an empty id if `text` is not a valid id.
  static Id of(std::string_view text) {
    Id id;
    (void)from(text, &id);
    return id;
  }

  bool empty() const { return size == 0; }
  std::string_view view() const { return {bytes.data(), size}; }
  // Fully checks the invariant: a valid id (or empty) with zero padding.
  bool well_formed() const {
    if (size > id_bytes_max) return false;
    if (size != 0 && !id_is_valid(view())) return false;
    for (std::size_t i = size; i < id_bytes_max; ++i) {
      if (bytes[i] != 0) return false;
    }
    return true;
  }
  friend bool operator==(const Id& a, const Id& b) { return a.view() == b.view(); }
};

static_assert(std::is_trivially_copyable_v<Id>);
static_assert(sizeof(Id) == id_bytes_max + 1);

}  // namespace paycore
