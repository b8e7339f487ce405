// The hash join: one test per class, refunds, duplicates, cut-off, channels, anomalies.

#include <gtest/gtest.h>

#include <sstream>

#include "recon/gen.hpp"
#include "recon/match.hpp"
#include "test_util.hpp"

namespace paycore::recon {
namespace {

using test::at;
using test::count;
using test::first;
using test::match_csv;
using test::payment;

constexpr const char* row_o1 =
    "alipay,T1,m_1,o-1,PAYMENT,,1234,CNY,SUCCESS,2026-11-26T08:00:05Z\n";

MatchOptions cutoff(std::string_view time, std::int64_t tolerance_seconds = 1800) {
  MatchOptions options;
  options.cutoff_us = at(time);
  options.tolerance_seconds = tolerance_seconds;
  return options;
}

TEST(ReconMatch, MatchedPaymentIsCountedNotStored) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  const MatchResult r = match_csv(local, {row_o1});
  EXPECT_EQ(count(r, FindingClass::matched), 1u);
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.problems_count(), 0u);
  EXPECT_EQ(r.totals.classes[0].channel_amount[test::currency("CNY").index], 1234);
}

TEST(ReconMatch, ShippedCompletedAndRefundedCountAsPaid) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 100, "T1", PaymentStatus::shipped));
  local.add_payment(payment("m_1", "o-2", "alipay", 100, "T2", PaymentStatus::completed));
  LocalPayment refunded = payment("m_1", "o-3", "alipay", 100, "T3", PaymentStatus::refunded);
  refunded.refunded_amount = 100;
  const LocalRefund refund{"r-3", 100, at("2026-11-26T09:00:00Z")};
  local.add_payment(refunded, std::span(&refund, 1));
  const MatchResult r = match_csv(
      local, {"alipay,T1,m_1,o-1,PAYMENT,,100,CNY,SUCCESS,2026-11-26T08:00:05Z\n"
              "alipay,T2,m_1,o-2,PAYMENT,,100,CNY,SUCCESS,2026-11-26T08:00:05Z\n"
              "alipay,T3,m_1,o-3,PAYMENT,,100,CNY,SUCCESS,2026-11-26T08:00:05Z\n"
              "alipay,T3R,m_1,o-3,REFUND,r-3,100,CNY,SUCCESS,2026-11-26T09:00:00Z\n"});
  EXPECT_EQ(count(r, FindingClass::matched), 4u);
  EXPECT_EQ(r.problems_count(), 0u);
}

TEST(ReconMatch, ChannelPaymentUnknownLocallyIsMissingLocal) {
  LocalData local;
  const MatchResult r = match_csv(local, {row_o1});
  ASSERT_EQ(count(r, FindingClass::missing_local), 1u);
  const Finding& f = first(r, FindingClass::missing_local);
  EXPECT_EQ(f.reason, "no_local_payment");
  EXPECT_FALSE(f.has_local);
  EXPECT_EQ(f.channel_amount, 1234);
  EXPECT_EQ(f.statement_file, "statement1.csv");
  EXPECT_EQ(f.statement_line, 2u);
  EXPECT_FALSE(f.repairable);
}

TEST(ReconMatch, PendingPaidOnChannelIsLocalNotPaidAndRepairable) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "", PaymentStatus::pending));
  const MatchResult r = match_csv(local, {row_o1});
  ASSERT_EQ(count(r, FindingClass::local_not_paid), 1u);
  const Finding& f = first(r, FindingClass::local_not_paid);
  EXPECT_EQ(f.reason, "local_pending");
  EXPECT_TRUE(f.repairable);
  EXPECT_EQ(f.local_status, "PENDING");
}

TEST(ReconMatch, CancelledOrFailedPaidOnChannelNeedsAPerson) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "", PaymentStatus::cancelled));
  local.add_payment(payment("m_1", "o-2", "alipay", 1234, "", PaymentStatus::failed));
  const MatchResult r = match_csv(
      local, {std::string(row_o1) + "alipay,T2,m_1,o-2,PAYMENT,,1234,CNY,SUCCESS,2026-11-26T08:00:05Z\n"});
  ASSERT_EQ(count(r, FindingClass::local_not_paid), 2u);
  EXPECT_EQ(r.findings[0].reason, "local_cancelled");
  EXPECT_EQ(r.findings[1].reason, "local_failed");
  EXPECT_FALSE(r.findings[0].repairable);
  EXPECT_FALSE(r.findings[1].repairable);
}

