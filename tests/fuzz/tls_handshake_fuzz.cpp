// The TLS listener's read path (net/tls.hpp) fed arbitrary bytes as if from a client: garbage,
// truncated or mutated ClientHellos, records of any type. Input: the bytes the server reads.
// Properties: no crash, no sanitizer report; tls_read never yields application data (no client
// can complete a handshake without answering the server's own key share, which these bytes
// cannot do), and a session refused as `failed` stays refused.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>

#include "fuzz_target.hpp"
#include "net/tls.hpp"

namespace {

// One server context for the whole run, as the listener has: TLS 1.2+ and a throwaway P-256
// certificate made in memory (nothing on disk, nothing committed).
SSL_CTX* server_context() {
  static SSL_CTX* context = [] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
  }();
  return context;
}

}  // namespace

PAYCORE_FUZZ_TARGET(tls_handshake) {
  using namespace paycore::net;
  SSL* ssl = SSL_new(server_context());
  BIO* in = BIO_new_mem_buf(data, static_cast<int>(size));
  BIO* out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in, -1);  // no more bytes yet: "want read", as a non-blocking socket says
  SSL_set_bio(ssl, in, out);
  SSL_set_accept_state(ssl);
  char buffer[4096];
  bool refused = false;
  for (int round = 0; round < 8; ++round) {
    const TlsIoResult result = tls_read(ssl, buffer, sizeof(buffer));
    FUZZ_CHECK(tls_handshake, result.status != TlsIo::ok || result.bytes == 0);
    if (refused) FUZZ_CHECK(tls_handshake, result.status != TlsIo::ok);
    if (result.status == TlsIo::failed || result.status == TlsIo::closed) refused = true;
  }
  SSL_free(ssl);
  return 0;
}
