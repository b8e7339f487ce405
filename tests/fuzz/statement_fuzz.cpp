// Channel statement importers (csv, Alipay, WeChat). Input: byte 0 picks the format (auto,
// csv, alipay, wechat; bits 0-1), whether a csv has a merchant (bit 2: m_001; bit 4: m_001 and
// m_002) and names its channel (bit 3); the rest is the file. The seeds reach every reader
// path: Alipay bills in GBK, in UTF-8 with and without a BOM (encoding detection), with
// GB18030 four-byte characters, cut off before the end marker or the totals; WeChat bills of
// 27 and of the older 24 columns, with and without their summary.
// Properties: no crash, no sanitizer report, no exception; every row handed to the sink is
// valid (ids, amount in 1..amount_max, a currency, a line number inside the file, or one past
// its end for "the bill ends without its summary" or "...its end marker"), of the statement's
// merchants when it names them and of a channel listed in the statistics; the encoding is
// one of the three; and every data row is counted once, as a
// row or as malformed (malformed also carries whole-file findings, such as a WeChat summary
// that disagrees with the rows, so it may count more than data rows).
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_target.hpp"
#include "recon/statement.hpp"
#include "core/id.hpp"

namespace {

using namespace paycore::recon;

class CheckingSink final : public RowSink {
 public:
  explicit CheckingSink(const StatementSource& source) : source_(source) {}

  void row(const StatementRow& row) override {
    ++rows;
    const std::vector<std::string>& merchants = source_.merchant_ids;
    FUZZ_CHECK(statement, merchants.empty() ||
                              std::find(merchants.begin(), merchants.end(), row.merchant_id) != merchants.end());
    channels.emplace_back(row.channel);
    FUZZ_CHECK(statement, paycore::amount_is_valid(row.amount, paycore::amount_max_default));
    FUZZ_CHECK(statement, row.currency.valid());
    FUZZ_CHECK(statement, paycore::id_is_valid(row.merchant_id) && paycore::id_is_valid(row.order_id));
    FUZZ_CHECK(statement, paycore::id_is_valid(row.channel));
    FUZZ_CHECK(statement, row.type != RowType::payment || row.refund_id.empty());
    FUZZ_CHECK(statement, row.line >= 1);
    line_max = std::max(line_max, row.line);
  }
  void malformed(MalformedRow malformed) override {
    ++malformed_rows;
    FUZZ_CHECK(statement, !malformed.reason.empty());
    FUZZ_CHECK(statement, malformed.line >= 1);
    line_max = std::max(line_max, malformed.line);
  }
  std::uint64_t rows = 0, malformed_rows = 0, line_max = 0;
  std::vector<std::string> channels;

 private:
  const StatementSource& source_;
};

}  // namespace

PAYCORE_FUZZ_TARGET(statement) {
  if (size == 0) return 0;
  StatementSource source;
  source.path = "fuzz-input";
  source.format = static_cast<StatementFormat>(data[0] % 4);
  if (source.format != StatementFormat::csv || (data[0] & 4) != 0) source.merchant_ids = {"m_001"};
  if (source.format == StatementFormat::csv && (data[0] & 16) != 0) source.merchant_ids = {"m_001", "m_002"};
  if (source.format == StatementFormat::csv && (data[0] & 8) != 0) source.channel = "alipay";
  CheckingSink sink(source);
  StatementStats stats;
  const paycore::Status read =
      read_statement_bytes(paycore::fuzz::as_text(data + 1, size - 1), source, sink, &stats);
  if (!read.is_ok()) {
    FUZZ_CHECK(statement, !read.message().empty());
    return 0;
  }
  FUZZ_CHECK(statement, stats.format != StatementFormat::auto_detect);
  FUZZ_CHECK(statement, sink.rows <= stats.rows_count);
  FUZZ_CHECK(statement, stats.rows_count <= sink.rows + sink.malformed_rows);
  FUZZ_CHECK(statement, stats.malformed_count == sink.malformed_rows);
  FUZZ_CHECK(statement, sink.line_max <= stats.lines_count + 1);
  FUZZ_CHECK(statement, text_encoding_name(stats.encoding) != "?");
  FUZZ_CHECK(statement, stats.channels.size() <= statement_channels_max);
  for (const std::string& channel : sink.channels) {
    FUZZ_CHECK(statement, std::find(stats.channels.begin(), stats.channels.end(), channel) != stats.channels.end());
  }
  return 0;
}
