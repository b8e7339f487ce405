// Channel statement importers (csv, Alipay, WeChat). Input: byte 0 picks the format (auto,
// csv, alipay, wechat) and whether a csv names its channel, the rest is the file.
// Properties: no crash, no sanitizer report, no exception; every row handed to the sink is
// valid (ids, amount in 1..amount_max, a currency, a line number inside the file, or one past
// its end for "the bill ends without its summary") and every data row is counted once, as a
// row or as malformed (malformed also carries whole-file findings, such as a WeChat summary
// that disagrees with the rows, so it may count more than data rows).
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_target.hpp"
#include "recon/statement.hpp"
#include "src/id.hpp"

namespace {

using namespace paycore::recon;

class CheckingSink final : public RowSink {
 public:
  void row(const StatementRow& row) override {
    ++rows;
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
};

}  // namespace

PAYCORE_FUZZ_TARGET(statement) {
  if (size == 0) return 0;
  StatementSource source;
  source.path = "fuzz-input";
  source.format = static_cast<StatementFormat>(data[0] % 4);
  if (source.format != StatementFormat::csv || (data[0] & 4) != 0) source.merchant_ids = {"m_001"};
  if (source.format == StatementFormat::csv && (data[0] & 8) != 0) source.channel = "alipay";
  CheckingSink sink;
  StatementStats stats;
  const std::optional<std::string> error =
      read_statement_bytes(paycore::fuzz::as_text(data + 1, size - 1), source, sink, &stats);
  if (error.has_value()) {
    FUZZ_CHECK(statement, !error->empty());
    return 0;
  }
  FUZZ_CHECK(statement, stats.format != StatementFormat::auto_detect);
  FUZZ_CHECK(statement, sink.rows <= stats.rows_count);
  FUZZ_CHECK(statement, stats.rows_count <= sink.rows + sink.malformed_rows);
  FUZZ_CHECK(statement, stats.malformed_count == sink.malformed_rows);
  FUZZ_CHECK(statement, sink.line_max <= stats.lines_count + 1);
  return 0;
}
