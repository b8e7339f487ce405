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
// WeChat Pay trade bill, bill_type=ALL (UTF-8): a header row of 27 columns, rows whose every
// field starts with '`', then a summary header (总交易单数,应结订单总金额,...) and one summary row.
// Merchants whose bill format predates the coupon change keep the older ALL bill of 24
// columns: the same first 24 names except 13 总金额 (the order amount) and 14 代金券或立减优惠金额,
// and no 订单金额 / 申请退款金额; its summary is 总交易单数,总交易额,... Both are read.

constexpr std::size_t wechat_columns_count = 27;
constexpr std::size_t wechat_legacy_columns_count = 24;
enum WechatColumn : std::size_t {
  wx_time = 0,             // 交易时间
  wx_transaction_id = 5,   // 微信订单号
  wx_out_trade_no = 6,     // 商户订单号
  wx_trade_state = 9,      // 交易状态: SUCCESS | REFUND | REVOKED | ...
  wx_currency = 11,        // 货币种类
  wx_settlement = 12,      // 应结订单金额
  wx_out_refund_no = 15,   // 商户退款单号
  wx_refund_amount = 16,   // 退款金额 (settlement refund)
  wx_refund_status = 19,   // 退款状态
  wx_order_amount = 24,    // 订单金额
  wx_refund_applied = 25,  // 申请退款金额
};
constexpr ExpectedHeader wechat_header[] = {
    {wx_time, "交易时间"},
    {wx_transaction_id, "微信订单号"},
    {wx_out_trade_no, "商户订单号"},
    {wx_trade_state, "交易状态"},
    {wx_currency, "货币种类"},
    {wx_out_refund_no, "商户退款单号"},
    {wx_refund_status, "退款状态"},
    {wx_order_amount, "订单金额"},
    {wx_refund_applied, "申请退款金额"},
};
constexpr ExpectedHeader wechat_legacy_header[] = {
    {wx_time, "交易时间"},
    {wx_transaction_id, "微信订单号"},
    {wx_out_trade_no, "商户订单号"},
    {wx_trade_state, "交易状态"},
    {wx_currency, "货币种类"},
    {wx_settlement, "总金额"},
    {wx_out_refund_no, "商户退款单号"},
    {wx_refund_amount, "退款金额"},
    {wx_refund_status, "退款状态"},
};
constexpr std::string_view wechat_summary_first = "总交易单数";

std::string_view strip_backtick(std::string_view field) {
  field = trim(field);
  if (!field.empty() && field.front() == '`') field.remove_prefix(1);
  return trim(field);
}

class WechatParser {
 public:
  explicit WechatParser(Context& context) : context_(context) {}

  Status line(std::string_view raw, std::uint64_t line_number) {
    const std::string_view text = line_number == 1 ? strip_bom(raw) : raw;
    last_line_ = line_number;
    if (trim(text).empty()) return Status::ok();
    switch (state_) {
      case State::before_header: return header(text);
      case State::rows:
        if (text.substr(0, wechat_summary_first.size()) == wechat_summary_first) {
          state_ = State::summary_values;
          return Status::ok();
        }
        row(text, line_number);
        return Status::ok();
      case State::summary_values:
        summary(text, line_number);
        state_ = State::done;
        return Status::ok();
      case State::done:
        ++context_.stats.rows_count;
        context_.malformed(line_number, "a row after the summary");
        return Status::ok();
    }
    return Status::ok();
  }

  Status finish() {
    if (state_ == State::before_header)
      return Status::invalid_argument("no WeChat bill header row");
    if (state_ != State::done) {
      // Without its summary a bill may have been cut short: say so rather than trust it.
      context_.malformed(last_line_ + 1,
                         "no summary section (总交易单数...): the bill may be truncated");
    }
    return Status::ok();
  }

 private:
  enum class State { before_header, rows, summary_values, done };

  Status header(std::string_view text) {
    if (!is_utf8(text)) {
      return Status::invalid_argument(
          "the header row is not UTF-8: WeChat Pay bills are UTF-8 (was it re-saved in another "
          "encoding, e.g. GBK by a spreadsheet?)");
    }
    if (!split_csv_line(text, &fields_, &unescaped_))
      return Status::invalid_argument("not a WeChat Pay ALL bill header: not valid CSV");
    columns_count_ = fields_.size();
    if (columns_count_ != wechat_columns_count && columns_count_ != wechat_legacy_columns_count) {
      return Status::invalid_argument(
          "not a WeChat Pay ALL bill header: " + std::to_string(columns_count_) +
          " columns, expected " + std::to_string(wechat_columns_count) + " (or " +
          std::to_string(wechat_legacy_columns_count) +
          " of the older ALL bill); the SUCCESS and REFUND bills are not read, download "
          "bill_type=ALL");
    }
    const bool legacy = columns_count_ == wechat_legacy_columns_count;
    context_.stats.encoding = TextEncoding::utf8;
    using Names = std::span<const ExpectedHeader>;
    for (const ExpectedHeader& expected :
         legacy ? Names(wechat_legacy_header) : Names(wechat_header)) {
      if (trim(fields_[expected.column]) != expected.name) {
        return Status::invalid_argument(std::string("not a WeChat Pay ALL bill header") +
                                        (legacy ? " (the older 24-column form)" : "") +
                                        ": column " + std::to_string(expected.column + 1) +
                                        " is not " + std::string(expected.name));
      }
    }
    state_ = State::rows;
    return Status::ok();
  }

