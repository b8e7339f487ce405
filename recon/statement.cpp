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

#include "recon/statement_detail.hpp"
#include "recon/text.hpp"
#include "base/assert.hpp"
#include "core/id.hpp"

namespace paycore::recon {
namespace statement_detail {

std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, utf8_bom.size()) == utf8_bom) text.remove_prefix(utf8_bom.size());
  return text;
}

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

}  // namespace statement_detail

namespace {

using statement_detail::Context;
using statement_detail::strip_bom;

Status read_with(LineReader& reader, StatementFormat format, const StatementSource& source,
                 RowSink& sink, StatementStats* stats) {
  PAYCORE_ASSERT(format != StatementFormat::auto_detect);
  *stats = StatementStats{};
  stats->format = format;
  stats->channel = source.channel;
  for (const std::string& merchant : source.merchant_ids) {
    if (!id_is_valid(merchant)) return Status::invalid_argument("merchant_id " + quote_for_message(merchant) + " is not a valid id");
  }
  if (format != StatementFormat::csv) {
    if (stats->channel.empty()) stats->channel = format == StatementFormat::alipay ? "alipay" : "wechat";
    if (source.merchant_ids.empty()) {
      return Status::invalid_argument("a " + std::string(statement_format_name(format)) +
             " bill needs the paycore merchant_id it belongs to (--statement-merchant)");
    }
    if (source.merchant_ids.size() > 1) {
      return Status::invalid_argument("a " + std::string(statement_format_name(format)) +
             " bill is one merchant account's: give it one --statement-merchant, not " +
             std::to_string(source.merchant_ids.size()));
    }
  }
  if (!stats->channel.empty() && !id_is_valid(stats->channel)) {
    return Status::invalid_argument("channel " + quote_for_message(stats->channel) + " is not a valid id");
  }
  Context context{source, sink, *stats};
  switch (format) {
    case StatementFormat::csv: return statement_detail::read_csv_rows(reader, context);
    case StatementFormat::alipay: return statement_detail::read_alipay_rows(reader, context);
    case StatementFormat::wechat: return statement_detail::read_wechat_rows(reader, context);
    case StatementFormat::auto_detect: break;
  }
  return Status::invalid_argument("no format");
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

// A reader's refusal as the job's error, its message prefixed with the statement's path.
Status with_path(const StatementSource& source, std::optional<std::string> error) {
  if (!error) return Status::ok();
  return Status::invalid_argument(source.path + ": " + *error);
}

// The same for a Status: the code stays (a read failure is kIoError), the path goes in front.
Status with_path(const StatementSource& source, const Status& status) {
  return status.with_context(source.path);
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

Status read_statement_bytes(std::string_view bytes, const StatementSource& source, RowSink& sink,
                            StatementStats* stats) {
  if (auto error = refuse_utf16(bytes)) return with_path(source, error);
  StatementFormat format = source.format;
  if (format == StatementFormat::auto_detect) {
    const auto detected = detect_statement_format(bytes.substr(0, 64 * 1024));
    if (!detected) return with_path(source, "cannot tell the statement format; use --statement-format");
    format = *detected;
  }
  LineReader reader(bytes);
  return with_path(source, read_with(reader, format, source, sink, stats));
}

Status read_statement(const StatementSource& source, RowSink& sink, StatementStats* stats) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(source.path.c_str(), "rb"),
                                                              &std::fclose);
  if (!file) return Status::io_error(source.path + ": cannot open: " + std::strerror(errno));
  StatementFormat format = source.format;
  std::string head(64 * 1024, '\0');
  head.resize(std::fread(head.data(), 1, head.size(), file.get()));
  std::rewind(file.get());
  if (auto error = refuse_utf16(head)) return with_path(source, error);
  if (format == StatementFormat::auto_detect) {
    const auto detected = detect_statement_format(head);
    if (!detected) return with_path(source, "cannot tell the statement format; use --statement-format");
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
