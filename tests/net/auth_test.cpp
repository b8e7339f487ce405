#include "net/credentials.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/net/test_keys.hpp"

namespace paycore::net {
namespace {

using testing::dev_keys;

constexpr std::int64_t now_s = 1795670354;
constexpr std::string_view body =
    R"({"request_id":"r-1","order_id":"o-1001","amount":1234,"currency":"CNY","channel":"alipay"})";

// Computed independently at test-writing time:
//   printf 'POST\n/v1/payments\n1795670354\nn0nce-abc_123\n<body>' |
//     openssl dgst -sha256 -hmac test-secret-m_001     (and Python's hmac agreed)
constexpr std::string_view known_hmac =
    "8e02d530eb27d20d18d3e3f439abe6e03c5287df832136b1ac456cb2655719b9";

const auth::Keys& keys() {
  static const std::shared_ptr<const auth::Keys> parsed = [] {
    const auto result = auth::keys_parse(
        R"({"operator": {"id": "operator", "secret": "op-secret"},
            "merchants": {"m_001": "test-secret-m_001", "m_002": "test-secret-m_002"}})");
    EXPECT_TRUE(result.is_ok()) << result.status().message();
    return *result;
  }();
  return *parsed;
}

struct Signed {
  std::string principal = "m_001";
  std::string secret = "test-secret-m_001";
  std::string method = "POST";
  std::string target = "/v1/payments";
  std::string timestamp = std::to_string(now_s);
  std::string nonce = "n0nce-abc_123";
  std::string body_text = std::string(body);
  std::string signature;

  Signed& sign() {
    signature = std::string(
        auth::sign_request(secret, auth::SignedFields{method, target, timestamp, nonce, body_text}).view());
    return *this;
  }
  auth::RequestCredentials credentials() const {
    auth::RequestCredentials c;
    c.principal_id = principal;
    c.timestamp = timestamp;
    c.nonce = nonce;
    c.signature = signature;
    c.method = method;
    c.path_and_query = target;
    c.body = body_text;
    return c;
  }
};

auth::NonceCacheConfig small_cache(std::size_t entries_max = 1024, std::size_t shards = 4) {
  auth::NonceCacheConfig config;
  config.entries_max = entries_max;
  config.shards_count = shards;
  return config;
}

auth::AuthStatus verify(const Signed& request, auth::NonceCache& nonces, std::int64_t now = now_s) {
  return auth::verify_request(keys(), request.credentials(), now, nonces).status;
}

TEST(Auth, HmacKnownAnswer) {
  const auth::HexSignature signature =
      auth::sign_request("test-secret-m_001", auth::SignedFields{"POST", "/v1/payments", "1795670354",
                                                     "n0nce-abc_123", body});
  EXPECT_EQ(signature.view(), known_hmac);
}

TEST(Auth, HmacContextIsReusedWithAnotherKey) {
  (void)auth::sign_request("another key", auth::SignedFields{"GET", "/", "1", "nonce-xyz", ""});
  EXPECT_EQ(auth::sign_request("test-secret-m_001", auth::SignedFields{"POST", "/v1/payments", "1795670354",
                                                           "n0nce-abc_123", body})
                .view(),
            known_hmac);
}

TEST(Auth, SignedRequestVerifies) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  EXPECT_EQ(request.signature, known_hmac);
  const auth::AuthResult result = auth::verify_request(keys(), request.credentials(), now_s, nonces);
  ASSERT_EQ(result.status, auth::AuthStatus::ok);
  ASSERT_NE(result.principal, nullptr);
  EXPECT_EQ(result.principal->id.view(), "m_001");
  EXPECT_EQ(result.principal->kind, auth::PrincipalKind::merchant);
}

TEST(Auth, OperatorSignedRequestVerifies) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.principal = "operator";
  request.secret = "op-secret";
  request.sign();
  const auth::AuthResult result = auth::verify_request(keys(), request.credentials(), now_s, nonces);
  ASSERT_EQ(result.status, auth::AuthStatus::ok);
  EXPECT_EQ(result.principal->kind, auth::PrincipalKind::operator_);
}

