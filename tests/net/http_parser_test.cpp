#include "net/http_parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace paycore::net {
namespace {

constexpr std::string_view signed_post =
    "POST /v1/payments?x=1 HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Content-Type: application/json\r\n"
    "X-Merchant-Id: m_001\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "{\"a\":\"hello\"}";

HttpParseResult parse(std::string_view text, HttpRequest* request,
                      const HttpLimits& limits = HttpLimits{}) {
  return parse_http_request(text, limits, request);
}

void expect_error(std::string_view text, HttpError error, const HttpLimits& limits = {}) {
  HttpRequest request;
  const HttpParseResult result = parse(text, &request, limits);
  EXPECT_EQ(result.status, HttpParseStatus::error) << text;
  EXPECT_EQ(result.error, error) << text << " reason: " << result.reason;
}

TEST(HttpParser, SimplePostParses) {
  HttpRequest request;
  const HttpParseResult result = parse(signed_post, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete) << result.reason;
  EXPECT_EQ(result.consumed_bytes, signed_post.size());
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.method_kind, HttpMethod::post);
  EXPECT_EQ(request.target, "/v1/payments?x=1");
  EXPECT_EQ(request.path, "/v1/payments");
  EXPECT_EQ(request.query, "x=1");
  EXPECT_EQ(request.version_minor, 1);
  EXPECT_EQ(request.headers_count, 4u);
  EXPECT_EQ(request.content_length, 13u);
  EXPECT_EQ(request.body, "{\"a\":\"hello\"}");
  EXPECT_TRUE(request.keep_alive);
}

TEST(HttpParser, ViewsPointIntoTheBuffer) {
  const std::string buffer(signed_post);
  HttpRequest request;
  ASSERT_EQ(parse(buffer, &request).status, HttpParseStatus::complete);
  EXPECT_EQ(request.body.data(), buffer.data() + buffer.size() - 13);
  EXPECT_EQ(request.method.data(), buffer.data());
}

TEST(HttpParser, HeaderNamesAreCaseInsensitive) {
  HttpRequest request;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nx-MERCHANT-id:  m_001 \t\r\n\r\n", &request).status,
            HttpParseStatus::complete);
  EXPECT_EQ(request.header("X-Merchant-Id"), "m_001");
  EXPECT_EQ(request.header("x-merchant-id"), "m_001");
  EXPECT_FALSE(request.header("X-Nonce").has_value());
  EXPECT_EQ(request.header_occurrences("X-MERCHANT-ID"), 1u);
}

TEST(HttpParser, LowercaseContentLengthIsUsed) {
  HttpRequest request;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\nok", &request).status,
            HttpParseStatus::complete);
  EXPECT_EQ(request.body, "ok");
}

TEST(HttpParser, EmptyHeaderValueIsAllowed) {
  HttpRequest request;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nX-Empty:\r\n\r\n", &request).status,
            HttpParseStatus::complete);
  EXPECT_EQ(request.header("x-empty"), "");
}

