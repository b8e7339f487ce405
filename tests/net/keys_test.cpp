#include "auth/keys.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "auth/signing.hpp"
#include "tests/net/test_keys.hpp"

namespace paycore::auth {
namespace {

using net::testing::dev_keys;

std::string public_pem_json(const std::string& pem) {
  std::string escaped;
  for (char c : pem) {
    if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string alipay_public_pem() {
  return dev_keys().keys->find_channel("alipay")->public_key_pem;
}

std::string keys_json(std::string_view merchants, std::string_view channels = "{}") {
  return std::string(R"({"operator": {"id": "operator", "secret": "op-secret"}, "merchants": )") +
         std::string(merchants) + R"(, "channels": )" + std::string(channels) + "}";
}

void expect_error(const std::string& json, std::string_view mention) {
  const auto result = keys_parse(json, "test.json");
  EXPECT_FALSE(result.is_ok()) << json;
  const std::string error = result.status().message();
  EXPECT_NE(error.find(mention), std::string::npos) << error;
  EXPECT_EQ(error.rfind("test.json: ", 0), 0u) << error;
}

TEST(Keys, DevKeysHaveOperatorMerchantsAndChannels) {
  const Keys& keys = *dev_keys().keys;
  EXPECT_EQ(keys.operator_principal().id.view(), "operator");
  EXPECT_EQ(keys.operator_principal().kind, PrincipalKind::operator_);
  EXPECT_EQ(keys.operator_principal().secret.size(), 64u);
  for (std::string_view id : dev_merchant_ids) {
    const Principal* merchant = keys.find_principal(id);
    ASSERT_NE(merchant, nullptr) << id;
    EXPECT_EQ(merchant->kind, PrincipalKind::merchant);
    EXPECT_EQ(merchant->secret.size(), 64u);
    EXPECT_NE(merchant->secret, keys.operator_principal().secret);
  }
  EXPECT_EQ(keys.principals().size(), 5u);
  for (std::string_view channel : dev_channel_names) {
    ASSERT_NE(keys.find_channel(channel), nullptr) << channel;
    EXPECT_EQ(EVP_PKEY_get_bits(keys.find_channel(channel)->public_key.get()), 2048);
  }
  EXPECT_EQ(keys.find_principal("m_005"), nullptr);
  EXPECT_EQ(keys.find_channel("paypal"), nullptr);
}

TEST(Keys, DevKeyFilesAreMode0600) {
  struct stat status {};
  ASSERT_EQ(::stat(dev_keys().keys_path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dev_keys().dir + "/private/wechat.private.pem").c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
}

TEST(Keys, DevPrivateKeyMatchesPublicKey) {
  const auto private_key = pem_private_key(dev_keys().alipay_private_pem);
  ASSERT_NE(private_key, nullptr);
  const std::string signature = sign_notification(private_key.get(), "1", "nonce-123", "{}");
  ASSERT_FALSE(signature.empty());
  const NotificationCredentials credentials{"1", "nonce-123", signature};
  EXPECT_EQ(verify_notification(dev_keys().keys->find_channel("alipay")->public_key.get(),
                                credentials, "{}"),
            AuthStatus::ok);
}

TEST(Keys, KeysInitRefusesToOverwrite) {
  const auto result = keys_init(dev_keys().keys_path, dev_keys().dir + "/private");
  EXPECT_FALSE(result.is_ok());
  EXPECT_NE(result.status().message().find("already exists"), std::string::npos);
  EXPECT_TRUE(keys_load(dev_keys().keys_path).is_ok());
}

TEST(Keys, ValidFileParses) {
  const auto result =
      keys_parse(keys_json(R"({"m_001": "s1", "m_002": "s2"})",
                           R"({"alipay": {"public_key_pem": ")" +
                               public_pem_json(alipay_public_pem()) + R"(", "extra": 1}})"));
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_EQ((*result)->find_principal("m_002")->secret, "s2");
  EXPECT_EQ((*result)->find_principal("operator")->secret, "op-secret");
  EXPECT_NE((*result)->find_channel("alipay"), nullptr);
}

TEST(Keys, ChannelsAreOptional) {
  const auto result = keys_parse(
      R"({"operator": {"id": "op", "secret": "x"}, "merchants": {"m_001": "s"}})");
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_TRUE((*result)->channels().empty());
}

TEST(Keys, MalformedJsonIsReported) { expect_error("{\"operator\": ", "not valid JSON"); }

TEST(Keys, TopLevelNotObjectIsReported) { expect_error("[1]", "top level"); }

TEST(Keys, MissingOperatorIsReported) {
  expect_error(R"({"merchants": {}})", "\"operator\" is missing");
}

TEST(Keys, MissingMerchantsIsReported) {
  expect_error(R"({"operator": {"id": "op", "secret": "x"}})", "\"merchants\" is missing");
}

TEST(Keys, OperatorSecretNotStringIsReported) {
  expect_error(R"({"operator": {"id": "op", "secret": 5}, "merchants": {}})", "operator.secret");
}

TEST(Keys, InvalidOperatorIdIsReported) {
  expect_error(R"({"operator": {"id": "op erator", "secret": "x"}, "merchants": {}})",
               "operator.id");
}

TEST(Keys, EmptyMerchantSecretIsReported) {
  expect_error(keys_json(R"({"m_001": ""})"), "merchants.m_001");
}

TEST(Keys, MerchantSecretNotStringIsReported) {
  expect_error(keys_json(R"({"m_001": {"secret": "x"}})"), "merchants.m_001");
}

TEST(Keys, InvalidMerchantIdIsReported) {
  expect_error(keys_json(R"({"m/001": "x"})"), "\"m/001\" is not an id");
}

TEST(Keys, DuplicateMerchantIsReported) {
  expect_error(keys_json(R"({"m_001": "x", "m_001": "y"})"), "duplicate merchant \"m_001\"");
}

TEST(Keys, DuplicateTopLevelKeyIsReported) {
  expect_error(R"({"operator": {"id": "op", "secret": "x"}, "merchants": {}, "merchants": {}})",
               "duplicate key \"merchants\"");
}

TEST(Keys, MerchantWithOperatorIdIsReported) {
  expect_error(keys_json(R"({"operator": "x"})"), "operator's id");
}

TEST(Keys, BadPemIsReported) {
  expect_error(keys_json("{}", R"({"alipay": {"public_key_pem": "not a key"}})"),
               "channels.alipay.public_key_pem is not a PEM public key");
}

TEST(Keys, MissingPemIsReported) {
  expect_error(keys_json("{}", R"({"alipay": {}})"), "channels.alipay.public_key_pem is missing");
}

TEST(Keys, SmallRsaKeyIsReported) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(1024), EVP_PKEY_free);
  ASSERT_NE(key, nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), key.get()), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  const std::string pem(data, static_cast<std::size_t>(size));
  expect_error(keys_json("{}", R"({"alipay": {"public_key_pem": ")" + public_pem_json(pem) + "\"}}"),
               "fewer than 2048 bits");
}

TEST(Keys, BalanceChannelIsReserved) {
  expect_error(keys_json("{}", R"({"balance": {"public_key_pem": ")" +
                                   public_pem_json(alipay_public_pem()) + "\"}}"),
               "reserved");
}

TEST(Keys, MissingFileIsReported) {
  const auto result = keys_load("/nonexistent/keys.json");
  EXPECT_FALSE(result.is_ok());
  EXPECT_NE(result.status().message().find("/nonexistent/keys.json"), std::string::npos);
}

TEST(Keys, HolderSwapsAtomically) {
  KeysHolder holder(dev_keys().keys);
  const std::shared_ptr<const Keys> before = holder.get();
  const auto reloaded = keys_parse(keys_json(R"({"m_009": "s"})"));
  ASSERT_TRUE(reloaded.is_ok());
  holder.set(*reloaded);
  EXPECT_NE(holder.get()->find_principal("m_009"), nullptr);
  EXPECT_NE(before->find_principal("m_001"), nullptr);  // the old snapshot stays usable
}

}  // namespace
}  // namespace paycore::auth
