#pragma once
// The snapshot read straight into recon's LocalData (issue 12, "Recon and recovery at the speed of
// the disk"): recon needs the payments, their refunds, the channel names, the merchants' ids and
// the anomalies — not a core State with its hash indexes, idempotency records, mandates, pending
// queue and filter. The file is mapped, its header is checked by the core's check_snapshot, and
// then each section is decoded once, in order, into tables sized from the header's counts; the
// sections recon does not use are stepped over (IDEM by its records' lengths, the rest not at all
// once ANOM is read). Meanwhile a second thread faults the tables in and checks the trailer's
// checksum; a mismatch is the error, whatever the decoding said.
//
// What is checked (every read is bounded; an error names the byte offset): section tags and row
// counts, ids, currencies, payment statuses and flags, rows that refer to channels and accounts
// in range, amounts, refund counts and that a payment's refunds add up (up to its refunded amount
// for one back from the archive). What is not (the core's reader does, recon does not rely on
// it): duplicate ids, mandates, idempotency records' contents, balances summing to zero. The
// trailer's xxHash3-128 covers every byte, so only a writer's bug could produce those.

#include <string>

#include "base/status.hpp"
#include "core/snapshot.hpp"
#include "recon/local.hpp"

namespace paycore::recon {

// The hot payments and anomalies of the snapshot at `path` (format versions 1 to 3), as
// load_local_data copies them from a State: payments in row order with their refunds, PENDING
// ones past their lifetime at the snapshot's moment read CANCELLED. `*info` gets the header.
// Errors: kIoError naming the file when it cannot be opened or mapped; kCorruption "what at
// offset N" when it is damaged.
[[nodiscard]] StatusOr<LocalData> scan_snapshot(const std::string& path, SnapshotInfo* info);

}  // namespace paycore::recon
