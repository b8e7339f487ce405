// The per-request work of the HTTP front end for a typical signed POST /v1/payments:
// parse the request in place, decode its JSON, verify its HMAC (with the nonce cache), write
// a response. Run from a Release build.
#include <benchmark/benchmark.h>

#include <string>

#include "net/credentials.hpp"
#include "net/http_parser.hpp"
#include "net/request_json.hpp"
#include "net/response.hpp"

namespace paycore::net {
namespace {

constexpr std::int64_t now_s = 1795670354;
constexpr std::string_view secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr std::string_view body =
    R"({"request_id":"req-000000001","order_id":"o-000000001","amount":1234,"currency":"CNY","channel":"alipay"})";

std::string signed_request(std::string_view nonce) {
  const std::string timestamp = std::to_string(now_s);
  const auth::HexSignature signature =
      auth::sign_request(secret, auth::SignedFields{"POST", "/v1/payments", timestamp, nonce, body});
  return "POST /v1/payments HTTP/1.1\r\n"
         "Host: 127.0.0.1:8080\r\n"
         "User-Agent: paycore-loadgen/0.1\r\n"
         "Content-Type: application/json\r\n"
         "X-Request-Id: lg-1-000000001\r\n"
         "X-Merchant-Id: m_001\r\n"
         "X-Timestamp: " + timestamp + "\r\n"
         "X-Nonce: " + std::string(nonce) + "\r\n"
         "X-Signature: " + std::string(signature.view()) + "\r\n"
         "Content-Length: " + std::to_string(body.size()) + "\r\n"
         "\r\n" + std::string(body);
}

std::shared_ptr<const auth::Keys> bench_keys() {
  const auto result = auth::keys_parse(
      R"({"operator": {"id": "operator", "secret": "op"}, "merchants": {"m_001": ")" +
      std::string(secret) + R"(", "m_002": "x", "m_003": "y", "m_004": "z"}})");
  return result.is_ok() ? *result : nullptr;
}

void BM_ParseSignedPost(benchmark::State& state) {
  const std::string request = signed_request("nonce-0000000001");
  HttpRequest parsed;
  const HttpLimits limits;
  for (auto _ : state) {
    HttpRequestParser parser(limits);
    const HttpParseResult result = parser.parse(request, &parsed);
    benchmark::DoNotOptimize(result);
    if (result.status != HttpParseStatus::complete) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * request.size()));
}
BENCHMARK(BM_ParseSignedPost);

void BM_DecodePaymentJson(benchmark::State& state) {
  JsonDecoder decoder;
  CreatePaymentRequest payment;
  for (auto _ : state) {
    const RequestDecodeResult error = decoder.decode(body, &payment);
    benchmark::DoNotOptimize(payment);
    if (error) state.SkipWithError("decode failed");
  }
}
BENCHMARK(BM_DecodePaymentJson);

void BM_SignHmac(benchmark::State& state) {
  const std::string timestamp = std::to_string(now_s);
  for (auto _ : state) {
    const auth::HexSignature signature =
        auth::sign_request(secret, auth::SignedFields{"POST", "/v1/payments", timestamp, "nonce-1234", body});
    benchmark::DoNotOptimize(signature);
  }
}
BENCHMARK(BM_SignHmac);

// HMAC verification plus a nonce-cache insert: every iteration is a fresh, valid request.
void BM_VerifyHmacAndNonce(benchmark::State& state) {
  const std::shared_ptr<const auth::Keys> keys = bench_keys();
  auth::NonceCacheConfig config;
  config.entries_max = std::size_t{1} << 24;
  auth::NonceCache nonces(config);
  std::string timestamp = std::to_string(now_s);
  std::vector<std::string> nonces_text;
  std::vector<auth::HexSignature> signatures;
  constexpr std::size_t prepared = 1 << 16;
  for (std::size_t i = 0; i < prepared; ++i) {
    nonces_text.push_back("nonce-" + std::to_string(i + 10000000));
    signatures.push_back(
        auth::sign_request(secret, auth::SignedFields{"POST", "/v1/payments", timestamp, nonces_text.back(), body}));
  }
  std::size_t i = 0;
  std::int64_t clock_s = now_s;
  for (auto _ : state) {
    auth::RequestCredentials credentials;
    credentials.principal_id = "m_001";
    credentials.timestamp = timestamp;
    credentials.nonce = nonces_text[i];
    credentials.signature = signatures[i].view();
    credentials.method = "POST";
    credentials.path_and_query = "/v1/payments";
    credentials.body = body;
    const auth::AuthResult result = auth::verify_request(*keys, credentials, clock_s, nonces);
    if (result.status != auth::AuthStatus::ok) {
      state.SkipWithError("verify failed");
      break;
    }
    if (++i == prepared) {
      // Reuse the nonces a window later, when the cache has let them go.
      i = 0;
      clock_s += 301;
      state.PauseTiming();
      timestamp = std::to_string(clock_s);
      for (std::size_t j = 0; j < prepared; ++j) {
        signatures[j] = auth::sign_request(
            secret, auth::SignedFields{"POST", "/v1/payments", timestamp, nonces_text[j], body});
      }
      state.ResumeTiming();
    }
  }
}
BENCHMARK(BM_VerifyHmacAndNonce);

