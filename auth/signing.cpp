#include "auth/signing.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <xxhash.h>

#include <cstdlib>
#include <cstring>

#include "base/assert.hpp"
#include "base/hex.hpp"
#include "base/hmac_sha256.hpp"

namespace paycore::auth {
namespace {

constexpr std::size_t hmac_bytes = hmac_sha256_bytes;
static_assert(signature_hex_bytes == 2 * hmac_bytes);

// Cheap and allocation-free (base/hmac_sha256.hpp).
void hmac_sha256(std::string_view key, const SignedFields& fields,
                 unsigned char (&out)[hmac_bytes]) {
  paycore::hmac_sha256(key, {fields.method, "\n", fields.path_and_query, "\n", fields.timestamp,
                             "\n", fields.nonce, "\n", fields.body},
                       out);
}

// 1-19 decimal digits, no sign: unix seconds.
bool parse_timestamp(std::string_view text, std::int64_t* out) {
  if (text.empty() || text.size() > 18) return false;  // 18 digits cannot overflow int64
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

// Seconds count stored in a nonce entry: relative to 2020-01-01, so 32 bits last until 2156.
constexpr std::int64_t nonce_epoch_s = 1'577'836'800;

std::uint32_t nonce_seconds(std::int64_t unix_s) {
  const std::int64_t relative = unix_s - nonce_epoch_s;
  if (relative < 1) return 1;  // 0 marks an empty slot
  if (relative > INT64_C(0xffffffff)) return 0xffffffffu;
  return static_cast<std::uint32_t>(relative);
}

constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Large enough for a 8192-bit RSA signature.
constexpr std::size_t rsa_signature_bytes_max = 1024;

struct MdContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

EVP_MD_CTX* thread_md_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdContextDeleter> context(EVP_MD_CTX_new());
  PAYCORE_ASSERT(context != nullptr);
  EVP_MD_CTX_reset(context.get());
  return context.get();
}

const EVP_MD* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  PAYCORE_ASSERT(md != nullptr);
  return md;
}

}  // namespace

std::string_view auth_status_code(AuthStatus status) {
  switch (status) {
    case AuthStatus::ok: return "ok";
    case AuthStatus::unauthenticated: return "unauthenticated";
    case AuthStatus::bad_signature: return "bad_signature";
    case AuthStatus::timestamp_out_of_window: return "timestamp_out_of_window";
    case AuthStatus::replayed_nonce: return "replayed_nonce";
    case AuthStatus::nonce_cache_full: return "unavailable";
  }
  return "unauthenticated";
}

int auth_status_http(AuthStatus status) {
  switch (status) {
    case AuthStatus::ok: return 200;
    case AuthStatus::nonce_cache_full: return 503;
    default: return 401;
  }
}

HexSignature sign_request(std::string_view secret, const SignedFields& fields) {
  unsigned char mac[hmac_bytes];
  hmac_sha256(secret, fields, mac);
  HexSignature signature;
  hex_encode(mac, signature.hex.data());
  return signature;
}

bool nonce_is_valid(std::string_view nonce) {
  if (nonce.size() < nonce_bytes_min || nonce.size() > nonce_bytes_max) return false;
  for (char c : nonce) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

SignedFields RequestCredentials::signed_fields() const {
  return SignedFields{method, path_and_query, timestamp, nonce, body};
}

// ---- nonce cache ----

struct NonceCache::Shard {
  struct Entry {
    std::uint64_t key_high;
    std::uint32_t key_low;
    std::uint32_t expires_s;  // nonce_seconds(timestamp + window); 0 = empty slot
  };
  static_assert(sizeof(Entry) == 16);

  alignas(64) std::mutex mutex;
  Entry* slots = nullptr;  // calloc: zero pages until used
  std::size_t mask = 0;
  std::size_t used_count = 0;
  std::uint32_t last_sweep_s = 0;

  ~Shard() { std::free(slots); }

  std::size_t home(const Entry& entry) const { return entry.key_high & mask; }

  // Removes slot i and shifts the rest of its cluster back (Knuth's algorithm R).
  void erase(std::size_t i) {
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (slots[j].expires_s == 0) break;
      const std::size_t k = home(slots[j]);
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (stays) continue;
      slots[i] = slots[j];
      i = j;
    }
    slots[i] = Entry{};
    --used_count;
  }

  void drop_expired(std::uint32_t now_s) {
    std::size_t i = 0;
    while (i <= mask) {
      if (slots[i].expires_s != 0 && slots[i].expires_s < now_s) {
        erase(i);  // slot i now holds a shifted entry (or is empty): look again
      } else {
        ++i;
      }
    }
  }
};

