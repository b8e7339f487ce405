// The status of every ResultCode (docs/api.md "Error codes"). One table, so that a code whose
// line goes missing (as `unavailable` once did when a neighbour was removed) is caught here.
#include <gtest/gtest.h>

#include "net/http_status.hpp"

namespace paycore::net {
namespace {

TEST(HttpStatus, EveryRefusalHasItsDocumentedStatus) {
  const struct {
    ResultCode code;
    int status;
  } table[] = {
      {ResultCode::invalid_field, 400},          {ResultCode::missing_field, 400},
      {ResultCode::invalid_amount, 400},         {ResultCode::unknown_channel, 400},
      {ResultCode::insufficient_funds, 402},     {ResultCode::mandate_limit_exceeded, 402},
      {ResultCode::mandate_inactive, 403},       {ResultCode::not_found, 404},
      {ResultCode::account_not_found, 404},      {ResultCode::payment_not_found, 404},
      {ResultCode::account_exists, 409},         {ResultCode::duplicate_order, 409},
      {ResultCode::invalid_state, 409},          {ResultCode::mandate_exists, 409},
      {ResultCode::currency_mismatch, 422},      {ResultCode::idempotency_key_reused, 422},
      {ResultCode::refund_exceeds_payment, 422}, {ResultCode::invalid_payer, 422},
      {ResultCode::unavailable, 503},            {ResultCode::capacity_exhausted, 507},
      {ResultCode::archive_check_needed, 503},
  };
  for (const auto& row : table) {
    EXPECT_EQ(http_status(row.code, CommandKind::create_payment), row.status)
        << to_string(row.code);
  }
}

TEST(HttpStatus, SuccessIsCreatedOnlyForWhatCreatesAResource) {
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::open_account), 201);
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::create_payment), 201);
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::refund_payment), 201);
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::create_mandate), 201);
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::get_payment), 200);
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::deposit), 200);
  EXPECT_EQ(http_status(ResultCode::ok, CommandKind::revoke_mandate), 200);
}

}  // namespace
}  // namespace paycore::net