TEST(ReconMatch, PaidLocallyAbsentOnChannelIsMissingChannel) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "alipay", 99, "T2"));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::missing_channel), 1u);
  const Finding& f = first(r, FindingClass::missing_channel);
  EXPECT_EQ(f.order_id, "o-2");
  EXPECT_EQ(f.reason, "no_channel_row");
  EXPECT_FALSE(f.has_channel);
  EXPECT_EQ(f.local_amount, 99);
}

TEST(ReconMatch, UnpaidLocallyAbsentOnChannelIsNoFinding) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "alipay", 99, "", PaymentStatus::pending));
  local.add_payment(payment("m_1", "o-3", "alipay", 99, "", PaymentStatus::cancelled));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z"));
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(count(r, FindingClass::matched), 1u);
}

TEST(ReconMatch, DifferentAmountIsAmountMismatch) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1235, "T1"));
  const MatchResult r = match_csv(local, {row_o1});
  ASSERT_EQ(count(r, FindingClass::amount_mismatch), 1u);
  const Finding& f = first(r, FindingClass::amount_mismatch);
  EXPECT_EQ(f.local_amount, 1235);
  EXPECT_EQ(f.channel_amount, 1234);
}

TEST(ReconMatch, DifferentCurrencyIsCurrencyMismatchEvenWithEqualAmounts) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  const MatchResult r =
      match_csv(local, {"alipay,T1,m_1,o-1,PAYMENT,,1234,USD,SUCCESS,2026-11-26T08:00:05Z\n"});
  ASSERT_EQ(count(r, FindingClass::currency_mismatch), 1u);
  EXPECT_EQ(count(r, FindingClass::amount_mismatch), 0u);
}

TEST(ReconMatch, ChannelFailedButPaidLocallyIsStatusMismatch) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  const MatchResult r =
      match_csv(local, {"alipay,T1,m_1,o-1,PAYMENT,,1234,CNY,FAILED,2026-11-26T08:00:05Z\n"});
  ASSERT_EQ(count(r, FindingClass::status_mismatch), 1u);
  EXPECT_EQ(first(r, FindingClass::status_mismatch).reason, "channel_says_not_paid");
  EXPECT_EQ(count(r, FindingClass::missing_channel), 0u);  // the row was seen
}

TEST(ReconMatch, ChannelFailedOnPendingIsRepairableStatusMismatch) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "", PaymentStatus::pending));
  local.add_payment(payment("m_1", "o-2", "alipay", 1234, "", PaymentStatus::cancelled));
  const MatchResult r = match_csv(
      local, {"alipay,T1,m_1,o-1,PAYMENT,,1234,CNY,CLOSED,2026-11-26T08:00:05Z\n"
              "alipay,T2,m_1,o-2,PAYMENT,,1234,CNY,FAILED,2026-11-26T08:00:05Z\n"});
  ASSERT_EQ(count(r, FindingClass::status_mismatch), 1u);
  EXPECT_EQ(count(r, FindingClass::matched), 1u);  // cancelled here, failed there: agreed
  EXPECT_TRUE(first(r, FindingClass::status_mismatch).repairable);
}

TEST(ReconMatch, DifferentChannelTransactionIsStatusMismatch) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T9"));
  const MatchResult r = match_csv(local, {row_o1});
  ASSERT_EQ(count(r, FindingClass::status_mismatch), 1u);
  EXPECT_EQ(first(r, FindingClass::status_mismatch).reason, "channel_txn_id_differs");
}

TEST(ReconMatch, BalancePaymentOnAStatementIsStatusMismatch) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "balance", 1234, ""));
  const MatchResult r = match_csv(local, {row_o1});
  ASSERT_EQ(count(r, FindingClass::status_mismatch), 1u);
  EXPECT_EQ(first(r, FindingClass::status_mismatch).reason, "balance_payment_on_statement");
}

