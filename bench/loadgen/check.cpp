#include "bench/loadgen/check.hpp"

#include <array>

namespace paycore::loadgen {
namespace {
using simdjson::dom::element;

constexpr std::array<std::string_view, 7> payment_statuses = {
    "PENDING", "PAID", "SHIPPED", "COMPLETED", "CANCELLED", "FAILED", "REFUNDED"};

// The static spelling of a payment status, or empty if it is none of them.
std::string_view known_status(std::string_view text) {
  for (std::string_view status : payment_statuses) {
    if (status == text) return status;
  }
  return {};
}

Check verdict(Verdict v, std::string_view reason = {}) {
  Check check;
  check.verdict = v;
  check.reason = reason;
  return check;
}

// Checks a payment object against what we sent. Empty on success, else a reason.
std::string_view check_payment(element payment, std::string_view order_id, std::int64_t amount,
                               Check* check) {
  std::string_view got_order;
  std::int64_t got_amount = 0;
  std::string_view got_status;
  if (payment["order_id"].get(got_order) != simdjson::SUCCESS) return "payment without order_id";
  if (payment["amount"].get(got_amount) != simdjson::SUCCESS) return "payment without integer amount";
  if (payment["status"].get(got_status) != simdjson::SUCCESS) return "payment without status";
  check->payment_status = known_status(got_status);
  if (check->payment_status.empty()) return "payment with an unknown status";
  if (!order_id.empty() && got_order != order_id) return "payment for another order_id";
  if (got_amount != amount) return "payment with the wrong amount";
  std::int64_t refunded = 0;
  if (payment["refunded_amount"].get(refunded) == simdjson::SUCCESS) {
    check->refunded_amount = refunded;
  }
  return {};
}

// One item of a batch answer: a 201 with a PAID payment, a 402 refusal, nothing else.
std::string_view check_batch_item(element item, std::int64_t amount, Check* check) {
  std::int64_t status = 0;
  if (item["status"].get(status) != simdjson::SUCCESS) return "batch result without status";
  if (status == 402) {
    ++check->batch_refused;
    return {};
  }
  if (status >= 500) return "batch result with a 5xx status";
  if (status != 201) return "batch result with an unexpected status";
  element payment;
  if (item["payment"].get(payment) != simdjson::SUCCESS) return "batch result 201 without payment";
  const std::string_view reason = check_payment(payment, {}, amount, check);
  if (!reason.empty()) return reason;
  if (check->payment_status != "PAID") return "batch balance payment not PAID";
  ++check->batch_paid;
  return {};
}

std::string_view check_batch(const Expect& expect, const HttpResponse& response, element root,
                             Check* check) {
  if (response.status != 200) return "unexpected success status";
  simdjson::dom::array results;
  if (root["results"].get(results) != simdjson::SUCCESS) return "batch answer without results array";
  if (results.size() != expect.batch_amounts.size()) {
    return "batch answer with the wrong number of results";
  }
  std::size_t i = 0;
  for (element item : results) {
    const std::string_view reason = check_batch_item(item, expect.batch_amounts[i], check);
    if (!reason.empty()) return reason;
    ++i;
  }
  check->payment_status = {};
  return {};
}

std::string_view check_refund(const Expect& expect, const HttpResponse& response, element root,
                              Check* check) {
  if (response.status != 201) return "unexpected success status";
  std::int64_t amount = 0;
  if (root["amount"].get(amount) != simdjson::SUCCESS) return "payment without integer amount";
  const std::string_view reason = check_payment(root, expect.order_id, amount, check);
  if (!reason.empty()) return reason;
  if (check->refunded_amount < expect.amount) return "refund not counted in refunded_amount";
  if (check->refunded_amount > amount) return "refunded_amount above the payment's amount";
  return {};
}

// A balance payment (PAID), an external one (PENDING), or a read of either.
std::string_view check_payment_answer(const Expect& expect, const HttpResponse& response,
                                      element root, Check* check) {
  const int want_status = expect.op == Op::get ? 200 : 201;
  if (response.status != want_status) return "unexpected success status";
  const std::string_view reason = check_payment(root, expect.order_id, expect.amount, check);
  if (!reason.empty()) return reason;
  if (expect.op == Op::pay && check->payment_status != "PAID") return "balance payment not PAID";
  if (expect.op == Op::ext && check->payment_status != "PENDING") {
    return "external payment not PENDING";
  }
  return {};
}

std::string_view check_account_or_mandate(const Expect& expect, const HttpResponse& response,
                                          element root) {
  if (expect.op == Op::mandate) {
    std::string_view mandate_id;
    std::string_view status;
    if (response.status != 201) return "unexpected success status";
    if (root["mandate_id"].get(mandate_id) != simdjson::SUCCESS) return "mandate without mandate_id";
    if (root["status"].get(status) != simdjson::SUCCESS || status != "ACTIVE") {
      return "new mandate not ACTIVE";
    }
    return {};
  }
  std::string_view account_id;
  if (response.status != (expect.op == Op::open_account ? 201 : 200)) {
    return "unexpected success status";
  }
  if (root["account_id"].get(account_id) != simdjson::SUCCESS) return "account without account_id";
  return {};
}

std::string_view check_notification(const HttpResponse& response, element root) {
  std::string_view code;
  if (response.status != 200) return "unexpected success status";
  if (root["code"].get(code) != simdjson::SUCCESS || code != "SUCCESS") {
    return "notification answer is not {\"code\":\"SUCCESS\"}";
  }
  return {};
}

// A page after a payment of this run: a data array of at most 10 payments, none of them that
// payment, and has_more.
std::string_view check_list(const HttpResponse& response, element root, const Expect& expect) {
  simdjson::dom::array data;
  bool has_more = false;
  if (response.status != 200) return "unexpected success status";
  if (root["data"].get(data) != simdjson::SUCCESS) return "list answer without data array";
  if (root["has_more"].get(has_more) != simdjson::SUCCESS) return "list answer without has_more";
  if (data.size() > 10) return "list page longer than its limit";
  for (element payment : data) {
    std::string_view order_id;
    if (payment["order_id"].get(order_id) != simdjson::SUCCESS) return "listed payment without order_id";
    if (order_id == expect.order_id) return "the cursor's own payment is on the page after it";
  }
  return {};
}

Check check_success(const Expect& expect, const HttpResponse& response, element root) {
  Check check = verdict(Verdict::ok);
  std::string_view reason;
  switch (expect.op) {
    case Op::open_account:
    case Op::deposit:
    case Op::mandate: reason = check_account_or_mandate(expect, response, root); break;
    case Op::pay:
    case Op::ext:
    case Op::get: reason = check_payment_answer(expect, response, root, &check); break;
    case Op::refund: reason = check_refund(expect, response, root, &check); break;
    case Op::notify: reason = check_notification(response, root); break;
    case Op::batch: reason = check_batch(expect, response, root, &check); break;
    case Op::list: reason = check_list(response, root, expect); break;
  }
  if (!reason.empty()) {
    check.verdict = Verdict::violation;
    check.reason = reason;
  }
  return check;
}

bool is_refusal(Op op, int status, std::string_view code) {
  switch (op) {
    case Op::open_account: return status == 409 && code == "account_exists";
    // The mandate ids are stable: a second set-up against the same server finds them made.
    case Op::mandate: return status == 409 && code == "mandate_exists";
    case Op::pay: return status == 402 && code == "insufficient_funds";
    case Op::refund:
      return (status == 402 && code == "insufficient_funds") ||
             (status == 409 && code == "invalid_state") ||
             (status == 422 && code == "refund_exceeds_payment");
    default: return false;
  }
}
}  // namespace

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::refused: return "refused";
    case Verdict::error: return "error";
    case Verdict::violation: return "violation";
  }
  return "?";
}

