#pragma once
// Request authentication (docs/api.md "Authentication"), used by the server (net/) to check
// requests and by clients (recon apply, the load generator, tests) to sign them.
//
// Merchants and the operator sign each request with HMAC-SHA256:
//   X-Signature = lowercase hex HMAC_SHA256(secret,
//                   METHOD "\n" PATH_AND_QUERY "\n" TIMESTAMP "\n" NONCE "\n" BODY)
// and verify_request checks, in this order:
//   1. X-Merchant-Id, X-Timestamp, X-Nonce, X-Signature present exactly once, the id a known
//      principal, the timestamp 1-18 decimal digits, the nonce 8-64 chars of [A-Za-z0-9_-]
//      -> otherwise `unauthenticated` (a malformed credential is treated like a missing one:
//      it cannot be checked at all, and nothing about the secret is involved);
//   2. the signature: 64 lowercase hex digits equal (CRYPTO_memcmp) to ours -> `bad_signature`
//      (uppercase hex is a different string and fails here);
//   3. |timestamp - now| <= window (300 s) -> `timestamp_out_of_window`;
//   4. (principal, nonce) not seen within the window -> `replayed_nonce`; a nonce cache at its
//      hard cap refuses with `nonce_cache_full` (answer 503 unavailable).
// Only authentic requests reach steps 3 and 4, so forged requests cannot fill the nonce cache.
//
// Channels sign their notifications with RSA (SHA256withRSA, PKCS#1 v1.5) over
//   TIMESTAMP "\n" NONCE "\n" BODY "\n"
// sent as X-Channel-Timestamp, X-Channel-Nonce and X-Channel-Signature (base64). Channels retry
// with the same notification, and the engine makes repeats harmless (same channel_txn_id), so
// no timestamp window or nonce cache applies to them.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <xxhash.h>

#include "auth/keys.hpp"

namespace paycore::auth {

enum class AuthStatus : std::uint8_t {
  ok,
  unauthenticated,
  bad_signature,
  timestamp_out_of_window,
  replayed_nonce,
  nonce_cache_full,
};

// The API error code: "unauthenticated", ..., and "unavailable" for nonce_cache_full.
std::string_view auth_status_code(AuthStatus status);
// 401 for every refusal, 503 for nonce_cache_full, 200 for ok.
int auth_status_http(AuthStatus status);

inline constexpr std::size_t signature_hex_bytes = 64;
inline constexpr std::size_t nonce_bytes_min = 8;
inline constexpr std::size_t nonce_bytes_max = 64;
inline constexpr std::int64_t auth_window_s_default = 300;

struct SignedFields {
  std::string_view method;
  std::string_view path_and_query;
  std::string_view timestamp;
  std::string_view nonce;
  std::string_view body;
};

struct HexSignature {
  std::array<char, signature_hex_bytes> hex{};
  std::string_view view() const { return {hex.data(), hex.size()}; }
};

// The X-Signature value for these fields. Reuses a per-thread HMAC context.
[[nodiscard]] HexSignature sign_request(std::string_view secret, const SignedFields& fields);

bool nonce_is_valid(std::string_view nonce);

// A request's credentials as received; empty views for absent (or repeated) headers.
struct RequestCredentials {
  std::string_view principal_id;  // X-Merchant-Id
  std::string_view timestamp;     // X-Timestamp
  std::string_view nonce;         // X-Nonce
  std::string_view signature;     // X-Signature
  SignedFields signed_fields() const;
  std::string_view method;
  std::string_view path_and_query;
  std::string_view body;
};

struct NonceCacheConfig {
  std::size_t entries_max = std::size_t{1} << 22;  // about 64 MiB of slots when full
  std::size_t shards_count = 64;                   // power of two
  std::int64_t window_s = auth_window_s_default;
};

// Nonces seen per principal, shared by all I/O threads. Sharded, each shard a small mutex
// over an open-addressing table (linear probing, backward-shift deletion, no tombstones) of
// 16-byte entries: 96 bits of a seeded XXH3-128 of (principal, nonce) and the second at which
// the entry stops mattering (request timestamp + window: after that the timestamp check alone
// refuses a replay). Slots are allocated once at construction (calloc: pages are touched only
// as they fill). When a shard reaches its share of entries_max it drops expired entries (at most
// once per second per shard); if it is still full the insert is refused (`full`).
class NonceCache {
 public:
  enum class Insert : std::uint8_t { fresh, replayed, full };

