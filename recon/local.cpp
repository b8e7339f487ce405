#include "recon/local.hpp"

#include <array>
#include <cstring>
#include <limits>

#include "base/memory.hpp"
#include "base/assert.hpp"

namespace paycore::recon {
namespace {

constexpr std::array<std::string_view, 7> status_names = {
    "PENDING", "PAID", "SHIPPED", "COMPLETED", "CANCELLED", "FAILED", "REFUNDED"};
static_assert(status_names.size() == static_cast<std::size_t>(PaymentStatus::refunded) + 1);

}  // namespace

std::string_view payment_status_name(PaymentStatus status) {
  const auto index = static_cast<std::size_t>(status);
  PAYCORE_ASSERT(index < status_names.size());
  return status_names[index];
}

std::optional<PaymentStatus> payment_status_from_name(std::string_view name) {
  for (std::size_t i = 0; i < status_names.size(); ++i) {
    if (status_names[i] == name) return static_cast<PaymentStatus>(i);
  }
  return std::nullopt;
}

void StringArena::FreeChunk::operator()(char* p) const { std::free(p); }

std::string_view StringArena::keep(std::string_view text) {
  if (text.empty()) return {};
  if (text.size() > chunk_bytes) {  // oversized: a chunk of its own, the current one stays open
    std::unique_ptr<char[], FreeChunk> big(static_cast<char*>(std::malloc(text.size())));
    if (!big) throw std::bad_alloc();
    std::memcpy(big.get(), text.data(), text.size());
    const std::string_view kept(big.get(), text.size());
    chunks_.insert(chunks_.end() - (chunks_.empty() ? 0 : 1), std::move(big));
    bytes_used_ += text.size();
    return kept;
  }
  if (chunk_bytes - chunk_used_ < text.size()) {
    chunks_.emplace_back(allocate_huge<char>(chunk_bytes).release());
    chunk_used_ = 0;
  }
  char* at = chunks_.back().get() + chunk_used_;
  std::memcpy(at, text.data(), text.size());
  chunk_used_ += text.size();
  bytes_used_ += text.size();
  return {at, text.size()};
}

std::string_view LocalData::intern(std::string_view text) {
  if (auto it = interned_.find(text); it != interned_.end()) return *it;
  const std::string_view kept = arena_.keep(text);
  interned_.insert(kept);
  return kept;
}

void LocalData::reserve(std::size_t payments_count, std::size_t refunds_count) {
  payments_.reserve(payments_count);
  refunds_.reserve(refunds_count);
  advise_huge_pages(payments_.data(), payments_.capacity() * sizeof(LocalPayment));
  advise_huge_pages(refunds_.data(), refunds_.capacity() * sizeof(LocalRefund));
}

namespace {

template <class T>
std::span<std::byte> unused_bytes(std::vector<T>& table) {
  std::byte* const begin = reinterpret_cast<std::byte*>(table.data() + table.size());
  return {begin, (table.capacity() - table.size()) * sizeof(T)};
}

}  // namespace

std::vector<std::span<std::byte>> LocalData::unused_reserve() {
  return {unused_bytes(payments_), unused_bytes(refunds_)};
}

std::uint32_t LocalData::add_payment(const LocalPayment& payment,
                                     std::span<const LocalRefund> refunds) {
  LocalPayment interned = payment;
  interned.merchant_id = intern(payment.merchant_id);
  interned.channel = intern(payment.channel);
  return add_payment_interned(interned, refunds);
}

std::uint32_t LocalData::add_payment_interned(const LocalPayment& payment,
                                              std::span<const LocalRefund> refunds) {
  constexpr std::size_t index_end = std::numeric_limits<std::uint32_t>::max();  // indexes are 32-bit
  PAYCORE_ASSERT_LT(payments_.size(), index_end);
  PAYCORE_ASSERT_LT(refunds_.size() + refunds.size(), index_end);
  LocalPayment kept = payment;
  kept.order_id = arena_.keep(payment.order_id);
  kept.request_id = arena_.keep(payment.request_id);
  kept.channel_txn_id = arena_.keep(payment.channel_txn_id);
  kept.refund_first = static_cast<std::uint32_t>(refunds_.size());
  kept.refund_count = static_cast<std::uint32_t>(refunds.size());
  for (const LocalRefund& refund : refunds) {
    refunds_.push_back({arena_.keep(refund.request_id), refund.amount, refund.at_us});
  }
  payments_.push_back(kept);
  return static_cast<std::uint32_t>(payments_.size() - 1);
}

void LocalData::add_anomaly(const LocalAnomaly& anomaly) {
  LocalAnomaly kept = anomaly;
  kept.channel = intern(anomaly.channel);
  kept.channel_txn_id = arena_.keep(anomaly.channel_txn_id);
  kept.merchant_id = intern(anomaly.merchant_id);
  kept.order_id = arena_.keep(anomaly.order_id);
  kept.status = intern(anomaly.status);
  kept.reason = intern(anomaly.reason);
  anomalies_.push_back(kept);
}

}  // namespace paycore::recon
