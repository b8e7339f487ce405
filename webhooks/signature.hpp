#pragma once
// The signature of a webhook delivery (API.md "Events and webhooks"; Stripe's scheme):
//
//   Paycore-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>
//
// `t` is the time of the attempt (each retry signs again), so a receiver can refuse a replay of
// an old request by its age. A header may carry several `v1=` (a secret being rolled over signs
// with both); a receiver accepts when any one matches. Schemes it does not know (`v0=`, `v2=`)
// are ignored, so a later scheme can be added without breaking receivers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace paycore::webhooks {

inline constexpr std::string_view signature_header_name = "Paycore-Signature";
/// Stripe's default and API.md's: a receiver refuses a `t` further than this from its clock.
inline constexpr std::int64_t signature_tolerance_s_default = 300;
/// Bytes of one `v1` value: the hex of a 32-byte HMAC-SHA256.
inline constexpr std::size_t signature_v1_hex_bytes = 64;
/// A header longer than this, or with more `v1=` than this, is refused unread.
inline constexpr std::size_t signature_header_bytes_max = 1024;
inline constexpr std::size_t signature_v1_count_max = 8;
/// Secrets are the endpoint's (API.md: returned once at creation); 1..secret_bytes_max bytes.
inline constexpr std::size_t secret_bytes_max = 256;

/// Lowercase hex of HMAC-SHA256(secret, "<timestamp_s>.<body>"): 64 characters.
/// `secret` is 1..secret_bytes_max bytes (asserted: secrets come from our own store).
std::string sign_v1(std::string_view secret, std::int64_t timestamp_s, std::string_view body);

/// The whole header value, "t=<timestamp_s>,v1=<sign_v1(...)>".
std::string signature_header_value(std::string_view secret, std::int64_t timestamp_s,
                                   std::string_view body);

/// Why a header was refused; kValid when one v1 matched within the tolerance.
enum class SignatureCheck : std::uint8_t {
  kValid = 0,
  kMalformed,         // over the byte limit, an element without '=', a bad or repeated t
  kNoTimestamp,       // no t= element
  kNoV1,              // no v1= element (only unknown schemes, or none)
  kTimestampTooOld,   // t is more than tolerance_s before now_s
  kTimestampTooNew,   // t is more than tolerance_s after now_s
  kMismatch,          // no v1 equals the expected signature (compared in constant time)
};
std::string_view signature_check_name(SignatureCheck check);

/// Checks a received header against `secret` and the raw `body` bytes, at `now_s` (unix
/// seconds) with `tolerance_s` (>= 0) either side. The header's elements are separated by ','
/// and are `key=value`; keys other than t and v1 are ignored; up to signature_v1_count_max v1
/// values, each compared in constant time (CRYPTO_memcmp) against the expected one. The time
/// is judged only once a signature matched (Stripe's order), so that an unsigned request
/// learns nothing of the receiver's clock.
[[nodiscard]] SignatureCheck verify_signature(std::string_view header, std::string_view secret,
                                              std::string_view body, std::int64_t now_s,
                                              std::int64_t tolerance_s =
                                                  signature_tolerance_s_default);

}  // namespace paycore::webhooks
