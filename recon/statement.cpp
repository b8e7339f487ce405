#include "recon/statement.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <memory>
#include <span>
#include <vector>

#include "recon/text.hpp"
#include "base/assert.hpp"
#include "core/id.hpp"

namespace paycore::recon {
namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";
constexpr int beijing_offset_minutes = 8 * 60;  // both channels' bills are in Beijing time

std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, utf8_bom.size()) == utf8_bom) text.remove_prefix(utf8_bom.size());
  return text;
}

// Shared by the three parsers: the sink, the counters and the reporting of a bad row.
struct Context {
  const StatementSource& source;
  RowSink& sink;
  StatementStats& stats;

  // Lists a row's channel; false when it would be one too many (a limit on everything: the
  // coverage of a run is scanned for every local record, and a file naming more channels than
  // this is no channel's bill).
  bool note_channel(std::string_view channel) {
    if (!stats.channels.empty() && stats.channels.back() == channel) return true;
    if (std::find(stats.channels.begin(), stats.channels.end(), channel) != stats.channels.end()) return true;
    if (stats.channels.size() == statement_channels_max) return false;
    stats.channels.emplace_back(channel);
    return true;
  }

  void malformed(std::uint64_t line, std::string reason) {
    ++stats.malformed_count;
    sink.malformed({source.path, line, std::move(reason)});
  }

  // One data row of any format: counted, parsed by `parse(text, &row, &reason)`, and handed
  // to the sink or reported malformed with its line.
  template <class Parse>
  void deliver(std::string_view text, std::uint64_t line_number, Parse&& parse) {
    ++stats.rows_count;
    std::string reason;
    StatementRow row;
    if (!parse(text, &row, &reason)) {
      malformed(line_number, std::move(reason));
      return;
    }
    row.line = line_number;
    if (!note_channel(row.channel)) {
      malformed(line_number, "channel " + quote_for_message(row.channel) + ": more than " +
                                 std::to_string(statement_channels_max) + " channels in one statement");
      return;
    }
    sink.row(row);
  }
};

// Checks one id field; on failure fills *reason.
bool check_id(std::string_view value, std::string_view name, std::string* reason) {
  if (id_is_valid(value)) return true;
  *reason = std::string(name) + " " + quote_for_message(value) +
            " is not 1-64 characters of [A-Za-z0-9_.:-]";
  return false;
}

// Minor units as our CSV writes them: digits only, 1 ..= amount_max_default.
bool parse_minor_units(std::string_view text, Amount* amount, std::string* reason) {
  Amount value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool digits_only = !text.empty() && text.front() != '-' && text.front() != '+';
  if (!digits_only || error != std::errc{} || end != text.data() + text.size()) {
    *reason = "amount " + quote_for_message(text) + " is not an integer count of minor units";
    return false;
  }
  if (!amount_is_valid(value, amount_max_default)) {
    *reason = "amount " + quote_for_message(text) + " is out of range 1.." +
              std::to_string(amount_max_default);
    return false;
  }
  *amount = value;
  return true;
}

// Yuan (or any major unit) with at most the currency's decimals, exactly; the sign is
// returned apart so that refunds may be written negative.
bool parse_major_units(std::string_view text, Currency currency, Amount* amount, bool* negative,
                       std::string* reason) {
  const auto value = parse_decimal_amount(text, currency);
  if (!value) {
    *reason = "amount " + quote_for_message(text) + " is not a decimal with at most " +
              std::to_string(currency_exponent(currency)) + " decimals of " +
              std::string(currency_code(currency));
    return false;
  }
  *negative = *value < 0;
  const Amount magnitude = *negative ? -*value : *value;
  if (!amount_is_valid(magnitude, amount_max_default)) {
    *reason = "amount " + quote_for_message(text) + " is zero or too large";
    return false;
  }
  *amount = magnitude;
  return true;
}

// ---------------------------------------------------------------------------------------
// Our CSV: header row naming the columns (any order), one row per channel transaction.

constexpr std::array<std::string_view, 10> csv_columns = {
    "channel", "channel_txn_id", "merchant_id", "order_id", "type",
    "refund_id", "amount", "currency", "status", "time"};
enum CsvColumn : std::size_t {
  col_channel, col_txn, col_merchant, col_order, col_type,
  col_refund, col_amount, col_currency, col_status, col_time
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