TEST(Auth, MissingHeaderIsUnauthenticated) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  request.nonce.clear();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::unauthenticated);
  Signed unsigned_request;
  EXPECT_EQ(verify(unsigned_request, nonces), auth::AuthStatus::unauthenticated);
}

TEST(Auth, UnknownPrincipalIsUnauthenticated) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.principal = "m_404";
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::unauthenticated);
}

TEST(Auth, MalformedNonceIsUnauthenticated) {
  auth::NonceCache nonces(small_cache());
  for (const std::string& nonce :
       {std::string("short"), std::string("has space1"), std::string("has/slash"),
        std::string(65, 'a')}) {
    Signed request;
    request.nonce = nonce;
    request.sign();
    EXPECT_EQ(verify(request, nonces), auth::AuthStatus::unauthenticated) << nonce;
  }
  Signed edge;
  edge.nonce = std::string(64, 'a');
  edge.sign();
  EXPECT_EQ(verify(edge, nonces), auth::AuthStatus::ok);
}

TEST(Auth, MalformedTimestampIsUnauthenticated) {
  auth::NonceCache nonces(small_cache());
  for (const char* timestamp : {"-1795670354", "1795670354.5", "0x1", "99999999999999999999"}) {
    Signed request;
    request.timestamp = timestamp;
    request.sign();
    EXPECT_EQ(verify(request, nonces), auth::AuthStatus::unauthenticated) << timestamp;
  }
}

TEST(Auth, WrongCaseSignatureRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  for (char& c : request.signature) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::bad_signature);
}

TEST(Auth, SignatureForAnotherBodyRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  request.body_text[request.body_text.find("1234")] = '9';
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::bad_signature);
}

TEST(Auth, SignatureForAnotherPathRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  request.target = "/v1/payments?x=1";
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::bad_signature);
}

TEST(Auth, SignatureOfAnotherMerchantRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.secret = "test-secret-m_002";  // m_002's secret, claiming to be m_001
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::bad_signature);
}

TEST(Auth, TruncatedSignatureRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  request.signature.pop_back();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::bad_signature);
}

TEST(Auth, StaleTimestampIsRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.timestamp = std::to_string(now_s - 301);
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::timestamp_out_of_window);
}

TEST(Auth, FutureTimestampIsRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.timestamp = std::to_string(now_s + 301);
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::timestamp_out_of_window);
}

TEST(Auth, TimestampAtEdgeOfWindowAccepted) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.timestamp = std::to_string(now_s - 300);
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::ok);
}

TEST(Auth, WindowIsConfigurable) {
  auth::NonceCacheConfig config = small_cache();
  config.window_s = 10;
  auth::NonceCache nonces(config);
  Signed request;
  request.timestamp = std::to_string(now_s - 11);
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::timestamp_out_of_window);
}

TEST(Auth, ReplayedNonceIsRejected) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  EXPECT_EQ(verify(request, nonces), auth::AuthStatus::ok);
  EXPECT_EQ(verify(request, nonces, now_s + 200), auth::AuthStatus::replayed_nonce);
}

TEST(Auth, SameNonceForAnotherPrincipalIsFresh) {
  auth::NonceCache nonces(small_cache());
  Signed first;
  first.sign();
  Signed second;
  second.principal = "m_002";
  second.secret = "test-secret-m_002";
  second.sign();
  EXPECT_EQ(verify(first, nonces), auth::AuthStatus::ok);
  EXPECT_EQ(verify(second, nonces), auth::AuthStatus::ok);
}

TEST(Auth, ForgedRequestDoesNotBurnNonce) {
  auth::NonceCache nonces(small_cache());
  Signed forged;
  forged.secret = "guess";
  forged.sign();
  EXPECT_EQ(verify(forged, nonces), auth::AuthStatus::bad_signature);
  Signed genuine;
  genuine.sign();
  EXPECT_EQ(verify(genuine, nonces), auth::AuthStatus::ok);
}