NonceCache::NonceCache(const NonceCacheConfig& config) : config_(config) {
  PAYCORE_ASSERT_GT(config.shards_count, std::size_t{0});
  PAYCORE_ASSERT_EQ(config.shards_count & (config.shards_count - 1), std::size_t{0});  // a power of two
  PAYCORE_ASSERT(config.entries_max >= config.shards_count);
  PAYCORE_ASSERT(config.window_s > 0);
  shard_entries_max_ = config.entries_max / config.shards_count;
  // Twice as many slots as entries: probes stay short and the table never fills up.
  std::size_t slots_count = 2;
  while (slots_count < 2 * shard_entries_max_) slots_count *= 2;
  shards_.reset(new Shard[config.shards_count]);
  for (std::size_t i = 0; i < config.shards_count; ++i) {
    shards_[i].slots = static_cast<Shard::Entry*>(std::calloc(slots_count, sizeof(Shard::Entry)));
    PAYCORE_ASSERT(shards_[i].slots != nullptr);
    shards_[i].mask = slots_count - 1;
  }
  // A secret seed: clients choose nonces, so they must not be able to aim for collisions.
  const int random_ok = RAND_bytes(reinterpret_cast<unsigned char*>(&seed_), sizeof(seed_));
  PAYCORE_ASSERT(random_ok == 1);
}

NonceCache::~NonceCache() = default;

// The key of (principal, nonce): a keyed 128-bit hash; the high half probes, both halves match.
XXH128_hash_t NonceCache::key_hash(std::string_view principal, std::string_view nonce) const {
  PAYCORE_ASSERT_LE(principal.size(), id_bytes_max);
  PAYCORE_ASSERT_LE(nonce.size(), nonce_bytes_max);
  char key[id_bytes_max + 1 + nonce_bytes_max];
  std::memcpy(key, principal.data(), principal.size());
  key[principal.size()] = '\0';  // ids and nonces contain no NUL: the split is unambiguous
  std::memcpy(key + principal.size() + 1, nonce.data(), nonce.size());
  return XXH3_128bits_withSeed(key, principal.size() + 1 + nonce.size(), seed_);
}

NonceCache::Insert NonceCache::insert(std::string_view principal, std::string_view nonce,
                                      std::int64_t timestamp_s, std::int64_t now_s) {
  const XXH128_hash_t hash = key_hash(principal, nonce);
  const std::uint64_t key_high = hash.high64;
  const auto key_low = static_cast<std::uint32_t>(hash.low64);
  const std::uint32_t expires = nonce_seconds(timestamp_s + config_.window_s);
  const std::uint32_t now = nonce_seconds(now_s);

  Shard& shard = shards_[(hash.low64 >> 32) & (config_.shards_count - 1)];
  std::lock_guard<std::mutex> lock(shard.mutex);
  std::size_t i = key_high & shard.mask;
  for (; shard.slots[i].expires_s != 0; i = (i + 1) & shard.mask) {
    Shard::Entry& entry = shard.slots[i];
    if (entry.key_high != key_high || entry.key_low != key_low) continue;
    if (entry.expires_s >= now) return Insert::replayed;
    entry.expires_s = expires;  // an old entry of the same nonce: reuse it
    return Insert::fresh;
  }
  if (shard.used_count >= shard_entries_max_) {
    if (shard.last_sweep_s == now) return Insert::full;
    shard.drop_expired(now);
    shard.last_sweep_s = now;
    if (shard.used_count >= shard_entries_max_) return Insert::full;
    i = key_high & shard.mask;  // the cluster may have moved
    while (shard.slots[i].expires_s != 0) i = (i + 1) & shard.mask;
  }
  shard.slots[i] = Shard::Entry{key_high, key_low, expires};
  ++shard.used_count;
  PAYCORE_ASSERT(shard.used_count <= shard_entries_max_);
  return Insert::fresh;
}

