#pragma once
// Lowercase hexadecimal (RFC 4648 section 8, in lowercase): request signatures (docs/api.md
// "Authentication"), generated secrets, ids and checksums in tool output.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace paycore {

inline constexpr char hex_digits[] = "0123456789abcdef";

// Writes 2 * bytes.size() lowercase hex digits to out[0...] (no terminating NUL).
inline void hex_encode(std::span<const unsigned char> bytes, char* out) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = hex_digits[bytes[i] >> 4];
    out[2 * i + 1] = hex_digits[bytes[i] & 0xf];
  }
}

// Appends the lowercase hex of `bytes`, two digits per byte.
inline void append_hex(std::string& out, std::span<const unsigned char> bytes) {
  const std::size_t at = out.size();
  out.resize(at + 2 * bytes.size());
  hex_encode(bytes, out.data() + at);
}

// Appends the low `digits_count` hex digits of `value`, most significant first, zero-padded
// (e.g. value 0xab, 4 digits: "00ab"). digits_count is 1..16.
inline void append_hex(std::string& out, std::uint64_t value, int digits_count) {
  for (int shift = (digits_count - 1) * 4; shift >= 0; shift -= 4) {
    out += hex_digits[(value >> shift) & 0xf];
  }
}

}  // namespace paycore
