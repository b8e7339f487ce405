// HTTP/1.1 request parser. Input: byte 0 picks the limits and the chunking, the rest is what a
// client sent on one connection (possibly several pipelined requests).
// Properties:
//  - no crash, no sanitizer report, no exception;
//  - feeding a request in random chunks to one HttpRequestParser (the incremental path the
//    server takes) answers, after every chunk, exactly what the stateless parse of the same
//    prefix answers (status, error, consumed bytes), and the completed request is the same;
//  - a complete request consumed > 0 bytes, its body is content_length bytes of the buffer,
//    its path and query are parts of its target (origin-form, also for an absolute-form
//    request, whose authority is recorded); an error maps to 400/411/413/431;
//  - header_bytes (what the server uses to decide on 100 Continue) is the same however the
//    bytes arrived, and a complete request's body starts there;
//  - check_http_request (Host, 411) answers complete or 400/411; Expect: 100-continue is
//    flagged only for HTTP/1.1 with an Expect header;
//  - the answer to HEAD carries the head of the body it leaves out (its Content-Length) and
//    nothing after the blank line; 100 Continue is one well-formed interim answer.
#include <cstdint>
#include <random>
#include <string_view>

#include "fuzz_target.hpp"
#include "net/credentials.hpp"
#include "net/http_parser.hpp"
#include "net/response.hpp"

