#pragma once
// The hash join: local payments and refunds are indexed once, each statement row is looked up
// as it is read (one pass per statement, any number of statements), and a final sweep over the
// local records finds what no statement had. docs/recon.md has the decision table.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recon/local.hpp"
#include "recon/statement.hpp"

namespace paycore::recon {

enum class FindingClass : std::uint8_t {
  matched,
  missing_local,          // 长款: the channel has money we have no paid record of
  local_not_paid,         // the channel says paid; we have it PENDING, CANCELLED or FAILED
  missing_channel,        // 短款: we say paid through the channel; the channel has nothing
  amount_mismatch,
  currency_mismatch,
  status_mismatch,
  duplicate_channel_row,
  within_cutoff,          // one-sided, close to the cut-off: may be in the next file
  local_anomaly,          // a kept notification anomaly that no statement row explains
};
inline constexpr std::size_t finding_class_count = 10;
std::string_view finding_class_name(FindingClass finding_class);
// Everything but matched and within_cutoff makes the job exit 1.
constexpr bool finding_class_is_problem(FindingClass c) {
  return c != FindingClass::matched && c != FindingClass::within_cutoff;
}

enum class RecordKind : std::uint8_t { payment, refund, anomaly };
std::string_view record_kind_name(RecordKind kind);

// One row of mismatches.csv: both sides' values, either side possibly absent. Matched records
// are only counted, never stored.
struct Finding {
  FindingClass finding_class = FindingClass::matched;
  std::string_view reason;  // a static string: no_local_payment, amount_differs, ...
  RecordKind kind = RecordKind::payment;
  std::string channel;
  std::string merchant_id;
  std::string order_id;
  std::string refund_id;

  bool has_local = false;
  std::string local_status;  // payment status, "REFUND" for a refund, anomaly status
  Amount local_amount = 0;
  Currency local_currency;
  std::string local_channel_txn_id;
  std::int64_t local_time_us = 0;

  bool has_channel = false;
  std::string statement_file;
  std::uint64_t statement_line = 0;
  std::string channel_txn_id;
  ChannelStatus channel_status = ChannelStatus::success;
  Amount channel_amount = 0;
  Currency channel_currency;
  std::int64_t channel_time_us = 0;

  std::string anomaly_reason;  // a local anomaly this finding explains, if any
  // A PENDING payment the channel says is settled (SUCCESS or FAILED): a replayed notification
  // fixes it. Everything else needs a person.
  bool repairable = false;
};

// Sums are exact (128-bit) so that 10M large amounts cannot overflow them.
__extension__ typedef __int128 AmountSum;

struct ClassTotals {
  std::uint64_t count = 0;
  std::vector<AmountSum> local_amount;    // by Currency::index
  std::vector<AmountSum> channel_amount;  // by Currency::index
};

struct Totals {
  std::array<ClassTotals, finding_class_count> classes;
  Totals();
  void add(FindingClass c, Currency local_currency, Amount local_amount, Currency channel_currency,
           Amount channel_amount);
};

struct ChannelTotals {
  std::string channel;
  Totals totals;
};

// What a statement is the channel's full word on: one merchant of a channel, or every merchant
// of it (`merchant_id` empty). Only the local records of covered pairs are swept for
// missing_channel / within_cutoff / local_anomaly: an Alipay or WeChat bill belongs to one
// merchant account, and another merchant's payments are not missing from it (docs/recon.md
// "Coverage").
struct Coverage {
  std::string channel;
  std::string merchant_id;  // empty: every merchant of the channel
  bool operator==(const Coverage&) const = default;
};

struct MatchOptions {
  // Statement cut-off: local records at or after it are not due yet; one-sided local records
  // in [cutoff - tolerance, cutoff) are within_cutoff. Without one, the latest statement time.
  std::optional<std::int64_t> cutoff_us;
  // Local records before it are not expected on these statements (an earlier file had them).
  std::optional<std::int64_t> window_start_us;
  std::int64_t tolerance_seconds = 1800;
  // Channels the statements cover, every merchant, even when they have no rows (e.g. an empty
  // csv for "card").
  std::vector<std::string> channels;
};

inline constexpr std::size_t malformed_listed_max = 100'000;

struct MatchResult {
  std::vector<Finding> findings;  // in the order found: statement rows, then the local sweep
  Totals totals;
  std::vector<ChannelTotals> by_channel;
  std::vector<MalformedRow> malformed;  // the first malformed_listed_max, all counted below
  std::uint64_t malformed_count = 0;
  std::uint64_t statement_rows_count = 0;
  std::uint64_t local_not_due_count = 0;     // paid local records at or after the cut-off
  std::uint64_t channel_rows_ignored_count = 0;  // non-success rows of unknown records
  std::int64_t cutoff_us = 0;
  bool cutoff_from_statement = false;
  // What the statements covered, in the order first seen; a pair is left out when its whole
  // channel is covered.
  std::vector<Coverage> covered;
  std::uint64_t problems_count() const;
};

class Reconciler {
 public:
  Reconciler(const LocalData& local, MatchOptions options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Before reading a statement: the rows that follow name this file in findings. Each row
  // covers its (channel, merchant) pair when `per_merchant` (a bill of merchant accounts: the
  // Alipay and WeChat bills, a csv given --statement-merchant), else its whole channel.
  void begin_statement(std::string_view path, bool per_merchant = false);
  // A statement for every merchant of `channel` is reconciled: its paid local records are due
  // on it. For a file that may have no rows.
  void cover_channel(std::string_view channel);
  // The same for one merchant of the channel (a bill of that merchant's account).
  void cover_merchant(std::string_view channel, std::string_view merchant_id);
  // The RowSink statements are read into.
  RowSink& sink();
  // The local sweep; call once, after the last statement.
  MatchResult finish();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace paycore::recon
