#include "net/request_json.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace paycore::net {
namespace {

constexpr std::string_view payment_body =
    R"({"request_id":"r-1","order_id":"o-1001","amount":1234,"currency":"CNY","channel":"alipay"})";

std::string payment_with(std::string_view amount_json) {
  return R"({"request_id":"r-1","order_id":"o-1001","amount":)" + std::string(amount_json) +
         R"(,"currency":"CNY","channel":"alipay"})";
}

void expect_error(const RequestDecodeResult& result, RequestDecodeErrorCode code, std::string_view field) {
  ASSERT_TRUE(result.has_value()) << "decoded, expected " << decode_error_code(code);
  EXPECT_EQ(decode_error_code(result->code), decode_error_code(code)) << result->message;
  EXPECT_EQ(result->field, field) << result->message;
  EXPECT_FALSE(result->message.empty());
}

RequestDecodeResult decode_payment(std::string_view body, CreatePaymentRequest* out = nullptr) {
  CreatePaymentRequest ignored;
  return thread_json_decoder().decode(body, out != nullptr ? out : &ignored);
}

// ---- every endpoint's body ----

TEST(RequestJson, CreatePaymentDecodes) {
  CreatePaymentRequest request;
  ASSERT_FALSE(decode_payment(payment_body, &request).has_value());
  EXPECT_EQ(request.request_id.view(), "r-1");
  EXPECT_EQ(request.order_id.view(), "o-1001");
  EXPECT_EQ(request.amount, 1234);
  EXPECT_EQ(currency_code(request.currency), "CNY");
  EXPECT_EQ(request.channel.view(), "alipay");
  EXPECT_TRUE(request.payer_account_id.empty());
  EXPECT_TRUE(request.request_id.well_formed());
}

TEST(RequestJson, BalancePaymentNeedsPayer) {
  CreatePaymentRequest request;
  ASSERT_FALSE(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":5,"currency":"JPY",
                                  "channel":"balance","payer_account_id":"c_42"})",
                              &request)
                   .has_value());
  EXPECT_EQ(request.payer_account_id.view(), "c_42");
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":5,
                                  "currency":"JPY","channel":"balance"})"),
               RequestDecodeErrorCode::missing_field, "payer_account_id");
}

// Whether a payer may come with the channel needs to know whether the channel exists, which
// only the engine knows: it answers unknown_channel first, then invalid_field for the payer
// (core/apply.cpp validate_create_payment). The decoder only checks the payer's format.
TEST(RequestJson, PayerWithExternalChannelIsLeftToTheEngine) {
  CreatePaymentRequest request;
  ASSERT_FALSE(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":5,"currency":"CNY",
                                  "channel":"alipay","payer_account_id":"c_42"})",
                              &request)
                   .has_value());
  EXPECT_EQ(request.payer_account_id.view(), "c_42");
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":5,"currency":"CNY",
                                  "channel":"alipay","payer_account_id":"bad id"})"),
               RequestDecodeErrorCode::invalid_field, "payer_account_id");
  // null counts as absent
  EXPECT_FALSE(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":5,"currency":"CNY",
                                  "channel":"alipay","payer_account_id":null})")
                   .has_value());
}

// ---- order of validation (docs/api.md): one test per step boundary ----

TEST(RequestJsonOrder, InvalidJsonWinsOverMissingFields) {
  expect_error(decode_payment(R"({"request_id":"r-1",)"), RequestDecodeErrorCode::invalid_json, "");
  expect_error(decode_payment(R"(["request_id"])"), RequestDecodeErrorCode::invalid_json, "");
}

TEST(RequestJsonOrder, DuplicateKeyWinsOverMissingField) {
  expect_error(decode_payment(R"({"request_id":"r-1","request_id":"r-2"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
}

TEST(RequestJsonOrder, MissingFieldWinsOverMalformedField) {
  // request_id malformed, amount fractional, currency unknown, order_id absent.
  expect_error(decode_payment(R"({"request_id":"bad id","amount":1.5,"currency":"XXX","channel":"alipay"})"),
               RequestDecodeErrorCode::missing_field, "order_id");
  DepositRequest deposit;
  expect_error(thread_json_decoder().decode(R"({"request_id":"bad id","amount":0})", &deposit),
               RequestDecodeErrorCode::missing_field, "currency");
}

TEST(RequestJsonOrder, MalformedFieldWinsOverCrossFieldRule) {
  // balance without a payer (a cross-field rule) and a zero amount (a field's format).
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":0,"currency":"CNY","channel":"balance"})"),
               RequestDecodeErrorCode::invalid_amount, "amount");
  // SUCCESS without paid_at (cross-field) and a malformed order_id.
  NotificationRequest notification;
  expect_error(thread_json_decoder().decode(
                   R"({"channel_txn_id":"t1","merchant_id":"m_001","order_id":"o 1","amount":5,"currency":"CNY","status":"SUCCESS"})",
                   &notification),
               RequestDecodeErrorCode::invalid_field, "order_id");
}

