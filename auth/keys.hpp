#pragma once
// The keys file of docs/api.md ("Start a server"): who may call us and how to check them.
//
//   {"operator": {"id": "operator", "secret": "..."},
//    "merchants": {"m_001": "...", "m_002": "..."},
//    "channels": {"alipay": {"public_key_pem": "-----BEGIN PUBLIC KEY-----\n..."}}}
//
// A secret's UTF-8 bytes are its HMAC key. `Keys` is immutable once loaded, so a SIGHUP reload
// builds a new one and swaps a shared_ptr (KeysHolder) while requests in flight keep the old.

#include <openssl/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "core/id.hpp"

namespace paycore::auth {

enum class PrincipalKind : std::uint8_t { merchant, operator_ };

struct Principal {
  PrincipalKind kind = PrincipalKind::merchant;
  Id id;
  std::string secret;  // HMAC key bytes
};

struct ChannelKey {
  Id name;
  std::string public_key_pem;
  std::shared_ptr<EVP_PKEY> public_key;  // RSA, >= 2048 bits; safe to use from many threads
};

// The name reserved for paying from an account; no external channel may use it.
inline constexpr std::string_view balance_channel = "balance";
// Smallest RSA modulus accepted for a channel's notification key.
inline constexpr int channel_key_bits_min = 2048;

class Keys {
 public:
  // The operator or a merchant; nullptr for an unknown id.
  const Principal* find_principal(std::string_view id) const;
  const ChannelKey* find_channel(std::string_view name) const;

  const Principal& operator_principal() const { return principals_[operator_index_]; }
  // Sorted by id; the operator is among them.
  std::span<const Principal> principals() const { return principals_; }
  // Sorted by name.
  std::span<const ChannelKey> channels() const { return channels_; }

 private:
  friend struct KeysBuilder;
  std::vector<Principal> principals_;
  std::vector<ChannelKey> channels_;
  std::size_t operator_index_ = 0;
};

// Parses keys JSON text. Errors (kInvalidArgument) read "<origin>: <what is wrong>", naming
// the entry ("test.json: merchants.m_001: the secret is empty"); `origin` is usually the file.
[[nodiscard]] StatusOr<std::shared_ptr<const Keys>> keys_parse(std::string_view json,
                                                               std::string_view origin = "keys");
// Reads and parses the keys file at `path`; a file that cannot be read is kIoError
// ("<path>: cannot read: ...").
[[nodiscard]] StatusOr<std::shared_ptr<const Keys>> keys_load(const std::string& path);

// What keys_init wrote.
struct KeysInit {
  std::string keys_path;
  std::vector<std::string> private_key_paths;  // one per channel: DIR/<channel>.private.pem
};

// Development keys: random secrets (RAND_bytes, 32 bytes as 64 hex chars) for the operator
// ("operator") and merchants m_001..m_004, and an RSA-2048 key pair for each of the channels
// alipay, wechat and card. The keys file is created only if it does not exist (never
// overwritten: kInvalidArgument "<path> already exists; not overwriting it"); private keys go
// to `private_dir` (created if missing). All files mode 0600. A file that cannot be written is
// kIoError ("cannot create|write|fsync|rename <path>: <strerror>").
[[nodiscard]] StatusOr<KeysInit> keys_init(const std::string& keys_path,
                                           const std::string& private_dir);

inline constexpr std::string_view dev_channel_names[] = {"alipay", "wechat", "card"};
inline constexpr std::string_view dev_merchant_ids[] = {"m_001", "m_002", "m_003", "m_004"};

// Holds the current keys; readers take a snapshot, a reload swaps it atomically.
class KeysHolder {
 public:
  explicit KeysHolder(std::shared_ptr<const Keys> keys) : current_(std::move(keys)) {}
  std::shared_ptr<const Keys> get() const { return current_.load(std::memory_order_acquire); }
  void set(std::shared_ptr<const Keys> keys) {
    current_.store(std::move(keys), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const Keys>> current_;
};

// PEM helpers shared with auth and tests.
std::shared_ptr<EVP_PKEY> pem_public_key(std::string_view pem);
std::shared_ptr<EVP_PKEY> pem_private_key(std::string_view pem);

}  // namespace paycore::auth