TEST(ReconMatch, RepeatedRowIsDuplicateChannelRow) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  const MatchResult r = match_csv(
      local, {std::string(row_o1) + row_o1 +
              "alipay,T1B,m_1,o-1,PAYMENT,,1234,CNY,SUCCESS,2026-11-26T08:03:00Z\n"});
  EXPECT_EQ(count(r, FindingClass::matched), 1u);
  ASSERT_EQ(count(r, FindingClass::duplicate_channel_row), 2u);
  EXPECT_EQ(r.findings[0].reason, "repeated_row");
  EXPECT_EQ(r.findings[0].statement_line, 3u);
  EXPECT_EQ(r.findings[1].reason, "second_channel_transaction");  // the customer paid twice
}

TEST(ReconMatch, SameRowInTwoStatementsIsDuplicateChannelRow) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  const MatchResult r = match_csv(local, {row_o1, row_o1});
  EXPECT_EQ(count(r, FindingClass::matched), 1u);
  ASSERT_EQ(count(r, FindingClass::duplicate_channel_row), 1u);
  EXPECT_EQ(r.findings[0].statement_file, "statement2.csv");
}

TEST(ReconMatch, RepeatedUnknownRowIsMissingLocalThenDuplicate) {
  LocalData local;
  const MatchResult r = match_csv(local, {std::string(row_o1) + row_o1});
  EXPECT_EQ(count(r, FindingClass::missing_local), 1u);
  EXPECT_EQ(count(r, FindingClass::duplicate_channel_row), 1u);
}

TEST(ReconMatch, LocalRecordNearCutoffIsWithinCutoff) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "alipay", 50, "T2", PaymentStatus::paid,
                            "2026-11-26T23:50:00Z"));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z", 900));
  ASSERT_EQ(count(r, FindingClass::within_cutoff), 1u);
  EXPECT_EQ(count(r, FindingClass::missing_channel), 0u);
  EXPECT_EQ(first(r, FindingClass::within_cutoff).order_id, "o-2");
  EXPECT_EQ(r.problems_count(), 0u);  // not a mismatch: the next file should have it

  // With a shorter tolerance the same record is overdue.
  const MatchResult strict = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z", 60));
  EXPECT_EQ(count(strict, FindingClass::missing_channel), 1u);
  EXPECT_EQ(count(strict, FindingClass::within_cutoff), 0u);
}

TEST(ReconMatch, LocalRecordsAfterCutoffAreNotDue) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "alipay", 50, "T2", PaymentStatus::paid,
                            "2026-11-27T00:00:00Z"));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z"));
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.local_not_due_count, 1u);
}

TEST(ReconMatch, CutoffDefaultsToTheLatestStatementRow) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "alipay", 50, "T2", PaymentStatus::paid,
                            "2026-11-26T08:30:00Z"));
  const MatchResult r = match_csv(local, {row_o1});
  EXPECT_TRUE(r.cutoff_from_statement);
  EXPECT_EQ(r.cutoff_us, at("2026-11-26T08:00:05Z") + 1);
  EXPECT_EQ(r.local_not_due_count, 1u);
}

TEST(ReconMatch, RecordsBeforeTheWindowAreNotExpected) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-0", "alipay", 50, "T0", PaymentStatus::paid,
                            "2026-11-25T12:00:00Z"));
  MatchOptions options = cutoff("2026-11-27T00:00:00Z");
  options.window_start_us = at("2026-11-26T00:00:00Z");
  EXPECT_TRUE(match_csv(local, {row_o1}, options).findings.empty());
  EXPECT_EQ(count(match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z")),
                  FindingClass::missing_channel),
            1u);
}

TEST(ReconMatch, BalanceAndUncoveredChannelsAreNotExpected) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "balance", 50, ""));
  local.add_payment(payment("m_1", "o-3", "wechat", 50, "W3"));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z"));
  EXPECT_TRUE(r.findings.empty());

  MatchOptions with_wechat = cutoff("2026-11-27T00:00:00Z");
  with_wechat.channels = {"wechat"};  // a wechat statement without rows
  const MatchResult covered = match_csv(local, {row_o1}, with_wechat);
  ASSERT_EQ(count(covered, FindingClass::missing_channel), 1u);
  EXPECT_EQ(first(covered, FindingClass::missing_channel).channel, "wechat");
}

