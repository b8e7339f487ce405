#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/assert.hpp"
#include "core/id.hpp"
#include "recon/statement_detail.hpp"
#include "recon/text.hpp"

namespace paycore::recon::statement_detail {
namespace {

// ---------------------------------------------------------------------------------------
// Our CSV: header row naming the columns (any order), one row per channel transaction.

constexpr std::array<std::string_view, 10> csv_columns = {
    "channel",   "channel_txn_id", "merchant_id", "order_id", "type",
    "refund_id", "amount",         "currency",    "status",   "time"};
enum CsvColumn : std::size_t {
  col_channel,
  col_txn,
  col_merchant,
  col_order,
  col_type,
  col_refund,
  col_amount,
  col_currency,
  col_status,
  col_time
};

std::optional<ChannelStatus> csv_status(std::string_view text) {
  if (text == "SUCCESS") return ChannelStatus::success;
  if (text == "FAILED") return ChannelStatus::failed;
  if (text == "CLOSED") return ChannelStatus::closed;
  if (text == "PROCESSING") return ChannelStatus::processing;
  return std::nullopt;
}

class CsvParser {
 public:
  explicit CsvParser(Context& context) : context_(context) {}

  Status line(std::string_view text, std::uint64_t line_number) {
    if (!header_seen_) return header(strip_bom(text));
    if (trim(text).empty()) return Status::ok();
    context_.deliver(text, line_number, [this](auto... args) { return parse(args...); });
    return Status::ok();
  }

  Status finish() {
    if (!header_seen_) return Status::invalid_argument("no header row");
    return Status::ok();
  }

 private:
  Status header(std::string_view text) {
    if (trim(text).empty()) return Status::ok();
    if (!split_csv_line(text, &fields_, &unescaped_))
      return Status::invalid_argument("header row is not valid CSV");
    index_.fill(SIZE_MAX);
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      for (std::size_t c = 0; c < csv_columns.size(); ++c) {
        if (trim(fields_[i]) == csv_columns[c]) {
          if (index_[c] != SIZE_MAX)
            return Status::invalid_argument("header names " + std::string(csv_columns[c]) +
                                            " twice");
          index_[c] = i;
        }
      }
    }
    for (std::size_t c = 0; c < csv_columns.size(); ++c) {
      if (index_[c] == SIZE_MAX)
        return Status::invalid_argument("header has no column " + std::string(csv_columns[c]));
    }
    columns_count_ = fields_.size();
    header_seen_ = true;
    return Status::ok();
  }

  std::string_view field(CsvColumn column) const { return fields_[index_[column]]; }

  bool parse(std::string_view text, StatementRow* row, std::string* reason) {
    if (!split_csv_line(text, &fields_, &unescaped_)) {
      *reason = "not valid CSV (unterminated quote)";
      return false;
    }
    if (fields_.size() != columns_count_) {
      *reason = std::to_string(fields_.size()) + " fields, the header has " +
                std::to_string(columns_count_);
      return false;
    }
    row->channel = field(col_channel);
    row->channel_txn_id = field(col_txn);
    row->merchant_id = field(col_merchant);
    row->order_id = field(col_order);
    if (!check_id(row->channel, "channel", reason) ||
        !check_id(row->channel_txn_id, "channel_txn_id", reason) ||
        !check_id(row->merchant_id, "merchant_id", reason) ||
        !check_id(row->order_id, "order_id", reason)) {
      return false;
    }
    if (!context_.source.channel.empty() && row->channel != context_.source.channel) {
      *reason = "channel " + quote_for_message(row->channel) + " in a statement for " +
                quote_for_message(context_.source.channel);
      return false;
    }
    const std::vector<std::string>& merchants = context_.source.merchant_ids;
    if (!merchants.empty() &&
        std::find(merchants.begin(), merchants.end(), row->merchant_id) == merchants.end()) {
      *reason = "merchant_id " + quote_for_message(row->merchant_id) + " in a statement for " +
                quote_for_message(merchants.front()) + (merchants.size() > 1 ? " and others" : "") +
                " (--statement-merchant)";
      return false;
    }
    const std::string_view type = field(col_type);
    if (type == "PAYMENT") {
      row->type = RowType::payment;
      if (!field(col_refund).empty()) {
        *reason = "a PAYMENT row with a refund_id";
        return false;
      }
    } else if (type == "REFUND") {
      row->type = RowType::refund;
      row->refund_id = field(col_refund);
      if (!check_id(row->refund_id, "refund_id", reason)) return false;
    } else {
      *reason = "type " + quote_for_message(type) + " is neither PAYMENT nor REFUND";
      return false;
    }
    const auto currency = currency_from_code(field(col_currency));
    if (!currency) {
      *reason = "currency " + quote_for_message(field(col_currency)) + " is not an ISO 4217 code";
      return false;
    }
    row->currency = *currency;
    if (!parse_minor_units(field(col_amount), &row->amount, reason)) return false;
    const auto status = csv_status(field(col_status));
    if (!status) {
      *reason = "status " + quote_for_message(field(col_status)) +
                " is not SUCCESS, FAILED, CLOSED or PROCESSING";
      return false;
    }
    row->status = *status;
    const auto time = parse_statement_time_us(field(col_time));
    if (!time) {
      *reason = "time " + quote_for_message(field(col_time)) + " is not an RFC 3339 time";
      return false;
    }
    row->time_us = *time;
    return true;
  }

  Context& context_;
  bool header_seen_ = false;
  std::array<std::size_t, csv_columns.size()> index_{};
  std::size_t columns_count_ = 0;
  std::vector<std::string_view> fields_;
  std::string unescaped_;
};

}  // namespace

Status read_csv_rows(LineReader& reader, Context& context) {
  return run_parser<CsvParser>(reader, context);
}

}  // namespace paycore::recon::statement_detail
