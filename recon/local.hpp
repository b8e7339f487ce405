#pragma once
// What paycore knows, as the reconciliation job sees it: payments (with their refunds) and the
// channel notifications that could not be applied (anomalies). Filled by a loader (the snapshot
// reader, the generator, tests); the job only reads it.
//
// Strings are views into the LocalData's own arena: `add_payment` and `add_anomaly` copy what
// they are given, so a loader may pass views into a buffer it reuses. 10M payments take about
// 130 bytes each plus their ids' bytes (bench/recon measures it).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/money.hpp"

namespace paycore::recon {

enum class PaymentStatus : std::uint8_t {
  pending,
  paid,
  shipped,
  completed,
  cancelled,
  failed,
  refunded,
};

// "PENDING" ... "REFUNDED" (docs/api.md).
std::string_view payment_status_name(PaymentStatus status);
std::optional<PaymentStatus> payment_status_from_name(std::string_view name);
// PAID, SHIPPED, COMPLETED and REFUNDED: the money did arrive through the channel.
constexpr bool payment_status_is_paid(PaymentStatus status) {
  return status == PaymentStatus::paid || status == PaymentStatus::shipped ||
         status == PaymentStatus::completed || status == PaymentStatus::refunded;
}

struct LocalRefund {
  std::string_view request_id;  // the statement's refund_id
  Amount amount = 0;
  std::int64_t at_us = 0;
};

struct LocalPayment {
  std::string_view merchant_id;
  std::string_view order_id;
  std::string_view request_id;
  std::string_view channel;         // "balance" payments never appear on a statement
  std::string_view channel_txn_id;  // empty until the channel's notification settled it
  Amount amount = 0;
  Amount refunded_amount = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  Currency currency;
  PaymentStatus status = PaymentStatus::pending;
  // Refunds of this payment: LocalData::refunds[refund_first, refund_first + refund_count).
  std::uint32_t refund_first = 0;
  std::uint32_t refund_count = 0;
};

// A channel notification the state kept instead of applying (docs/api.md "Channel notifications").
struct LocalAnomaly {
  std::string_view channel;
  std::string_view channel_txn_id;
  std::string_view merchant_id;
  std::string_view order_id;
  Amount amount = 0;
  Currency currency;
  std::string_view status;  // "SUCCESS" | "FAILED", as notified
  std::int64_t paid_at_us = 0;
  std::string_view reason;  // why it was not applied: unknown_order, amount_mismatch, ...
};

inline constexpr std::string_view balance_channel = "balance";

// Where recon's local side comes from.
struct LocalSources {
  std::string snapshot_path;
  // The archive store's directory (`<data_dir>/archive`); empty: the snapshot alone, which is
  // refused when the snapshot says payments have left memory.
  std::string archive_dir;
  // Archived payments created at or after this, less an hour (docs/recon.md "Cold payments"),
  // are read: --since; nullopt: the whole archive.
  std::optional<std::int64_t> archive_from_us;
};

// Owns the bytes every view above points to. Chunks never move, so views stay valid when the
// LocalData itself is moved.
class StringArena {
 public:
  std::string_view keep(std::string_view text);
  std::size_t bytes_used() const { return bytes_used_; }

 private:
  static constexpr std::size_t chunk_bytes = std::size_t{2} << 20;  // one huge page
  struct FreeChunk {
    void operator()(char* p) const;
  };
  std::vector<std::unique_ptr<char[], FreeChunk>> chunks_;
  std::size_t chunk_used_ = chunk_bytes;  // forces a first chunk
  std::size_t bytes_used_ = 0;
};

class LocalData {
 public:
  LocalData() = default;
  LocalData(LocalData&&) = default;
  LocalData& operator=(LocalData&&) = default;
  LocalData(const LocalData&) = delete;
  LocalData& operator=(const LocalData&) = delete;

  // Copies the payment's strings and its refunds; `payment.refund_first/refund_count` are
  // ignored and set from `refunds`. Returns the payment's index.
  std::uint32_t add_payment(const LocalPayment& payment, std::span<const LocalRefund> refunds = {});
  // As add_payment, for a payment whose merchant_id and channel are already this LocalData's
  // (from intern()): a loader interns each merchant and channel once, not once per payment.
  std::uint32_t add_payment_interned(const LocalPayment& payment, std::span<const LocalRefund> refunds);
  void add_anomaly(const LocalAnomaly& anomaly);
  // The LocalData's one copy of `text` (merchant ids, channels and anomaly reasons repeat).
  std::string_view intern(std::string_view text);
  void reserve(std::size_t payments_count, std::size_t refunds_count);
  // The bytes reserve() set aside that no payment or refund uses yet. A loader may fault them
  // in on another thread (populate_memory) while it fills the tables: a first touch of memory
  // costs about 2 s per GB on the 2-core VM (its pages zeroed under the hypervisor), as much
  // as decoding. Valid until the tables grow past their reserve.
  std::vector<std::span<std::byte>> unused_reserve();

  std::span<const LocalPayment> payments() const { return payments_; }
  std::span<const LocalRefund> refunds() const { return refunds_; }
  std::span<const LocalAnomaly> anomalies() const { return anomalies_; }
  std::span<const LocalRefund> refunds_of(const LocalPayment& payment) const {
    return std::span<const LocalRefund>(refunds_).subspan(payment.refund_first,
                                                           payment.refund_count);
  }

 private:
  std::vector<LocalPayment> payments_;
  std::vector<LocalRefund> refunds_;
  std::vector<LocalAnomaly> anomalies_;
  StringArena arena_;
  std::unordered_set<std::string_view> interned_;
};

}  // namespace paycore::recon