TEST(RequestJsonOrder, FieldsAreCheckedInDocumentedOrder) {
  expect_error(decode_payment(R"({"request_id":"bad id","order_id":"o 1","amount":-1,"currency":"XXX","channel":"alipay"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o-1","amount":-1,"currency":"XXX","channel":"a b"})"),
               RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, OpenAccountDecodes) {
  OpenAccountRequest request;
  ASSERT_FALSE(thread_json_decoder()
                   .decode(R"({"request_id":"r-1","account_id":"c_1","currency":"USD","kind":"merchant"})",
                           &request)
                   .has_value());
  EXPECT_EQ(request.account_id.view(), "c_1");
  EXPECT_EQ(currency_code(request.currency), "USD");
  EXPECT_EQ(request.kind, AccountKind::merchant);
}

TEST(RequestJson, UnknownAccountKindIsInvalid) {
  OpenAccountRequest request;
  expect_error(thread_json_decoder().decode(
                   R"({"request_id":"r-1","account_id":"c_1","currency":"USD","kind":"bank"})",
                   &request),
               RequestDecodeErrorCode::invalid_field, "kind");
}

TEST(RequestJson, DepositDecodes) {
  DepositRequest request;
  ASSERT_FALSE(thread_json_decoder()
                   .decode(R"({"request_id":"d-1","amount":100000,"currency":"CNY"})", &request)
                   .has_value());
  EXPECT_EQ(request.request_id.view(), "d-1");
  EXPECT_EQ(request.amount, 100000);
  EXPECT_EQ(currency_code(request.currency), "CNY");
}

TEST(RequestJson, RequestIdOnlyDecodes) {
  RequestIdOnly request;
  ASSERT_FALSE(thread_json_decoder().decode(R"({"request_id":"ship-1"})", &request).has_value());
  EXPECT_EQ(request.request_id.view(), "ship-1");
  expect_error(thread_json_decoder().decode("{}", &request), RequestDecodeErrorCode::missing_field,
               "request_id");
}

TEST(RequestJson, RefundDecodes) {
  RefundRequest request;
  ASSERT_FALSE(
      thread_json_decoder().decode(R"({"request_id":"r-77","amount":234})", &request).has_value());
  EXPECT_EQ(request.request_id.view(), "r-77");
  EXPECT_EQ(request.amount, 234);
  expect_error(thread_json_decoder().decode(R"({"request_id":"r-77","amount":0})", &request),
               RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, NotificationDecodes) {
  NotificationRequest request;
  ASSERT_FALSE(thread_json_decoder()
                   .decode(R"({"channel_txn_id":"2026112600001","merchant_id":"m_001",
                               "order_id":"o-1001","amount":1234,"currency":"CNY",
                               "status":"SUCCESS","paid_at":"2026-11-26T08:00:01Z"})",
                           &request)
                   .has_value());
  EXPECT_EQ(request.channel_txn_id.view(), "2026112600001");
  EXPECT_EQ(request.merchant_id.view(), "m_001");
  EXPECT_EQ(request.status, NotificationStatus::success);
  EXPECT_TRUE(request.has_paid_at);
  EXPECT_EQ(request.paid_at_us, 1795680001000000);
}

TEST(RequestJson, FailedNotificationNeedsNoPaidAt) {
  NotificationRequest request;
  ASSERT_FALSE(thread_json_decoder()
                   .decode(R"({"channel_txn_id":"t1","merchant_id":"m_001","order_id":"o-1",
                               "amount":1,"currency":"CNY","status":"FAILED"})",
                           &request)
                   .has_value());
  EXPECT_EQ(request.status, NotificationStatus::failed);
  EXPECT_FALSE(request.has_paid_at);
}

TEST(RequestJson, SuccessNotificationNeedsPaidAt) {
  NotificationRequest request;
  expect_error(thread_json_decoder().decode(
                   R"({"channel_txn_id":"t1","merchant_id":"m_001","order_id":"o-1",
                       "amount":1,"currency":"CNY","status":"SUCCESS"})",
                   &request),
               RequestDecodeErrorCode::missing_field, "paid_at");
}

