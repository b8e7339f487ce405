// The webhook signature (HMAC-SHA256 by base/hmac_sha256.hpp) and the header's parse.
#include "webhooks/signature.hpp"

#include <openssl/crypto.h>

#include <charconv>
#include <span>

#include "base/assert.hpp"
#include "base/hex.hpp"
#include "base/hmac_sha256.hpp"

namespace paycore::webhooks {
namespace {

constexpr std::size_t hmac_bytes = hmac_sha256_bytes;
static_assert(signature_v1_hex_bytes == 2 * hmac_bytes);

void sign_into(std::string_view secret, std::int64_t timestamp_s, std::string_view body,
               char (&out_hex)[signature_v1_hex_bytes]) {
  PAYCORE_ASSERT_LE(secret.size(), secret_bytes_max);
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, timestamp_s);
  PAYCORE_ASSERT(error == std::errc());
  unsigned char mac[hmac_bytes];
  hmac_sha256(secret, {std::string_view(digits, static_cast<std::size_t>(end - digits)), ".", body},
              mac);
  hex_encode(std::span<const unsigned char>(mac, hmac_bytes), out_hex);
}

// "1700000000": 1..18 digits, no sign (18 digits cannot overflow int64).
bool parse_seconds(std::string_view text, std::int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

struct ParsedHeader {
  bool has_timestamp = false;
  std::int64_t timestamp_s = 0;
  std::size_t v1_count = 0;
  std::string_view v1[signature_v1_count_max];
};

// Splits "t=..,v1=..,v0=.." into its parts; false when malformed.
bool parse_header(std::string_view header, ParsedHeader* parsed) {
  if (header.size() > signature_header_bytes_max) return false;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const std::size_t equals = element.find('=');
    if (equals == std::string_view::npos) return false;
    const std::string_view key = element.substr(0, equals);
    const std::string_view value = element.substr(equals + 1);
    if (key == "t") {
      if (parsed->has_timestamp || !parse_seconds(value, &parsed->timestamp_s)) return false;
      parsed->has_timestamp = true;
    } else if (key == "v1") {
      if (parsed->v1_count == signature_v1_count_max) return false;
      parsed->v1[parsed->v1_count++] = value;
    }
  }
  return true;
}

}  // namespace

std::string sign_v1(std::string_view secret, std::int64_t timestamp_s, std::string_view body) {
  char hex[signature_v1_hex_bytes];
  sign_into(secret, timestamp_s, body, hex);
  return std::string(hex, signature_v1_hex_bytes);
}

std::string signature_header_value(std::string_view secret, std::int64_t timestamp_s,
                                   std::string_view body) {
  std::string value = "t=" + std::to_string(timestamp_s) + ",v1=";
  value += sign_v1(secret, timestamp_s, body);
  return value;
}

std::string_view signature_check_name(SignatureCheck check) {
  switch (check) {
    case SignatureCheck::kValid: return "valid";
    case SignatureCheck::kMalformed: return "malformed";
    case SignatureCheck::kNoTimestamp: return "no_timestamp";
    case SignatureCheck::kNoV1: return "no_v1";
    case SignatureCheck::kTimestampTooOld: return "timestamp_too_old";
    case SignatureCheck::kTimestampTooNew: return "timestamp_too_new";
    case SignatureCheck::kMismatch: return "mismatch";
  }
  return "unknown";
}

SignatureCheck verify_signature(std::string_view header, std::string_view secret,
                                std::string_view body, std::int64_t now_s,
                                std::int64_t tolerance_s) {
  PAYCORE_ASSERT_GE(tolerance_s, 0);
  ParsedHeader parsed;
  if (!parse_header(header, &parsed)) return SignatureCheck::kMalformed;
  if (!parsed.has_timestamp) return SignatureCheck::kNoTimestamp;
  if (parsed.v1_count == 0) return SignatureCheck::kNoV1;
  if (secret.empty() || secret.size() > secret_bytes_max) return SignatureCheck::kMismatch;
  char expected[signature_v1_hex_bytes];
  sign_into(secret, parsed.timestamp_s, body, expected);
  bool matched = false;
  for (std::size_t i = 0; i < parsed.v1_count; ++i) {
    const std::string_view given = parsed.v1[i];
    // The length is public (always 64); only the bytes are compared in constant time.
    if (given.size() != signature_v1_hex_bytes) continue;
    matched |= CRYPTO_memcmp(given.data(), expected, signature_v1_hex_bytes) == 0;
  }
  if (!matched) return SignatureCheck::kMismatch;
  if (parsed.timestamp_s < now_s - tolerance_s) return SignatureCheck::kTimestampTooOld;
  if (parsed.timestamp_s > now_s + tolerance_s) return SignatureCheck::kTimestampTooNew;
  return SignatureCheck::kValid;
}

}  // namespace paycore::webhooks
