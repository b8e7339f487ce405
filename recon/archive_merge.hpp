#pragma once
// The snapshot loader's halves (recon/snapshot_loader.hpp): memory's payments into a LocalData,
// and the archive's payments merged with them (docs/recon.md "Cold payments").

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/status.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "core/state.hpp"
#include "recon/local.hpp"
#include "recon/snapshot_loader.hpp"

namespace paycore::recon {

// The archive's refunds of the memory rows that came back from it (payment_flag_from_archive),
// by payment row: memory holds only the refunds made after the payment came back.
using ArchivedRefunds = std::unordered_map<std::uint32_t, std::vector<RefundView>>;

// Adds every payment row in memory, in row order. A row back from the archive gets
// `archived`'s refunds for it (if any), then its own whose request_id they do not have.
void add_memory_payments(const State& state, std::int64_t as_of_us, const ArchivedRefunds* archived,
                         LocalData* local);

// Adds the kept notification anomalies.
void add_anomalies(const State& state, LocalData* local);

// The LocalData of `state` (loaded from a snapshot with header `info`) and the archive at
// sources.archive_dir: see load_local_data(const LocalSources&).
[[nodiscard]] StatusOr<LocalData> local_data_with_archive(const State& state, const SnapshotInfo& info,
                                                          const LocalSources& sources,
                                                          std::int64_t as_of_us);

}  // namespace paycore::recon