  std::optional<std::string> line(std::string_view text, std::uint64_t line_number) {
    if (!header_seen_) return header(strip_bom(text));
    if (trim(text).empty()) return std::nullopt;
    context_.deliver(text, line_number, [this](auto... args) { return parse(args...); });
    return std::nullopt;
  }

  std::optional<std::string> finish() {
    if (!header_seen_) return "no header row";
    return std::nullopt;
  }

 private:
  std::optional<std::string> header(std::string_view text) {
    if (trim(text).empty()) return std::nullopt;
    if (!split_csv_line(text, &fields_, &unescaped_)) return "header row is not valid CSV";
    index_.fill(SIZE_MAX);
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      for (std::size_t c = 0; c < csv_columns.size(); ++c) {
        if (trim(fields_[i]) == csv_columns[c]) {
          if (index_[c] != SIZE_MAX) return "header names " + std::string(csv_columns[c]) + " twice";
          index_[c] = i;
        }
      }
    }
    for (std::size_t c = 0; c < csv_columns.size(); ++c) {
      if (index_[c] == SIZE_MAX) return "header has no column " + std::string(csv_columns[c]);
    }
    columns_count_ = fields_.size();
    header_seen_ = true;
    return std::nullopt;
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
    if (!merchants.empty() && std::find(merchants.begin(), merchants.end(), row->merchant_id) == merchants.end()) {
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

// ---------------------------------------------------------------------------------------
// Alipay 业务明细 (bill_type=trade), GBK as downloaded (read as GB18030, its superset, so that
// four-byte characters in free text are no error), or UTF-8 when someone re-saved it:
//   #支付宝业务明细查询 / #账号：[...] / #起始日期：[...] 终止日期：[...] / #----业务明细列表----
//   header (25 columns), rows, #----业务明细列表结束----, #交易合计：N笔，... / #退款合计：M笔，...
//   / #导出时间：[...]
// Fields are often padded with '\t' so that spreadsheets keep long numbers as text. The end
// marker and the two totals lines are checked: a bill cut short says so.

constexpr std::size_t alipay_columns_count = 25;
enum AlipayColumn : std::size_t {
  ali_trade_no = 0,       // 支付宝交易号
  ali_out_trade_no = 1,   // 商户订单号
  ali_business_type = 2,  // 业务类型: 交易 | 退款
  ali_created = 4,        // 创建时间
  ali_finished = 5,       // 完成时间
  ali_order_amount = 11,  // 订单金额（元）; negative on a refund row
  ali_refund_no = 21,     // 退款批次号/请求号: the refund's out_request_no
};
struct ExpectedHeader {
  std::size_t column;
  std::string_view name;
};
constexpr ExpectedHeader alipay_header[] = {
    {ali_trade_no, "支付宝交易号"},        {ali_out_trade_no, "商户订单号"},
    {ali_business_type, "业务类型"},       {ali_created, "创建时间"},
    {ali_finished, "完成时间"},            {ali_order_amount, "订单金额（元）"},
    {ali_refund_no, "退款批次号/请求号"},
};
constexpr std::string_view alipay_list_end = "业务明细列表结束";
constexpr std::string_view alipay_trade_total = "#交易合计";   // #交易合计：3笔，商家实收共...
constexpr std::string_view alipay_refund_total = "#退款合计";  // #退款合计：1笔，...

// "：3笔，..." (or ":3笔") after a totals label -> 3.
std::optional<std::uint64_t> alipay_total_count(std::string_view rest) {
  for (const std::string_view colon : {std::string_view("："), std::string_view(":")}) {
    if (rest.starts_with(colon)) rest.remove_prefix(colon.size());
  }
  rest = trim(rest);
  std::uint64_t count = 0;
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), count);
  if (error != std::errc{} || end == rest.data()) return std::nullopt;
  if (!std::string_view(end, static_cast<std::size_t>(rest.data() + rest.size() - end)).starts_with("笔")) {
    return std::nullopt;
  }
  return count;
}

class AlipayParser {
 public:
  explicit AlipayParser(Context& context) : context_(context) {
    cny_ = *currency_from_code("CNY");
  }

