// recon/statement_pipe.hpp: a statement read on its own thread reaches the sink exactly as
// read_statement hands it over (rows, malformed rows, their order, the stats, the error).
#include "recon/statement_pipe.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace paycore::recon::test {
namespace {

// Every row and malformed row as one sequence, so that their interleaving is compared too.
struct EventSink final : RowSink {
  std::vector<std::string> events;
  void row(const StatementRow& r) override {
    events.push_back("row " + std::to_string(r.line) + " " + std::string(r.channel) + " " +
                     std::string(r.channel_txn_id) + " " + std::string(r.merchant_id) + " " +
                     std::string(r.order_id) + " " + std::string(r.refund_id) + " " +
                     std::to_string(r.amount) + " " + std::to_string(r.time_us));
  }
  void malformed(MalformedRow m) override {
    events.push_back("malformed " + m.file + " " + std::to_string(m.line) + " " + m.reason);
  }
};

// `rows_count` rows over several batches, every 997th malformed (a bad amount).
std::string write_statement(const std::string& name, std::size_t rows_count) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out << csv_header;
  for (std::size_t i = 0; i < rows_count; ++i) {
    const std::string amount = i % 997 == 5 ? "-1" : std::to_string(100 + i);
    out << "card,t" << i << ",m_1,o" << i
        << (i % 3 == 0 ? ",REFUND,r" + std::to_string(i) : ",PAYMENT,") << "," << amount
        << ",CNY,SUCCESS,2026-11-26T08:00:0" << i % 10 << "Z\n";
  }
  return path;
}

TEST(ReconStatementPipe, DeliversWhatReadStatementDeliversInTheSameOrder) {
  const StatementSource source{
      write_statement("pipe_order.csv", 3 * statement_pipe_batch_rows + 77),
      StatementFormat::csv,
      "",
      {}};
  EventSink direct;
  StatementStats direct_stats;
  ASSERT_TRUE(read_statement(source, direct, &direct_stats).is_ok());
  EventSink piped;
  StatementStats piped_stats;
  StatementPipe pipe(source);
  ASSERT_TRUE(pipe.deliver(piped, &piped_stats).is_ok());
  EXPECT_EQ(piped.events, direct.events);
  EXPECT_GT(direct_stats.malformed_count, 0u);
  EXPECT_EQ(piped_stats.rows_count, direct_stats.rows_count);
  EXPECT_EQ(piped_stats.malformed_count, direct_stats.malformed_count);
  EXPECT_EQ(piped_stats.lines_count, direct_stats.lines_count);
  EXPECT_EQ(piped_stats.channels, direct_stats.channels);
}

TEST(ReconStatementPipe, MissingFileIsTheReadersError) {
  const StatementSource source{
      ::testing::TempDir() + "/pipe_no_such.csv", StatementFormat::csv, "", {}};
  EventSink direct;
  StatementStats stats;
  const Status expected = read_statement(source, direct, &stats);
  EventSink piped;
  StatementPipe pipe(source);
  const Status got = pipe.deliver(piped, &stats);
  EXPECT_EQ(got.code(), expected.code());
  EXPECT_EQ(got.message(), expected.message());
  EXPECT_TRUE(piped.events.empty());
}

// More rows than the pool holds, never delivered: the reader must not wait forever.
TEST(ReconStatementPipe, PipeNeverDeliveredStopsWhenDestroyed) {
  const StatementSource source{
      write_statement("pipe_abandoned.csv",
                      (statement_pipe_batches_count + 2) * statement_pipe_batch_rows),
      StatementFormat::csv,
      "",
      {}};
  { StatementPipe pipe(source); }
  SUCCEED();
}

}  // namespace
}  // namespace paycore::recon::test
