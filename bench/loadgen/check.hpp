#pragma once
// What each answer must look like (docs/api.md), and the verdict on one that arrived:
//   ok         the promised success (a 201 PAID payment with our amount, ...)
//   refused    a documented refusal the workload can cause honestly (402 insufficient_funds,
//              409 account_exists or mandate_exists during set-up, 409 invalid_state for a
//              refund, ...)
//   error      any other 4xx (e.g. 401: our clock or keys are off), and transport failures
//   violation  a broken promise: 5xx, a malformed response or body, a success carrying the
//              wrong amount, order or status, a batch with the wrong number of results, a
//              payment acknowledged earlier that a read cannot find
// The checker reads the body with simdjson (one DOM parser per thread, reused).

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/http_response.hpp"
#include "bench/loadgen/mix.hpp"

namespace paycore::loadgen {

// What the request that was sent leads us to expect.
struct Expect {
  Op op = Op::pay;
  std::int64_t amount = 0;   // pay, ext, get, notify: the payment's; refund: the refund's
  std::string order_id;      // pay, ext, get, refund, notify
  std::uint32_t merchant_index = 0;
  std::vector<std::int64_t> batch_amounts;  // batch: one per item, in order
  bool notify_follows = false;  // ext: a notification is to settle it (the `notify` op)
};

enum class Verdict : std::uint8_t { ok, refused, error, violation };
std::string_view verdict_name(Verdict verdict);

struct Check {
  Verdict verdict = Verdict::violation;
  std::string error_code;          // the body's error.code, if any
  std::string_view reason;         // error or violation: a short static description
  std::string_view payment_status; // static: "PAID", "PENDING", ... when a payment came back
  std::int64_t refunded_amount = 0;
  std::uint32_t batch_paid = 0;    // batch: items answered 201
  std::uint32_t batch_refused = 0; // batch: items answered 402
};

[[nodiscard]] Check check_response(const Expect& expect, const HttpResponse& response,
                                   simdjson::dom::parser& parser);

}  // namespace paycore::loadgen