// The whole per-request path on one thread: parse, authenticate, decode, respond.
void BM_WholeRequest(benchmark::State& state) {
  const std::shared_ptr<const auth::Keys> keys = bench_keys();
  auth::NonceCacheConfig config;
  config.entries_max = std::size_t{1} << 24;
  auth::NonceCache nonces(config);
  const std::string request = signed_request("nonce-0000000001");
  JsonDecoder decoder;
  TraceIdGenerator trace_ids;
  OutBuffer out(64 * 1024);
  OutBuffer scratch(16 * 1024);
  HttpRequest parsed;
  std::int64_t clock_s = now_s;
  for (auto _ : state) {
    HttpRequestParser parser(HttpLimits{});
    if (parser.parse(request, &parsed).status != HttpParseStatus::complete) {
      state.SkipWithError("parse failed");
      break;
    }
    // Same nonce every time: check the signature and answer the replay (no cache growth).
    const auth::AuthResult auth = auth::verify_request(*keys, request_credentials(parsed), clock_s, nonces);
    if (auth.status != auth::AuthStatus::ok && auth.status != auth::AuthStatus::replayed_nonce) {
      state.SkipWithError("verify failed");
      break;
    }
    CreatePaymentRequest payment;
    if (decoder.decode(parsed.body, &payment)) {
      state.SkipWithError("decode failed");
      break;
    }
    const TraceId trace_id = trace_ids.for_request(parsed.header("X-Request-Id"));
    scratch.clear();
    JsonWriter json(scratch);
    json.begin_object()
        .field("merchant_id", "m_001")
        .field("order_id", payment.order_id.view())
        .field("request_id", payment.request_id.view())
        .field("amount", payment.amount)
        .field("currency", currency_code(payment.currency))
        .field("status", "PENDING")
        .key("created_at").timestamp_us(1795670354123456)
        .end_object();
    ResponseHead head;
    head.status = 201;
    head.trace_id = trace_id.view();
    if (!write_response(out, head, scratch.view())) state.SkipWithError("write failed");
    out.consume(out.size());
  }
}
BENCHMARK(BM_WholeRequest);

void BM_WriteResponse(benchmark::State& state) {
  OutBuffer out(64 * 1024);
  OutBuffer scratch(16 * 1024);
  ResponseHead head;
  head.status = 201;
  head.trace_id = "lg-1-000000001";
  for (auto _ : state) {
    scratch.clear();
    JsonWriter json(scratch);
    json.begin_object()
        .field("merchant_id", "m_001")
        .field("order_id", "o-000000001")
        .field("request_id", "req-000000001")
        .field("channel", "alipay")
        .field_null("payer_account_id")
        .field("amount", std::int64_t{1234})
        .field("currency", "CNY")
        .field("status", "PENDING")
        .field("refunded_amount", std::int64_t{0})
        .field_null("channel_txn_id")
        .key("created_at").timestamp_us(1795670354123456)
        .key("updated_at").timestamp_us(1795670354123456)
        .end_object();
    const bool written = write_response(out, head, scratch.view());
    benchmark::DoNotOptimize(out.view().data());
    out.consume(out.size());
    if (!written || !json.complete()) state.SkipWithError("write failed");
  }
}
BENCHMARK(BM_WriteResponse);

}  // namespace
}  // namespace paycore::net