bool NonceCache::seen(std::string_view principal, std::string_view nonce,
                      std::int64_t now_s) const {
  const XXH128_hash_t hash = key_hash(principal, nonce);
  const auto key_low = static_cast<std::uint32_t>(hash.low64);
  const std::uint32_t now = nonce_seconds(now_s);
  Shard& shard = shards_[(hash.low64 >> 32) & (config_.shards_count - 1)];
  std::lock_guard<std::mutex> lock(shard.mutex);
  for (std::size_t i = hash.high64 & shard.mask; shard.slots[i].expires_s != 0;
       i = (i + 1) & shard.mask) {
    const Shard::Entry& entry = shard.slots[i];
    if (entry.key_high == hash.high64 && entry.key_low == key_low) return entry.expires_s >= now;
  }
  return false;
}

std::size_t NonceCache::size() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < config_.shards_count; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mutex);
    total += shards_[i].used_count;
  }
  return total;
}

// ---- verification ----

AuthResult verify_request(const Keys& keys, const RequestCredentials& credentials,
                          std::int64_t now_s, NonceCache& nonces) {
  AuthResult result = verify_signature(keys, credentials, now_s, nonces.window_s());
  if (result.status != AuthStatus::ok) return result;
  result.status = record_nonce(nonces, result, now_s);
  if (result.status != AuthStatus::ok) {
    const AuthStatus refused = result.status;
    result = AuthResult{};
    result.status = refused;
  }
  return result;
}

AuthStatus record_nonce(NonceCache& nonces, const AuthResult& verified, std::int64_t now_s) {
  PAYCORE_ASSERT(verified.status == AuthStatus::ok);
  PAYCORE_ASSERT(verified.principal != nullptr);
  switch (
      nonces.insert(verified.principal->id.view(), verified.nonce, verified.timestamp_s, now_s)) {
    case NonceCache::Insert::fresh: return AuthStatus::ok;
    case NonceCache::Insert::replayed: return AuthStatus::replayed_nonce;
    case NonceCache::Insert::full: return AuthStatus::nonce_cache_full;
  }
  PAYCORE_ASSERT(false);
  return AuthStatus::nonce_cache_full;
}

AuthResult verify_signature(const Keys& keys, const RequestCredentials& credentials,
                            std::int64_t now_s, std::int64_t window_s) {
  AuthResult result;
  if (credentials.principal_id.empty() || credentials.timestamp.empty() ||
      credentials.nonce.empty() || credentials.signature.empty()) {
    return result;  // unauthenticated
  }
  const Principal* principal = keys.find_principal(credentials.principal_id);
  std::int64_t timestamp_s = 0;
  if (principal == nullptr || !parse_timestamp(credentials.timestamp, &timestamp_s) ||
      !nonce_is_valid(credentials.nonce)) {
    return result;
  }

  result.status = AuthStatus::bad_signature;
  if (credentials.signature.size() != signature_hex_bytes) return result;
  const HexSignature expected = sign_request(principal->secret, credentials.signed_fields());
  if (CRYPTO_memcmp(expected.hex.data(), credentials.signature.data(), signature_hex_bytes) != 0) {
    return result;
  }

  const std::int64_t skew_s = timestamp_s > now_s ? timestamp_s - now_s : now_s - timestamp_s;
  if (skew_s > window_s) {
    result.status = AuthStatus::timestamp_out_of_window;
    return result;
  }
  result.status = AuthStatus::ok;
  result.principal = principal;
  result.timestamp_s = timestamp_s;
  result.nonce = credentials.nonce;
  return result;
}

// ---- notifications ----

