// `paycore recon gen --archive-percent N`: the generated state made tiered, as the engine makes
// it (docs/design.md "Hot and cold"): a retention tick drops the idempotency records of the
// first N% of the day, the payments created then are written to an archive store, and
// `archive_payments` takes from memory those that may leave.
#include <algorithm>
#include <limits>
#include <span>
#include <vector>

#include "archive/store.hpp"
#include "base/assert.hpp"
#include "core/apply.hpp"
#include "recon/gen_state.hpp"

namespace paycore::recon {
namespace {

constexpr std::uint32_t archive_job_payments = 50'000;  // payments per store write (one batch)

std::int64_t apply_engine_command(State* state, Command c, GenTierResult* tier) {
  c.timestamp_us = ++tier->last_timestamp_us;
  const Result r = apply(*state, c);
  PAYCORE_ASSERT(r.code == ResultCode::ok);  // the engine's own commands are accepted
  if (r.mutated) ++tier->commands_count;
  tier->evicted_count += r.archived_count;
  return c.timestamp_us;
}

ArchivedPayment archived_copy(const State& s, std::uint32_t row, std::int64_t as_of_us) {
  ArchivedPayment a;
  a.payment = payment_view(s, row, as_of_us);
  for (std::uint32_t r = s.payments[row].first_refund; r != row_none; r = s.refunds[r].next) {
    a.refunds.push_back(refund_view(s, r));
  }
  return a;
}

// Rows [0, rows_end) into the store, in jobs as the archiver writes them.
Status write_archive(const State& s, std::uint32_t rows_end, std::int64_t as_of_us, std::uint64_t lsn,
                     ArchiveStore* store) {
  std::vector<ArchivedPayment> job;
  std::uint64_t jobs = 0;
  for (std::uint32_t begin = 0; begin < rows_end; begin += archive_job_payments) {
    const std::uint32_t end = std::min(rows_end, begin + archive_job_payments);
    job.clear();
    for (std::uint32_t row = begin; row < end; ++row) job.push_back(archived_copy(s, row, as_of_us));
    PAYCORE_RETURN_IF_ERROR(store->write(job, ArchivePosition{end, lsn, as_of_us, ++jobs}));
  }
  return Status::ok();
}

}  // namespace

StatusOr<GenTierResult> archive_generated(const StateGenOptions& options, std::uint32_t percent,
                                          const std::string& archive_dir, State* state,
                                          std::uint64_t commands_count, std::int64_t last_timestamp_us) {
  PAYCORE_ASSERT(state->payments.begin() == 0);
  PAYCORE_ASSERT_LE(percent, 100u);
  GenTierResult tier;
  tier.commands_count = commands_count;
  tier.last_timestamp_us = last_timestamp_us;
  const std::int64_t day_us = options.cutoff_us() - options.start_us;
  const std::int64_t horizon_us = options.start_us + day_us / 100 * percent;
  Command retention;
  retention.kind = CommandKind::tick;
  retention.pending_lifetime_us = state->pending_lifetime_us;
  retention.expire_max = std::numeric_limits<std::uint32_t>::max();  // one tick for all of it
  retention.idempotency_retention_us = std::max<std::int64_t>(1, last_timestamp_us + 1 - horizon_us);
  const std::int64_t as_of_us = apply_engine_command(state, retention, &tier);
  // Rows are in creation order: the archive gets every payment created before the horizon.
  std::uint32_t rows_end = 0;
  while (rows_end < state->payments.size() && state->payments[rows_end].created_at_us < horizon_us) {
    ++rows_end;
  }
  ArchiveOptions store_options;
  store_options.dir = archive_dir;
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(store_options);
  if (!store.is_ok()) return store.status();
  PAYCORE_RETURN_IF_ERROR(write_archive(*state, rows_end, as_of_us, tier.commands_count, store->get()));
  tier.archived_count = rows_end;
  Command evict;
  evict.kind = CommandKind::archive_payments;
  evict.archive_rows_end = rows_end;
  evict.archive_as_of_us = as_of_us;
  apply_engine_command(state, evict, &tier);
  return tier;
}

}  // namespace paycore::recon
