// One test per rule and per refusal code of the state machine (docs/api.md).
#include <gtest/gtest.h>

#include "commands.hpp"
#include "net/http_status.hpp"

namespace paycore::testing {
namespace {

using net::http_status;  // the HTTP mapping is net's (net/http_status.hpp)

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d.run(add_channel("alipay")).mutated);
    ASSERT_TRUE(d.run(add_channel("wechat")).mutated);
    ASSERT_EQ(d.run(open_account("o1", "alice")).code, ResultCode::ok);
    ASSERT_EQ(d.run(deposit("o2", "alice", 10'000)).code, ResultCode::ok);
    ASSERT_EQ(d.run(create_mandate("om1", "md-alice-m1", "alice", "m1")).code, ResultCode::ok);
    ASSERT_EQ(d.run(create_mandate("om2", "md-alice-m2", "alice", "m2")).code, ResultCode::ok);
  }
  void TearDown() override { EXPECT_TRUE(d.state.balances_sum_to_zero_slow()); }

  Amount balance(std::string_view account) {
    const std::uint32_t row = d.state.find_account(account);
    EXPECT_NE(row, row_none) << account;
    return row == row_none ? 0 : d.state.accounts[row].balance;
  }
  PaymentStatus status(std::string_view merchant, std::string_view order) {
    return d.run(get_payment(merchant, order), 0).payment.status;
  }

  Driver d;
};

// ---- Accounts

TEST_F(ApplyTest, OpenAccountStartsAtZero) {
  const Result r = d.run(open_account("o3", "bob", "USD"));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_TRUE(r.mutated);
  EXPECT_EQ(r.resource, ResourceKind::account);
  EXPECT_EQ(r.account.account_id.view(), "bob");
  EXPECT_EQ(r.account.balance, 0);
  EXPECT_EQ(currency_code(r.account.currency), "USD");
  EXPECT_EQ(http_status(r.code, r.kind), 201);
}

TEST_F(ApplyTest, OpenExistingAccountIsAccountExistsAndKept) {
  const Result r = d.run(open_account("o3", "alice"));
  EXPECT_EQ(r.code, ResultCode::account_exists);
  EXPECT_EQ(http_status(r.code, r.kind), 409);
  const Result again = d.run(open_account("o3", "alice"));
  EXPECT_EQ(again.code, ResultCode::account_exists);
  EXPECT_TRUE(again.replayed);
}

TEST_F(ApplyTest, SystemAccountIdsAreReserved) {
  for (std::string_view id : {"external", "balance", "channel:alipay", "channel:new"}) {
    const Result r = d.run(open_account(std::string("r-") + std::string(id), id));
    EXPECT_EQ(r.code, ResultCode::invalid_field) << id;
    EXPECT_EQ(r.field, Field::account_id);
    EXPECT_FALSE(r.mutated);
  }
}

TEST_F(ApplyTest, OpenAccountWithoutCurrencyIsInvalidField) {
  Command c = open_account("o3", "bob");
  c.currency = Currency{};
  const Result r = d.run(c);
  EXPECT_EQ(r.code, ResultCode::invalid_field);
  EXPECT_EQ(r.field, Field::currency);
}

TEST_F(ApplyTest, OpenAccountWithBadKindIsInvalidField) {
  Command c = open_account("o3", "bob");
  c.account_kind = static_cast<AccountKind>(9);
  EXPECT_EQ(d.run(c).field, Field::kind);
}

TEST_F(ApplyTest, MissingRequestIdIsMissingField) {
  const Result r = d.run(open_account("", "bob"));
  EXPECT_EQ(r.code, ResultCode::missing_field);
  EXPECT_EQ(r.field, Field::request_id);
  EXPECT_EQ(http_status(r.code, r.kind), 400);
}

TEST_F(ApplyTest, DepositCreditsAccountAndDebitsExternal) {
  const Result r = d.run(deposit("o3", "alice", 250));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.account.balance, 10'250);
  EXPECT_EQ(d.state.external_balance(ccy("CNY")), -10'250);
  EXPECT_EQ(http_status(r.code, r.kind), 200);
}

TEST_F(ApplyTest, DepositToUnknownAccountIsAccountNotFound) {
  const Result r = d.run(deposit("o3", "nobody", 250));
  EXPECT_EQ(r.code, ResultCode::account_not_found);
  EXPECT_EQ(http_status(r.code, r.kind), 404);
}

TEST_F(ApplyTest, DepositInAnotherCurrencyIsCurrencyMismatch) {
  const Result r = d.run(deposit("o3", "alice", 250, "USD"));
  EXPECT_EQ(r.code, ResultCode::currency_mismatch);
  EXPECT_EQ(http_status(r.code, r.kind), 422);
  EXPECT_EQ(balance("alice"), 10'000);
}

TEST_F(ApplyTest, ZeroOrNegativeAmountIsInvalidAmount) {
  for (Amount amount : {Amount{0}, Amount{-5}, INT64_MIN}) {
    const Result r = d.run(deposit("o3", "alice", amount));
    EXPECT_EQ(r.code, ResultCode::invalid_amount) << amount;
    EXPECT_FALSE(r.mutated);
  }
}

TEST_F(ApplyTest, DepositThatWouldOverflowIsInvalidAmount) {
  ASSERT_EQ(d.run(deposit("o3", "alice", INT64_MAX - 10'000)).code, ResultCode::ok);
  const Result r = d.run(deposit("o4", "alice", 1));
  EXPECT_EQ(r.code, ResultCode::invalid_amount);
  EXPECT_EQ(balance("alice"), INT64_MAX);
}

// ---- Payments

TEST_F(ApplyTest, BalancePaymentMovesMoneyAndIsPaid) {
  const Result r = d.run(pay("m1", "r1", "o-1", 1'234, "alice"));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(http_status(r.code, r.kind), 201);
  EXPECT_EQ(r.payment.status, PaymentStatus::paid);
  EXPECT_EQ(r.payment.payer_account_id.view(), "alice");
  EXPECT_EQ(r.payment.merchant_id.view(), "m1");
  EXPECT_TRUE(r.payment.channel_txn_id.empty());
  EXPECT_EQ(balance("alice"), 10'000 - 1'234);
  EXPECT_EQ(balance("m1"), 1'234);
}

TEST_F(ApplyTest, FirstPaymentOpensTheMerchantsAccount) {
  ASSERT_EQ(d.state.find_account("m1"), row_none);
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 1, "alice")).code, ResultCode::ok);
  const std::uint32_t row = d.state.find_account("m1");
  ASSERT_NE(row, row_none);
  EXPECT_EQ(d.state.accounts[row].kind, AccountKind::merchant);
}

TEST_F(ApplyTest, InsufficientFundsCreatesNothingAndIsKept) {
  const Result r = d.run(pay("m1", "r1", "o-1", 10'001, "alice"));
  EXPECT_EQ(r.code, ResultCode::insufficient_funds);
  EXPECT_EQ(http_status(r.code, r.kind), 402);
  EXPECT_EQ(d.state.payments.size(), 0u);
  EXPECT_EQ(balance("alice"), 10'000);
  // Funds arrive; the same request still gets its first outcome.
  ASSERT_EQ(d.run(deposit("o3", "alice", 5'000)).code, ResultCode::ok);
  const Result again = d.run(pay("m1", "r1", "o-1", 10'001, "alice"));
  EXPECT_EQ(again.code, ResultCode::insufficient_funds);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(d.state.payments.size(), 0u);
}

TEST_F(ApplyTest, SecondRequestForAnOrderIsDuplicateOrder) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result r = d.run(pay("m1", "r2", "o-1", 100, "alice"));
  EXPECT_EQ(r.code, ResultCode::duplicate_order);
  EXPECT_EQ(http_status(r.code, r.kind), 409);
  EXPECT_EQ(balance("alice"), 9'900);
}

TEST_F(ApplyTest, OrderIdsAreScopedPerMerchant) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m2", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
}

TEST_F(ApplyTest, UnknownPayerIsAccountNotFound) {
  const Result r = d.run(pay("m1", "r1", "o-1", 100, "nobody"));
  EXPECT_EQ(r.code, ResultCode::account_not_found);
  EXPECT_EQ(r.field, Field::payer_account_id);
}

TEST_F(ApplyTest, PayerInAnotherCurrencyIsCurrencyMismatch) {
  const Result r = d.run(pay("m1", "r1", "o-1", 100, "alice", "USD"));
  EXPECT_EQ(r.code, ResultCode::currency_mismatch);
  EXPECT_EQ(d.state.payments.size(), 0u);
}

TEST_F(ApplyTest, MerchantAccountInAnotherCurrencyIsCurrencyMismatch) {
  ASSERT_EQ(d.run(open_account("o3", "m1", "USD", AccountKind::merchant)).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::currency_mismatch);
}

TEST_F(ApplyTest, CustomerAccountCannotTakePayments) {
  ASSERT_EQ(d.run(open_account("o3", "m1")).code, ResultCode::ok);
  const Result r = d.run(pay("m1", "r1", "o-1", 100, "alice"));
  EXPECT_EQ(r.code, ResultCode::account_not_found);
  EXPECT_EQ(r.field, Field::merchant_id);
}

TEST_F(ApplyTest, UnknownChannelIsRefusedAndNotKept) {
  const Result r = d.run(pay_external("m1", "r1", "o-1", 100, "paypal"));
  EXPECT_EQ(r.code, ResultCode::unknown_channel);
  EXPECT_EQ(http_status(r.code, r.kind), 400);
  EXPECT_FALSE(r.mutated);
  ASSERT_TRUE(d.run(add_channel("paypal")).mutated);
  EXPECT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "paypal")).code, ResultCode::ok);
}

TEST_F(ApplyTest, BalancePaymentWithoutPayerIsMissingField) {
  const Result r = d.run(pay("m1", "r1", "o-1", 100, ""));
  EXPECT_EQ(r.code, ResultCode::missing_field);
  EXPECT_EQ(r.field, Field::payer_account_id);
}

TEST_F(ApplyTest, ExternalPaymentWithPayerIsInvalidField) {
  Command c = pay_external("m1", "r1", "o-1", 100, "alipay");
  c.account = Id::of("alice");
  const Result r = d.run(c);
  EXPECT_EQ(r.code, ResultCode::invalid_field);
  EXPECT_EQ(r.field, Field::payer_account_id);
}

// Was 400 invalid_field before mandates; a merchant account is never a payer now, so paying
// from one's own account reads like any account that is not the caller's to debit.
TEST_F(ApplyTest, MerchantPayingFromItsOwnAccountIsAccountNotFound) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result r = d.run(pay("m1", "r2", "o-2", 100, "m1"));
  EXPECT_EQ(r.code, ResultCode::account_not_found);
  EXPECT_EQ(r.field, Field::payer_account_id);
}

TEST_F(ApplyTest, ExternalPaymentIsPendingAndMovesNoMoney) {
  const Result r = d.run(pay_external("m1", "r1", "o-1", 100, "alipay"));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.payment.status, PaymentStatus::pending);
  EXPECT_TRUE(r.payment.payer_account_id.empty());
  EXPECT_EQ(r.payment.channel.view(), "alipay");
  EXPECT_EQ(balance("m1"), 0);
}

// ---- Mandates: who may debit whom (docs/api.md "Mandates")

class MandateTest : public ApplyTest {
 protected:
  void SetUp() override {
    ApplyTest::SetUp();
    ASSERT_EQ(d.run(open_account("ob1", "bob")).code, ResultCode::ok);
    ASSERT_EQ(d.run(deposit("ob2", "bob", 10'000)).code, ResultCode::ok);
    // m2 has an account with money in it, and bob has a mandate for m2 only.
    ASSERT_EQ(d.run(pay("m2", "seed", "seed-1", 5'000, "alice")).code, ResultCode::ok);
    ASSERT_EQ(d.run(create_mandate("ob3", "md-bob-m2", "bob", "m2")).code, ResultCode::ok);
  }
  // What a merchant learns about a payer it may not debit: compared field by field.
  static void expect_same_refusal(const Result& a, const Result& b) {
    EXPECT_EQ(a.code, b.code);
    EXPECT_EQ(a.field, b.field);
    EXPECT_EQ(http_status(a.code, a.kind), http_status(b.code, b.kind));
  }
};

TEST_F(MandateTest, PaymentFromAnotherMerchantsAccountIsAccountNotFound) {
  const Result r = d.run(pay("m1", "r1", "o-1", 100, "m2"));
  EXPECT_EQ(r.code, ResultCode::account_not_found);
  EXPECT_EQ(balance("m2"), 5'000);
  EXPECT_EQ(d.state.find_account("m1"), row_none);
}

TEST_F(MandateTest, PaymentWithoutMandateReadsLikeAnUnknownPayer) {
  const Result unknown = d.run(pay("m1", "r1", "o-1", 100, "nobody"));
  const Result no_mandate = d.run(pay("m1", "r2", "o-2", 100, "bob"));
  const Result merchant = d.run(pay("m1", "r3", "o-3", 100, "m2"));
  EXPECT_EQ(no_mandate.code, ResultCode::account_not_found);
  expect_same_refusal(unknown, no_mandate);
  expect_same_refusal(unknown, merchant);
  EXPECT_EQ(balance("bob"), 10'000);
}

TEST_F(MandateTest, MandateForAnotherMerchantDoesNotAuthorize) {
  EXPECT_EQ(d.run(pay("m2", "r1", "o-1", 100, "bob")).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r2", "o-2", 100, "bob")).code, ResultCode::account_not_found);
  EXPECT_EQ(balance("bob"), 9'900);
}

TEST_F(MandateTest, PaymentCarriesItsMandate) {
  const Result r = d.run(pay("m2", "r1", "o-1", 100, "bob"));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.payment.mandate_id.view(), "md-bob-m2");
  EXPECT_TRUE(d.run(pay_external("m2", "r2", "o-2", 100, "alipay")).payment.mandate_id.empty());
}

TEST_F(MandateTest, RevokedMandateIsMandateInactive) {
  const Result revoked = d.run(revoke_mandate("ob4", "md-bob-m2"));
  ASSERT_EQ(revoked.code, ResultCode::ok);
  EXPECT_EQ(revoked.mandate.status, MandateStatus::revoked);
  const Result r = d.run(pay("m2", "r1", "o-1", 100, "bob"));
  EXPECT_EQ(r.code, ResultCode::mandate_inactive);
  EXPECT_EQ(http_status(r.code, r.kind), 403);
  EXPECT_EQ(balance("bob"), 10'000);
}

TEST_F(MandateTest, ExpiredMandateIsMandateInactiveAndReadsExpired) {
  const std::int64_t expires_at_us = d.now_us() + 10'000'000;
  ASSERT_EQ(d.run(create_mandate("ob4", "md-bob-m1", "bob", "m1", 1'000, expires_at_us)).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 100, "bob")).code, ResultCode::ok);
  const Result late = d.run(pay("m1", "r2", "o-2", 100, "bob"), 20'000'000);
  EXPECT_EQ(late.code, ResultCode::mandate_inactive);
  const Result read = d.run(get_mandate("m1", "md-bob-m1"), 0);
  EXPECT_EQ(read.mandate.status, MandateStatus::expired);
  EXPECT_EQ(read.mandate.updated_at_us, expires_at_us);
}

TEST_F(MandateTest, SingleUseMandateIsUsedByItsPayment) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-once", "bob", "m1", 1'000, 0, true)).code, ResultCode::ok);
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "bob")).code, ResultCode::ok);
  EXPECT_EQ(d.run(get_mandate("m1", "md-once"), 0).mandate.status, MandateStatus::used);
  EXPECT_EQ(d.run(pay("m1", "r2", "o-2", 100, "bob")).code, ResultCode::mandate_inactive);
}

TEST_F(MandateTest, RefusedPaymentDoesNotUseASingleUseMandate) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-once", "bob", "m1", 1'000, 0, true)).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 1'001, "bob")).code, ResultCode::mandate_limit_exceeded);
  EXPECT_EQ(d.run(get_mandate("m1", "md-once"), 0).mandate.status, MandateStatus::active);
}

TEST_F(MandateTest, AmountOverTheMandateMaximumIsMandateLimitExceeded) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-bob-m1", "bob", "m1", 500)).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 500, "bob")).code, ResultCode::ok);
  const Result r = d.run(pay("m1", "r2", "o-2", 501, "bob"));
  EXPECT_EQ(r.code, ResultCode::mandate_limit_exceeded);
  EXPECT_EQ(r.field, Field::amount);
  EXPECT_EQ(http_status(r.code, r.kind), 402);
}

// docs/api.md's precedence: existence (404), then the mandate's status (403), then currency (422),
// then its limit (402), then the payer's funds (402).
TEST_F(MandateTest, InactiveMandateWinsOverLimitAndFunds) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-bob-m1", "bob", "m1", 500)).code, ResultCode::ok);
  ASSERT_EQ(d.run(revoke_mandate("ob5", "md-bob-m1")).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 1'000'000, "bob", "USD")).code, ResultCode::mandate_inactive);
}

TEST_F(MandateTest, CurrencyMismatchWinsOverTheLimit) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-bob-m1", "bob", "m1", 500)).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 1'000, "bob", "USD")).code, ResultCode::currency_mismatch);
}

TEST_F(MandateTest, LimitWinsOverInsufficientFunds) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-bob-m1", "bob", "m1", 500)).code, ResultCode::ok);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 20'000, "bob")).code, ResultCode::mandate_limit_exceeded);
}

TEST_F(MandateTest, NewerMandateSupersedesTheOlder) {
  ASSERT_EQ(d.run(create_mandate("ob4", "md-bob-m2-v2", "bob", "m2", 50)).code, ResultCode::ok);
  EXPECT_EQ(d.run(get_mandate("m2", "md-bob-m2"), 0).mandate.status, MandateStatus::revoked);
  EXPECT_EQ(d.run(pay("m2", "r1", "o-1", 100, "bob")).code, ResultCode::mandate_limit_exceeded);
  const Result r = d.run(pay("m2", "r2", "o-2", 50, "bob"));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.payment.mandate_id.view(), "md-bob-m2-v2");
}

TEST_F(MandateTest, RefundNeedsNoMandate) {
  ASSERT_EQ(d.run(pay("m2", "r1", "o-1", 100, "bob")).code, ResultCode::ok);
  ASSERT_EQ(d.run(revoke_mandate("ob4", "md-bob-m2")).code, ResultCode::ok);
  EXPECT_EQ(d.run(refund("m2", "r2", "o-1", 100)).code, ResultCode::ok);
  EXPECT_EQ(balance("bob"), 10'000);
}

TEST_F(MandateTest, MandateOnAMerchantAccountIsInvalidPayer) {
  const Result r = d.run(create_mandate("ob4", "md-x", "m2", "m1"));
  EXPECT_EQ(r.code, ResultCode::invalid_payer);
  EXPECT_EQ(r.field, Field::payer_account_id);
  EXPECT_EQ(http_status(r.code, r.kind), 422);
  EXPECT_EQ(d.state.find_mandate("md-x"), row_none);
}

TEST_F(MandateTest, MandateOfAnUnknownPayerIsAccountNotFound) {
  EXPECT_EQ(d.run(create_mandate("ob4", "md-x", "nobody", "m1")).code, ResultCode::account_not_found);
}

TEST_F(MandateTest, TakenMandateIdIsMandateExists) {
  const Result r = d.run(create_mandate("ob4", "md-bob-m2", "bob", "m1"));
  EXPECT_EQ(r.code, ResultCode::mandate_exists);
  EXPECT_EQ(http_status(r.code, r.kind), 409);
}

TEST_F(MandateTest, MandateExpiringInThePastIsInvalidFieldAndNotKept) {
  const Result r = d.run(create_mandate("ob4", "md-x", "bob", "m1", 100, d.now_us()));
  EXPECT_EQ(r.code, ResultCode::invalid_field);
  EXPECT_EQ(r.field, Field::expires_at);
  EXPECT_FALSE(r.mutated);
}

TEST_F(MandateTest, MissingMandateFieldsAreMissingField) {
  Command c = create_mandate("ob4", "md-x", "bob", "m1");
  c.merchant_id = Id{};
  EXPECT_EQ(d.run(c).field, Field::merchant_id);
  c = create_mandate("ob4", "", "bob", "m1");
  EXPECT_EQ(d.run(c).field, Field::mandate_id);
  c = create_mandate("ob4", "md-x", "", "m1");
  EXPECT_EQ(d.run(c).field, Field::payer_account_id);
}

TEST_F(MandateTest, CreateMandateReplaysAndAChangedBodyIsReused) {
  const Result again = d.run(create_mandate("ob3", "md-bob-m2", "bob", "m2"));
  EXPECT_EQ(again.code, ResultCode::ok);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.mandate.mandate_id.view(), "md-bob-m2");
  EXPECT_EQ(d.run(create_mandate("ob3", "md-bob-m2", "bob", "m2", 7)).code, ResultCode::idempotency_key_reused);
  EXPECT_EQ(d.run(create_mandate("ob3", "md-bob-m2", "bob", "m2", 1'000'000'000, 0, true)).code,
            ResultCode::idempotency_key_reused);
}

TEST_F(MandateTest, RevokingTwiceIsInvalidStateAndUnknownIsNotFound) {
  ASSERT_EQ(d.run(revoke_mandate("ob4", "md-bob-m2")).code, ResultCode::ok);
  EXPECT_TRUE(d.run(revoke_mandate("ob4", "md-bob-m2")).replayed);
  EXPECT_EQ(d.run(revoke_mandate("ob5", "md-bob-m2")).code, ResultCode::invalid_state);
  const Result unknown = d.run(revoke_mandate("ob6", "md-none"));
  EXPECT_EQ(unknown.code, ResultCode::not_found);
  EXPECT_EQ(unknown.field, Field::mandate_id);
}

TEST_F(MandateTest, MerchantReadsOnlyItsOwnMandate) {
  EXPECT_EQ(d.run(get_mandate("m2", "md-bob-m2"), 0).code, ResultCode::ok);
  EXPECT_EQ(d.run(get_mandate("operator", "md-bob-m2", true), 0).code, ResultCode::ok);
  const Result other = d.run(get_mandate("m1", "md-bob-m2"), 0);
  const Result none = d.run(get_mandate("m1", "md-none"), 0);
  EXPECT_EQ(other.code, ResultCode::not_found);
  expect_same_refusal(other, none);
}

// ---- Idempotency

// A replay answers exactly what the first answer said, `field` included.
TEST_F(ApplyTest, ReplayedRefusalKeepsItsField) {
  const Result first = d.run(pay("m1", "r1", "o-1", 10'001, "alice"));
  ASSERT_EQ(first.code, ResultCode::insufficient_funds);
  ASSERT_EQ(first.field, Field::amount);
  const Result again = d.run(pay("m1", "r1", "o-1", 10'001, "alice"));
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.code, first.code);
  EXPECT_EQ(again.field, first.field);
}

TEST_F(ApplyTest, SameRequestReplaysWithCurrentRepresentation) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  ASSERT_EQ(d.run(order_command(CommandKind::ship_payment, "m1", "r2", "o-1")).code, ResultCode::ok);
  const Result r = d.run(pay("m1", "r1", "o-1", 100, "alice"));
  EXPECT_EQ(r.code, ResultCode::ok);
  EXPECT_TRUE(r.replayed);
  EXPECT_FALSE(r.mutated);
  EXPECT_EQ(r.payment.status, PaymentStatus::shipped);
  EXPECT_EQ(http_status(r.code, r.kind), 201);
  EXPECT_EQ(balance("alice"), 9'900);
}

TEST_F(ApplyTest, ChangedBodyIsIdempotencyKeyReused) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result r = d.run(pay("m1", "r1", "o-1", 101, "alice"));
  EXPECT_EQ(r.code, ResultCode::idempotency_key_reused);
  EXPECT_EQ(http_status(r.code, r.kind), 422);
  EXPECT_FALSE(r.mutated);
  EXPECT_EQ(balance("alice"), 9'900);
}

TEST_F(ApplyTest, SameRequestIdForAnotherOperationIsReused) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result r = d.run(order_command(CommandKind::ship_payment, "m1", "r1", "o-1"));
  EXPECT_EQ(r.code, ResultCode::idempotency_key_reused);
}

TEST_F(ApplyTest, ValidationFailuresAreNotKept) {
  const Result bad = d.run(pay("m1", "r1", "o-1", 0, "alice"));
  ASSERT_EQ(bad.code, ResultCode::invalid_amount);
  EXPECT_FALSE(bad.mutated);
  EXPECT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
}

TEST_F(ApplyTest, RequestIdsAreScopedPerPrincipal) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result r = d.run(pay("m2", "r1", "o-9", 100, "alice"));
  EXPECT_EQ(r.code, ResultCode::ok);
  EXPECT_FALSE(r.replayed);
}

TEST_F(ApplyTest, KeptRefusalReplaysItsCode) {
  const Result r = d.run(order_command(CommandKind::cancel_payment, "m1", "r1", "nope"));
  ASSERT_EQ(r.code, ResultCode::payment_not_found);
  ASSERT_EQ(d.run(pay_external("m1", "r2", "nope", 100, "alipay")).code, ResultCode::ok);
  const Result again = d.run(order_command(CommandKind::cancel_payment, "m1", "r1", "nope"));
  EXPECT_EQ(again.code, ResultCode::payment_not_found);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(status("m1", "nope"), PaymentStatus::pending);
}

// ---- Transitions

TEST_F(ApplyTest, CancelPendingPayment) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  const Result r = d.run(order_command(CommandKind::cancel_payment, "m1", "r2", "o-1"));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.payment.status, PaymentStatus::cancelled);
  EXPECT_EQ(http_status(r.code, r.kind), 200);
}

TEST_F(ApplyTest, CancelPaidPaymentIsInvalidState) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result r = d.run(order_command(CommandKind::cancel_payment, "m1", "r2", "o-1"));
  EXPECT_EQ(r.code, ResultCode::invalid_state);
  EXPECT_EQ(http_status(r.code, r.kind), 409);
  EXPECT_EQ(status("m1", "o-1"), PaymentStatus::paid);
}

TEST_F(ApplyTest, ShipThenComplete) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  EXPECT_EQ(d.run(order_command(CommandKind::ship_payment, "m1", "r2", "o-1")).payment.status,
            PaymentStatus::shipped);
  EXPECT_EQ(d.run(order_command(CommandKind::complete_payment, "m1", "r3", "o-1")).payment.status,
            PaymentStatus::completed);
}

TEST_F(ApplyTest, ShipPendingIsInvalidState) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  EXPECT_EQ(d.run(order_command(CommandKind::ship_payment, "m1", "r2", "o-1")).code,
            ResultCode::invalid_state);
}

TEST_F(ApplyTest, CompleteUnshippedIsInvalidState) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  EXPECT_EQ(d.run(order_command(CommandKind::complete_payment, "m1", "r2", "o-1")).code,
            ResultCode::invalid_state);
}

TEST_F(ApplyTest, UnknownOrderIsPaymentNotFound) {
  const Result r = d.run(order_command(CommandKind::ship_payment, "m1", "r2", "o-404"));
  EXPECT_EQ(r.code, ResultCode::payment_not_found);
  EXPECT_EQ(http_status(r.code, r.kind), 404);
}

TEST_F(ApplyTest, MerchantCannotTouchAnotherMerchantsPayment) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  EXPECT_EQ(d.run(order_command(CommandKind::ship_payment, "m2", "r2", "o-1")).code,
            ResultCode::payment_not_found);
  EXPECT_EQ(d.run(refund("m2", "r3", "o-1", 10)).code, ResultCode::payment_not_found);
  EXPECT_EQ(d.run(get_payment("m2", "o-1")).code, ResultCode::payment_not_found);
  EXPECT_EQ(status("m1", "o-1"), PaymentStatus::paid);
}

// ---- Refunds

TEST_F(ApplyTest, PartialRefundsThenFullRefundIsRefunded) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Result first = d.run(refund("m1", "f1", "o-1", 30));
  ASSERT_EQ(first.code, ResultCode::ok);
  EXPECT_EQ(http_status(first.code, first.kind), 201);
  EXPECT_EQ(first.payment.refunded_amount, 30);
  EXPECT_EQ(first.payment.status, PaymentStatus::paid);
  const Result rest = d.run(refund("m1", "f2", "o-1", 70));
  EXPECT_EQ(rest.payment.refunded_amount, 100);
  EXPECT_EQ(rest.payment.status, PaymentStatus::refunded);
  EXPECT_EQ(balance("alice"), 10'000);
  EXPECT_EQ(balance("m1"), 0);
  const PaymentRow& row = d.state.payments[0];
  ASSERT_NE(row.first_refund, row_none);
  EXPECT_EQ(d.state.str(d.state.refunds[row.first_refund].request_id), "f1");
  EXPECT_EQ(d.state.refunds[d.state.refunds[row.first_refund].next].amount, 70);
}

TEST_F(ApplyTest, RefundOverTheRestIsRefundExceedsPayment) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  ASSERT_EQ(d.run(refund("m1", "f1", "o-1", 60)).code, ResultCode::ok);
  const Result r = d.run(refund("m1", "f2", "o-1", 41));
  EXPECT_EQ(r.code, ResultCode::refund_exceeds_payment);
  EXPECT_EQ(http_status(r.code, r.kind), 422);
  EXPECT_EQ(balance("m1"), 40);
}

TEST_F(ApplyTest, RefundWithoutMerchantFundsIsInsufficientFunds) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  // m1's takings leave its account. No command does that yet (a merchant account is never a
  // payer; settlements come with the ledger), so move them as a settlement would, keeping the
  // zero sum: the refund must still be refused rather than overdraw the merchant.
  d.state.accounts[d.state.find_account("m1")].balance -= 80;
  d.state.external_balance(ccy("CNY")) += 80;
  const Result r = d.run(refund("m1", "f1", "o-1", 50));
  EXPECT_EQ(r.code, ResultCode::insufficient_funds);
  EXPECT_EQ(balance("m1"), 20);
}

TEST_F(ApplyTest, RefundOfPendingIsInvalidState) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  EXPECT_EQ(d.run(refund("m1", "f1", "o-1", 10)).code, ResultCode::invalid_state);
}

TEST_F(ApplyTest, RefundOfRefundedIsInvalidState) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  ASSERT_EQ(d.run(refund("m1", "f1", "o-1", 100)).code, ResultCode::ok);
  EXPECT_EQ(d.run(refund("m1", "f2", "o-1", 1)).code, ResultCode::invalid_state);
}

TEST_F(ApplyTest, RefundOfChannelPaymentCreditsTheChannelAccount) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::success)).notification,
            NotificationOutcome::applied);
  const std::uint32_t alipay = d.state.find_channel("alipay");
  EXPECT_EQ(d.state.channel_balance(alipay, ccy("CNY")), -100);
  ASSERT_EQ(d.run(refund("m1", "f1", "o-1", 40)).code, ResultCode::ok);
  EXPECT_EQ(d.state.channel_balance(alipay, ccy("CNY")), -60);
  EXPECT_EQ(balance("m1"), 60);
}