  void summary(std::string_view text, std::uint64_t line_number) {
    std::uint64_t declared = 0;
    std::string_view first;
    if (split_csv_line(text, &fields_, &unescaped_) && !fields_.empty()) {
      first = strip_backtick(fields_[0]);
    }
    const auto [end, error] = std::from_chars(first.data(), first.data() + first.size(), declared);
    if (first.empty() || error != std::errc{} || end != first.data() + first.size()) {
      context_.malformed(line_number,
                         "summary row: 总交易单数 " + quote_for_message(first) + " is not a count");
      return;
    }
    if (declared != data_rows_) {
      context_.malformed(line_number, "summary says " + std::to_string(declared) +
                                          " rows, the bill has " + std::to_string(data_rows_));
    }
  }

  void row(std::string_view text, std::uint64_t line_number) {
    ++data_rows_;
    context_.deliver(text, line_number, [this](auto... args) { return parse(args...); });
  }

  // The row's type, status and refund id from 交易状态 (and 退款状态), and which column holds
  // the amount paycore records: for a refund what the merchant asked for, for a payment the
  // order amount (the older bill's 总金额, column 13).
  bool parse_kind(bool legacy, StatementRow* row, std::string_view* amount_text,
                  std::string* reason) {
    const std::string_view state = fields_[wx_trade_state];
    if (state == "REFUND") {
      row->type = RowType::refund;
      row->refund_id = fields_[wx_out_refund_no];
      if (!check_id(row->refund_id, "商户退款单号", reason)) return false;
      const std::string_view refund_status = fields_[wx_refund_status];
      row->status = refund_status == "SUCCESS"      ? ChannelStatus::success
                    : refund_status == "PROCESSING" ? ChannelStatus::processing
                                                    : ChannelStatus::failed;
      // What the merchant asked for is what paycore records as the refund's amount.
      *amount_text = legacy || fields_[wx_refund_applied].empty() ? fields_[wx_refund_amount]
                                                                  : fields_[wx_refund_applied];
    } else {
      row->type = RowType::payment;
      if (state == "SUCCESS") {
        row->status = ChannelStatus::success;
      } else if (state == "REVOKED" || state == "CLOSED") {
        row->status = ChannelStatus::closed;
      } else if (state == "PAYERROR" || state == "NOTPAY") {
        row->status = ChannelStatus::failed;
      } else {
        *reason = "交易状态 " + quote_for_message(state) + " is not a known trade state";
        return false;
      }
      // The older bill's 总金额 (column 13) is the order amount.
      *amount_text = legacy || fields_[wx_order_amount].empty() ? fields_[wx_settlement]
                                                                : fields_[wx_order_amount];
    }
    return true;
  }

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
    const bool legacy = columns_count_ == wechat_legacy_columns_count;
    for (std::string_view& field : fields_) field = strip_backtick(field);
    row->channel = context_.stats.channel;
    row->merchant_id = context_.source.merchant_ids.front();
    row->channel_txn_id = fields_[wx_transaction_id];
    row->order_id = fields_[wx_out_trade_no];
    if (!check_id(row->channel_txn_id, "微信订单号", reason) ||
        !check_id(row->order_id, "商户订单号", reason)) {
      return false;
    }
    const std::string_view currency_text =
        fields_[wx_currency].empty() ? std::string_view("CNY") : fields_[wx_currency];
    const auto currency = currency_from_code(currency_text);
    if (!currency) {
      *reason = "货币种类 " + quote_for_message(currency_text) + " is not an ISO 4217 code";
      return false;
    }
    row->currency = *currency;
    std::string_view amount_text;
    if (!parse_kind(legacy, row, &amount_text, reason)) return false;
    bool negative = false;
    if (!parse_major_units(amount_text, row->currency, &row->amount, &negative, reason)) {
      return false;
    }
    if (negative) {
      *reason = "a negative amount";
      return false;
    }
    const auto time_us = parse_local_datetime_us(fields_[wx_time], beijing_offset_minutes);
    if (!time_us) {
      *reason = "交易时间 " + quote_for_message(fields_[wx_time]) + " is not YYYY-MM-DD HH:MM:SS";
      return false;
    }
    row->time_us = *time_us;
    return true;
  }

  Context& context_;
  State state_ = State::before_header;
  std::size_t columns_count_ = 0;
  std::uint64_t data_rows_ = 0;
  std::uint64_t last_line_ = 0;
  std::vector<std::string_view> fields_;
  std::string unescaped_;
};

}  // namespace

Status read_wechat_rows(LineReader& reader, Context& context) {
  return run_parser<WechatParser>(reader, context);
}

}  // namespace paycore::recon::statement_detail
