#include <gtest/gtest.h>

#include <string>

#include "bench/loadgen/check.hpp"
#include "bench/loadgen/http_response.hpp"

namespace paycore::loadgen {
namespace {

std::string wire(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(ResponseParser, CompleteResponse) {
  const std::string text = wire(201, "{\"a\":1}", "Idempotent-Replayed: true\r\n");
  HttpResponse r;
  const ResponseParseResult p = parse_http_response(text, {}, &r);
  ASSERT_EQ(p.status, ResponseParseStatus::complete) << p.reason;
  EXPECT_EQ(p.consumed_bytes, text.size());
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "{\"a\":1}");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_TRUE(r.idempotent_replayed);
}

TEST(ResponseParser, EveryProperPrefixNeedsMore) {
  const std::string text = wire(200, "{\"code\":\"SUCCESS\"}");
  for (std::size_t n = 0; n < text.size(); ++n) {
    HttpResponse r;
    ASSERT_EQ(parse_http_response(std::string_view(text).substr(0, n), {}, &r).status,
              ResponseParseStatus::need_more) << n;
  }
}

TEST(ResponseParser, PipelinedResponsesAreConsumedOneAtATime) {
  const std::string first = wire(200, "{}");
  const std::string text = first + wire(404, "{\"error\":{}}");
  HttpResponse r;
  const ResponseParseResult p = parse_http_response(text, {}, &r);
  ASSERT_EQ(p.status, ResponseParseStatus::complete);
  EXPECT_EQ(p.consumed_bytes, first.size());
  const ResponseParseResult q = parse_http_response(std::string_view(text).substr(p.consumed_bytes), {}, &r);
  ASSERT_EQ(q.status, ResponseParseStatus::complete);
  EXPECT_EQ(r.status, 404);
}

TEST(ResponseParser, ConnectionCloseEndsKeepAlive) {
  HttpResponse r;
  ASSERT_EQ(parse_http_response(wire(200, "{}", "Connection: close\r\n"), {}, &r).status,
            ResponseParseStatus::complete);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(parse_http_response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", {}, &r).status,
            ResponseParseStatus::complete);
  EXPECT_FALSE(r.keep_alive);
}

TEST(ResponseParser, MalformedStatusLineIsAnError) {
  HttpResponse r;
  EXPECT_EQ(parse_http_response("HTTP/2 200 OK\r\n\r\n", {}, &r).status, ResponseParseStatus::error);
  EXPECT_EQ(parse_http_response("HTTP/1.1 20x OK\r\n\r\n", {}, &r).status, ResponseParseStatus::error);
  EXPECT_EQ(parse_http_response("garbage\r\n\r\n", {}, &r).status, ResponseParseStatus::error);
}

TEST(ResponseParser, MissingContentLengthIsAnError) {
  HttpResponse r;
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\n\r\n{}", {}, &r).status, ResponseParseStatus::error);
  EXPECT_EQ(parse_http_response("HTTP/1.1 204 No Content\r\n\r\n", {}, &r).status, ResponseParseStatus::complete);
}

TEST(ResponseParser, ChunkedResponseIsAnError) {
  HttpResponse r;
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {}, &r).status,
            ResponseParseStatus::error);
}

TEST(ResponseParser, ConflictingContentLengthsAreAnError) {
  HttpResponse r;
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", {}, &r).status,
            ResponseParseStatus::error);
}

TEST(ResponseParser, OversizedBodyIsAnError) {
  ResponseLimits limits;
  limits.body_bytes_max = 10;
  HttpResponse r;
  EXPECT_EQ(parse_http_response(wire(200, std::string(11, 'x')), limits, &r).status, ResponseParseStatus::error);
}

// ---- promise checks ----