TEST(HttpParser, NoBodyWithoutContentLength) {
  HttpRequest request;
  const std::string_view text = "GET /healthz HTTP/1.1\r\n\r\n";
  const HttpParseResult result = parse(text, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(result.consumed_bytes, text.size());
  EXPECT_TRUE(request.body.empty());
  EXPECT_EQ(request.method_kind, HttpMethod::get);
}

TEST(HttpParser, OneByteAtATimeParses) {
  HttpRequestParser parser(HttpLimits{});
  HttpRequest request;
  const std::string buffer(signed_post);
  for (std::size_t size = 0; size < buffer.size(); ++size) {
    const HttpParseResult partial = parser.parse(std::string_view(buffer.data(), size), &request);
    ASSERT_EQ(partial.status, HttpParseStatus::need_more) << "at " << size;
  }
  const HttpParseResult result = parser.parse(buffer, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(result.consumed_bytes, buffer.size());
  EXPECT_EQ(request.body, "{\"a\":\"hello\"}");
  EXPECT_EQ(request.header("x-merchant-id"), "m_001");
}

TEST(HttpParser, OneByteAtATimeWithFreshParserEachCall) {
  const std::string buffer(signed_post);
  HttpRequest request;
  for (std::size_t size = 0; size < buffer.size(); ++size) {
    ASSERT_EQ(parse(std::string_view(buffer.data(), size), &request).status,
              HttpParseStatus::need_more);
  }
  EXPECT_EQ(parse(buffer, &request).status, HttpParseStatus::complete);
}

TEST(HttpParser, MovedBufferIsParsedAgain) {
  HttpRequestParser parser(HttpLimits{});
  HttpRequest request;
  std::string first(signed_post.substr(0, signed_post.size() - 3));
  ASSERT_EQ(parser.parse(first, &request).status, HttpParseStatus::need_more);
  const std::string second(signed_post);  // a different allocation: the views must follow it
  ASSERT_EQ(parser.parse(second, &request).status, HttpParseStatus::complete);
  EXPECT_EQ(request.method.data(), second.data());
  EXPECT_EQ(request.body, "{\"a\":\"hello\"}");
}

TEST(HttpParser, PipelinedRequestsParseInOrder) {
  const std::string buffer = std::string(signed_post) +
                             "GET /v1/payments/o-1 HTTP/1.1\r\nHost: x\r\n\r\n" +
                             "POST /v1/x HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  std::string_view rest = buffer;
  HttpRequest request;
  HttpParseResult result = parse(rest, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(request.path, "/v1/payments");
  rest.remove_prefix(result.consumed_bytes);
  result = parse(rest, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(request.path, "/v1/payments/o-1");
  EXPECT_TRUE(request.body.empty());
  rest.remove_prefix(result.consumed_bytes);
  result = parse(rest, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(request.path, "/v1/x");
  EXPECT_EQ(request.body, "abc");
  EXPECT_FALSE(request.keep_alive);
  EXPECT_EQ(result.consumed_bytes, rest.size());
}

TEST(HttpParser, LeadingEmptyLinesAreSkipped) {
  HttpRequest request;
  const std::string_view text = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  const HttpParseResult result = parse(text, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(result.consumed_bytes, text.size());
}

TEST(HttpParser, TooManyLeadingEmptyLinesIs400) {
  expect_error("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, KeepAliveIsDefaultForHttp11) {
  HttpRequest request;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_TRUE(request.keep_alive);
}

TEST(HttpParser, ConnectionCloseHonoured) {
  HttpRequest request;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", &request).status,
            HttpParseStatus::complete);
  EXPECT_FALSE(request.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", &request).status,
            HttpParseStatus::complete);
  EXPECT_FALSE(request.keep_alive);
}

TEST(HttpParser, Http10DefaultsToClose) {
  HttpRequest request;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_EQ(request.version_minor, 0);
  EXPECT_FALSE(request.keep_alive);
}

TEST(HttpParser, Http10KeepAliveHonoured) {
  HttpRequest request;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &request).status,
            HttpParseStatus::complete);
  EXPECT_TRUE(request.keep_alive);
}

TEST(HttpParser, HeadersTooLargeIs431) {
  HttpLimits limits;
  limits.header_bytes_max = 256;
  std::string text = "GET / HTTP/1.1\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n";
  expect_error(text, HttpError::headers_too_large, limits);
  // Also while the header section is still incomplete.
  expect_error(text.substr(0, 270), HttpError::headers_too_large, limits);
  EXPECT_EQ(http_error_status(HttpError::headers_too_large), 431);
}

TEST(HttpParser, HeaderSectionExactlyAtLimitParses) {
  const std::string text = "GET / HTTP/1.1\r\nX-A: b\r\n\r\n";
  HttpLimits limits;
  limits.header_bytes_max = text.size();
  HttpRequest request;
  EXPECT_EQ(parse(text, &request, limits).status, HttpParseStatus::complete);
  limits.header_bytes_max = text.size() - 1;
  expect_error(text, HttpError::headers_too_large, limits);
}

TEST(HttpParser, TooManyHeadersIs431) {
  std::string text = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i) text += "X-H" + std::to_string(i) + ": v\r\n";
  text += "\r\n";
  expect_error(text, HttpError::headers_too_large);
}

TEST(HttpParser, BodyTooLargeIs413) {
  HttpLimits limits;
  limits.body_bytes_max = 10;
  // Refused from the header alone, before the body arrives.
  expect_error("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", HttpError::body_too_large, limits);
  EXPECT_EQ(http_error_status(HttpError::body_too_large), 413);
}

TEST(HttpParser, DefaultBodyLimitIsOneMebibyte) {
  expect_error("POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", HttpError::body_too_large);
  HttpRequest request;
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n", &request).status,
            HttpParseStatus::need_more);
}

TEST(HttpParser, ChunkedBodyIs411) {
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
               HttpError::length_required);
  EXPECT_EQ(http_error_status(HttpError::length_required), 411);
}

TEST(HttpParser, ConflictingContentLengthIs400) {
  expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
               HttpError::bad_request);
}

