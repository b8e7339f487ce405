#pragma once
// The snapshot file (core/snapshot.hpp) as the reconciliation job sees it: a State is loaded and
// validated by the core's own reader, then copied into a LocalData (payments with their channel
// name, status and refunds; kept notification anomalies with their reason). The State is freed
// before the job runs, so the peak is the file's bytes plus the State plus the LocalData.
//
// A snapshot of format 3 holds only the hot payments; the cold ones are in the archive
// (docs/design.md "Hot and cold", docs/recon.md "Cold payments"): load_local_data with an
// archive adds the archived payments created in the window, memory's row winning for a payment
// held by both, and a payment back from the archive getting the archive's earlier refunds.

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.hpp"
#include "recon/local.hpp"
#include "core/snapshot.hpp"
#include "core/state.hpp"

namespace paycore::recon {

// The two enumerations name the same statuses; the core's values are on disk (1..7), the
// job's are dense from 0.
PaymentStatus local_status_from_core(paycore::PaymentStatus status);

// The status a reader of the state sees at `as_of_us` (core/apply.hpp effective_status: a
// PENDING payment past its lifetime reads CANCELLED), in the recon enumeration.
PaymentStatus local_status_of(const State& state, const PaymentRow& payment, std::int64_t as_of_us);

// Copies `state` into a LocalData (reserve first, then one add_payment per payment row in
// insertion order with its refunds in the order they were made, then the anomalies).
LocalData local_data_from_state(const State& state, std::int64_t as_of_us);

// The moment a snapshot describes: the later of its creation time and its newest command.
// PENDING payments are judged at this moment (a live server would answer CANCELLED for an
// expired one, and a replayed notification could no longer settle it).
std::int64_t snapshot_as_of_us(const SnapshotInfo& info);

// The snapshot of `sources` and the archived payments created since `archive_from_us`, merged:
// one LocalPayment per (merchant_id, order_id), memory's fields winning; a payment back from the
// archive (payment_flag_from_archive) has the archive's refunds followed by memory's that the
// archive lacks (by request_id). Errors: the snapshot's as load_local_data(path); the snapshot
// has archived rows and no archive is given (kInvalidArgument: a day's recon must not silently
// miss cold payments); the archive missing (kNotFound), behind the snapshot (kCorruption: its
// position holds fewer rows than memory gave up) or damaged (kCorruption naming the key); every
// archive message names its directory.
[[nodiscard]] StatusOr<LocalData> load_local_data(const LocalSources& sources,
                                                  SnapshotInfo* info = nullptr);

// Reads, checks and converts a snapshot file. An error ("FILE: what, at offset N"; kIoError
// when it cannot be read, kCorruption when it is damaged) otherwise. *info (if given) gets the
// header. The snapshot alone: refused as above when it has archived rows.
[[nodiscard]] StatusOr<LocalData> load_local_data(const std::string& path,
                                                  SnapshotInfo* info = nullptr);

}  // namespace paycore::recon