TEST(RequestJson, NotificationBadStatusAndTimeAreInvalid) {
  NotificationRequest request;
  expect_error(thread_json_decoder().decode(
                   R"({"channel_txn_id":"t1","merchant_id":"m_001","order_id":"o-1",
                       "amount":1,"currency":"CNY","status":"PAID"})",
                   &request),
               RequestDecodeErrorCode::invalid_field, "status");
  expect_error(thread_json_decoder().decode(
                   R"({"channel_txn_id":"t1","merchant_id":"m_001","order_id":"o-1","amount":1,
                       "currency":"CNY","status":"SUCCESS","paid_at":"yesterday"})",
                   &request),
               RequestDecodeErrorCode::invalid_field, "paid_at");
}

TEST(RequestJson, BatchDecodesEachItem) {
  std::vector<BatchItem> items;
  const std::string body = "{\"payments\":[" + std::string(payment_body) + "," +
                           payment_with("1.5") + "," + "7" + "]}";
  ASSERT_FALSE(thread_json_decoder().decode_batch(body, &items).has_value());
  ASSERT_EQ(items.size(), 3u);
  EXPECT_FALSE(items[0].error.has_value());
  EXPECT_EQ(items[0].request.amount, 1234);
  ASSERT_TRUE(items[1].error.has_value());
  EXPECT_EQ(items[1].error->code, RequestDecodeErrorCode::invalid_amount);
  EXPECT_EQ(items[1].error->item_index, 1);
  ASSERT_TRUE(items[2].error.has_value());
  EXPECT_EQ(items[2].error->code, RequestDecodeErrorCode::invalid_field);
  EXPECT_EQ(items[2].error->item_index, 2);
}

TEST(RequestJson, BatchOfThousandDecodesAndMoreIsRefused) {
  std::string body = "{\"payments\":[";
  for (int i = 0; i < 1000; ++i) body += (i ? "," : "") + std::string(payment_body);
  std::vector<BatchItem> items;
  ASSERT_FALSE(thread_json_decoder().decode_batch(body + "]}", &items).has_value());
  EXPECT_EQ(items.size(), 1000u);
  expect_error(thread_json_decoder().decode_batch(body + "," + std::string(payment_body) + "]}",
                                                  &items),
               RequestDecodeErrorCode::invalid_field, "payments");
}

TEST(RequestJson, EmptyOrMissingBatchIsRefused) {
  std::vector<BatchItem> items;
  expect_error(thread_json_decoder().decode_batch(R"({"payments":[]})", &items),
               RequestDecodeErrorCode::invalid_field, "payments");
  expect_error(thread_json_decoder().decode_batch(R"({})", &items), RequestDecodeErrorCode::missing_field,
               "payments");
  expect_error(thread_json_decoder().decode_batch(R"({"payments":{}})", &items),
               RequestDecodeErrorCode::invalid_field, "payments");
}

// ---- amounts ----

