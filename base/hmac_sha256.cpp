#include "base/hmac_sha256.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "base/assert.hpp"

namespace paycore {
namespace {

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

}  // namespace

void hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts,
                 unsigned char (&out)[hmac_sha256_bytes]) {
  thread_local ThreadHmac hmac;
  PAYCORE_ASSERT(!key.empty());
  const int initialised = EVP_MAC_init(
      hmac.context, reinterpret_cast<const unsigned char*>(key.data()), key.size(), nullptr);
  PAYCORE_ASSERT(initialised == 1);
  for (const std::string_view part : parts) {
    const int updated =
        EVP_MAC_update(hmac.context, reinterpret_cast<const unsigned char*>(part.data()), part.size());
    PAYCORE_ASSERT(updated == 1);
  }
  std::size_t out_bytes = 0;
  const int finished = EVP_MAC_final(hmac.context, out, &out_bytes, hmac_sha256_bytes);
  PAYCORE_ASSERT_EQ(finished, 1);
  PAYCORE_ASSERT_EQ(out_bytes, hmac_sha256_bytes);
}

}  // namespace paycore
