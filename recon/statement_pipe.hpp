#pragma once
// A statement read on its own thread (issue 12, "Recon and recovery at the speed of the disk"):
// parsing a 1 GB CSV and matching its rows against 10M local payments each take seconds, and
// only the matching needs the local data, so the parser runs on the second core and hands
// its rows over in batches through a bounded queue. The rows reach the sink in file order,
// exactly as read_statement would deliver them, so the report is the same byte for byte.
//
// Memory is bounded: a fixed pool of batches (statement_pipe_batches_count of
// statement_pipe_batch_rows rows each, their ids copied into the batch) goes round between the
// two threads; the parser waits when every batch is full and not yet matched.

#include <cstddef>
#include <memory>

#include "base/status.hpp"
#include "recon/statement.hpp"

namespace paycore::recon {

inline constexpr std::size_t statement_pipe_batch_rows = 8192;
inline constexpr std::size_t statement_pipe_batches_count = 8;

// One statement being read on a thread of its own, from construction on. deliver() hands every
// row and malformed row to the sink in file order, on the caller's thread, and returns what
// read_statement would have (its error, or ok with *stats filled). Call deliver() once; the
// destructor waits for the thread (a StatementPipe never delivered is read to its end or its
// first error and its rows dropped).
class StatementPipe {
 public:
  explicit StatementPipe(StatementSource source);
  ~StatementPipe();
  StatementPipe(const StatementPipe&) = delete;
  StatementPipe& operator=(const StatementPipe&) = delete;

  [[nodiscard]] Status deliver(RowSink& sink, StatementStats* stats);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace paycore::recon