TEST_F(ApplyTest, RefundOfShippedAndCompletedIsAllowed) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  ASSERT_EQ(d.run(order_command(CommandKind::ship_payment, "m1", "r2", "o-1")).code, ResultCode::ok);
  EXPECT_EQ(d.run(refund("m1", "f1", "o-1", 10)).payment.status, PaymentStatus::shipped);
  ASSERT_EQ(d.run(order_command(CommandKind::complete_payment, "m1", "r3", "o-1")).code, ResultCode::ok);
  EXPECT_EQ(d.run(refund("m1", "f2", "o-1", 90)).payment.status, PaymentStatus::refunded);
}

// ---- Channel notifications

TEST_F(ApplyTest, SuccessNotificationPaysThePendingPayment) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  const Result r = d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::success));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.notification, NotificationOutcome::applied);
  EXPECT_EQ(r.payment.status, PaymentStatus::paid);
  EXPECT_EQ(r.payment.channel_txn_id.view(), "t1");
  EXPECT_EQ(balance("m1"), 100);
}

TEST_F(ApplyTest, FailedNotificationFailsThePendingPayment) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  const Result r = d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::failed));
  EXPECT_EQ(r.payment.status, PaymentStatus::failed);
  EXPECT_EQ(balance("m1"), 0);
}

