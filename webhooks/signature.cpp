// HMAC-SHA256 with OpenSSL 3's EVP_MAC (the HMAC_CTX functions are deprecated in 3.0) and the
// header's parse. The one MAC context per thread follows auth/signing.cpp: one fetch per process,
// one EVP_MAC_init (key schedule) per signature.
#include "webhooks/signature.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <span>

#include "base/assert.hpp"
#include "base/hex.hpp"

namespace paycore::webhooks {
namespace {

constexpr std::size_t hmac_bytes = 32;
static_assert(signature_v1_hex_bytes == 2 * hmac_bytes);

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  PAYCORE_ASSERT(mac != nullptr);
  return mac;
}

struct ThreadHmac {
  EVP_MAC_CTX* context = nullptr;
  ThreadHmac() {
    context = EVP_MAC_CTX_new(hmac_algorithm());
    PAYCORE_ASSERT(context != nullptr);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    const int set = EVP_MAC_CTX_set_params(context, params);
    PAYCORE_ASSERT(set == 1);
  }
  ~ThreadHmac() { EVP_MAC_CTX_free(context); }
  ThreadHmac(const ThreadHmac&) = delete;
  ThreadHmac& operator=(const ThreadHmac&) = delete;
};

void hmac_update(EVP_MAC_CTX* context, std::string_view text) {
  const int updated =
      EVP_MAC_update(context, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  PAYCORE_ASSERT(updated == 1);
}

// OpenSSL failures here mean a broken library: stop.
void sign_into(std::string_view secret, std::int64_t timestamp_s, std::string_view body,
               char (&out_hex)[signature_v1_hex_bytes]) {
  PAYCORE_ASSERT(!secret.empty());  // an empty key would make EVP_MAC_init keep the previous one
  PAYCORE_ASSERT_LE(secret.size(), secret_bytes_max);
  thread_local ThreadHmac hmac;
  const int initialised = EVP_MAC_init(
      hmac.context, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), nullptr);
  PAYCORE_ASSERT(initialised == 1);
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, timestamp_s);
  PAYCORE_ASSERT(error == std::errc());
  hmac_update(hmac.context, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  hmac_update(hmac.context, ".");
  hmac_update(hmac.context, body);
  unsigned char mac[hmac_bytes];
  std::size_t mac_bytes = 0;
  const int finished = EVP_MAC_final(hmac.context, mac, &mac_bytes, hmac_bytes);
  PAYCORE_ASSERT_EQ(finished, 1);
  PAYCORE_ASSERT_EQ(mac_bytes, hmac_bytes);
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
