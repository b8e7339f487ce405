#include "recon/snapshot_loader.hpp"

#include "recon/archive_merge.hpp"
#include "recon/snapshot_scan.hpp"

#include <algorithm>
#include <memory>
#include <span>
#include <vector>

#include "core/apply.hpp"
#include "base/assert.hpp"
#include "base/mapped_file.hpp"

namespace paycore::recon {

PaymentStatus local_status_from_core(paycore::PaymentStatus status) {
  switch (status) {
    case paycore::PaymentStatus::pending: return PaymentStatus::pending;
    case paycore::PaymentStatus::paid: return PaymentStatus::paid;
    case paycore::PaymentStatus::shipped: return PaymentStatus::shipped;
    case paycore::PaymentStatus::completed: return PaymentStatus::completed;
    case paycore::PaymentStatus::cancelled: return PaymentStatus::cancelled;
    case paycore::PaymentStatus::failed: return PaymentStatus::failed;
    case paycore::PaymentStatus::refunded: return PaymentStatus::refunded;
  }
  PAYCORE_ASSERT(false && "payment status out of range (the snapshot reader checks it)");
  return PaymentStatus::pending;
}

namespace {

LocalPayment local_payment(const State& s, const PaymentRow& p, std::int64_t as_of_us) {
  LocalPayment local;
  local.merchant_id = s.accounts[p.merchant].id.view();
  local.order_id = s.str(p.order_id);
  local.request_id = s.str(p.request_id);
  local.channel = s.str(s.channels[p.channel]);
  local.channel_txn_id = s.str(p.channel_txn_id);
  local.amount = p.amount;
  local.refunded_amount = p.refunded_amount;
  local.created_at_us = p.created_at_us;
  local.updated_at_us = p.updated_at_us;
  local.currency = p.currency;
  local.status = local_status_of(s, p, as_of_us);
  return local;
}

LocalAnomaly local_anomaly(const State& s, const AnomalyRow& a) {
  LocalAnomaly local;
  local.channel = s.str(s.channels[a.channel]);
  local.channel_txn_id = s.str(a.channel_txn_id);
  local.merchant_id = s.str(a.merchant_id);
  local.order_id = s.str(a.order_id);
  local.amount = a.amount;
  local.currency = a.currency;
  local.status = to_string(a.status);
  local.paid_at_us = a.paid_at_us;
  local.reason = to_string(a.reason);
  return local;
}

// "FILE: FILE: what" -> "FILE: what": load_snapshot_file names the file, and so does recon_main.
std::string without_path_prefix(const std::string& path, std::string error) {
  const std::string prefix = path + ": ";
  if (error.starts_with(prefix)) error.erase(0, prefix.size());
  return error;
}

}  // namespace

PaymentStatus local_status_of(const State& state, const PaymentRow& payment, std::int64_t as_of_us) {
  return local_status_from_core(effective_status(state, payment, as_of_us));
}

LocalData local_data_from_state(const State& s, std::int64_t as_of_us) {
  LocalData local;
  // Only the payments in memory: those the archive holds are not in the snapshot (issue 12:
  // load_local_data with an archive adds them).
  local.reserve(s.payments.live_count(), s.refunds.live_count());
  add_memory_payments(s, as_of_us, nullptr, &local);
  add_anomalies(s, &local);
  return local;
}

void add_memory_payments(const State& s, std::int64_t as_of_us, const ArchivedRefunds* archived,
                         LocalData* local) {
  std::vector<LocalRefund> refunds;  // one payment's, reused
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) {
    const PaymentRow& p = s.payments[i];
    refunds.clear();
    const bool from_archive = (p.flags & payment_flag_from_archive) != 0;
    if (from_archive && archived != nullptr) {
      if (const auto it = archived->find(i); it != archived->end()) {
        for (const RefundView& r : it->second) {
          refunds.push_back({r.request_id.view(), r.amount, r.created_at_us});
        }
      }
    }
    const std::size_t archived_count = refunds.size();
    Amount memory_sum = 0;
    for (std::uint32_t r = p.first_refund; r != row_none; r = s.refunds[r].next) {
      const RefundRow& refund = s.refunds[r];
      memory_sum += refund.amount;
      PAYCORE_ASSERT(refunds.size() <= archived_count + s.refunds.live_count());  // no cycle
      const std::string_view request_id = s.str(refund.request_id);
      const auto first_memory = refunds.begin() + static_cast<std::ptrdiff_t>(archived_count);
      const bool known = std::any_of(refunds.begin(), first_memory, [&](const LocalRefund& a) {
        return a.request_id == request_id;
      });
      if (!known) refunds.push_back({request_id, refund.amount, refund.created_at_us});
    }
    // The reader checked it; the job's local_refunds_sum_differs would report it otherwise.
    // A payment back from the archive holds only its later refunds (the rest are archived):
    // the job reports a sum that still differs after the merge.
    if (!from_archive) {
      PAYCORE_ASSERT_EQ(memory_sum, p.refunded_amount);
    } else {
      PAYCORE_ASSERT_LE(memory_sum, p.refunded_amount);
    }
    local->add_payment(local_payment(s, p, as_of_us), refunds);
  }
}

