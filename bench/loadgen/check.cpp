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

Check check_success(const Expect& expect, const HttpResponse& response, element root) {
  Check check = verdict(Verdict::ok);
  std::string_view reason;
  switch (expect.op) {
    case Op::open_account:
    case Op::deposit: {
      std::string_view account_id;
      if (root["account_id"].get(account_id) != simdjson::SUCCESS) reason = "account without account_id";
      if (response.status != (expect.op == Op::open_account ? 201 : 200)) reason = "unexpected success status";
      break;
    }
    case Op::mandate: {
      std::string_view mandate_id;
      std::string_view status;
      if (root["mandate_id"].get(mandate_id) != simdjson::SUCCESS) reason = "mandate without mandate_id";
      else if (root["status"].get(status) != simdjson::SUCCESS || status != "ACTIVE") reason = "new mandate not ACTIVE";
      if (response.status != 201) reason = "unexpected success status";
      break;
    }
    case Op::pay:
    case Op::ext:
    case Op::get: {
      const int want_status = expect.op == Op::get ? 200 : 201;
      if (response.status != want_status) {
        reason = "unexpected success status";
        break;
      }
      reason = check_payment(root, expect.order_id, expect.amount, &check);
      if (!reason.empty()) break;
      if (expect.op == Op::pay && check.payment_status != "PAID") reason = "balance payment not PAID";
      if (expect.op == Op::ext && check.payment_status != "PENDING") reason = "external payment not PENDING";
      break;
    }
    case Op::refund: {
      if (response.status != 201) {
        reason = "unexpected success status";
        break;
      }
      std::int64_t amount = 0;
      if (root["amount"].get(amount) != simdjson::SUCCESS) {
        reason = "payment without integer amount";
        break;
      }
      reason = check_payment(root, expect.order_id, amount, &check);
      if (reason.empty() && check.refunded_amount < expect.amount) reason = "refund not counted in refunded_amount";
      if (reason.empty() && check.refunded_amount > amount) reason = "refunded_amount above the payment's amount";
      break;
    }
    case Op::notify: {
      std::string_view code;
      if (response.status != 200) reason = "unexpected success status";
      else if (root["code"].get(code) != simdjson::SUCCESS || code != "SUCCESS") reason = "notification answer is not {\"code\":\"SUCCESS\"}";
      break;
    }
    case Op::batch: {
      simdjson::dom::array results;
      if (response.status != 200) {
        reason = "unexpected success status";
        break;
      }
      if (root["results"].get(results) != simdjson::SUCCESS) {
        reason = "batch answer without results array";
        break;
      }
      if (results.size() != expect.batch_amounts.size()) {
        reason = "batch answer with the wrong number of results";
        break;
      }
      std::size_t i = 0;
      for (element item : results) {
        std::int64_t status = 0;
        if (item["status"].get(status) != simdjson::SUCCESS) {
          reason = "batch result without status";
          break;
        }
        if (status == 201) {
          element payment;
          if (item["payment"].get(payment) != simdjson::SUCCESS) {
            reason = "batch result 201 without payment";
            break;
          }
          reason = check_payment(payment, {}, expect.batch_amounts[i], &check);
          if (reason.empty() && check.payment_status != "PAID") reason = "batch balance payment not PAID";
          if (!reason.empty()) break;
          ++check.batch_paid;
        } else if (status == 402) {
          ++check.batch_refused;
        } else if (status >= 500) {
          reason = "batch result with a 5xx status";
          break;
        } else {
          reason = "batch result with an unexpected status";
          break;
        }
        ++i;
      }
      check.payment_status = {};
      break;
    }
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
  if (expect.op == Op::get && response.status == 404) {
    check.verdict = Verdict::violation;
    check.reason = "an acknowledged payment is not found";
    return check;
  }
  check.verdict = is_refusal(expect.op, response.status, check.error_code) ? Verdict::refused : Verdict::error;
  check.reason = check.verdict == Verdict::error ? "unexpected 4xx" : "";
  return check;
}

}  // namespace paycore::loadgen