  std::optional<std::string> line(std::string_view raw, std::uint64_t line_number) {
    last_line_ = line_number;
    std::string_view text = raw;
    if (line_number == 1 && text.starts_with(utf8_bom)) {
      text.remove_prefix(utf8_bom.size());  // only a re-save adds it; Alipay's GBK has none
      context_.stats.encoding = TextEncoding::utf8;
    }
    if (!is_ascii(text)) {
      std::string reason;
      if (!decode(text, &reason)) {
        if (state_ == State::before_header) ++undecodable_before_header_count_;
        if (state_ != State::rows) return std::nullopt;  // comment lines: nothing to read
        ++context_.stats.rows_count;
        context_.malformed(line_number, reason);
        return std::nullopt;
      }
      text = utf8_;
    }
    if (trim(text).empty()) return std::nullopt;
    const bool comment = text.front() == '#';
    switch (state_) {
      case State::before_header:
        if (comment) return std::nullopt;
        return header(text);
      case State::rows:
        if (!comment) {
          row(text, line_number);
        } else if (text.find(alipay_list_end) != std::string_view::npos) {
          state_ = State::after_rows;
        } else {
          context_.malformed(line_number, "a # line inside the detail list that is not its end marker (#..." +
                                              std::string(alipay_list_end) + "...)");
        }
        return std::nullopt;
      case State::after_rows:
        if (comment) {
          totals(text, line_number);
          return std::nullopt;
        }
        ++context_.stats.rows_count;
        context_.malformed(line_number, "a row after the end of the detail list");
        return std::nullopt;
    }
    return std::nullopt;
  }

  std::optional<std::string> finish() {
    if (state_ == State::before_header) {
      std::string error = "no 业务明细 header row (is this the trade bill 业务明细 of the Alipay download?)";
      if (undecodable_before_header_count_ > 0) {
        error += "; " + std::to_string(undecodable_before_header_count_) + " line(s) were neither " +
                 std::string(text_encoding_name(context_.stats.encoding)) +
                 " nor ASCII: the bill is read as Alipay writes it (GBK) or as UTF-8";
      }
      return error;
    }
    // A bill cut short must not read as a short day.
    if (state_ == State::rows) {
      context_.malformed(last_line_ + 1, "no end marker (#..." + std::string(alipay_list_end) +
                                             "...) after the last row: the bill may be cut off");
      return std::nullopt;
    }
    check_total(alipay_trade_total, trade_total_, trade_rows_count_, "交易");
    check_total(alipay_refund_total, refund_total_, refund_rows_count_, "退款");
    return std::nullopt;
  }

 private:
  enum class State { before_header, rows, after_rows };
  struct Total {
    std::optional<std::uint64_t> count;
    std::uint64_t line = 0;
  };

  // Into utf8_. The encoding is decided once, by the first line that is not ASCII: Alipay
  // writes GBK, whose Chinese text is never well-formed UTF-8, so a line that is UTF-8 means
  // the file was re-saved as UTF-8 (with or without a BOM).
  bool decode(std::string_view text, std::string* reason) {
    if (context_.stats.encoding == TextEncoding::ascii) {
      context_.stats.encoding = is_utf8(text) ? TextEncoding::utf8 : TextEncoding::gb18030;
    }
    if (context_.stats.encoding == TextEncoding::utf8) {
      if (is_utf8(text)) {
        utf8_.assign(text);
        return true;
      }
      *reason = "bytes that are not UTF-8 in a bill whose earlier lines are UTF-8";
      return false;
    }
    if (decoder_.decode(text, &utf8_)) return true;
    *reason = "bytes that are not GBK / GB18030 (the encoding of Alipay's download)";
    return false;
  }

  void totals(std::string_view text, std::uint64_t line_number) {
    for (auto [label, total] : {std::pair{alipay_trade_total, &trade_total_},
                                std::pair{alipay_refund_total, &refund_total_}}) {
      if (!text.starts_with(label)) continue;
      total->line = line_number;
      total->count = alipay_total_count(text.substr(label.size()));
      if (!total->count) {
        context_.malformed(line_number, std::string(label.substr(1)) + " line without its count of rows (N笔)");
      }
    }
  }