void add_anomalies(const State& s, LocalData* local) {
  for (std::uint32_t i = 0; i < s.anomalies.size(); ++i) local->add_anomaly(local_anomaly(s, s.anomalies[i]));
}

std::int64_t snapshot_as_of_us(const SnapshotInfo& info) {
  return std::max(info.created_at_us, info.last_timestamp_us);
}

namespace {

StatusOr<std::unique_ptr<State>> load_state(const std::string& path, SnapshotInfo* info) {
  MappedFile file;
  if (const Status opened = file.open(path); !opened.is_ok()) {
    return Status::io_error(without_path_prefix(path, opened.message()));
  }
  const std::span<const std::byte> view = file.bytes();
  if (const Status whole = check_snapshot(view, info); !whole.is_ok()) {
    return Status::corruption(whole.message());
  }
  // The header's counts size the indexes, so loading never grows them.
  auto state = std::make_unique<State>(sized_for(StateConfig{}, *info));
  if (const Status loaded = load_snapshot(view, state.get(), info); !loaded.is_ok()) {
    return Status::corruption(loaded.message());
  }
  PAYCORE_ASSERT_EQ(state->payments.size(), info->payments);
  PAYCORE_ASSERT_EQ(state->anomalies.size(), info->anomalies);
  return state;
}

bool snapshot_has_archived_rows(const SnapshotInfo& info) {
  return info.payments_begin > 0 || info.archived_rows_end > 0;
}

Status refuse_without_archive(const SnapshotInfo& info) {
  return Status::invalid_argument(
      "payments have left memory (rows below " + std::to_string(info.archived_rows_end) +
      " are archived, " + std::to_string(info.payments_begin) +
      " are no longer in the snapshot): give the archive with --archive DATA_DIR/archive, so "
      "that no cold payment is missed");
}

}  // namespace

StatusOr<LocalData> load_local_data(const LocalSources& sources, SnapshotInfo* info_out) {
  SnapshotInfo info;
  if (sources.archive_dir.empty()) {
    // The snapshot alone: read straight into the LocalData, no State (recon/snapshot_scan.hpp).
    StatusOr<LocalData> local = scan_snapshot(sources.snapshot_path, &info);
    if (info_out != nullptr) *info_out = info;
    if (!local.is_ok()) return local.status();
    if (snapshot_has_archived_rows(info)) return refuse_without_archive(info);
    return local;
  }
  // With the archive, memory's rows are looked up by (merchant, order_id): through the State's
  // index (a compact index of recon's own would do, and is not built yet).
  StatusOr<std::unique_ptr<State>> state = load_state(sources.snapshot_path, &info);
  if (!state.is_ok()) return state.status();
  if (info_out != nullptr) *info_out = info;
  return local_data_with_archive(**state, info, sources, snapshot_as_of_us(info));
}

StatusOr<LocalData> load_local_data(const std::string& path, SnapshotInfo* info_out) {
  LocalSources sources;
  sources.snapshot_path = path;
  return load_local_data(sources, info_out);
}

}  // namespace paycore::recon
