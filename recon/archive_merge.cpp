#include "recon/archive_merge.hpp"

#include <limits>
#include <memory>

#include "archive/store.hpp"
#include "base/assert.hpp"

namespace paycore::recon {
namespace {

// Before --since, so that a payment created just before the window and paid in it (within its
// pending lifetime, 15 minutes by default) is still matched. A payment created earlier still
// and paid in the window would be missing_local on its row: loud, never a silent miss.
constexpr std::int64_t archive_margin_us = 3600LL * 1'000'000;

PaymentStatus status_of_archived(const State& s, const PaymentView& p, std::int64_t as_of_us) {
  // The archive holds no PENDING payment (only settled ones leave memory); should one be there,
  // it reads as the core would read it (core/apply.hpp effective_status).
  if (p.status == paycore::PaymentStatus::pending &&
      p.created_at_us + s.pending_lifetime_us <= as_of_us) {
    return PaymentStatus::cancelled;
  }
  return local_status_from_core(p.status);
}

void add_archived_payment(const State& s, const ArchivedPayment& a, std::int64_t as_of_us,
                          std::vector<LocalRefund>* refunds, LocalData* local) {
  const PaymentView& p = a.payment;
  LocalPayment payment;
  payment.merchant_id = p.merchant_id.view();
  payment.order_id = p.order_id.view();
  payment.request_id = p.request_id.view();
  payment.channel = p.channel.view();
  payment.channel_txn_id = p.channel_txn_id.view();
  payment.amount = p.amount;
  payment.refunded_amount = p.refunded_amount;
  payment.created_at_us = p.created_at_us;
  payment.updated_at_us = p.updated_at_us;
  payment.currency = p.currency;
  payment.status = status_of_archived(s, p, as_of_us);
  refunds->clear();
  for (const RefundView& r : a.refunds) refunds->push_back({r.request_id.view(), r.amount, r.created_at_us});
  local->add_payment(payment, *refunds);
}

// The memory row of the archived payment, or row_none when memory no longer holds it.
std::uint32_t memory_row_of(const State& s, const PaymentView& p) {
  const std::uint32_t merchant = s.find_account(p.merchant_id.view());
  return merchant == row_none ? row_none : s.find_payment(merchant, p.order_id.view());
}

StatusOr<std::unique_ptr<ArchiveStore>> open_archive(const SnapshotInfo& info, const std::string& dir) {
  ArchiveOptions options;
  options.dir = dir;
  options.read_only = true;  // beside a running server
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(options);
  if (!store.is_ok()) return store.status().with_context("archive " + dir);
  // As the server's start refuses it (docs/design.md "Hot and cold"): an archive behind what
  // memory gave up (an old backup, another data directory's) would miss payments silently.
  const ArchivePosition position = (*store)->position();
  if (position.rows_end < info.payments_begin) {
    return Status::corruption("archive " + dir + " holds payment rows below " +
                              std::to_string(position.rows_end) + " only, but the snapshot gave up rows below " +
                              std::to_string(info.payments_begin) +
                              ": an old or another data directory's archive");
  }
  return store;
}

// The archive's refunds of the rows back from it that the scan did not meet (created before
// the window, refunded in it): one point read each.
Status add_back_refunds(const State& s, const ArchiveStore& store, ArchivedRefunds* back) {
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) {
    const PaymentRow& p = s.payments[i];
    if ((p.flags & payment_flag_from_archive) == 0 || back->contains(i)) continue;
    const StatusOr<std::optional<ArchivedPayment>> found =
        store.get_payment(s.accounts[p.merchant].id.view(), s.str(p.order_id));
    if (!found.is_ok()) return found.status().with_context("archive " + store.dir());
    // Not archived after all: the job reports the refunds that do not add up.
    if (found->has_value()) (*back)[i] = (*found)->refunds;
  }
  return Status::ok();
}

}  // namespace

StatusOr<LocalData> local_data_with_archive(const State& s, const SnapshotInfo& info,
                                            const LocalSources& sources, std::int64_t as_of_us) {
  StatusOr<std::unique_ptr<ArchiveStore>> store = open_archive(info, sources.archive_dir);
  if (!store.is_ok()) return store.status();
  const std::int64_t from_us =
      sources.archive_from_us ? std::max<std::int64_t>(0, *sources.archive_from_us - archive_margin_us) : 0;
  LocalData local;
  local.reserve(s.payments.live_count(), s.refunds.live_count());
  ArchivedRefunds back;
  std::vector<LocalRefund> refunds;  // one payment's, reused
  const Status scanned = (*store)->for_each_created_between(
      from_us, std::numeric_limits<std::int64_t>::max(), [&](const ArchivedPayment& a) {
        const std::uint32_t row = memory_row_of(s, a.payment);
        if (row == row_none) {
          add_archived_payment(s, a, as_of_us, &refunds, &local);
        } else if ((s.payments[row].flags & payment_flag_from_archive) != 0) {
          back[row] = a.refunds;  // memory's row wins; its earlier refunds are the archive's
        }
        return true;
      });
  if (!scanned.is_ok()) return scanned.with_context("archive " + sources.archive_dir);
  PAYCORE_RETURN_IF_ERROR(add_back_refunds(s, **store, &back));
  add_memory_payments(s, as_of_us, &back, &local);
  add_anomalies(s, &local);
  return local;
}

}  // namespace paycore::recon
