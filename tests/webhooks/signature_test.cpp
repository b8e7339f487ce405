// Paycore-Signature (API.md "Events and webhooks"): what verifies and each way a header fails.
#include "webhooks/signature.hpp"

#include <gtest/gtest.h>

namespace paycore::webhooks {
namespace {

constexpr std::string_view secret = "whsec_test";
constexpr std::string_view body = R"({"id":"evt_1"})";
constexpr std::int64_t t = 1'700'000'000;

TEST(Signature, MatchesAnIndependentHmac) {
  // python3: hmac.new(b'whsec_test', b'1700000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
  EXPECT_EQ(sign_v1(secret, t, body),
            "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925");
  EXPECT_EQ(signature_header_value(secret, t, body),
            "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925");
}

TEST(Signature, SignedHeaderVerifies) {
  const std::string header = signature_header_value(secret, t, body);
  EXPECT_EQ(verify_signature(header, secret, body, t), SignatureCheck::kValid);
  EXPECT_EQ(verify_signature(header, secret, body, t + 300), SignatureCheck::kValid);
  EXPECT_EQ(verify_signature(header, secret, body, t - 300), SignatureCheck::kValid);
}

TEST(Signature, TamperedBodyIsRefused) {
  const std::string header = signature_header_value(secret, t, body);
  EXPECT_EQ(verify_signature(header, secret, R"({"id":"evt_2"})", t), SignatureCheck::kMismatch);
}

TEST(Signature, WrongSecretIsRefused) {
  const std::string header = signature_header_value(secret, t, body);
  EXPECT_EQ(verify_signature(header, "whsec_other", body, t), SignatureCheck::kMismatch);
}

TEST(Signature, OldTimestampIsRefused) {
  const std::string header = signature_header_value(secret, t, body);
  EXPECT_EQ(verify_signature(header, secret, body, t + 301), SignatureCheck::kTimestampTooOld);
  EXPECT_EQ(verify_signature(header, secret, body, t + 20, 10), SignatureCheck::kTimestampTooOld);
}

TEST(Signature, FutureTimestampIsRefused) {
  const std::string header = signature_header_value(secret, t, body);
  EXPECT_EQ(verify_signature(header, secret, body, t - 301), SignatureCheck::kTimestampTooNew);
}

TEST(Signature, ChangedTimestampIsAMismatch) {
  // The t is signed: moving it into the window does not make an old signature valid.
  const std::string header = "t=" + std::to_string(t + 1000) + ",v1=" + sign_v1(secret, t, body);
  EXPECT_EQ(verify_signature(header, secret, body, t + 1000), SignatureCheck::kMismatch);
}

TEST(Signature, AnyOfSeveralV1Verifies) {
  const std::string header = "t=" + std::to_string(t) + ",v1=" + sign_v1("old_secret", t, body) +
                             ",v1=" + sign_v1(secret, t, body);
  EXPECT_EQ(verify_signature(header, secret, body, t), SignatureCheck::kValid);
  EXPECT_EQ(verify_signature(header, "old_secret", body, t), SignatureCheck::kValid);
}

TEST(Signature, UnknownSchemesAreIgnored) {
  const std::string header = "t=" + std::to_string(t) + ",v0=abc,v1=" + sign_v1(secret, t, body) +
                             ",v2=zzz";
  EXPECT_EQ(verify_signature(header, secret, body, t), SignatureCheck::kValid);
  EXPECT_EQ(verify_signature("t=1700000000,v0=abc", secret, body, t), SignatureCheck::kNoV1);
}

TEST(Signature, MalformedHeadersAreRefused) {
  const std::string v1 = sign_v1(secret, t, body);
  EXPECT_EQ(verify_signature("v1=" + v1, secret, body, t), SignatureCheck::kNoTimestamp);
  EXPECT_EQ(verify_signature("t=abc,v1=" + v1, secret, body, t), SignatureCheck::kMalformed);
  EXPECT_EQ(verify_signature("t=-5,v1=" + v1, secret, body, t), SignatureCheck::kMalformed);
  EXPECT_EQ(verify_signature("t=1,t=1700000000,v1=" + v1, secret, body, t),
            SignatureCheck::kMalformed);
  EXPECT_EQ(verify_signature("t=1700000000,junk,v1=" + v1, secret, body, t),
            SignatureCheck::kMalformed);
  EXPECT_EQ(verify_signature("t=1700000000,v1=" + v1.substr(1), secret, body, t),
            SignatureCheck::kMismatch);
  EXPECT_EQ(verify_signature(std::string(signature_header_bytes_max + 1, 'x'), secret, body, t),
            SignatureCheck::kMalformed);
  std::string many = "t=1700000000";
  for (std::size_t i = 0; i <= signature_v1_count_max; ++i) many += ",v1=" + v1;
  EXPECT_EQ(verify_signature(many, secret, body, t), SignatureCheck::kMalformed);
}

}  // namespace
}  // namespace paycore::webhooks