TEST_F(ApplyTest, RepeatedNotificationChangesNothing) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::success)).notification,
            NotificationOutcome::applied);
  const Result r = d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::success));
  EXPECT_EQ(r.notification, NotificationOutcome::duplicate);
  EXPECT_FALSE(r.mutated);
  EXPECT_EQ(balance("m1"), 100);
  EXPECT_EQ(d.state.anomalies.size(), 0u);
}

struct AnomalyCase {
  const char* name;
  Amount amount;
  const char* currency;
  const char* order;
  const char* channel;
  AnomalyReason reason;
};

class NotificationAnomalyTest : public ApplyTest,
                                public ::testing::WithParamInterface<AnomalyCase> {};

TEST_P(NotificationAnomalyTest, IsKeptAndMovesNoMoney) {
  const AnomalyCase& k = GetParam();
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  const Result r = d.run(notify(k.channel, "t1", "m1", k.order, k.amount, NotificationStatus::success, k.currency));
  EXPECT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.notification, NotificationOutcome::anomaly);
  EXPECT_EQ(r.anomaly, k.reason);
  EXPECT_TRUE(r.mutated);
  ASSERT_EQ(d.state.anomalies.size(), 1u);
  EXPECT_EQ(d.state.anomalies[0].reason, k.reason);
  EXPECT_EQ(status("m1", "o-1"), PaymentStatus::pending);
  EXPECT_EQ(balance("m1"), 0);
  // The channel's retry is recognised as the same transaction.
  const Result retry = d.run(notify(k.channel, "t1", "m1", k.order, k.amount, NotificationStatus::success, k.currency));
  EXPECT_EQ(retry.notification, NotificationOutcome::duplicate);
  EXPECT_EQ(d.state.anomalies.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Reasons, NotificationAnomalyTest,
    ::testing::Values(AnomalyCase{"UnknownOrder", 100, "CNY", "o-404", "alipay", AnomalyReason::unknown_order},
                      AnomalyCase{"AmountMismatch", 99, "CNY", "o-1", "alipay", AnomalyReason::amount_mismatch},
                      AnomalyCase{"CurrencyMismatch", 100, "USD", "o-1", "alipay", AnomalyReason::currency_mismatch},
                      AnomalyCase{"ChannelMismatch", 100, "CNY", "o-1", "wechat", AnomalyReason::channel_mismatch}),
    [](const auto& test_param) { return std::string(test_param.param.name); });

