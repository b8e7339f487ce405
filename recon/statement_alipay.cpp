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
constexpr ExpectedHeader alipay_header[] = {
    {ali_trade_no, "支付宝交易号"},       {ali_out_trade_no, "商户订单号"},
    {ali_business_type, "业务类型"},      {ali_created, "创建时间"},
    {ali_finished, "完成时间"},           {ali_order_amount, "订单金额（元）"},
    {ali_refund_no, "退款批次号/请求号"},
};
constexpr std::string_view alipay_list_end = "业务明细列表结束";
constexpr std::string_view alipay_trade_total = "#交易合计";  // #交易合计：3笔，商家实收共...
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
  if (!std::string_view(end, static_cast<std::size_t>(rest.data() + rest.size() - end))
           .starts_with("笔")) {
    return std::nullopt;
  }
  return count;
}

class AlipayParser {
 public:
  explicit AlipayParser(Context& context) : context_(context) { cny_ = *currency_from_code("CNY"); }

  Status line(std::string_view raw, std::uint64_t line_number) {
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
        if (state_ != State::rows) return Status::ok();  // comment lines: nothing to read
        ++context_.stats.rows_count;
        context_.malformed(line_number, reason);
        return Status::ok();
      }
      text = utf8_;
    }
    if (trim(text).empty()) return Status::ok();
    const bool comment = text.front() == '#';
    switch (state_) {
      case State::before_header:
        if (comment) return Status::ok();
        return header(text);
      case State::rows:
        if (!comment) {
          row(text, line_number);
        } else if (text.find(alipay_list_end) != std::string_view::npos) {
          state_ = State::after_rows;
        } else {
          context_.malformed(line_number,
                             "a # line inside the detail list that is not its end marker (#..." +
                                 std::string(alipay_list_end) + "...)");
        }
        return Status::ok();
      case State::after_rows:
        if (comment) {
          totals(text, line_number);
          return Status::ok();
        }
        ++context_.stats.rows_count;
        context_.malformed(line_number, "a row after the end of the detail list");
        return Status::ok();
    }
    return Status::ok();
  }

  Status finish() {
    if (state_ == State::before_header) {
      std::string error =
          "no 业务明细 header row (is this the trade bill 业务明细 of the Alipay download?)";
      if (undecodable_before_header_count_ > 0) {
        error += "; " + std::to_string(undecodable_before_header_count_) +
                 " line(s) were neither " +
                 std::string(text_encoding_name(context_.stats.encoding)) +
                 " nor ASCII: the bill is read as Alipay writes it (GBK) or as UTF-8";
      }
      return Status::invalid_argument(error);
    }
    // A bill cut short must not read as a short day.
    if (state_ == State::rows) {
      context_.malformed(last_line_ + 1, "no end marker (#..." + std::string(alipay_list_end) +
                                             "...) after the last row: the bill may be cut off");
      return Status::ok();
    }
    check_total(alipay_trade_total, trade_total_, trade_rows_count_, "交易");
    check_total(alipay_refund_total, refund_total_, refund_rows_count_, "退款");
    return Status::ok();
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
        context_.malformed(line_number,
                           std::string(label.substr(1)) + " line without its count of rows (N笔)");
      }
    }
  }

  void check_total(std::string_view label, const Total& total, std::uint64_t rows_count,
                   std::string_view type) {
    if (total.line == 0) {
      context_.malformed(
          last_line_ + 1,
          "no " + std::string(label) + "：N笔 line after the detail list: the bill may be cut off");
    } else if (total.count && *total.count != rows_count) {
      context_.malformed(total.line, std::string(label.substr(1)) + " says " +
                                         std::to_string(*total.count) + " " + std::string(type) +
                                         " rows, the detail list has " +
                                         std::to_string(rows_count));
    }
  }

  Status header(std::string_view text) {
    if (!split_csv_line(text, &fields_, &unescaped_) || fields_.size() != alipay_columns_count) {
      return Status::invalid_argument("not an Alipay 业务明细 header: expected " +
                                      std::to_string(alipay_columns_count) + " columns");
    }
    for (const ExpectedHeader& expected : alipay_header) {
      if (trim(fields_[expected.column]) != expected.name) {
        return Status::invalid_argument("not an Alipay 业务明细 header: column " +
                                        std::to_string(expected.column + 1) + " is not " +
                                        std::string(expected.name));
      }
    }
    state_ = State::rows;
    return Status::ok();
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

}  // namespace

Status read_alipay_rows(LineReader& reader, Context& context) {
  return run_parser<AlipayParser>(reader, context);
}

}  // namespace paycore::recon::statement_detail
