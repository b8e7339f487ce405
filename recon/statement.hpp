#pragma once
// Channel statement files, read row by row (never held whole in memory):
//  - csv:    our own format (docs/recon.md "Statement formats"), amounts in minor units;
//  - alipay: Alipay's trade business detail bill (支付宝 业务明细), GBK, 25 columns, yuan;
//  - wechat: WeChat Pay's trade bill of type ALL, backtick-prefixed fields, 27 columns, yuan.
// docs/recon.md describes each layout and which columns are used.
//
// Every data row either reaches RowSink::row as a validated StatementRow or RowSink::malformed
// with its file, line number and reason; nothing is skipped silently.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "core/money.hpp"

namespace paycore::recon {

enum class StatementFormat : std::uint8_t { auto_detect, csv, alipay, wechat };
std::string_view statement_format_name(StatementFormat format);
std::optional<StatementFormat> statement_format_from_name(std::string_view name);  // "auto", ...

enum class RowType : std::uint8_t { payment, refund };

// The channel's word on a transaction, normalised over the three formats.
enum class ChannelStatus : std::uint8_t {
  success,     // paid / refunded
  failed,      // the channel refused it
  closed,      // closed or revoked (WeChat REVOKED) without money moving
  processing,  // a refund not finished yet
};
std::string_view channel_status_name(ChannelStatus status);  // "SUCCESS", ...

// Views are valid only during the RowSink::row call.
struct StatementRow {
  std::string_view channel;
  std::string_view channel_txn_id;
  std::string_view merchant_id;
  std::string_view order_id;
  std::string_view refund_id;  // empty for a payment
  RowType type = RowType::payment;
  Amount amount = 0;  // > 0, minor units; a refund's amount is positive too
  Currency currency;
  ChannelStatus status = ChannelStatus::success;
  std::int64_t time_us = 0;
  std::uint64_t line = 0;
};

struct MalformedRow {
  std::string file;
  std::uint64_t line = 0;
  std::string reason;
};

class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual void row(const StatementRow& row) = 0;
  virtual void malformed(MalformedRow malformed) = 0;
};

struct StatementSource {
  std::string path;
  StatementFormat format = StatementFormat::auto_detect;
  // The channel the file is for. Our CSV names it on every row (a row for another channel
  // than this one, when set, is malformed); the Alipay and WeChat bills default to
  // "alipay" and "wechat".
  std::string channel;
  // The paycore merchants the statement is for (--statement-merchant). An Alipay or WeChat
  // bill belongs to exactly one (it is per merchant account and does not carry our
  // merchant_id). For our csv, optional: without it the file covers every merchant of each
  // channel it names; with it, only these merchants, and a row of another is malformed.
  std::vector<std::string> merchant_ids;
};

// How the bytes of a channel bill were decoded (Alipay: GB18030, the GBK superset its
// download is in, or UTF-8 when someone re-saved it; WeChat: UTF-8).
enum class TextEncoding : std::uint8_t { ascii, gb18030, utf8 };
std::string_view text_encoding_name(TextEncoding encoding);  // "GB18030", ...

// Channels one statement may name; a row of one more is malformed.
inline constexpr std::size_t statement_channels_max = 100;

struct StatementStats {
  StatementFormat format = StatementFormat::auto_detect;  // as detected
  TextEncoding encoding = TextEncoding::ascii;  // what the non-ASCII lines were read as
  std::string channel;          // the declared or default channel ("" for a csv without one)
  // The channels of the rows handed to the sink, in the order first seen (our csv may name
  // several), at most statement_channels_max: a row of another channel past that is malformed.
  std::vector<std::string> channels;
  std::uint64_t rows_count = 0;       // data rows handed to the sink, valid or not
  std::uint64_t malformed_count = 0;
  std::uint64_t lines_count = 0;
};

// Reads the whole statement into the sink. An error stops the job with exit status 2; its
// message starts with the file's path ("PATH: line 3: ..."): kIoError when the file cannot be
// opened or read, kInvalidArgument for unknown or undetectable format, missing header, missing
// merchant for a channel bill. Malformed rows are not errors.
[[nodiscard]] Status read_statement(const StatementSource& source, RowSink& sink,
                                    StatementStats* stats);
// The same over bytes in memory (`source.path` only names them in messages).
[[nodiscard]] Status read_statement_bytes(std::string_view bytes, const StatementSource& source,
                                          RowSink& sink, StatementStats* stats);

// csv | alipay | wechat from the first bytes of a file; nullopt when none fits.
std::optional<StatementFormat> detect_statement_format(std::string_view head);

// Writes our statement CSV (docs/recon.md "Statement formats"): the header row first, then one
// row per call, buffered; flush() at the end. The generators and tests use it.
class StatementCsvWriter {
 public:
  explicit StatementCsvWriter(std::ostream& out);
  void row(std::string_view channel, std::string_view channel_txn_id, std::string_view merchant_id,
           std::string_view order_id, bool refund, std::string_view refund_id, Amount amount,
           std::string_view currency, std::string_view status, std::int64_t time_us);
  void flush();
  std::uint64_t rows_count() const { return rows_count_; }

 private:
  std::ostream& out_;
  std::string buffer_;
  std::uint64_t rows_count_ = 0;
};

}  // namespace paycore::recon
