#pragma once
// The keys file of API.md ("Running it"): who may call us and how to check them.
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

#include "core/id.hpp"

namespace paycore::net {

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

struct KeysLoadResult {
  std::shared_ptr<const Keys> keys;  // null on error
  std::string error;                 // names the file, the entry and what is wrong
  bool ok() const { return keys != nullptr; }
};

// Parses keys JSON text. `origin` prefixes error messages (usually the file name).
[[nodiscard]] KeysLoadResult keys_parse(std::string_view json, std::string_view origin = "keys");
[[nodiscard]] KeysLoadResult keys_load(const std::string& path);

struct KeysInitResult {
  std::string error;  // empty on success
  std::string keys_path;
  std::vector<std::string> private_key_paths;  // one per channel: DIR/<channel>.private.pem
  bool ok() const { return error.empty(); }
};

// Development keys: random secrets (RAND_bytes, 32 bytes as 64 hex chars) for the operator
// ("operator") and merchants m_001..m_004, and an RSA-2048 key pair for each of the channels
// alipay, wechat and card. The keys file is created only if it does not exist (never
// overwritten); private keys go to `private_dir` (created if missing). All files mode 0600.
[[nodiscard]] KeysInitResult keys_init(const std::string& keys_path, const std::string& private_dir);

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

}  // namespace paycore::net