TEST_F(ApplyTest, NotificationForAPaidPaymentIsNotPendingAnomaly) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::success)).notification,
            NotificationOutcome::applied);
  const Result r = d.run(notify("alipay", "t2", "m1", "o-1", 100, NotificationStatus::success));
  EXPECT_EQ(r.anomaly, AnomalyReason::not_pending);
  EXPECT_EQ(balance("m1"), 100);
}

TEST_F(ApplyTest, NotificationFromUnknownChannelIsRefused) {
  const Result r = d.run(notify("paypal", "t1", "m1", "o-1", 100, NotificationStatus::success));
  EXPECT_EQ(r.code, ResultCode::unknown_channel);
  EXPECT_FALSE(r.mutated);
  EXPECT_EQ(d.run(notify("balance", "t1", "m1", "o-1", 100, NotificationStatus::success)).code,
            ResultCode::unknown_channel);
}

// ---- Expiry of pending payments

TEST_F(ApplyTest, TickExpiresOldPendingPayments) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(pay_external("m1", "r2", "o-2", 100, "alipay"), 5'000'000).code, ResultCode::ok);
  const std::int64_t lifetime_us = 10'000'000;
  Result r = d.run(tick(lifetime_us), 6'000'000);  // o-1 is 11 s old, o-2 6 s
  EXPECT_EQ(r.expired_count, 1u);
  EXPECT_EQ(d.state.payments[0].status, PaymentStatus::cancelled);
  EXPECT_EQ(d.state.payments[0].updated_at_us, d.state.payments[0].created_at_us + lifetime_us);
  EXPECT_EQ(d.state.payments[1].status, PaymentStatus::pending);
  r = d.run(tick(lifetime_us), 5'000'000);
  EXPECT_EQ(r.expired_count, 1u);
  EXPECT_EQ(d.state.payments[1].status, PaymentStatus::cancelled);
}