TEST(ReconMatch, SeveralChannelsAreTotalledApart) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_2", "o-1", "wechat", 500, "W1"));  // same order id, other merchant
  const MatchResult r = match_csv(
      local, {row_o1, "wechat,W1,m_2,o-1,PAYMENT,,501,CNY,SUCCESS,2026-11-26T08:00:05Z\n"});
  EXPECT_EQ(count(r, FindingClass::matched), 1u);
  EXPECT_EQ(count(r, FindingClass::amount_mismatch), 1u);
  ASSERT_EQ(r.by_channel.size(), 2u);
  for (const ChannelTotals& c : r.by_channel) {
    const auto& classes = c.totals.classes;
    if (c.channel == "alipay") {
      EXPECT_EQ(classes[static_cast<std::size_t>(FindingClass::matched)].count, 1u);
      EXPECT_EQ(classes[static_cast<std::size_t>(FindingClass::amount_mismatch)].count, 0u);
    } else {
      EXPECT_EQ(c.channel, "wechat");
      EXPECT_EQ(classes[static_cast<std::size_t>(FindingClass::amount_mismatch)].count, 1u);
    }
  }
}

class ReconRefunds : public ::testing::Test {
 protected:
  ReconRefunds() {
    LocalPayment p = payment("m_1", "o-1", "alipay", 1234, "T1");
    p.refunded_amount = 300;
    const LocalRefund refunds[] = {{"r-1", 200, at("2026-11-26T09:00:00Z")},
                                   {"r-2", 100, at("2026-11-26T10:00:00Z")}};
    local.add_payment(p, refunds);
  }
  LocalData local;
  static constexpr const char* refund1 =
      "alipay,R1,m_1,o-1,REFUND,r-1,200,CNY,SUCCESS,2026-11-26T09:00:00Z\n";
  static constexpr const char* refund2 =
      "alipay,R2,m_1,o-1,REFUND,r-2,100,CNY,SUCCESS,2026-11-26T10:00:00Z\n";
};

TEST_F(ReconRefunds, RefundsMatchOnTheirRequestId) {
  const MatchResult r = match_csv(local, {std::string(row_o1) + refund1 + refund2},
                                  cutoff("2026-11-27T00:00:00Z"));
  EXPECT_EQ(count(r, FindingClass::matched), 3u);
  EXPECT_TRUE(r.findings.empty());
}

TEST_F(ReconRefunds, LocalRefundWithoutChannelRowIsMissingChannel) {
  const MatchResult r = match_csv(local, {std::string(row_o1) + refund1},
                                  cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::missing_channel), 1u);
  const Finding& f = first(r, FindingClass::missing_channel);
  EXPECT_EQ(f.kind, RecordKind::refund);
  EXPECT_EQ(f.refund_id, "r-2");
  EXPECT_EQ(f.local_amount, 100);
}

TEST_F(ReconRefunds, ChannelRefundUnknownLocallyIsMissingLocal) {
  const MatchResult r = match_csv(
      local, {std::string(row_o1) + refund1 + refund2 +
              "alipay,R3,m_1,o-1,REFUND,r-3,50,CNY,SUCCESS,2026-11-26T11:00:00Z\n"
              "alipay,R4,m_1,o-404,REFUND,r-4,50,CNY,SUCCESS,2026-11-26T11:00:00Z\n"},
      cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::missing_local), 2u);
  EXPECT_EQ(r.findings[0].reason, "no_local_refund");
  EXPECT_EQ(r.findings[1].reason, "no_local_payment_for_refund");
}

TEST_F(ReconRefunds, RefundAmountDifferenceIsAmountMismatch) {
  const MatchResult r = match_csv(
      local, {std::string(row_o1) + refund1 +
              "alipay,R2,m_1,o-1,REFUND,r-2,101,CNY,SUCCESS,2026-11-26T10:00:00Z\n"},
      cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::amount_mismatch), 1u);
  EXPECT_EQ(first(r, FindingClass::amount_mismatch).reason, "refund_amount_differs");
}

TEST_F(ReconRefunds, RepeatedRefundRowIsDuplicate) {
  const MatchResult r = match_csv(local, {std::string(row_o1) + refund1 + refund2 + refund2},
                                  cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::duplicate_channel_row), 1u);
  EXPECT_EQ(first(r, FindingClass::duplicate_channel_row).reason, "repeated_refund_row");
}

