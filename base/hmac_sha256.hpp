#pragma once
// HMAC-SHA256 (RFC 2104, FIPS 180-4) with OpenSSL 3's EVP_MAC (the HMAC_CTX functions are
// deprecated in 3.0), for request signatures (auth/signing.cpp, docs/api.md "Authentication")
// and webhook signatures (webhooks/signature.cpp, API.md "Events and webhooks").

#include <cstddef>
#include <initializer_list>
#include <string_view>

namespace paycore {

inline constexpr std::size_t hmac_sha256_bytes = 32;

/// The HMAC-SHA256 under `key` (1 byte or more: asserted, an empty key would make OpenSSL keep
/// the previous one) of the concatenation of `parts`, into `out`. Allocation-free: the
/// algorithm is fetched once per process and each thread keeps its own context with the digest
/// set, so a call costs one EVP_MAC_init (the key schedule). OpenSSL failing here means a
/// broken library: asserted.
void hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts,
                 unsigned char (&out)[hmac_sha256_bytes]);

}  // namespace paycore