  explicit NonceCache(const NonceCacheConfig& config = {});
  ~NonceCache();
  NonceCache(const NonceCache&) = delete;
  NonceCache& operator=(const NonceCache&) = delete;

  // Records (principal, nonce) for a request stamped `timestamp_s`, at time `now_s`.
  [[nodiscard]] Insert insert(std::string_view principal, std::string_view nonce,
                              std::int64_t timestamp_s, std::int64_t now_s);
  // Whether (principal, nonce) is held and still within its window at `now_s`. Changes nothing:
  // lets a replay be refused before it is charged to its principal's rate limit.
  bool seen(std::string_view principal, std::string_view nonce, std::int64_t now_s) const;
  // Entries held (live or expired but not yet dropped); takes every shard's lock.
  std::size_t size() const;
  std::int64_t window_s() const { return config_.window_s; }

 private:
  struct Shard;
  XXH128_hash_t key_hash(std::string_view principal, std::string_view nonce) const;
  NonceCacheConfig config_;
  std::size_t shard_entries_max_ = 0;
  std::uint64_t seed_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

struct AuthResult {
  AuthStatus status = AuthStatus::unauthenticated;
  const Principal* principal = nullptr;  // set when ok; points into the Keys used
  std::int64_t timestamp_s = 0;          // X-Timestamp, set when ok
  std::string_view nonce;                // X-Nonce (a view into the request), set when ok
};

// Checks a request as described at the top. `now_s`: the server's clock, unix seconds. The
// window is the nonce cache's.
[[nodiscard]] AuthResult verify_request(const Keys& keys, const RequestCredentials& credentials,
                                        std::int64_t now_s, NonceCache& nonces);

// verify_request in two steps, so that the server can decide between them (authorization, rate
// limits) before a nonce takes room in the shared cache: a request refused there (404, 429)
// leaves no entry, so one principal's refused flood cannot fill the cache for everyone.
// verify_signature: everything but the nonce (status ok with principal, timestamp and nonce
// set, or the refusal); record_nonce: ok, replayed_nonce or nonce_cache_full.
[[nodiscard]] AuthResult verify_signature(const Keys& keys, const RequestCredentials& credentials,
                                          std::int64_t now_s, std::int64_t window_s);
[[nodiscard]] AuthStatus record_nonce(NonceCache& nonces, const AuthResult& verified,
                                      std::int64_t now_s);

// ---- channel notifications (RSA) ----

struct NotificationCredentials {
  std::string_view timestamp;  // X-Channel-Timestamp
  std::string_view nonce;      // X-Channel-Nonce
  std::string_view signature;  // X-Channel-Signature (base64)
};

// ok, unauthenticated (a header missing) or bad_signature (not base64, or not valid).
[[nodiscard]] AuthStatus verify_notification(EVP_PKEY* public_key,
                                             const NotificationCredentials& credentials,
                                             std::string_view body);

// Base64 SHA256withRSA signature over TIMESTAMP "\n" NONCE "\n" BODY "\n"; empty on failure.
[[nodiscard]] std::string sign_notification(EVP_PKEY* private_key, std::string_view timestamp,
                                            std::string_view nonce, std::string_view body);

// Strict standard base64 (RFC 4648 4, with padding); false on anything else or if the
// decoded size exceeds `out_bytes_max`.
[[nodiscard]] bool base64_decode(std::string_view text, unsigned char* out,
                                 std::size_t out_bytes_max, std::size_t* out_bytes);

}  // namespace paycore::auth