class CheckTest : public ::testing::Test {
 protected:
  Check check(const Expect& expect, int status, const std::string& body) {
    text_ = wire(status, body);
    HttpResponse r;
    EXPECT_EQ(parse_http_response(text_, {}, &r).status, ResponseParseStatus::complete);
    return check_response(expect, r, parser_);
  }
  static Expect pay(std::int64_t amount) {
    Expect e;
    e.op = Op::pay;
    e.amount = amount;
    e.order_id = "o-1";
    return e;
  }
  static std::string payment(std::int64_t amount, const std::string& status = "PAID",
                             const std::string& order = "o-1", std::int64_t refunded = 0) {
    return "{\"merchant_id\":\"m_001\",\"order_id\":\"" + order + "\",\"amount\":" + std::to_string(amount) +
           ",\"currency\":\"CNY\",\"status\":\"" + status + "\",\"refunded_amount\":" + std::to_string(refunded) + "}";
  }
  simdjson::dom::parser parser_;
  std::string text_;
};

TEST_F(CheckTest, PaidPaymentWithTheRightAmountIsOk) {
  const Check c = check(pay(1234), 201, payment(1234));
  EXPECT_EQ(c.verdict, Verdict::ok) << c.reason;
  EXPECT_EQ(c.payment_status, "PAID");
}

TEST_F(CheckTest, WrongAmountIsAViolation) {
  const Check c = check(pay(1234), 201, payment(1235));
  EXPECT_EQ(c.verdict, Verdict::violation);
  EXPECT_EQ(c.reason, "payment with the wrong amount");
}

TEST_F(CheckTest, WrongOrderIsAViolation) {
  EXPECT_EQ(check(pay(5), 201, payment(5, "PAID", "o-2")).verdict, Verdict::violation);
}

TEST_F(CheckTest, BalancePaymentThatIsNotPaidIsAViolation) {
  EXPECT_EQ(check(pay(5), 201, payment(5, "PENDING")).verdict, Verdict::violation);
  EXPECT_EQ(check(pay(5), 201, payment(5, "NONSENSE")).verdict, Verdict::violation);
}

TEST_F(CheckTest, ExternalPaymentMustBePending) {
  Expect e = pay(5);
  e.op = Op::ext;
  EXPECT_EQ(check(e, 201, payment(5, "PENDING")).verdict, Verdict::ok);
  EXPECT_EQ(check(e, 201, payment(5, "PAID")).verdict, Verdict::violation);
}

TEST_F(CheckTest, WrongSuccessStatusIsAViolation) {
  EXPECT_EQ(check(pay(5), 200, payment(5)).verdict, Verdict::violation);
}

TEST_F(CheckTest, ServerErrorIsAViolation) {
  const Check c = check(pay(5), 503, "{\"error\":{\"code\":\"unavailable\",\"message\":\"x\"}}");
  EXPECT_EQ(c.verdict, Verdict::violation);
  EXPECT_EQ(c.error_code, "unavailable");
}

TEST_F(CheckTest, InsufficientFundsIsARefusal) {
  const Check c = check(pay(5), 402, "{\"error\":{\"code\":\"insufficient_funds\",\"message\":\"x\"}}");
  EXPECT_EQ(c.verdict, Verdict::refused);
  EXPECT_EQ(c.error_code, "insufficient_funds");
}

TEST_F(CheckTest, BadSignatureIsAnError) {
  EXPECT_EQ(check(pay(5), 401, "{\"error\":{\"code\":\"bad_signature\",\"message\":\"x\"}}").verdict, Verdict::error);
}

TEST_F(CheckTest, ErrorWithoutCodeIsAViolation) {
  EXPECT_EQ(check(pay(5), 400, "{\"oops\":1}").verdict, Verdict::violation);
}

TEST_F(CheckTest, MalformedJsonIsAViolation) {
  EXPECT_EQ(check(pay(5), 201, "{\"order_id\":").verdict, Verdict::violation);
  EXPECT_EQ(check(pay(5), 201, "").verdict, Verdict::violation);
}

TEST_F(CheckTest, AcknowledgedPaymentNotFoundIsAViolation) {
  Expect e = pay(5);
  e.op = Op::get;
  EXPECT_EQ(check(e, 200, payment(5, "SHIPPED")).verdict, Verdict::ok);
  EXPECT_EQ(check(e, 404, "{\"error\":{\"code\":\"payment_not_found\",\"message\":\"x\"}}").verdict,
            Verdict::violation);
}

