// JSON decoding of request bodies. Input: byte 0 picks the decoder (the seven request kinds
// and the batch: byte 0 % 8, 6 = batch, 7 = mandate), the rest is the body.
// Properties: no crash, no sanitizer report, no exception; a decoded request holds only
// well-formed ids, valid currencies and amounts in 1..amount_max; an error names a code and a
// message (and, in a batch, an item index inside the batch).
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_target.hpp"
#include "net/request_json.hpp"

namespace {

using namespace paycore::net;

paycore::net::JsonDecoder& decoder() {
  static JsonDecoder instance{DecodeLimits{.batch_items_max = 8, .depth_max = 16, .body_bytes_max = 64 * 1024}};
  return instance;
}

bool amount_ok(paycore::Amount amount) {
  return paycore::amount_is_valid(amount, decoder().limits().amount_max);
}
bool id_ok(const paycore::Id& id) { return !id.empty() && id.well_formed(); }
bool optional_id_ok(const paycore::Id& id) { return id.well_formed(); }

void check_error(const RequestDecodeError& error, std::int32_t items_count) {
  FUZZ_CHECK(json_request, !decode_error_code(error.code).empty());
  FUZZ_CHECK(json_request, !error.message.empty());
  // items_count < 0: a whole-batch error, whose item_index may name any item of the body (an
  // amount beyond 64 bits is found before the item count is checked against the limit).
  FUZZ_CHECK(json_request, error.item_index >= -1 && (items_count < 0 || error.item_index < items_count));
}

void check_payment(const CreatePaymentRequest& r) {
  FUZZ_CHECK(json_request, id_ok(r.request_id) && id_ok(r.order_id) && id_ok(r.channel));
  FUZZ_CHECK(json_request, optional_id_ok(r.payer_account_id));
  FUZZ_CHECK(json_request, amount_ok(r.amount) && r.currency.valid());
}

template <typename Request, typename Check>
void decode_one(std::string_view body, Check check) {
  Request request;
  const RequestDecodeResult result = decoder().decode(body, &request);
  if (result.has_value()) {
    check_error(*result, 0);
  } else {
    check(request);
  }
}

void decode_batch(std::string_view body) {
  static std::vector<BatchItem> items;
  const RequestDecodeResult result = decoder().decode_batch(body, &items);
  if (result.has_value()) {
    check_error(*result, -1);
    return;
  }
  FUZZ_CHECK(json_request, !items.empty() && items.size() <= decoder().limits().batch_items_max);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].error.has_value()) {
      check_error(*items[i].error, static_cast<std::int32_t>(items.size()));
      FUZZ_CHECK(json_request, items[i].error->item_index == static_cast<std::int32_t>(i));
    } else {
      check_payment(items[i].request);
    }
  }
}

}  // namespace

PAYCORE_FUZZ_TARGET(json_request) {
  if (size == 0) return 0;
  const std::string_view body = paycore::fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 8) {
    case 0:
      decode_one<OpenAccountRequest>(body, [](const OpenAccountRequest& r) {
        FUZZ_CHECK(json_request, id_ok(r.request_id) && id_ok(r.account_id) && r.currency.valid());
      });
      break;
    case 1:
      decode_one<DepositRequest>(body, [](const DepositRequest& r) {
        FUZZ_CHECK(json_request, id_ok(r.request_id) && amount_ok(r.amount) && r.currency.valid());
      });
      break;
    case 2:
      decode_one<CreatePaymentRequest>(body, check_payment);
      break;
    case 3:
      decode_one<RequestIdOnly>(body, [](const RequestIdOnly& r) {
        FUZZ_CHECK(json_request, id_ok(r.request_id));
      });
      break;
    case 4:
      decode_one<RefundRequest>(body, [](const RefundRequest& r) {
        FUZZ_CHECK(json_request, id_ok(r.request_id) && amount_ok(r.amount));
      });
      break;
    case 5:
      decode_one<NotificationRequest>(body, [](const NotificationRequest& r) {
        FUZZ_CHECK(json_request, id_ok(r.channel_txn_id) && id_ok(r.merchant_id) && id_ok(r.order_id));
        FUZZ_CHECK(json_request, amount_ok(r.amount) && r.currency.valid());
        FUZZ_CHECK(json_request, r.status != NotificationStatus::success || r.has_paid_at);
      });
      break;
    case 7:
      decode_one<CreateMandateRequest>(body, [](const CreateMandateRequest& r) {
        FUZZ_CHECK(json_request, id_ok(r.request_id) && id_ok(r.mandate_id));
        FUZZ_CHECK(json_request, id_ok(r.payer_account_id) && id_ok(r.merchant_id));
        FUZZ_CHECK(json_request, amount_ok(r.amount_max) && r.expires_at_us >= 0);
      });
      break;
    default:
      decode_batch(body);
      break;
  }
  return 0;
}