TEST(HttpParser, DuplicateEqualContentLengthIs400) {
  expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
               HttpError::bad_request);
}

TEST(HttpParser, ContentLengthListIs400) {
  expect_error("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", HttpError::bad_request);
}

TEST(HttpParser, TransferEncodingWithContentLengthIs400) {
  expect_error(
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      HttpError::bad_request);
}

TEST(HttpParser, NonDigitContentLengthIs400) {
  expect_error("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", HttpError::bad_request);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc", HttpError::bad_request);
  expect_error("POST / HTTP/1.1\r\nContent-Length:\r\n\r\nabc", HttpError::bad_request);
}

TEST(HttpParser, OverflowingContentLengthIs400) {
  expect_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
               HttpError::bad_request);
}

TEST(HttpParser, BareLfIs400) {
  expect_error("GET / HTTP/1.1\nHost: x\n\n", HttpError::bad_request);
  expect_error("GET / HTTP/1.1\r\nHost: x\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, BareCrIs400) {
  expect_error("GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n", HttpError::bad_request);
  expect_error("GET / HTTP/1.1\rX\r\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, ObsFoldIs400) {
  expect_error("GET / HTTP/1.1\r\nX-A: b\r\n  continued\r\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, SpaceBeforeColonIs400) {
  expect_error("POST / HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc", HttpError::bad_request);
}

TEST(HttpParser, InvalidHeaderNameIs400) {
  expect_error("GET / HTTP/1.1\r\nX(A): b\r\n\r\n", HttpError::bad_request);
  expect_error("GET / HTTP/1.1\r\n: b\r\n\r\n", HttpError::bad_request);
  expect_error("GET / HTTP/1.1\r\nNoColon\r\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, ControlCharacterInValueIs400) {
  expect_error(std::string("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 29), HttpError::bad_request);
}

TEST(HttpParser, Http2VersionIs400) {
  expect_error("GET / HTTP/2.0\r\n\r\n", HttpError::bad_request);
  expect_error("GET / http/1.1\r\n\r\n", HttpError::bad_request);
  expect_error("GET /\r\n\r\n", HttpError::bad_request);
}

// RFC 9110 2.5: a higher minor version is served as the highest one we implement.
TEST(HttpParser, HigherMinorVersionIsReadAsHttp11) {
  HttpRequest request;
  const auto result = parse_http_request("GET /healthz HTTP/1.7\r\nHost: a\r\n\r\n", HttpLimits{}, &request);
  ASSERT_EQ(result.status, HttpParseStatus::complete);
  EXPECT_EQ(request.version_minor, 1);
}

TEST(HttpParser, MalformedRequestLineIs400) {
  expect_error("GET  / HTTP/1.1\r\n\r\n", HttpError::bad_request);
  expect_error("GET / HTTP/1.1 \r\n\r\n", HttpError::bad_request);
  expect_error("GET /a#frag HTTP/1.1\r\n\r\n", HttpError::bad_request);
}

// RFC 9112 3.2.2: routing and the signature use the origin-form part.
TEST(HttpParser, AbsoluteFormTargetIsItsOriginFormPart) {
  HttpRequest request;
  ASSERT_EQ(parse("GET http://example.com:8080/v1/payments/o-1?a=b HTTP/1.1\r\nHost: x\r\n\r\n",
                  &request)
                .status,
            HttpParseStatus::complete);
  EXPECT_EQ(request.target, "/v1/payments/o-1?a=b");
  EXPECT_EQ(request.path, "/v1/payments/o-1");
  EXPECT_EQ(request.query, "a=b");
  EXPECT_EQ(request.authority, "example.com:8080");
  ASSERT_EQ(parse("GET HTTPS://h HTTP/1.1\r\nHost: x\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_EQ(request.target, "/");
  EXPECT_EQ(request.path, "/");
  ASSERT_EQ(parse("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_TRUE(request.authority.empty());
}

TEST(HttpParser, AbsoluteFormThatIsNotHttpIs400) {
  expect_error("GET ftp://example.com/ HTTP/1.1\r\n\r\n", HttpError::bad_request);
  expect_error("GET http:///v1/x HTTP/1.1\r\n\r\n", HttpError::bad_request);           // no host
  expect_error("GET http://u:p@example.com/ HTTP/1.1\r\n\r\n", HttpError::bad_request);  // userinfo
  expect_error("GET http://example.com?a=b HTTP/1.1\r\n\r\n", HttpError::bad_request);   // query, no path
  expect_error("GET example.com/ HTTP/1.1\r\n\r\n", HttpError::bad_request);
  expect_error("OPTIONS * HTTP/1.1\r\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, ExpectContinueIsFlaggedForHttp11Only) {
  HttpRequest request;
  const std::string_view head = "POST /v1/payments HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
  const HttpParseResult result = parse(head, &request);
  ASSERT_EQ(result.status, HttpParseStatus::need_more);
  EXPECT_EQ(result.header_bytes, head.size());
  EXPECT_TRUE(request.expect_continue);
  EXPECT_EQ(request.path, "/v1/payments");
  ASSERT_EQ(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", &request).status,
            HttpParseStatus::complete);
  EXPECT_FALSE(request.expect_continue);
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n{}", &request).status,
            HttpParseStatus::complete);
  EXPECT_FALSE(request.expect_continue);
}

TEST(HttpParser, HeaderBytesAreZeroWhileTheHeaderIsIncomplete) {
  HttpRequest request;
  const HttpParseResult partial = parse(signed_post.substr(0, 20), &request);
  EXPECT_EQ(partial.status, HttpParseStatus::need_more);
  EXPECT_EQ(partial.header_bytes, 0u);
  const HttpParseResult whole = parse(signed_post, &request);
  ASSERT_EQ(whole.status, HttpParseStatus::complete);
  EXPECT_EQ(whole.header_bytes, signed_post.size() - 13);
}

TEST(HttpRequestCheck, Http11WithoutHostIs400) {
  HttpRequest request;
  ASSERT_EQ(parse("GET /healthz HTTP/1.1\r\n\r\n", &request).status, HttpParseStatus::complete);
  const HttpParseResult checked = check_http_request(request);
  EXPECT_EQ(checked.status, HttpParseStatus::error);
  EXPECT_EQ(checked.error, HttpError::bad_request);
  ASSERT_EQ(parse("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_EQ(check_http_request(request).status, HttpParseStatus::complete);
  // HTTP/1.0 may omit it.
  ASSERT_EQ(parse("GET /healthz HTTP/1.0\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_EQ(check_http_request(request).status, HttpParseStatus::complete);
}

TEST(HttpRequestCheck, PostWithoutContentLengthIs411) {
  HttpRequest request;
  ASSERT_EQ(parse("POST /v1/payments HTTP/1.1\r\nHost: x\r\n\r\n", &request).status, HttpParseStatus::complete);
  const HttpParseResult checked = check_http_request(request);
  EXPECT_EQ(checked.status, HttpParseStatus::error);
  EXPECT_EQ(checked.error, HttpError::length_required);
  ASSERT_EQ(parse("POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &request).status,
            HttpParseStatus::complete);
  EXPECT_EQ(check_http_request(request).status, HttpParseStatus::complete);
  ASSERT_EQ(parse("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &request).status, HttpParseStatus::complete);
  EXPECT_EQ(check_http_request(request).status, HttpParseStatus::complete);
}

TEST(HttpParser, OversizedRequestLineIs400) {
  HttpLimits limits;
  limits.request_line_bytes_max = 64;
  const std::string text = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n";
  expect_error(text, HttpError::bad_request, limits);
  // Refused before the line is complete.
  expect_error(text.substr(0, 70), HttpError::bad_request, limits);
}

TEST(HttpParser, DuplicateHostIs400) {
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HttpError::bad_request);
}

TEST(HttpParser, IncompleteBodyNeedsMore) {
  HttpRequest request;
  EXPECT_EQ(parse(signed_post.substr(0, signed_post.size() - 1), &request).status,
            HttpParseStatus::need_more);
}

TEST(HttpParser, ErrorCodesAreNamed) {
  EXPECT_EQ(http_error_code(HttpError::length_required), "length_required");
  EXPECT_EQ(http_error_status(HttpError::bad_request), 400);
}

}  // namespace
}  // namespace paycore::net