TEST_F(CheckTest, RefundMustBeCountedInRefundedAmount) {
  Expect e = pay(3);
  e.op = Op::refund;
  EXPECT_EQ(check(e, 201, payment(100, "PAID", "o-1", 3)).verdict, Verdict::ok);
  EXPECT_EQ(check(e, 201, payment(100, "PAID", "o-1", 2)).verdict, Verdict::violation);
  EXPECT_EQ(check(e, 201, payment(100, "REFUNDED", "o-1", 101)).verdict, Verdict::violation);
  EXPECT_EQ(check(e, 409, "{\"error\":{\"code\":\"invalid_state\",\"message\":\"x\"}}").verdict, Verdict::refused);
}

TEST_F(CheckTest, NewMandateMustBeCreatedAndActive) {
  Expect e;
  e.op = Op::mandate;
  EXPECT_EQ(check(e, 201, "{\"mandate_id\":\"lgm-1-ab\",\"status\":\"ACTIVE\"}").verdict, Verdict::ok);
  EXPECT_EQ(check(e, 201, "{\"mandate_id\":\"lgm-1-ab\",\"status\":\"REVOKED\"}").verdict, Verdict::violation);
  EXPECT_EQ(check(e, 201, "{\"status\":\"ACTIVE\"}").verdict, Verdict::violation);
  EXPECT_EQ(check(e, 200, "{\"mandate_id\":\"lgm-1-ab\",\"status\":\"ACTIVE\"}").verdict, Verdict::violation);
}

TEST_F(CheckTest, MandateMadeByAnEarlierSetupIsARefusal) {
  Expect e;
  e.op = Op::mandate;
  EXPECT_EQ(check(e, 409, "{\"error\":{\"code\":\"mandate_exists\",\"message\":\"x\"}}").verdict, Verdict::refused);
  EXPECT_EQ(check(e, 422, "{\"error\":{\"code\":\"invalid_payer\",\"message\":\"x\"}}").verdict, Verdict::error);
}

// Without a mandate the payer reads as absent (docs/api.md "Mandates"): the set-up went wrong.
TEST_F(CheckTest, BalancePaymentWithoutMandateIsAnError) {
  EXPECT_EQ(check(pay(5), 404, "{\"error\":{\"code\":\"account_not_found\",\"message\":\"x\"}}").verdict,
            Verdict::error);
  EXPECT_EQ(check(pay(5), 403, "{\"error\":{\"code\":\"mandate_inactive\",\"message\":\"x\"}}").verdict,
            Verdict::error);
}

TEST_F(CheckTest, NotificationAnswerMustBeSuccess) {
  Expect e = pay(5);
  e.op = Op::notify;
  EXPECT_EQ(check(e, 200, "{\"code\":\"SUCCESS\"}").verdict, Verdict::ok);
  EXPECT_EQ(check(e, 200, "{\"code\":\"FAIL\"}").verdict, Verdict::violation);
}

TEST_F(CheckTest, BatchResultsAreCheckedItemByItem) {
  Expect e;
  e.op = Op::batch;
  e.batch_amounts = {10, 20};
  const std::string ok = "{\"results\":[{\"status\":201,\"payment\":" + payment(10, "PAID", "a") +
                         "},{\"status\":402,\"error\":{\"code\":\"insufficient_funds\",\"message\":\"x\"}}]}";
  const Check c = check(e, 200, ok);
  EXPECT_EQ(c.verdict, Verdict::ok) << c.reason;
  EXPECT_EQ(c.batch_paid, 1u);
  EXPECT_EQ(c.batch_refused, 1u);
  const std::string wrong = "{\"results\":[{\"status\":201,\"payment\":" + payment(10, "PAID", "a") +
                            "},{\"status\":201,\"payment\":" + payment(21, "PAID", "b") + "}]}";
  EXPECT_EQ(check(e, 200, wrong).verdict, Verdict::violation);
}

TEST_F(CheckTest, BatchWithTheWrongNumberOfResultsIsAViolation) {
  Expect e;
  e.op = Op::batch;
  e.batch_amounts = {10, 20};
  const Check c = check(e, 200, "{\"results\":[{\"status\":201,\"payment\":" + payment(10, "PAID", "a") + "}]}");
  EXPECT_EQ(c.verdict, Verdict::violation);
  EXPECT_EQ(c.reason, "batch answer with the wrong number of results");
}

}  // namespace
}  // namespace paycore::loadgen
