// Snapshot reader. Input: byte 0 says whether to repair the checksums, the rest is the file.
// With repair (bit 0 set) the header magic, header checksum and trailer (magic + xxHash3-128)
// are recomputed over the mutated bytes before loading: without it nearly every mutation stops
// at the checksum, and the section parsers behind it would never see a byte of fuzzed input.
// Properties: no crash, no sanitizer report, no exception; a snapshot that loads passes
// check_snapshot, and serializing the loaded state again gives exactly the same bytes (the
// writer is deterministic and the reader loses nothing). An older format (1: before mandates,
// 2: before the cold tier) is written again as the current one: that one then reloads and
// re-serializes to the same bytes.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <xxhash.h>

#include "fuzz_target.hpp"
#include "core/snapshot.hpp"
#include "core/snapshot_format.hpp"

namespace {

void store_le64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}

void repair_checksums(std::vector<std::byte>* file) {
  namespace fmt = paycore::snapshot;
  if (file->size() < fmt::header_bytes + fmt::trailer_bytes) return;
  std::byte* p = file->data();
  std::memcpy(p, fmt::magic, sizeof fmt::magic);
  store_le64(p + fmt::header_checksum_offset, XXH3_64bits(p, fmt::header_checksum_offset));
  const std::size_t trailer_at = file->size() - fmt::trailer_bytes;
  std::memcpy(p + trailer_at, fmt::trailer_magic, sizeof fmt::trailer_magic);
  const XXH128_hash_t digest = XXH3_128bits(p, trailer_at);
  store_le64(p + trailer_at + 8, digest.low64);
  store_le64(p + trailer_at + 16, digest.high64);
}

}  // namespace

PAYCORE_FUZZ_TARGET(snapshot) {
  using namespace paycore;
  if (size == 0) return 0;
  const auto in = fuzz::as_bytes(data + 1, size - 1);
  std::vector<std::byte> file(in.begin(), in.end());
  if ((data[0] & 1) != 0) repair_checksums(&file);

  State state(StateConfig{.accounts_expected = 16, .payments_expected = 16, .idempotency_expected = 16});
  SnapshotInfo info;
  if (const Status loaded = load_snapshot(file, &state, &info); !loaded.is_ok()) {
    FUZZ_CHECK(snapshot, !loaded.message().empty());
    return 0;
  }
  SnapshotInfo checked;
  FUZZ_CHECK(snapshot, check_snapshot(file, &checked).is_ok());
  FUZZ_CHECK(snapshot, checked.lsn == info.lsn && checked.accounts == info.accounts &&
                           checked.payments == info.payments);
  FUZZ_CHECK(snapshot, state.balances_sum_to_zero_slow());
  const std::string again = serialize_snapshot(state, info.lsn, info.created_at_us);
  if (info.format_version != snapshot::format_version) {
    State reloaded(StateConfig{.accounts_expected = 16, .payments_expected = 16, .idempotency_expected = 16});
    SnapshotInfo info2;
    FUZZ_CHECK(snapshot, load_snapshot(std::as_bytes(std::span(again)), &reloaded, &info2).is_ok());
    FUZZ_CHECK(snapshot, info2.format_version == snapshot::format_version);
    FUZZ_CHECK(snapshot, serialize_snapshot(reloaded, info.lsn, info.created_at_us) == again);
    return 0;
  }
  FUZZ_CHECK(snapshot, again.size() == file.size());
  FUZZ_CHECK(snapshot, std::memcmp(again.data(), file.data(), file.size()) == 0);
  return 0;
}