TEST(Auth, ReplayedNonceIsRejectedAcrossThreads) {
  auth::NonceCache nonces(small_cache());
  Signed request;
  request.sign();
  std::atomic<int> accepted{0};
  std::atomic<int> replayed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      const auth::AuthStatus status = verify(request, nonces);
      if (status == auth::AuthStatus::ok) ++accepted;
      if (status == auth::AuthStatus::replayed_nonce) ++replayed;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), 1);
  EXPECT_EQ(replayed.load(), 7);
}

TEST(NonceCache, ManyDistinctNoncesFromManyThreads) {
  auth::NonceCache nonces(small_cache(1 << 16, 8));
  std::atomic<int> fresh{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        std::string nonce = std::to_string(t);  // GCC 12 -Wrestrict misfires on "t" + string
        nonce.append("-nonce-").append(std::to_string(i));
        if (nonces.insert("m_001", nonce, now_s, now_s) == auth::NonceCache::Insert::fresh) ++fresh;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(fresh.load(), 20000);
  EXPECT_EQ(nonces.size(), 20000u);
}

TEST(NonceCache, FullCacheRefusesClearly) {
  auth::NonceCache nonces(small_cache(16, 1));
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(nonces.insert("m_001", "nonce-" + std::to_string(i), now_s, now_s),
              auth::NonceCache::Insert::fresh);
  }
  EXPECT_EQ(nonces.insert("m_001", "nonce-16", now_s, now_s), auth::NonceCache::Insert::full);
  EXPECT_EQ(nonces.size(), 16u);
  // A replay is still recognised as one when full.
  EXPECT_EQ(nonces.insert("m_001", "nonce-3", now_s, now_s), auth::NonceCache::Insert::replayed);
}

TEST(Auth, FullNonceCacheIs503) {
  auth::NonceCache nonces(small_cache(1, 1));
  Signed first;
  first.sign();
  EXPECT_EQ(verify(first, nonces), auth::AuthStatus::ok);
  Signed second;
  second.nonce = "another-nonce";
  second.sign();
  const auth::AuthStatus status = verify(second, nonces);
  EXPECT_EQ(status, auth::AuthStatus::nonce_cache_full);
  EXPECT_EQ(auth::auth_status_http(status), 503);
  EXPECT_EQ(auth::auth_status_code(status), "unavailable");
}

TEST(NonceCache, ExpiredEntriesAreEvictedWhenFull) {
  auth::NonceCache nonces(small_cache(64, 1));
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(nonces.insert("m_001", "old-" + std::to_string(i), now_s, now_s),
              auth::NonceCache::Insert::fresh);
  }
  EXPECT_EQ(nonces.insert("m_001", "new-0", now_s, now_s), auth::NonceCache::Insert::full);
  // Past the window every old entry has expired: they make room.
  const std::int64_t later = now_s + 301;
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(nonces.insert("m_001", "new-" + std::to_string(i), later, later),
              auth::NonceCache::Insert::fresh)
        << i;
  }
  EXPECT_EQ(nonces.size(), 64u);
  // The survivors are all still found after the backward shifts.
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(nonces.insert("m_001", "new-" + std::to_string(i), later, later),
              auth::NonceCache::Insert::replayed);
  }
}

TEST(NonceCache, EvictionKeepsLiveEntries) {
  auth::NonceCache nonces(small_cache(64, 1));
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(nonces.insert("m_001", "old-" + std::to_string(i), now_s, now_s),
              auth::NonceCache::Insert::fresh);
  }
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(nonces.insert("m_001", "live-" + std::to_string(i), now_s + 200, now_s + 200),
              auth::NonceCache::Insert::fresh);
  }
  const std::int64_t later = now_s + 301;  // old-* expired, live-* not
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(nonces.insert("m_001", "new-" + std::to_string(i), later, later),
              auth::NonceCache::Insert::fresh);
  }
  EXPECT_EQ(nonces.insert("m_001", "one-too-many", later, later), auth::NonceCache::Insert::full);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(nonces.insert("m_001", "live-" + std::to_string(i), later, later),
              auth::NonceCache::Insert::replayed);
  }
}