bool base64_decode(std::string_view text, unsigned char* out, std::size_t out_bytes_max,
                   std::size_t* out_bytes) {
  if (text.empty() || text.size() % 4 != 0) return false;
  std::size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  const std::size_t decoded_bytes = text.size() / 4 * 3 - padding;
  if (decoded_bytes > out_bytes_max) return false;
  std::size_t written = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      int value = base64_value(c);
      if (c == '=' && last && j >= 4 - padding) value = 0;
      if (value < 0) return false;
      group = (group << 6) | static_cast<std::uint32_t>(value);
    }
    const unsigned char bytes[3] = {static_cast<unsigned char>(group >> 16),
                                    static_cast<unsigned char>(group >> 8),
                                    static_cast<unsigned char>(group)};
    const std::size_t take = last ? 3 - padding : 3;
    // Non-canonical encodings (bits set in the padding) are refused.
    if (last && padding == 2 && (group & 0xffff) != 0) return false;
    if (last && padding == 1 && (group & 0xff) != 0) return false;
    std::memcpy(out + written, bytes, take);
    written += take;
  }
  PAYCORE_ASSERT(written == decoded_bytes);
  *out_bytes = written;
  return true;
}

AuthStatus verify_notification(EVP_PKEY* public_key, const NotificationCredentials& credentials,
                               std::string_view body) {
  PAYCORE_ASSERT(public_key != nullptr);
  if (credentials.timestamp.empty() || credentials.nonce.empty() || credentials.signature.empty()) {
    return AuthStatus::unauthenticated;
  }
  unsigned char signature[rsa_signature_bytes_max];
  std::size_t signature_bytes = 0;
  if (!base64_decode(credentials.signature, signature, sizeof(signature), &signature_bytes)) {
    return AuthStatus::bad_signature;
  }
  EVP_MD_CTX* context = thread_md_context();
  if (EVP_DigestVerifyInit(context, nullptr, sha256(), nullptr, public_key) != 1) {
    return AuthStatus::bad_signature;
  }
  const auto update = [context](std::string_view text) {
    return EVP_DigestVerifyUpdate(context, text.data(), text.size()) == 1;
  };
  const bool updated = update(credentials.timestamp) && update("\n") && update(credentials.nonce) &&
                       update("\n") && update(body) && update("\n");
  if (!updated) return AuthStatus::bad_signature;
  const int verified = EVP_DigestVerifyFinal(context, signature, signature_bytes);
  return verified == 1 ? AuthStatus::ok : AuthStatus::bad_signature;
}

std::string sign_notification(EVP_PKEY* private_key, std::string_view timestamp,
                              std::string_view nonce, std::string_view body) {
  PAYCORE_ASSERT(private_key != nullptr);
  EVP_MD_CTX* context = thread_md_context();
  if (EVP_DigestSignInit(context, nullptr, sha256(), nullptr, private_key) != 1) return {};
  const auto update = [context](std::string_view text) {
    return EVP_DigestSignUpdate(context, text.data(), text.size()) == 1;
  };
  if (!(update(timestamp) && update("\n") && update(nonce) && update("\n") && update(body) &&
        update("\n"))) {
    return {};
  }
  std::size_t signature_bytes = 0;
  if (EVP_DigestSignFinal(context, nullptr, &signature_bytes) != 1) return {};
  if (signature_bytes > rsa_signature_bytes_max) return {};
  unsigned char signature[rsa_signature_bytes_max];
  if (EVP_DigestSignFinal(context, signature, &signature_bytes) != 1) return {};
  std::string text;
  for (std::size_t i = 0; i < signature_bytes; i += 3) {
    const std::size_t take = signature_bytes - i < 3 ? signature_bytes - i : 3;
    std::uint32_t group = static_cast<std::uint32_t>(signature[i]) << 16;
    if (take > 1) group |= static_cast<std::uint32_t>(signature[i + 1]) << 8;
    if (take > 2) group |= signature[i + 2];
    text.push_back(base64_alphabet[(group >> 18) & 63]);
    text.push_back(base64_alphabet[(group >> 12) & 63]);
    text.push_back(take > 1 ? base64_alphabet[(group >> 6) & 63] : '=');
    text.push_back(take > 2 ? base64_alphabet[group & 63] : '=');
  }
  return text;
}

}  // namespace paycore::auth