  void check_total(std::string_view label, const Total& total, std::uint64_t rows_count, std::string_view type) {
    if (total.line == 0) {
      context_.malformed(last_line_ + 1, "no " + std::string(label) + "：N笔 line after the detail list: the bill may be cut off");
    } else if (total.count && *total.count != rows_count) {
      context_.malformed(total.line, std::string(label.substr(1)) + " says " + std::to_string(*total.count) + " " +
                                         std::string(type) + " rows, the detail list has " + std::to_string(rows_count));
    }
  }

  std::optional<std::string> header(std::string_view text) {
    if (!split_csv_line(text, &fields_, &unescaped_) || fields_.size() != alipay_columns_count) {
      return "not an Alipay 业务明细 header: expected " + std::to_string(alipay_columns_count) +
             " columns";
    }
    for (const ExpectedHeader& expected : alipay_header) {
      if (trim(fields_[expected.column]) != expected.name) {
        return "not an Alipay 业务明细 header: column " + std::to_string(expected.column + 1) +
               " is not " + std::string(expected.name);
      }
    }
    state_ = State::rows;
    return std::nullopt;
  }

  void row(std::string_view text, std::uint64_t line_number) {
    context_.deliver(text, line_number, [this](auto... args) { return parse(args...); });
  }

  bool parse(std::string_view text, StatementRow* row, std::string* reason) {
    if (!split_csv_line(text, &fields_, &unescaped_)) {
      *reason = "not valid CSV (unterminated quote)";
      return false;
    }
    // Counted before anything else is checked: the totals lines count every row of each type,
    // and a row reported malformed is not also missing.
    if (fields_.size() > ali_business_type) {
      const std::string_view type = trim(fields_[ali_business_type]);
      if (type == "交易") ++trade_rows_count_;
      if (type == "退款") ++refund_rows_count_;
    }
    if (fields_.size() != alipay_columns_count) {
      *reason = std::to_string(fields_.size()) + " fields, expected " +
                std::to_string(alipay_columns_count);
      return false;
    }
    for (std::string_view& field : fields_) field = trim(field);
    row->channel = context_.stats.channel;
    row->merchant_id = context_.source.merchant_ids.front();
    row->channel_txn_id = fields_[ali_trade_no];
    row->order_id = fields_[ali_out_trade_no];
    if (!check_id(row->channel_txn_id, "支付宝交易号", reason) ||
        !check_id(row->order_id, "商户订单号", reason)) {
      return false;
    }
    const std::string_view type = fields_[ali_business_type];
    if (type == "交易") {
      row->type = RowType::payment;
    } else if (type == "退款") {
      row->type = RowType::refund;
      row->refund_id = fields_[ali_refund_no];
      if (!check_id(row->refund_id, "退款批次号/请求号", reason)) return false;
    } else {
      *reason = "业务类型 is neither 交易 nor 退款";
      return false;
    }
    row->currency = cny_;
    bool negative = false;
    if (!parse_major_units(fields_[ali_order_amount], cny_, &row->amount, &negative, reason)) {
      return false;
    }
    if (negative && row->type == RowType::payment) {
      *reason = "a negative amount on a 交易 row";
      return false;
    }
    row->status = ChannelStatus::success;  // the detail list holds finished business only
    const std::string_view time =
        fields_[ali_finished].empty() ? fields_[ali_created] : fields_[ali_finished];
    const auto time_us = parse_local_datetime_us(time, beijing_offset_minutes);
    if (!time_us) {
      *reason = "time " + quote_for_message(time) + " is not YYYY-MM-DD HH:MM:SS";
      return false;
    }
    row->time_us = *time_us;
    return true;
  }