TEST_F(ReconRefunds, RefundStillProcessingOnChannelIsStatusMismatch) {
  const MatchResult r = match_csv(
      local, {std::string(row_o1) + refund1 +
              "alipay,R2,m_1,o-1,REFUND,r-2,100,CNY,PROCESSING,2026-11-26T10:00:00Z\n"},
      cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::status_mismatch), 1u);
  EXPECT_EQ(first(r, FindingClass::status_mismatch).reason, "channel_refund_not_successful");
}

TEST(ReconMatch, LocalRefundsNotAddingUpAreFound) {
  LocalData local;
  LocalPayment p = payment("m_1", "o-1", "alipay", 1234, "T1");
  p.refunded_amount = 500;
  const LocalRefund refund{"r-1", 200, at("2026-11-26T09:00:00Z")};
  local.add_payment(p, std::span(&refund, 1));
  const MatchResult r = match_csv(
      local, {std::string(row_o1) +
              "alipay,R1,m_1,o-1,REFUND,r-1,200,CNY,SUCCESS,2026-11-26T09:00:00Z\n"});
  ASSERT_EQ(count(r, FindingClass::amount_mismatch), 1u);
  EXPECT_EQ(first(r, FindingClass::amount_mismatch).reason, "local_refunds_sum_differs");
}

LocalAnomaly anomaly(std::string_view order, std::string_view txn, std::string_view reason) {
  LocalAnomaly a;
  a.channel = "alipay";
  a.channel_txn_id = txn;
  a.merchant_id = "m_1";
  a.order_id = order;
  a.amount = 1234;
  a.currency = test::currency("CNY");
  a.status = "SUCCESS";
  a.paid_at_us = at("2026-11-26T08:00:05Z");
  a.reason = reason;
  return a;
}

TEST(ReconMatch, AnomalyExplainsTheRowItIsAbout) {
  LocalData local;
  local.add_anomaly(anomaly("o-1", "T1", "unknown_order"));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::missing_local), 1u);
  EXPECT_EQ(first(r, FindingClass::missing_local).anomaly_reason, "unknown_order");
  EXPECT_EQ(count(r, FindingClass::local_anomaly), 0u);  // explained, not reported twice
}

TEST(ReconMatch, AnomalyNoRowExplainsIsReported) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_anomaly(anomaly("o-77", "T77", "amount_mismatch"));
  const MatchResult r = match_csv(local, {row_o1}, cutoff("2026-11-27T00:00:00Z"));
  ASSERT_EQ(count(r, FindingClass::local_anomaly), 1u);
  const Finding& f = first(r, FindingClass::local_anomaly);
  EXPECT_EQ(f.kind, RecordKind::anomaly);
  EXPECT_EQ(f.anomaly_reason, "amount_mismatch");
  EXPECT_EQ(f.order_id, "o-77");
}

TEST(ReconMatch, GeneratedDiscrepanciesAreAllFound) {
  GenOptions options;
  options.payments_count = 50'000;
  options.seed = 7;
  LocalData local;
  std::ostringstream csv;
  const GenExpected expected = generate(options, &local, csv);
  // Every class was injected at least once.
  for (std::size_t c = 0; c < finding_class_count; ++c) EXPECT_GT(expected.counts[c], 0u) << c;

  Reconciler reconciler(local, {options.cutoff_us, std::nullopt, options.tolerance_seconds, {}});
  reconciler.begin_statement("generated.csv");
  StatementStats stats;
  const std::string text = csv.str();
  ASSERT_FALSE(test::error_of(read_statement_bytes(text, {"generated.csv", StatementFormat::csv, "", {}},
                                                  reconciler.sink(), &stats)));
  const MatchResult r = reconciler.finish();
  EXPECT_EQ(r.malformed_count, 0u);
  EXPECT_EQ(r.statement_rows_count, expected.statement_rows_count);
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    EXPECT_EQ(r.totals.classes[c].count, expected.counts[c])
        << finding_class_name(static_cast<FindingClass>(c));
  }
  std::uint64_t repairable = 0;
  for (const Finding& f : r.findings) repairable += f.repairable ? 1 : 0;
  EXPECT_EQ(repairable, expected.repairable_count);
}

}  // namespace
}  // namespace paycore::recon
