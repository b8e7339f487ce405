#include "recon/statement_pipe.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/assert.hpp"
#include "core/id.hpp"

namespace paycore::recon {
namespace {

// The ids a row carries, copied into its batch: the parser reuses its line buffer.
constexpr std::size_t row_ids_count = 5;

// Rows and malformed rows of one stretch of the file. A malformed row keeps the number of
// rows before it in the batch, so that the two reach the sink interleaved as they were read.
struct Batch {
  std::vector<StatementRow> rows;
  std::vector<std::pair<std::size_t, MalformedRow>> malformed;
  std::string text;  // the rows' ids; reserved once, never reallocated (views point into it)

  Batch() {
    rows.reserve(statement_pipe_batch_rows);
    malformed.reserve(statement_pipe_batch_rows);
    text.reserve(statement_pipe_batch_rows * row_ids_count * id_bytes_max);
  }
  bool full() const {
    return rows.size() == statement_pipe_batch_rows ||
           malformed.size() == statement_pipe_batch_rows;
  }
  void clear() {
    rows.clear();
    malformed.clear();
    text.clear();
  }
  void add(const StatementRow& from) {
    PAYCORE_ASSERT(rows.size() < statement_pipe_batch_rows);
    StatementRow& row = rows.emplace_back(from);
    for (std::string_view* field :
         {&row.channel, &row.channel_txn_id, &row.merchant_id, &row.order_id, &row.refund_id}) {
      PAYCORE_ASSERT(field->size() <= id_bytes_max);  // ids were validated by the reader
      const std::size_t at = text.size();
      text.append(*field);
      *field = std::string_view(text.data() + at, field->size());
    }
    PAYCORE_ASSERT(text.size() <= text.capacity());  // no reallocation moved the views
  }
  void deliver(RowSink& sink) {
    std::size_t next_malformed = 0;
    for (std::size_t i = 0; i <= rows.size(); ++i) {
      while (next_malformed < malformed.size() && malformed[next_malformed].first == i) {
        sink.malformed(std::move(malformed[next_malformed++].second));
      }
      if (i < rows.size()) sink.row(rows[i]);
    }
    PAYCORE_ASSERT(next_malformed == malformed.size());
  }
};

}  // namespace

class StatementPipe::Impl final : public RowSink {
 public:
  explicit Impl(StatementSource source) : source_(std::move(source)) {
    pool_.resize(statement_pipe_batches_count);
    for (Batch& batch : pool_) free_.push_back(&batch);
    thread_ = std::thread([this] { read(); });
  }

  ~Impl() override {
    {
      const std::lock_guard lock(mutex_);
      abandoned_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Status deliver(RowSink& sink, StatementStats* stats) {
    while (Batch* batch = next_full()) {
      batch->deliver(sink);
      batch->clear();
      give_back(batch);
    }
    thread_.join();  // done_ is set: the thread has nothing left to do
    *stats = stats_;
    return status_;
  }

  // The parser's side, on its thread.
  void row(const StatementRow& row) override {
    if (Batch* batch = current()) {
      batch->add(row);
      if (batch->full()) hand_over();
    }
  }
  void malformed(MalformedRow malformed) override {
    if (Batch* batch = current()) {
      batch->malformed.emplace_back(batch->rows.size(), std::move(malformed));
      if (batch->full()) hand_over();
    }
  }

 private:
  void read() {
    StatementStats stats;
    const Status status = read_statement(source_, *this, &stats);
    if (current_ != nullptr) hand_over();
    const std::lock_guard lock(mutex_);
    stats_ = std::move(stats);
    status_ = status;
    done_ = true;
    changed_.notify_all();
  }

  // The batch being filled: a free one, waited for; nullptr once nobody will read the rows.
  Batch* current() {
    if (current_ != nullptr) return current_;
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return abandoned_ || !free_.empty(); });
    if (abandoned_) return nullptr;
    current_ = free_.back();
    free_.pop_back();
    return current_;
  }
  void hand_over() {
    {
      const std::lock_guard lock(mutex_);
      full_.push_back(current_);
    }
    current_ = nullptr;
    changed_.notify_all();
  }

  // The matcher's side: the oldest full batch, or nullptr when the parser is done.
  Batch* next_full() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return done_ || !full_.empty(); });
    if (full_.empty()) return nullptr;
    Batch* batch = full_.front();
    full_.pop_front();
    return batch;
  }
  void give_back(Batch* batch) {
    {
      const std::lock_guard lock(mutex_);
      free_.push_back(batch);
    }
    changed_.notify_all();
  }

  const StatementSource source_;
  std::vector<Batch> pool_;
  Batch* current_ = nullptr;  // the parser's only

  std::mutex mutex_;  // guards what follows
  std::condition_variable changed_;
  std::vector<Batch*> free_;
  std::deque<Batch*> full_;
  bool done_ = false;
  bool abandoned_ = false;
  Status status_ = Status::ok();
  StatementStats stats_;

  std::thread thread_;  // last: started once everything above exists
};

StatementPipe::StatementPipe(StatementSource source)
    : impl_(std::make_unique<Impl>(std::move(source))) {}
StatementPipe::~StatementPipe() = default;

Status StatementPipe::deliver(RowSink& sink, StatementStats* stats) {
  return impl_->deliver(sink, stats);
}

}  // namespace paycore::recon
