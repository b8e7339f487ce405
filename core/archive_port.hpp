#pragma once
// The core's side of the cold tier (issue 12; docs/design.md "Hot and cold"): the core copies
// payments that have gone cold into an ArchiveJob and hands it to an ArchiveSink, which writes
// them to the archive store once the log position they were read at is durable, and answers
// with an ArchiveDone. Only then does the core log `archive_payments`, the command that takes
// them out of memory, so that replay and snapshots stay deterministic. The sink lives outside
// the core (archive/ implements it on RocksDB); the core knows only this interface.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "payment_list.hpp"
#include "result.hpp"

namespace paycore {

/// A payment as the archive keeps it: its view and its refunds in the order they were made.
struct ArchivedPayment {
  PaymentView payment;
  std::vector<RefundView> refunds;
  // The payment came back from the archive and went cold again: `refunds` follow those the
  // archive already holds for it (the store appends them).
  bool refunds_follow_archived = false;
};

/// Payment rows [rows_begin, rows_end) of the state, copied on the core thread in row order.
/// The copies were read after the command of log position `lsn` was applied, whose timestamp
/// is `as_of_us`: the sink may write them only once `lsn` is durable, and `archive_payments`
/// evicts a row only if it has not changed since `as_of_us`.
struct ArchiveJob {
  std::uint64_t sequence = 0;  // 1, 2, ... in the order the core submits jobs
  std::uint32_t rows_begin = 0;
  std::uint32_t rows_end = 0;
  std::uint64_t lsn = 0;
  std::int64_t as_of_us = 0;
  std::vector<ArchivedPayment> payments;  // rows_end - rows_begin entries
};

/// The answer to one job: `status` ok means every payment of the job is in the archive
/// durably (the store's write was synced) and the archive's position says so.
struct ArchiveDone {
  std::uint64_t sequence = 0;
  std::uint32_t rows_begin = 0;
  std::uint32_t rows_end = 0;
  std::int64_t as_of_us = 0;
  Status status;
};

/// Reading the archive, from any thread (the edge, recon). Records are written only by the
/// sink; a read sees every job whose ArchiveDone was ok before the read began.
class ArchiveReader {
 public:
  virtual ~ArchiveReader() = default;
  /// The payment (merchant_id, order_id) as the archive holds it, or nullopt if it holds none.
  /// Errors: kIoError or kCorruption from the store, naming the key.
  virtual StatusOr<std::optional<ArchivedPayment>> get_payment(std::string_view merchant_id,
                                                               std::string_view order_id) const = 0;
  /// The refunds of an archived payment, in the order they were made; kNotFound if the
  /// archive does not hold the payment. Errors as get_payment.
  virtual StatusOr<std::vector<RefundView>> list_refunds(std::string_view merchant_id,
                                                         std::string_view order_id) const = 0;
  /// One page of a merchant's archived payments (core/payment_list.hpp), skipping
  /// query.skip_order_ids. kInvalidArgument for a query out of its ranges; errors as
  /// get_payment.
  virtual StatusOr<PaymentPage> list_payments(const PaymentListQuery& query) const = 0;
};

/// Where the core sends jobs. Both calls are non-blocking and made by the core thread only.
class ArchiveSink {
 public:
  virtual ~ArchiveSink() = default;
  /// Takes the job, or returns false (job untouched) while an earlier one is still queued:
  /// the core tries again on a later turn.
  virtual bool submit(ArchiveJob&& job) = 0;
  /// The next finished job, if any.
  virtual bool poll(ArchiveDone* done) = 0;
  /// A descriptor the core sleeps on beside its own: readable when a job has finished since
  /// the last poll(), so that an idle core takes it at once. -1 (the default) if the sink has
  /// none; then an idle core finds finished jobs only at its next tick, which bounds archiving
  /// at archive_job_payments_max per tick interval (20k payments/s at the defaults: the 300M
  /// run's archive could not catch up once the load stopped).
  virtual int ready_fd() const { return -1; }
};

}  // namespace paycore