  Context& context_;
  Currency cny_;
  State state_ = State::before_header;
  std::uint64_t last_line_ = 0;
  std::uint64_t undecodable_before_header_count_ = 0;
  std::uint64_t trade_rows_count_ = 0;
  std::uint64_t refund_rows_count_ = 0;
  Total trade_total_;
  Total refund_total_;
  Gb18030Decoder decoder_;
  std::string utf8_;
  std::vector<std::string_view> fields_;
  std::string unescaped_;
};

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
    {wx_time, "交易时间"},           {wx_transaction_id, "微信订单号"},
    {wx_out_trade_no, "商户订单号"}, {wx_trade_state, "交易状态"},
    {wx_currency, "货币种类"},       {wx_out_refund_no, "商户退款单号"},
    {wx_refund_status, "退款状态"},  {wx_order_amount, "订单金额"},
    {wx_refund_applied, "申请退款金额"},
};
constexpr ExpectedHeader wechat_legacy_header[] = {
    {wx_time, "交易时间"},           {wx_transaction_id, "微信订单号"},
    {wx_out_trade_no, "商户订单号"}, {wx_trade_state, "交易状态"},
    {wx_currency, "货币种类"},       {wx_settlement, "总金额"},
    {wx_out_refund_no, "商户退款单号"}, {wx_refund_amount, "退款金额"},
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

  std::optional<std::string> line(std::string_view raw, std::uint64_t line_number) {
    const std::string_view text = line_number == 1 ? strip_bom(raw) : raw;
    last_line_ = line_number;
    if (trim(text).empty()) return std::nullopt;
    switch (state_) {
      case State::before_header:
        return header(text);
      case State::rows:
        if (text.substr(0, wechat_summary_first.size()) == wechat_summary_first) {
          state_ = State::summary_values;
          return std::nullopt;
        }
        row(text, line_number);
        return std::nullopt;
      case State::summary_values:
        summary(text, line_number);
        state_ = State::done;
        return std::nullopt;
      case State::done:
        ++context_.stats.rows_count;
        context_.malformed(line_number, "a row after the summary");
        return std::nullopt;
    }
    return std::nullopt;
  }

  std::optional<std::string> finish() {
    if (state_ == State::before_header) return "no WeChat bill header row";
    if (state_ != State::done) {
      // Without its summary a bill may have been cut short: say so rather than trust it.
      context_.malformed(last_line_ + 1, "no summary section (总交易单数...): the bill may be truncated");
    }
    return std::nullopt;
  }

 private:
  enum class State { before_header, rows, summary_values, done };

  std::optional<std::string> header(std::string_view text) {
    if (!is_utf8(text)) {
      return "the header row is not UTF-8: WeChat Pay bills are UTF-8 (was it re-saved in another "
             "encoding, e.g. GBK by a spreadsheet?)";
    }
    if (!split_csv_line(text, &fields_, &unescaped_)) return "not a WeChat Pay ALL bill header: not valid CSV";
    columns_count_ = fields_.size();
    if (columns_count_ != wechat_columns_count && columns_count_ != wechat_legacy_columns_count) {
      return "not a WeChat Pay ALL bill header: " + std::to_string(columns_count_) + " columns, expected " +
             std::to_string(wechat_columns_count) + " (or " + std::to_string(wechat_legacy_columns_count) +
             " of the older ALL bill); the SUCCESS and REFUND bills are not read, download bill_type=ALL";
    }
    const bool legacy = columns_count_ == wechat_legacy_columns_count;
    context_.stats.encoding = TextEncoding::utf8;
    using Names = std::span<const ExpectedHeader>;
    for (const ExpectedHeader& expected : legacy ? Names(wechat_legacy_header) : Names(wechat_header)) {
      if (trim(fields_[expected.column]) != expected.name) {
        return std::string("not a WeChat Pay ALL bill header") + (legacy ? " (the older 24-column form)" : "") +
               ": column " + std::to_string(expected.column + 1) + " is not " + std::string(expected.name);
      }
    }
    state_ = State::rows;
    return std::nullopt;
  }

  void summary(std::string_view text, std::uint64_t line_number) {
    std::uint64_t declared = 0;
    std::string_view first;
    if (split_csv_line(text, &fields_, &unescaped_) && !fields_.empty()) {
      first = strip_backtick(fields_[0]);
    }
    const auto [end, error] = std::from_chars(first.data(), first.data() + first.size(), declared);
    if (first.empty() || error != std::errc{} || end != first.data() + first.size()) {
      context_.malformed(line_number, "summary row: 总交易单数 " + quote_for_message(first) +
                                          " is not a count");
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

  bool parse(std::string_view text, StatementRow* row, std::string* reason) {
    if (!split_csv_line(text, &fields_, &unescaped_)) {
      *reason = "not valid CSV (unterminated quote)";
      return false;
    }
    if (fields_.size() != columns_count_) {
      *reason = std::to_string(fields_.size()) + " fields, the header has " + std::to_string(columns_count_);
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
    const std::string_view state = fields_[wx_trade_state];
    std::string_view amount_text;
    if (state == "REFUND") {
      row->type = RowType::refund;
      row->refund_id = fields_[wx_out_refund_no];
      if (!check_id(row->refund_id, "商户退款单号", reason)) return false;
      const std::string_view refund_status = fields_[wx_refund_status];
      row->status = refund_status == "SUCCESS"      ? ChannelStatus::success
                    : refund_status == "PROCESSING" ? ChannelStatus::processing
                                                    : ChannelStatus::failed;
      // What the merchant asked for is what paycore records as the refund's amount.
      amount_text = legacy || fields_[wx_refund_applied].empty() ? fields_[wx_refund_amount]
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
      amount_text = legacy || fields_[wx_order_amount].empty() ? fields_[wx_settlement]
                                                               : fields_[wx_order_amount];
    }
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

template <typename Parser>
std::optional<std::string> run_parser(LineReader& reader, Context& context) {
  Parser parser(context);
  std::string_view line;
  std::string error;
  while (reader.next(&line, &error)) {
    if (auto failure = parser.line(line, reader.line_number())) {
      return "line " + std::to_string(reader.line_number()) + ": " + *failure;
    }
  }
  context.stats.lines_count = reader.line_number();
  if (!error.empty()) return error;
  return parser.finish();
}

std::optional<std::string> read_with(LineReader& reader, StatementFormat format,
                                     const StatementSource& source, RowSink& sink,
                                     StatementStats* stats) {
  PAYCORE_ASSERT(format != StatementFormat::auto_detect);
  *stats = StatementStats{};
  stats->format = format;
  stats->channel = source.channel;
  for (const std::string& merchant : source.merchant_ids) {
    if (!id_is_valid(merchant)) return "merchant_id " + quote_for_message(merchant) + " is not a valid id";
  }
  if (format != StatementFormat::csv) {
    if (stats->channel.empty()) stats->channel = format == StatementFormat::alipay ? "alipay" : "wechat";
    if (source.merchant_ids.empty()) {
      return "a " + std::string(statement_format_name(format)) +
             " bill needs the paycore merchant_id it belongs to (--statement-merchant)";
    }
    if (source.merchant_ids.size() > 1) {
      return "a " + std::string(statement_format_name(format)) +
             " bill is one merchant account's: give it one --statement-merchant, not " +
             std::to_string(source.merchant_ids.size());
    }
  }
  if (!stats->channel.empty() && !id_is_valid(stats->channel)) {
    return "channel " + quote_for_message(stats->channel) + " is not a valid id";
  }
  Context context{source, sink, *stats};
  switch (format) {
    case StatementFormat::csv: return run_parser<CsvParser>(reader, context);
    case StatementFormat::alipay: return run_parser<AlipayParser>(reader, context);
    case StatementFormat::wechat: return run_parser<WechatParser>(reader, context);
    case StatementFormat::auto_detect: break;
  }
  return "no format";
}

// A spreadsheet's "Unicode text" is UTF-16, which no channel writes: say so rather than fail
// on its header (both readers take ASCII-compatible bytes only).
std::optional<std::string> refuse_utf16(std::string_view head) {
  if (head.starts_with("\xFF\xFE") || head.starts_with("\xFE\xFF")) {
    return "the file is UTF-16 (a spreadsheet's \"Unicode text\"?): statements are read as GBK / GB18030 "
           "(Alipay) or UTF-8; save it as CSV in one of those";
  }
  return std::nullopt;
}

std::optional<std::string> with_path(const StatementSource& source,
                                     std::optional<std::string> error) {
  if (!error) return error;
  return source.path + ": " + *error;
}

}  // namespace

std::string_view statement_format_name(StatementFormat format) {
  switch (format) {
    case StatementFormat::auto_detect: return "auto";
    case StatementFormat::csv: return "csv";
    case StatementFormat::alipay: return "alipay";
    case StatementFormat::wechat: return "wechat";
  }
  return "?";
}

std::optional<StatementFormat> statement_format_from_name(std::string_view name) {
  for (const auto format : {StatementFormat::auto_detect, StatementFormat::csv,
                            StatementFormat::alipay, StatementFormat::wechat}) {
    if (statement_format_name(format) == name) return format;
  }
  return std::nullopt;
}

std::string_view text_encoding_name(TextEncoding encoding) {
  switch (encoding) {
    case TextEncoding::ascii: return "ASCII";
    case TextEncoding::gb18030: return "GB18030";
    case TextEncoding::utf8: return "UTF-8";
  }
  return "?";
}

std::string_view channel_status_name(ChannelStatus status) {
  switch (status) {
    case ChannelStatus::success: return "SUCCESS";
    case ChannelStatus::failed: return "FAILED";
    case ChannelStatus::closed: return "CLOSED";
    case ChannelStatus::processing: return "PROCESSING";
  }
  return "?";
}

std::optional<StatementFormat> detect_statement_format(std::string_view head) {
  head = strip_bom(head);
  while (!head.empty() && (head.front() == '\n' || head.front() == '\r')) head.remove_prefix(1);
  const std::string_view first_line = head.substr(0, head.find('\n'));
  if (first_line.starts_with("channel,") || first_line.starts_with("\"channel\",")) {
    return StatementFormat::csv;
  }
  if (first_line.starts_with("交易时间,")) return StatementFormat::wechat;
  if (first_line.starts_with("#")) {
    // The first comment line names the bill: #支付宝业务明细查询, in GBK as downloaded or in
    // UTF-8 after a re-save.
    std::string utf8;
    if (is_utf8(first_line)) {
      utf8.assign(first_line);
    } else if (!gb18030_to_utf8(first_line, &utf8)) {
      return std::nullopt;
    }
    if (utf8.find("支付宝") != std::string::npos) return StatementFormat::alipay;
  }
  return std::nullopt;
}

std::optional<std::string> read_statement_bytes(std::string_view bytes,
                                                const StatementSource& source, RowSink& sink,
                                                StatementStats* stats) {
  if (auto error = refuse_utf16(bytes)) return with_path(source, error);
  StatementFormat format = source.format;
  if (format == StatementFormat::auto_detect) {
    const auto detected = detect_statement_format(bytes.substr(0, 64 * 1024));
    if (!detected) return source.path + ": cannot tell the statement format; use --statement-format";
    format = *detected;
  }
  LineReader reader(bytes);
  return with_path(source, read_with(reader, format, source, sink, stats));
}

std::optional<std::string> read_statement(const StatementSource& source, RowSink& sink,
                                          StatementStats* stats) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(source.path.c_str(), "rb"),
                                                              &std::fclose);
  if (!file) return source.path + ": cannot open: " + std::strerror(errno);
  StatementFormat format = source.format;
  std::string head(64 * 1024, '\0');
  head.resize(std::fread(head.data(), 1, head.size(), file.get()));
  std::rewind(file.get());
  if (auto error = refuse_utf16(head)) return with_path(source, error);
  if (format == StatementFormat::auto_detect) {
    const auto detected = detect_statement_format(head);
    if (!detected) return source.path + ": cannot tell the statement format; use --statement-format";
    format = *detected;
  }
  LineReader reader(file.get());
  return with_path(source, read_with(reader, format, source, sink, stats));
}

StatementCsvWriter::StatementCsvWriter(std::ostream& out)
    : out_(out),
      buffer_("channel,channel_txn_id,merchant_id,order_id,type,refund_id,amount,currency,status,time\n") {}

void StatementCsvWriter::row(std::string_view channel, std::string_view channel_txn_id,
                             std::string_view merchant_id, std::string_view order_id, bool refund,
                             std::string_view refund_id, Amount amount, std::string_view currency,
                             std::string_view status, std::int64_t time_us) {
  for (std::string_view field : {channel, channel_txn_id, merchant_id, order_id}) {
    buffer_ += field;
    buffer_ += ',';
  }
  buffer_ += refund ? "REFUND," : "PAYMENT,";
  buffer_ += refund_id;
  buffer_ += ',';
  buffer_ += std::to_string(amount);
  buffer_ += ',';
  buffer_ += currency;
  buffer_ += ',';
  buffer_ += status;
  buffer_ += ',';
  buffer_ += format_rfc3339_us(time_us);
  buffer_ += '\n';
  ++rows_count_;
  if (buffer_.size() > (std::size_t{1} << 20)) flush();
}

void StatementCsvWriter::flush() {
  out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  buffer_.clear();
}

}  // namespace paycore::recon