TEST(NonceCache, NonceIsForgottenAfterItsWindow) {
  auth::NonceCache nonces(small_cache());
  ASSERT_EQ(nonces.insert("m_001", "nonce-abc", now_s, now_s), auth::NonceCache::Insert::fresh);
  EXPECT_EQ(nonces.insert("m_001", "nonce-abc", now_s, now_s + 300), auth::NonceCache::Insert::replayed);
  // The timestamp check refuses such a request by now; the cache may forget it.
  EXPECT_EQ(nonces.insert("m_001", "nonce-abc", now_s + 301, now_s + 301),
            auth::NonceCache::Insert::fresh);
}

TEST(Auth, CredentialsComeFromHeaders) {
  const std::string text =
      "POST /v1/payments?a=b HTTP/1.1\r\nx-merchant-id: m_001\r\nX-Timestamp: 1\r\n"
      "X-Nonce: abcdefgh\r\nX-Signature: ff\r\nContent-Length: 2\r\n\r\n{}";
  HttpRequest request;
  ASSERT_EQ(parse_http_request(text, HttpLimits{}, &request).status, HttpParseStatus::complete);
  const auth::RequestCredentials credentials = request_credentials(request);
  EXPECT_EQ(credentials.principal_id, "m_001");
  EXPECT_EQ(credentials.timestamp, "1");
  EXPECT_EQ(credentials.nonce, "abcdefgh");
  EXPECT_EQ(credentials.signature, "ff");
  EXPECT_EQ(credentials.path_and_query, "/v1/payments?a=b");
  EXPECT_EQ(credentials.body, "{}");
  EXPECT_EQ(credentials.method, "POST");
}

TEST(Auth, DuplicateSignatureHeaderIsUnauthenticated) {
  const std::string text =
      "GET / HTTP/1.1\r\nX-Merchant-Id: m_001\r\nX-Timestamp: 1\r\nX-Nonce: abcdefgh\r\n"
      "X-Signature: aa\r\nX-Signature: bb\r\n\r\n";
  HttpRequest request;
  ASSERT_EQ(parse_http_request(text, HttpLimits{}, &request).status, HttpParseStatus::complete);
  auth::NonceCache nonces(small_cache());
  EXPECT_TRUE(request_credentials(request).signature.empty());
  EXPECT_EQ(auth::verify_request(keys(), request_credentials(request), 1, nonces).status,
            auth::AuthStatus::unauthenticated);
}

// ---- RSA notifications ----

struct Notification {
  std::string timestamp = "1795670354";
  std::string nonce = "chan-nonce-1";
  std::string body_text =
      R"({"channel_txn_id":"2026112600001","merchant_id":"m_001","order_id":"o-1001","amount":1234,"currency":"CNY","status":"SUCCESS","paid_at":"2026-11-26T08:00:01Z"})";
  std::string signature;
  auth::NotificationCredentials credentials() const { return {timestamp, nonce, signature}; }
};

Notification signed_notification() {
  Notification notification;
  const auto private_key = auth::pem_private_key(dev_keys().alipay_private_pem);
  EXPECT_NE(private_key, nullptr);
  notification.signature = auth::sign_notification(private_key.get(), notification.timestamp,
                                             notification.nonce, notification.body_text);
  return notification;
}

EVP_PKEY* channel_key(std::string_view name) {
  return dev_keys().keys->find_channel(name)->public_key.get();
}