TEST_F(ApplyTest, TickDoesAtMostExpireMaxEntries) {
  for (int i = 0; i < 10; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(d.run(pay_external("m1", "r" + n, "o" + n, 100, "alipay")).code, ResultCode::ok);
  }
  EXPECT_EQ(d.run(tick(1'000'000, 4), 60'000'000).expired_count, 4u);
  EXPECT_EQ(d.run(tick(1'000'000, 4)).expired_count, 4u);
  EXPECT_EQ(d.run(tick(1'000'000, 4)).expired_count, 2u);
  EXPECT_FALSE(d.run(tick(1'000'000, 4)).mutated);
}

TEST_F(ApplyTest, ExpiredPendingReadsCancelledBeforeTheTick) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  const std::int64_t later_us = pending_lifetime_default_us + 1;
  const Result r = d.run(get_payment("m1", "o-1"), later_us);
  EXPECT_EQ(r.payment.status, PaymentStatus::cancelled);
  EXPECT_EQ(d.state.payments[0].status, PaymentStatus::pending);  // reads change nothing
  const Result late = d.run(notify("alipay", "t1", "m1", "o-1", 100, NotificationStatus::success));
  EXPECT_EQ(late.anomaly, AnomalyReason::not_pending);
  EXPECT_EQ(balance("m1"), 0);
}

