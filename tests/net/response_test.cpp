#include "net/response.hpp"

#include <gtest/gtest.h>

#include <string>

namespace paycore::net {
namespace {

std::string format(std::int64_t unix_us) {
  char text[rfc3339_us_bytes];
  if (!format_rfc3339_us(unix_us, text)) return "<fail>";
  return std::string(text, rfc3339_us_bytes);
}

TEST(OutBuffer, AppendsAndConsumes) {
  OutBuffer out(1024, 16);
  ASSERT_TRUE(out.append("hello "));
  ASSERT_TRUE(out.append("world"));
  EXPECT_EQ(out.view(), "hello world");
  out.consume(6);
  EXPECT_EQ(out.view(), "world");
  out.consume(5);
  EXPECT_TRUE(out.empty());
}

TEST(OutBuffer, GrowsUpToTheLimitThenRefuses) {
  OutBuffer out(100, 16);
  ASSERT_TRUE(out.append(std::string(90, 'a')));
  EXPECT_LE(out.capacity(), 100u);
  EXPECT_FALSE(out.append(std::string(11, 'b')));
  EXPECT_EQ(out.size(), 90u);  // unchanged by the refused append
  EXPECT_TRUE(out.append(std::string(10, 'c')));
  EXPECT_EQ(out.size(), 100u);
}

TEST(OutBuffer, IsReusedWithoutGrowing) {
  OutBuffer out(4096, 256);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(out.append(std::string(200, 'x')));
    out.consume(out.size());
  }
  EXPECT_EQ(out.capacity(), 256u);
}

TEST(OutBuffer, ConsumedSpaceIsReclaimedBeforeGrowing) {
  OutBuffer out(64, 64);
  ASSERT_TRUE(out.append(std::string(60, 'a')));
  out.consume(50);
  ASSERT_TRUE(out.append(std::string(50, 'b')));
  EXPECT_EQ(out.capacity(), 64u);
  EXPECT_EQ(out.view(), std::string(10, 'a') + std::string(50, 'b'));
}

TEST(Response, WritesStatusHeadersAndBody) {
  OutBuffer out(4096);
  ResponseHead head;
  head.status = 201;
  head.trace_id = "req-1";
  head.lsn = 42;
  ASSERT_TRUE(write_response(out, head, "{\"a\":1}"));
  EXPECT_EQ(out.view(),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
            "Connection: keep-alive\r\nX-Request-Id: req-1\r\nPaycore-Lsn: 42\r\n\r\n"
            "{\"a\":1}");
}

TEST(Response, ReplayedAndCloseHeaders) {
  OutBuffer out(4096);
  ResponseHead head;
  head.status = 402;
  head.keep_alive = false;
  head.idempotent_replayed = true;
  ASSERT_TRUE(write_response(out, head, ""));
  const std::string_view text = out.view();
  EXPECT_EQ(text.substr(0, 30), "HTTP/1.1 402 Payment Required\r");
  EXPECT_NE(text.find("\r\nConnection: close\r\n"), std::string_view::npos);
  EXPECT_NE(text.find("\r\nIdempotent-Replayed: true\r\n"), std::string_view::npos);
  EXPECT_NE(text.find("\r\nContent-Length: 0\r\n"), std::string_view::npos);
  EXPECT_EQ(text.find("X-Request-Id"), std::string_view::npos);
}

TEST(Response, HeadAnswerHasTheLengthButNotTheBody) {
  OutBuffer out(4096);
  ResponseHead head;
  head.omit_body = true;
  ASSERT_TRUE(write_response(out, head, R"({"status":"ok"})"));
  const std::string_view text = out.view();
  EXPECT_NE(text.find("\r\nContent-Length: 15\r\n"), std::string_view::npos);
  EXPECT_TRUE(text.ends_with("\r\n\r\n")) << text;
}

TEST(Response, ContinueIsOneInterimAnswer) {
  OutBuffer out(4096);
  ASSERT_TRUE(write_continue(out));
  EXPECT_EQ(out.view(), "HTTP/1.1 100 Continue\r\n\r\n");
  OutBuffer tiny(8);
  EXPECT_FALSE(write_continue(tiny));
  EXPECT_TRUE(tiny.empty());
}

TEST(Response, ExtraHeadersAreWritten) {
  OutBuffer out(4096);
  const std::string_view extra[] = {"Allow: GET, POST"};
  ResponseHead head;
  head.status = 405;
  head.extra_headers = extra;
  ASSERT_TRUE(write_response(out, head, "x"));
  EXPECT_NE(out.view().find("\r\nAllow: GET, POST\r\n\r\nx"), std::string_view::npos);
}

TEST(Response, HeaderInjectionIsRefused) {
  OutBuffer out(4096);
  ResponseHead head;
  head.trace_id = "a\r\nSet-Cookie: x";
  EXPECT_FALSE(write_response(out, head, ""));
  EXPECT_TRUE(out.empty());
}

TEST(Response, TooLargeLeavesBufferUnchanged) {
  OutBuffer out(128);
  ASSERT_TRUE(out.append("previous"));
  EXPECT_FALSE(write_response(out, ResponseHead{}, std::string(200, 'x')));
  EXPECT_EQ(out.view(), "previous");
}

TEST(Rfc3339, FormatsMicroseconds) {
  EXPECT_EQ(format(1795670354123456), "2026-11-26T05:19:14.123456Z");
  EXPECT_EQ(format(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format(1709208000LL * 1000000), "2024-02-29T12:00:00.000000Z");
}

TEST(Rfc3339, FormatsBeforeEpoch) { EXPECT_EQ(format(-1), "1969-12-31T23:59:59.999999Z"); }

TEST(Rfc3339, OutOfRangeFails) {
  EXPECT_EQ(format(INT64_MAX), "<fail>");
  EXPECT_EQ(format(INT64_MIN), "<fail>");
}

TEST(Rfc3339, ParsesWhatItFormats) {
  std::int64_t us = 0;
  ASSERT_TRUE(parse_rfc3339_us("2026-11-26T05:19:14.123456Z", &us));
  EXPECT_EQ(us, 1795670354123456);
  ASSERT_TRUE(parse_rfc3339_us("2026-11-26T13:19:14+08:00", &us));
  EXPECT_EQ(us, 1795670354000000);
  ASSERT_TRUE(parse_rfc3339_us("2026-11-26T05:19:14.1Z", &us));
  EXPECT_EQ(us, 1795670354100000);
}

TEST(Rfc3339, MalformedIsRefused) {
  std::int64_t us = 0;
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26 05:19:14Z", &us));
  EXPECT_FALSE(parse_rfc3339_us("2026-02-30T05:19:14Z", &us));
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26T05:19:14", &us));
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26T24:00:00Z", &us));
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26T05:19:14.Z", &us));
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26T05:19:14Zjunk", &us));
}

TEST(JsonWriter, WritesObjectsWithCommas) {
  OutBuffer out(4096);
  JsonWriter json(out);
  json.begin_object()
      .field("merchant_id", "m_001")
      .field("amount", std::int64_t{1234})
      .field_null("channel_txn_id")
      .key("created_at")
      .timestamp_us(1795670354123456)
      .key("list")
      .begin_array()
      .int64(-1)
      .boolean(true)
      .begin_object()
      .end_object()
      .end_array()
      .end_object();
  ASSERT_TRUE(json.complete());
  EXPECT_EQ(out.view(),
            "{\"merchant_id\":\"m_001\",\"amount\":1234,\"channel_txn_id\":null,"
            "\"created_at\":\"2026-11-26T05:19:14.123456Z\",\"list\":[-1,true,{}]}");
}

TEST(JsonWriter, EscapesStrings) {
  OutBuffer out(4096);
  JsonWriter json(out);
  json.string("a\"b\\c\nd\x01\x1f\té");
  ASSERT_TRUE(json.complete());
  EXPECT_EQ(out.view(), "\"a\\\"b\\\\c\\nd\\u0001\\u001f\\té\"");
}

TEST(JsonWriter, Int64Extremes) {
  OutBuffer out(4096);
  JsonWriter json(out);
  json.begin_array().int64(INT64_MIN).int64(INT64_MAX).int64(0).end_array();
  ASSERT_TRUE(json.complete());
  EXPECT_EQ(out.view(), "[-9223372036854775808,9223372036854775807,0]");
}

TEST(JsonWriter, LimitHitIsReported) {
  OutBuffer out(8);
  JsonWriter json(out);
  json.begin_object().field("long_name", "long value").end_object();
  EXPECT_FALSE(json.ok());
  EXPECT_FALSE(json.complete());
}

TEST(JsonWriter, UnclosedIsNotComplete) {
  OutBuffer out(64);
  JsonWriter json(out);
  json.begin_object();
  EXPECT_TRUE(json.ok());
  EXPECT_FALSE(json.complete());
}

TEST(JsonWriter, ErrorBodyMatchesApi) {
  OutBuffer out(4096);
  ASSERT_TRUE(write_error_body(out, "invalid_amount", "amount must be a positive integer",
                               "amount"));
  EXPECT_EQ(out.view(),
            "{\"error\":{\"code\":\"invalid_amount\",\"message\":\"amount must be a positive "
            "integer\",\"field\":\"amount\"}}");
  out.clear();
  ASSERT_TRUE(write_error_body(out, "not_found", "no such route"));
  EXPECT_EQ(out.view(), "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\"}}");
}

}  // namespace
}  // namespace paycore::net