TEST(Notify, RsaNotificationVerifies) {
  const Notification notification = signed_notification();
  ASSERT_EQ(notification.signature.size(), 344u);  // base64 of 256 bytes
  EXPECT_EQ(auth::verify_notification(channel_key("alipay"), notification.credentials(),
                                notification.body_text),
            auth::AuthStatus::ok);
}

TEST(Notify, TamperedNotificationFails) {
  Notification notification = signed_notification();
  notification.body_text[notification.body_text.find("1234")] = '9';
  EXPECT_EQ(auth::verify_notification(channel_key("alipay"), notification.credentials(),
                                notification.body_text),
            auth::AuthStatus::bad_signature);
}

TEST(Notify, TamperedTimestampFails) {
  Notification notification = signed_notification();
  notification.timestamp = "1795670355";
  EXPECT_EQ(auth::verify_notification(channel_key("alipay"), notification.credentials(),
                                notification.body_text),
            auth::AuthStatus::bad_signature);
}

TEST(Notify, OtherChannelsKeyFails) {
  const Notification notification = signed_notification();
  EXPECT_EQ(auth::verify_notification(channel_key("wechat"), notification.credentials(),
                                notification.body_text),
            auth::AuthStatus::bad_signature);
}

TEST(Notify, NonBase64SignatureFails) {
  Notification notification = signed_notification();
  notification.signature[10] = '*';
  EXPECT_EQ(auth::verify_notification(channel_key("alipay"), notification.credentials(),
                                notification.body_text),
            auth::AuthStatus::bad_signature);
}

TEST(Notify, MissingHeaderIsUnauthenticated) {
  Notification notification = signed_notification();
  notification.nonce.clear();
  EXPECT_EQ(auth::verify_notification(channel_key("alipay"), notification.credentials(),
                                notification.body_text),
            auth::AuthStatus::unauthenticated);
}

TEST(Notify, CredentialsComeFromHeaders) {
  const std::string text =
      "POST /v1/notify/alipay HTTP/1.1\r\nX-Channel-Timestamp: 1\r\nX-Channel-Nonce: n\r\n"
      "X-Channel-Signature: c2ln\r\n\r\n";
  HttpRequest request;
  ASSERT_EQ(parse_http_request(text, HttpLimits{}, &request).status, HttpParseStatus::complete);
  const auth::NotificationCredentials credentials = notification_credentials(request);
  EXPECT_EQ(credentials.timestamp, "1");
  EXPECT_EQ(credentials.nonce, "n");
  EXPECT_EQ(credentials.signature, "c2ln");
}

TEST(Base64, DecodesStandardAlphabetWithPadding) {
  unsigned char out[16];
  std::size_t size = 0;
  ASSERT_TRUE(auth::base64_decode("aGVsbG8=", out, sizeof(out), &size));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), size), "hello");
  ASSERT_TRUE(auth::base64_decode("aGk=", out, sizeof(out), &size));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), size), "hi");
  ASSERT_TRUE(auth::base64_decode("aA==", out, sizeof(out), &size));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), size), "h");
  ASSERT_TRUE(auth::base64_decode("+/+/", out, sizeof(out), &size));
  EXPECT_EQ(size, 3u);
}

TEST(Base64, RefusesMalformed) {
  unsigned char out[16];
  std::size_t size = 0;
  EXPECT_FALSE(auth::base64_decode("aGVsbG8", out, sizeof(out), &size));    // no padding
  EXPECT_FALSE(auth::base64_decode("aG=sbG8=", out, sizeof(out), &size));   // '=' inside
  EXPECT_FALSE(auth::base64_decode("aGVs bG8=", out, sizeof(out), &size));  // space
  EXPECT_FALSE(auth::base64_decode("aB==", out, sizeof(out), &size));       // non-canonical bits
  EXPECT_FALSE(auth::base64_decode("", out, sizeof(out), &size));
  EXPECT_FALSE(auth::base64_decode("aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=", out, 4, &size));  // too long
}

}  // namespace
}  // namespace paycore::net