TEST_F(ApplyTest, CancelAfterExpiryIsInvalidState) {
  ASSERT_EQ(d.run(pay_external("m1", "r1", "o-1", 100, "alipay")).code, ResultCode::ok);
  EXPECT_EQ(d.run(order_command(CommandKind::cancel_payment, "m1", "r2", "o-1"),
                  pending_lifetime_default_us).code,
            ResultCode::invalid_state);
}

// ---- Reads

TEST_F(ApplyTest, MerchantReadsOnlyItsOwnAccount) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  EXPECT_EQ(d.run(get_account("m1", "m1")).account.balance, 100);
  EXPECT_EQ(d.run(get_account("m1", "alice")).code, ResultCode::account_not_found);
}

TEST_F(ApplyTest, OperatorReadsAnyAccount) {
  const Result r = d.run(get_account("operator", "alice", true));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.account.balance, 10'000);
  EXPECT_FALSE(r.mutated);
}

// ---- Invariants and limits

TEST_F(ApplyTest, CommandWithMalformedIdIsRefused) {
  Command c = pay("m1", "r1", "o-1", 100, "alice");
  c.order_id.bytes[0] = ' ';
  EXPECT_EQ(d.run(c).code, ResultCode::invalid_field);
  c = pay("m1", "r1", "o-1", 100, "alice");
  c.order_id.size = 200;  // longer than the buffer: must not be read
  EXPECT_EQ(d.run(c).code, ResultCode::invalid_field);
}