TEST(RequestJson, FractionalAmountIsInvalid) {
  expect_error(decode_payment(payment_with("12.34")), RequestDecodeErrorCode::invalid_amount, "amount");
  expect_error(decode_payment(payment_with("1234.0")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, ExponentAmountIsInvalid) {
  expect_error(decode_payment(payment_with("1e3")), RequestDecodeErrorCode::invalid_amount, "amount");
  expect_error(decode_payment(payment_with("1E+2")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, StringAmountIsInvalid) {
  expect_error(decode_payment(payment_with("\"1234\"")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, NegativeAmountIsInvalid) {
  expect_error(decode_payment(payment_with("-5")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, ZeroAmountIsInvalid) {
  expect_error(decode_payment(payment_with("0")), RequestDecodeErrorCode::invalid_amount, "amount");
  expect_error(decode_payment(payment_with("-0")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, AmountOverConfiguredMaxIsInvalid) {
  DecodeLimits limits;
  limits.amount_max = 1000;
  JsonDecoder decoder(limits);
  CreatePaymentRequest request;
  expect_error(decoder.decode(payment_with("1001"), &request), RequestDecodeErrorCode::invalid_amount,
               "amount");
  EXPECT_FALSE(decoder.decode(payment_with("1000"), &request).has_value());
  expect_error(decode_payment(payment_with("1000000000000001")), RequestDecodeErrorCode::invalid_amount,
               "amount");
}

TEST(RequestJson, AmountOverInt64IsInvalid) {
  expect_error(decode_payment(payment_with("9223372036854775808")),  // uint64 range
               RequestDecodeErrorCode::invalid_amount, "amount");
  expect_error(decode_payment(payment_with("99999999999999999999999")),  // beyond 64 bits
               RequestDecodeErrorCode::invalid_amount, "amount");
  RefundRequest refund;
  expect_error(thread_json_decoder().decode(R"({"request_id":"r","amount":123456789012345678901234})",
                                            &refund),
               RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, AmountBelowInt64IsInvalid) {
  expect_error(decode_payment(payment_with("-9223372036854775809")), RequestDecodeErrorCode::invalid_amount, "amount");
  expect_error(decode_payment(payment_with("-99999999999999999999999999")), RequestDecodeErrorCode::invalid_amount,
               "amount");
}

TEST(RequestJson, AmountWithHugeExponentIsInvalid) {
  expect_error(decode_payment(payment_with("1e400")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, BigIntegerElsewhereIsInvalidJson) {
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o","amount":1,"currency":"CNY",
                                  "channel":"alipay","extra":99999999999999999999999})"),
               RequestDecodeErrorCode::invalid_json, "");
}

TEST(RequestJson, BigIntegerAmountInBatchNamesItem) {
  std::vector<BatchItem> items;
  const std::string body = "{\"payments\":[" + std::string(payment_body) + "," +
                           payment_with("99999999999999999999999") + "]}";
  const RequestDecodeResult result = thread_json_decoder().decode_batch(body, &items);
  expect_error(result, RequestDecodeErrorCode::invalid_amount, "amount");
  EXPECT_EQ(result->item_index, 1);
}

TEST(RequestJson, NullOrBoolAmountIsInvalidOrMissing) {
  expect_error(decode_payment(payment_with("null")), RequestDecodeErrorCode::missing_field, "amount");
  expect_error(decode_payment(payment_with("true")), RequestDecodeErrorCode::invalid_amount, "amount");
}

TEST(RequestJson, MaxInt64AmountWithinConfiguredMaxDecodes) {
  DecodeLimits limits;
  limits.amount_max = INT64_MAX;
  JsonDecoder decoder(limits);
  CreatePaymentRequest request;
  ASSERT_FALSE(decoder.decode(payment_with("9223372036854775807"), &request).has_value());
  EXPECT_EQ(request.amount, INT64_MAX);
}

// ---- fields ----

TEST(RequestJson, MissingFieldIsNamed) {
  expect_error(decode_payment(R"({"request_id":"r-1","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::missing_field, "order_id");
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o","currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::missing_field, "amount");
}

TEST(RequestJson, WrongTypeIsInvalidField) {
  expect_error(decode_payment(R"({"request_id":5,"order_id":"o","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
  expect_error(decode_payment(R"({"request_id":"r","order_id":["o"],"amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "order_id");
}

TEST(RequestJson, DuplicateKeyIsInvalid) {
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o","amount":5,"amount":6,
                                  "currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "amount");
}

TEST(RequestJson, DuplicateUnknownKeyIsIgnored) {
  EXPECT_FALSE(decode_payment(R"({"request_id":"r-1","order_id":"o","amount":5,"currency":"CNY",
                                  "channel":"x","note":1,"note":2})")
                   .has_value());
}

TEST(RequestJson, UnknownFieldsAreIgnored) {
  CreatePaymentRequest request;
  ASSERT_FALSE(decode_payment(R"({"metadata":{"a":[1,2,{"b":null}]},"request_id":"r-1",
                                  "order_id":"o","amount":5,"currency":"CNY","channel":"x"})",
                              &request)
                   .has_value());
  EXPECT_EQ(request.amount, 5);
}

TEST(RequestJson, OverlongIdIsInvalid) {
  const std::string id64(64, 'a');
  CreatePaymentRequest request;
  ASSERT_FALSE(decode_payment(R"({"request_id":")" + id64 +
                                  R"(","order_id":"o","amount":5,"currency":"CNY","channel":"x"})",
                              &request)
                   .has_value());
  EXPECT_EQ(request.request_id.view(), id64);
  expect_error(decode_payment(R"({"request_id":")" + id64 +
                              R"(a","order_id":"o","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
}

TEST(RequestJson, IdWithForbiddenCharacterIsInvalid) {
  expect_error(decode_payment(R"({"request_id":"r 1","order_id":"o","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
  expect_error(decode_payment(R"({"request_id":"r-1","order_id":"o/1","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "order_id");
  expect_error(decode_payment(R"({"request_id":"","order_id":"o","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
  // An escaped character is checked after unescaping.
  expect_error(decode_payment(R"({"request_id":"r\u00e9","order_id":"o","amount":5,"currency":"CNY","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "request_id");
}

TEST(RequestJson, UnknownCurrencyIsInvalid) {
  expect_error(decode_payment(R"({"request_id":"r","order_id":"o","amount":5,"currency":"XYZ","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "currency");
  expect_error(decode_payment(R"({"request_id":"r","order_id":"o","amount":5,"currency":"cny","channel":"x"})"),
               RequestDecodeErrorCode::invalid_field, "currency");
}

// ---- JSON shape ----

TEST(RequestJson, MalformedJsonIsInvalidJson) {
  expect_error(decode_payment(R"({"request_id":"r-1",)"), RequestDecodeErrorCode::invalid_json, "");
  expect_error(decode_payment(R"({"request_id":"r-1"} trailing)"), RequestDecodeErrorCode::invalid_json, "");
  expect_error(decode_payment(""), RequestDecodeErrorCode::invalid_json, "");
  expect_error(decode_payment(R"({"x":tru,"request_id":"r"})"), RequestDecodeErrorCode::invalid_json, "");
  expect_error(decode_payment("{\"request_id\":\"\xff\xfe\"}"), RequestDecodeErrorCode::invalid_json, "");
}

TEST(RequestJson, NonObjectBodyIsInvalidJson) {
  expect_error(decode_payment("[1,2]"), RequestDecodeErrorCode::invalid_json, "");
  expect_error(decode_payment("\"text\""), RequestDecodeErrorCode::invalid_json, "");
}

TEST(RequestJson, DeeplyNestedJsonIsRefused) {
  const std::string deep = R"({"request_id":"r","x":)" + std::string(10000, '[') +
                           std::string(10000, ']') + "}";
  const RequestDecodeResult result = decode_payment(deep);
  expect_error(result, RequestDecodeErrorCode::invalid_json, "");
  EXPECT_NE(result->message.find("deep"), std::string_view::npos);
}

TEST(RequestJson, BodyOverLimitIsRefused) {
  DecodeLimits limits;
  limits.body_bytes_max = 64;
  JsonDecoder decoder(limits);
  CreatePaymentRequest request;
  expect_error(decoder.decode(payment_body, &request), RequestDecodeErrorCode::invalid_json, "");
}

TEST(RequestJson, DecoderIsReusable) {
  JsonDecoder decoder;
  CreatePaymentRequest request;
  for (int i = 0; i <= 100; ++i) {  // ends with a good one
    const bool bad = i % 3 == 0;
    const RequestDecodeResult result = decoder.decode(bad ? payment_with("1.5") : payment_with("42"), &request);
    ASSERT_EQ(result.has_value(), bad) << i;
  }
  EXPECT_EQ(request.amount, 42);
}

// ---- X-Request-Id ----

TEST(TraceId, ClientIdIsEchoed) {
  TraceIdGenerator generator;
  EXPECT_EQ(generator.for_request("abc-123_X.y").view(), "abc-123_X.y");
}

TEST(TraceId, MissingIdIsGenerated) {
  TraceIdGenerator generator;
  const TraceId first = generator.for_request(std::nullopt);
  const TraceId second = generator.for_request(std::nullopt);
  EXPECT_EQ(first.size, 33u);
  EXPECT_NE(first.view(), second.view());
  EXPECT_EQ(first.view().substr(0, 17), second.view().substr(0, 17));
  EXPECT_TRUE(trace_id_is_acceptable(first.view()));
}

TEST(TraceId, UnsafeIdIsReplaced) {
  TraceIdGenerator generator;
  EXPECT_NE(generator.for_request("has space").view(), "has space");
  EXPECT_NE(generator.for_request("quote\"d").view(), "quote\"d");
  EXPECT_EQ(generator.for_request("").size, 33u);
  EXPECT_EQ(generator.for_request(std::string(129, 'a')).size, 33u);
  EXPECT_EQ(generator.for_request(std::string(128, 'a')).size, 128u);
}

TEST(TraceId, GeneratorsDiffer) {
  std::set<std::string> prefixes;
  for (int i = 0; i < 8; ++i) {
    TraceIdGenerator generator;
    prefixes.insert(std::string(generator.next().view().substr(0, 16)));
  }
  EXPECT_EQ(prefixes.size(), 8u);
}

}  // namespace
}  // namespace paycore::net
