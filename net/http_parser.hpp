#pragma once
// HTTP/1.1 request parser that parses in place (picohttpparser style): the parsed request is a
// set of string_views into the caller's connection buffer, valid until that buffer is changed.
// Given the bytes received so far, `parse` says complete (with the bytes consumed, so that a
// pipelined request that follows can be parsed next), need more, or error with a specific
// reason and the status code to answer with. Nothing is allocated per request.
//
// Strictness is deliberate (no request smuggling): every line ends in CRLF; a bare CR or LF,
// obs-fold, a space before the colon, an invalid header name, a duplicate or malformed
// Content-Length, Content-Length together with Transfer-Encoding, or a version other than
// HTTP/1.0 or HTTP/1.1 is 400. A body without Content-Length (Transfer-Encoding) is 411.
//
// The request target is origin-form ("/path?query") or absolute-form
// ("http://host/path?query", RFC 9112 3.2.2): for absolute-form, `target` is the origin-form
// part that follows the authority (what routing and request signatures use), so both forms
// of one request are the same request. The rules that depend on what the request means
// rather than on how it is framed (Host, 411 for a POST without Content-Length) are
// check_http_request's, called by the server once the header section is parsed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace paycore::net {

inline constexpr std::size_t http_headers_count_max = 64;

struct HttpLimits {
  // Request line + header lines + the empty line that ends them.
  std::size_t header_bytes_max = 16 * 1024;
  // The request line alone (method, target, version, CRLF).
  std::size_t request_line_bytes_max = 8 * 1024;
  std::uint64_t body_bytes_max = 1024 * 1024;
  // At most http_headers_count_max; more is 431.
  std::size_t headers_count_max = http_headers_count_max;
  // Empty lines (CRLF) tolerated before a request line (RFC 9112 2.2), e.g. after a body.
  std::size_t leading_empty_lines_max = 4;
};

struct HttpHeader {
  std::string_view name;   // as sent; compare case-insensitively
  std::string_view value;  // leading and trailing spaces/tabs removed
};

enum class HttpMethod : std::uint8_t { other, get, head, post, put, patch, delete_, options };

struct HttpRequest {
  std::string_view method;  // as sent, e.g. "POST"
  HttpMethod method_kind = HttpMethod::other;
  // Path and query (origin-form) as sent: what routing and request signatures cover. For an
  // absolute-form target, the part after the authority ("/" if the URI has no path).
  std::string_view target;
  std::string_view authority;  // absolute-form only: "host[:port]" as sent; else empty
  std::string_view path;    // target before '?'
  std::string_view query;   // target after '?', without it; empty if none
  int version_minor = 1;    // HTTP/1.<version_minor>
  std::array<HttpHeader, http_headers_count_max> headers{};
  std::size_t headers_count = 0;
  std::uint64_t content_length = 0;
  bool has_content_length = false;  // a Content-Length header was sent (0 is not "absent")
  std::string_view body;
  bool keep_alive = true;
  // HTTP/1.1 with "Expect: 100-continue" (RFC 9110 10.1.1); never set for HTTP/1.0, which
  // has no interim responses.
  bool expect_continue = false;

  // First header with this name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
  // How many headers have this name (case-insensitive).
  std::size_t header_occurrences(std::string_view name) const;
};

enum class HttpParseStatus : std::uint8_t { complete, need_more, error };

enum class HttpError : std::uint8_t {
  none,
  bad_request,        // 400
  length_required,    // 411
  body_too_large,     // 413
  headers_too_large,  // 431
};

struct HttpParseResult {
  HttpParseStatus status = HttpParseStatus::need_more;
  HttpError error = HttpError::none;
  // complete: bytes of the buffer this request occupies (leading empty lines, header, body).
  std::size_t consumed_bytes = 0;
  // complete, and need_more once the header section has been parsed (then `*out` holds the
  // request line and headers, its body still empty): the bytes before the body (leading
  // empty lines and header section). 0 while the header section is incomplete. The caller
  // sees from it that the body has not started (buffer size == header_bytes), e.g. to send
  // 100 Continue.
  std::size_t header_bytes = 0;
  // error: a short static description for logs ("bare LF in header section", ...).
  std::string_view reason;
};

// 400, 411, 413, 431; 0 for HttpError::none.
int http_error_status(HttpError error);
// "bad_request", "length_required", "body_too_large", "headers_too_large".
std::string_view http_error_code(HttpError error);

// The checks on a parsed header section that the framing alone does not cover; `request` is a
// complete request, or one whose header section parse() has reported (header_bytes != 0).
// Returns status complete when it passes, else an error (reason static):
//  - HTTP/1.1 without exactly one Host header: 400 (RFC 9112 3.2; more than one is refused
//    by parse() already, for every version; HTTP/1.0 may omit Host);
//  - POST, PUT or PATCH without Content-Length (and without Transfer-Encoding, which is 411
//    in parse()): 411 length_required (docs/api.md Conventions; RFC 9110 15.5.12).
[[nodiscard]] HttpParseResult check_http_request(const HttpRequest& request);

// ASCII case-insensitive equality.
bool ascii_iequals(std::string_view a, std::string_view b);

// A per-connection parser. It remembers how far it has already searched for the end of the
// header section, so bytes arriving one at a time cost O(n) in total, not O(n^2). Call
// `reset()` (or construct a new one) after each complete request or error.
class HttpRequestParser {
 public:
  explicit HttpRequestParser(const HttpLimits& limits) : limits_(limits) {}

  // `buffer` starts where the request starts and holds everything received so far; pass the
  // same `out` on every call until the request completes. On complete, `*out` views into
  // `buffer`. While the body is still arriving the header section is not parsed again.
  [[nodiscard]] HttpParseResult parse(std::string_view buffer, HttpRequest* out);
  void reset() {
    scanned_bytes_ = 0;
    header_end_ = 0;
    buffer_data_ = nullptr;
  }

 private:
  // What the header lines said about framing, collected while they are parsed.
  struct HeaderFacts {
    std::size_t content_length_count = 0;
    bool transfer_encoding = false;
    bool keep_alive_option = false;
    bool close_option = false;
    bool expect_continue = false;
  };
  // Each step returns the result that ends the parse (an error, or need_more), or nullopt.
  std::optional<HttpParseResult> skip_empty_lines(std::string_view buffer,
                                                  std::size_t* start) const;
  std::optional<HttpParseResult> find_header_end(std::string_view buffer, std::size_t start,
                                                 std::size_t* header_end);
  std::optional<HttpParseResult> check_header_limits(std::string_view buffer, std::size_t start,
                                                     std::size_t header_end) const;
  std::optional<HttpParseResult> parse_header_section(std::string_view section,
                                                      HttpRequest* out) const;
  std::optional<HttpParseResult> parse_header(std::string_view line, HttpRequest* out,
                                              HeaderFacts* facts) const;
  std::optional<HttpParseResult> apply_framing(const HeaderFacts& facts, HttpRequest* out) const;
  HttpParseResult finish_body(std::string_view buffer, std::size_t header_end, HttpRequest* out);

  HttpLimits limits_;
  std::size_t scanned_bytes_ = 0;  // header bytes already checked for bare LF / end
  std::size_t header_end_ = 0;     // non-zero once the header section has been parsed
  const char* buffer_data_ = nullptr;  // where the buffer was: if it moved, start over
};

// Stateless convenience: parses `buffer` from the start.
[[nodiscard]] HttpParseResult parse_http_request(std::string_view buffer, const HttpLimits& limits,
                                                 HttpRequest* out);

}  // namespace paycore::net
