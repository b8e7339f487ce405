#pragma once
// What the three statement readers share (recon/statement_csv.cpp, statement_alipay.cpp,
// statement_wechat.cpp): the context a reader reports rows and malformed rows to, the id and
// amount checks, and the line loop. Internal to recon/statement*.cpp.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "recon/statement.hpp"
#include "recon/text.hpp"

namespace paycore::recon::statement_detail {

inline constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";
inline constexpr int beijing_offset_minutes = 8 * 60;  // both channels' bills are in Beijing time

// The header names a reader checks: column index and the name expected there.
struct ExpectedHeader {
  std::size_t column;
  std::string_view name;
};

// The text after a UTF-8 byte order mark, if it starts with one.
std::string_view strip_bom(std::string_view text);
// Checks one id field; on failure fills *reason ("<name> '<value>' is not 1-64 characters ...").
bool check_id(std::string_view value, std::string_view name, std::string* reason);
// Minor units as our CSV writes them: digits only, 1 ..= amount_max_default.
bool parse_minor_units(std::string_view text, Amount* amount, std::string* reason);
// Yuan (or any major unit) with at most the currency's decimals, exactly; the sign is
// returned apart so that refunds may be written negative.
bool parse_major_units(std::string_view text, Currency currency, Amount* amount, bool* negative,
                       std::string* reason);

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
    if (std::find(stats.channels.begin(), stats.channels.end(), channel) != stats.channels.end())
      return true;
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
                                 std::to_string(statement_channels_max) +
                                 " channels in one statement");
      return;
    }
    sink.row(row);
  }
};

// Feeds every line of `reader` to a `Parser` (constructed over `context`), then finishes it.
// The error names the line ("line 7: ...") or the read failure.
template <typename Parser>
Status run_parser(LineReader& reader, Context& context) {
  Parser parser(context);
  std::string_view line;
  while (true) {
    const StatusOr<bool> got = reader.next(&line);
    if (!got.is_ok()) {
      context.stats.lines_count = reader.line_number();
      return got.status();
    }
    if (!*got) break;
    const Status read = parser.line(line, reader.line_number());
    if (!read.is_ok()) {
      return Status(read.code(),
                    "line " + std::to_string(reader.line_number()) + ": " + read.message());
    }
  }
  context.stats.lines_count = reader.line_number();
  return parser.finish();
}

// The three readers: every line of `reader` in that format; ok when the file was read to its
// end (malformed rows go to the context's sink), else what stopped it.
Status read_csv_rows(LineReader& reader, Context& context);
Status read_alipay_rows(LineReader& reader, Context& context);
Status read_wechat_rows(LineReader& reader, Context& context);

}  // namespace paycore::recon::statement_detail