Check check_response(const Expect& expect, const HttpResponse& response,
                     simdjson::dom::parser& parser) {
  element root;
  const bool parsed =
      !response.body.empty() &&
      parser.parse(response.body.data(), response.body.size()).get(root) == simdjson::SUCCESS;
  if (response.status >= 200 && response.status < 300) {
    if (!parsed || !root.is_object()) return verdict(Verdict::violation, "success body is not a JSON object");
    return check_success(expect, response, root);
  }
  Check check;
  std::string_view code;
  if (parsed && root["error"]["code"].get(code) == simdjson::SUCCESS) check.error_code = code;
  if (response.status >= 500) {
    check.verdict = Verdict::violation;
    check.reason = "server error (5xx)";
    return check;
  }
  if (response.status < 400) {
    check.verdict = Verdict::violation;
    check.reason = "unexpected 1xx/3xx status";
    return check;
  }
  if (!parsed || check.error_code.empty()) {
    check.verdict = Verdict::violation;
    check.reason = "error answer without error.code";
    return check;
  }
  if ((expect.op == Op::get || expect.op == Op::list) &&
      (response.status == 404 || (response.status == 400 && check.error_code == "invalid_field"))) {
    check.verdict = Verdict::violation;
    check.reason = "an acknowledged payment is not found";
    return check;
  }
  check.verdict = is_refusal(expect.op, response.status, check.error_code) ? Verdict::refused : Verdict::error;
  check.reason = check.verdict == Verdict::error ? "unexpected 4xx" : "";
  return check;
}

}  // namespace paycore::loadgen
