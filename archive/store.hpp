#pragma once
// The archive store (issue 12, docs/archive-store.md): cold payments on disk in RocksDB, in the
// format of archive/format.hpp. One writer (archive/archiver.hpp's thread) writes jobs of
// payments with the archive's position in one synced batch; any thread reads.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/function_ref.hpp"
#include "base/status.hpp"
#include "core/archive_port.hpp"
#include "core/model.hpp"
#include "core/payment_list.hpp"

namespace paycore {

inline constexpr std::size_t archive_block_cache_bytes_default = std::size_t{256} << 20;

struct ArchiveOptions {
  std::string dir;  // the RocksDB directory (created when missing unless must_exist)
  // RocksDB's LRU block cache: the archive's memory bound for reads (index and filter blocks
  // are charged to it too).
  std::size_t block_cache_bytes = archive_block_cache_bytes_default;
  // The caller knows it archived before (its snapshot has a position with jobs > 0): a missing
  // directory or a store that holds no job is then an error, never a silently fresh store.
  bool must_exist = false;
  // Opens without the write lock, alongside a running writer (`paycore recon`): reads see the
  // store as it was at open; write() is refused. The store must exist.
  bool read_only = false;
  // RocksDB's background threads (memtable flushes, compactions) at the lowest CPU priority
  // (Env::LowerThreadPoolCPUPriority, kLow: nice 19), like the archiver thread: archiving is
  // background work (docs/design.md "Hot and cold"). The pools are the process's, shared by
  // every store it opens.
  bool low_priority = false;
};

/// How far the archive has got, written in the same batch as the payments it covers: the core's
/// payment rows [0, rows_end) were archived from a copy read after log position `lsn`, whose
/// command's timestamp is `as_of_us`; `jobs` counts the jobs written (0: none yet).
struct ArchivePosition {
  std::uint32_t rows_end = 0;
  std::uint64_t lsn = 0;
  std::int64_t as_of_us = 0;
  std::uint64_t jobs = 0;
  friend bool operator==(const ArchivePosition&, const ArchivePosition&) = default;
};

/// The cold tier's store. Thread safety: every const member may be called from any thread,
/// concurrently with one another and with write() (RocksDB's reads see a consistent view of
/// the store: each call its own); write() from one thread at a time (serialised by a mutex).
class ArchiveStore final : public ArchiveReader {
 public:
  /// Opens (or, unless must_exist or read_only, creates) the store at options.dir, with the
  /// RocksDB options of docs/archive-store.md and paranoid checks. Writes the format key into a
  /// new store; refuses a store of another format version. Errors: kNotFound when must_exist
  /// or read_only and there is no store at dir; kCorruption when must_exist and the store holds
  /// no job, when it has data but no format key, when RocksDB finds damage, or for another
  /// format version; kIoError (or kNoSpace) from RocksDB otherwise. Messages name the dir.
  static StatusOr<std::unique_ptr<ArchiveStore>> open(const ArchiveOptions& options);
  ~ArchiveStore() override;
  ArchiveStore(const ArchiveStore&) = delete;
  ArchiveStore& operator=(const ArchiveStore&) = delete;

  /// The position as last written (read at open; zeros for a store that holds no job).
  ArchivePosition position() const;

  /// Writes every payment ('P', 'L' and 'D' keys) and `position` in one atomic RocksDB batch,
  /// synced before it returns. A payment already archived is replaced under the same keys (a
  /// payment archived again after it changed: its created_at_us, part of the 'L' and 'D' keys,
  /// never changes). Only a payment that came back from the archive (refunds_follow_archived)
  /// reads what is stored: it gets the archive's refunds followed by those it does not hold yet
  /// (same_refund: request_id, time and amount); kCorruption if the archive no longer holds
  /// it, or holds it damaged or with another created_at (naming the key). Every other payment
  /// is written without a read (the write rate: docs/benchmarks.md). Validates first and writes nothing on: a payment check_payment
  /// refuses (kInvalidArgument), position.jobs != position().jobs + 1 or position.lsn <
  /// position().lsn (kInvalidArgument), a read-only store (kReadOnly). RocksDB's errors as in
  /// open().
  Status write(std::span<const ArchivedPayment> payments, const ArchivePosition& position);

  /// The archived payment (merchant_id, order_id), or nullopt if it is not archived.
  /// kInvalidArgument for ids that are not valid; kCorruption naming the key for a bad record.
  StatusOr<std::optional<ArchivedPayment>> get_payment(std::string_view merchant_id,
                                                       std::string_view order_id) const override;

  /// The refunds of an archived payment, in the order they were made; kNotFound if the payment
  /// is not archived. Errors as get_payment.
  StatusOr<std::vector<RefundView>> list_refunds(std::string_view merchant_id,
                                                 std::string_view order_id) const override;

  /// One page of a merchant's archived payments (see PaymentListQuery and PaymentPage; the
  /// status filter is on the stored status). kInvalidArgument for a query out of its ranges;
  /// kCorruption naming the key for a bad record met on the way.
  StatusOr<PaymentPage> list_payments(const PaymentListQuery& query) const override;

  /// Calls `visit` with every archived payment created in [from_us, to_us), all merchants, in
  /// created_at order (ties by merchant_id's length and bytes, then order_id), until it returns
  /// false. For recon of a day: a sequential read that does not fill the block cache.
  /// kInvalidArgument unless 0 <= from_us <= to_us; kCorruption naming the key for a bad record.
  Status for_each_created_between(std::int64_t from_us, std::int64_t to_us,
                                  FunctionRef<bool(const ArchivedPayment&)> visit) const;

  const std::string& dir() const;

 private:
  struct Impl;  // archive/store_impl.hpp
  explicit ArchiveStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paycore