TEST_F(ApplyTest, AdmissionRefusesAmountsOverTheMaximum) {
  Limits limits;
  limits.amount_max = 1'000;
  const Admission a = admit(d.state, limits, pay("m1", "r1", "o-1", 1'001, "alice"));
  EXPECT_EQ(a.code, ResultCode::invalid_amount);
  EXPECT_EQ(admit(d.state, limits, pay("m1", "r1", "o-1", 1'000, "alice")).code, ResultCode::ok);
}

TEST_F(ApplyTest, AdmissionRefusesPaymentsPastCapacity) {
  Limits limits;
  limits.payments_max = 1;
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  const Admission a = admit(d.state, limits, pay("m1", "r2", "o-2", 100, "alice"));
  EXPECT_EQ(a.code, ResultCode::capacity_exhausted);
  EXPECT_EQ(http_status(a.code, CommandKind::create_payment), 507);
}

TEST_F(ApplyTest, EveryMovementKeepsTheSumAtZero) {
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 100, "alice")).code, ResultCode::ok);
  ASSERT_EQ(d.run(pay_external("m1", "r2", "o-2", 500, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(notify("alipay", "t1", "m1", "o-2", 500, NotificationStatus::success)).code, ResultCode::ok);
  ASSERT_EQ(d.run(refund("m1", "f1", "o-2", 200)).code, ResultCode::ok);
  ASSERT_EQ(d.run(refund("m1", "f2", "o-1", 100)).code, ResultCode::ok);
  EXPECT_EQ(d.state.balance_sum_slow(ccy("CNY")), 0);
  EXPECT_EQ(balance("m1"), 300);
}

}  // namespace
}  // namespace paycore::testing
