#pragma once
// The client side of HTTP/1.1: parses a response in place from a connection's receive buffer
// (complete / need more / error, like net/http_parser.hpp does for requests). Views point into
// the buffer and are valid until it changes.
//
// Framing: Content-Length is required except for 1xx, 204 and 304 (no body). A chunked or
// length-less response is reported as an error: the paycore server never sends one, and a
// load generator that guessed would hide exactly the kind of answer it is meant to report.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace paycore::loadgen {

struct HttpResponse {
  int status = 0;
  int version_minor = 1;
  std::string_view body;
  std::string_view content_type;
  bool keep_alive = true;
  bool idempotent_replayed = false;
};

enum class ResponseParseStatus : std::uint8_t { complete, need_more, error };

struct ResponseParseResult {
  ResponseParseStatus status = ResponseParseStatus::need_more;
  std::size_t consumed_bytes = 0;  // complete: bytes this response occupies
  std::string_view reason;         // error: a short static description
};

struct ResponseLimits {
  std::size_t header_bytes_max = 16 * 1024;
  std::size_t body_bytes_max = 16 * 1024 * 1024;  // a batch of 1000 payments is ~0.5 MB
};

[[nodiscard]] ResponseParseResult parse_http_response(std::string_view buffer,
                                                      const ResponseLimits& limits,
                                                      HttpResponse* out);

}  // namespace paycore::loadgen