namespace {

using paycore::net::HttpError;
using paycore::net::HttpLimits;
using paycore::net::HttpParseResult;
using paycore::net::HttpParseStatus;
using paycore::net::HttpRequest;

constexpr std::size_t pipelined_requests_max = 16;

HttpLimits limits_for(std::uint8_t selector) {
  HttpLimits limits;
  if ((selector & 0x80) != 0) {
    // Small limits, so that short inputs reach every "too large" branch.
    limits.header_bytes_max = 256;
    limits.request_line_bytes_max = 96;
    limits.body_bytes_max = 64;
    limits.headers_count_max = 6;
    limits.leading_empty_lines_max = 1;
  }
  return limits;
}

bool same_result(const HttpParseResult& a, const HttpParseResult& b) {
  return a.status == b.status && a.error == b.error && a.consumed_bytes == b.consumed_bytes &&
         a.header_bytes == b.header_bytes;
}

bool same_request(const HttpRequest& a, const HttpRequest& b) {
  if (a.method != b.method || a.method_kind != b.method_kind || a.target != b.target ||
      a.path != b.path || a.query != b.query || a.version_minor != b.version_minor ||
      a.headers_count != b.headers_count || a.content_length != b.content_length ||
      a.body != b.body || a.keep_alive != b.keep_alive || a.authority != b.authority ||
      a.expect_continue != b.expect_continue || a.has_content_length != b.has_content_length) {
    return false;
  }
  for (std::size_t i = 0; i < a.headers_count; ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_complete(std::string_view buffer, const HttpParseResult& result, const HttpRequest& request) {
  FUZZ_CHECK(http_request, result.consumed_bytes > 0 && result.consumed_bytes <= buffer.size());
  const std::string_view used = buffer.substr(0, result.consumed_bytes);
  FUZZ_CHECK(http_request, request.body.size() == request.content_length);
  FUZZ_CHECK(http_request, inside(request.body, used));
  // "http://host" has no path in the buffer: its target is the static "/".
  const bool static_root = !request.authority.empty() && request.target == "/";
  FUZZ_CHECK(http_request, (static_root || inside(request.target, used)) && inside(request.method, used));
  FUZZ_CHECK(http_request, inside(request.authority, used));
  FUZZ_CHECK(http_request, !request.target.empty() && request.target.front() == '/');
  FUZZ_CHECK(http_request, request.target.starts_with(request.path));
  FUZZ_CHECK(http_request, result.header_bytes > 0 &&
                               result.header_bytes + request.content_length == result.consumed_bytes);
  FUZZ_CHECK(http_request, request.body.empty() || request.body.data() == buffer.data() + result.header_bytes);
  FUZZ_CHECK(http_request, !request.expect_continue ||
                               (request.version_minor == 1 && request.header("expect").has_value()));
  FUZZ_CHECK(http_request, request.content_length == 0 || request.has_content_length);
  FUZZ_CHECK(http_request, request.query.empty() || request.target.ends_with(request.query));
  FUZZ_CHECK(http_request, request.headers_count <= paycore::net::http_headers_count_max);
  for (std::size_t i = 0; i < request.headers_count; ++i) {
    FUZZ_CHECK(http_request, !request.headers[i].name.empty());
    FUZZ_CHECK(http_request, inside(request.headers[i].name, used) && inside(request.headers[i].value, used));
    FUZZ_CHECK(http_request, request.header(request.headers[i].name).has_value());
    FUZZ_CHECK(http_request, request.header_occurrences(request.headers[i].name) >= 1);
  }
  // What the server does next with a parsed request: take its credentials.
  const paycore::auth::RequestCredentials credentials = paycore::net::request_credentials(request);
  FUZZ_CHECK(http_request, credentials.body == request.body);
  FUZZ_CHECK(http_request, credentials.path_and_query == request.target);
  const HttpParseResult checked = paycore::net::check_http_request(request);
  if (checked.status != HttpParseStatus::complete) {
    FUZZ_CHECK(http_request, checked.status == HttpParseStatus::error && !checked.reason.empty());
    const int status = paycore::net::http_error_status(checked.error);
    FUZZ_CHECK(http_request, status == 400 || status == 411);
  }
}

// The server's answer to this request, as HEAD answers it when the method is HEAD: the body
// (here the request's own, as if echoed) is described and, for HEAD only, left out.
void check_answer(const HttpRequest& request) {
  paycore::net::OutBuffer out(1u << 21);
  paycore::net::ResponseHead head;
  head.omit_body = request.method_kind == paycore::net::HttpMethod::head;
  FUZZ_CHECK(http_request, paycore::net::write_response(out, head, request.body));
  const std::string_view text = out.view();
  const std::size_t blank = text.find("\r\n\r\n");
  FUZZ_CHECK(http_request, blank != std::string_view::npos);
  const std::string length_line = "\r\nContent-Length: " + std::to_string(request.body.size()) + "\r\n";
  FUZZ_CHECK(http_request, text.substr(0, blank + 2).find(length_line) != std::string_view::npos);
  const std::string_view after = text.substr(blank + 4);
  FUZZ_CHECK(http_request, head.omit_body ? after.empty() : after == request.body);
  if (request.expect_continue) {
    paycore::net::OutBuffer interim(64);
    FUZZ_CHECK(http_request, paycore::net::write_continue(interim));
    FUZZ_CHECK(http_request, interim.view() == "HTTP/1.1 100 Continue\r\n\r\n");
  }
}

void check_error(const HttpParseResult& result) {
  const int status = paycore::net::http_error_status(result.error);
  FUZZ_CHECK(http_request, status == 400 || status == 411 || status == 413 || status == 431);
  FUZZ_CHECK(http_request, !paycore::net::http_error_code(result.error).empty());
  FUZZ_CHECK(http_request, !result.reason.empty());
}

// Parses the request at the start of `buffer` both ways; returns the bytes it took (0: stop).
std::size_t parse_one(std::string_view buffer, const HttpLimits& limits, std::minstd_rand& rng) {
  HttpRequest whole;
  const HttpParseResult whole_result = paycore::net::parse_http_request(buffer, limits, &whole);

  paycore::net::HttpRequestParser parser(limits);
  HttpRequest incremental;
  HttpParseResult result;
  std::size_t received = 0;
  std::uniform_int_distribution<std::size_t> chunk_bytes(1, 24);
  do {
    received = std::min(buffer.size(), received + chunk_bytes(rng));
    const std::string_view prefix = buffer.substr(0, received);
    result = parser.parse(prefix, &incremental);
    HttpRequest reference;
    const HttpParseResult reference_result = paycore::net::parse_http_request(prefix, limits, &reference);
    FUZZ_CHECK(http_request, same_result(result, reference_result));
    if (result.status == HttpParseStatus::complete) {
      FUZZ_CHECK(http_request, same_request(incremental, reference));
    }
  } while (result.status == HttpParseStatus::need_more && received < buffer.size());

  FUZZ_CHECK(http_request, same_result(result, whole_result));
  switch (whole_result.status) {
    case HttpParseStatus::complete:
      FUZZ_CHECK(http_request, same_request(incremental, whole));
      check_complete(buffer, whole_result, whole);
      check_answer(whole);
      return whole_result.consumed_bytes;
    case HttpParseStatus::error:
      check_error(whole_result);
      return 0;
    case HttpParseStatus::need_more:
      FUZZ_CHECK(http_request, whole_result.error == HttpError::none);
      // The header section is in: the request line and headers are there, the body is not.
      if (whole_result.header_bytes != 0) {
        FUZZ_CHECK(http_request, whole_result.header_bytes <= buffer.size());
        FUZZ_CHECK(http_request, buffer.size() - whole_result.header_bytes < whole.content_length);
        FUZZ_CHECK(http_request, !whole.target.empty() && whole.target.front() == '/');
        (void)paycore::net::check_http_request(whole);
      }
      return 0;
  }
  return 0;
}

}  // namespace

PAYCORE_FUZZ_TARGET(http_request) {
  if (size == 0) return 0;
  const HttpLimits limits = limits_for(data[0]);
  std::minstd_rand rng(data[0] + 1u);
  std::string_view buffer = paycore::fuzz::as_text(data + 1, size - 1);
  for (std::size_t i = 0; i < pipelined_requests_max && !buffer.empty(); ++i) {
    const std::size_t consumed = parse_one(buffer, limits, rng);
    if (consumed == 0) break;
    buffer.remove_prefix(consumed);
  }
  return 0;
}
