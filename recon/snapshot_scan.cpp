#include "recon/snapshot_scan.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "base/assert.hpp"
#include "base/mapped_file.hpp"
#include "core/id.hpp"
#include "core/model.hpp"
#include "core/snapshot_format.hpp"
#include "core/state.hpp"
#include "recon/snapshot_loader.hpp"

namespace paycore::recon {
namespace {

// Bounded little-endian reads; the first failure is kept with its offset and every later read
// returns zeros, so that a record is read whole and checked once.
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> in) : in_(in) {}

  bool fail(std::string_view what) {
    if (error_.empty()) error_ = std::string(what) + " at offset " + std::to_string(at_);
    return false;
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t offset() const { return at_; }

  template <class T>
  T le() {
    if (!ok() || in_.size() - at_ < sizeof(T)) {
      fail("unexpected end of snapshot");
      return T{};
    }
    std::make_unsigned_t<T> u = 0;
    std::memcpy(&u, in_.data() + at_, sizeof(T));  // little-endian hosts only (static_assert below)
    at_ += sizeof(T);
    return static_cast<T>(u);
  }
  std::uint8_t u8() { return le<std::uint8_t>(); }
  std::string_view text(bool may_be_empty) {
    const std::uint8_t size = u8();
    if (!ok() || in_.size() - at_ < size) {
      fail("unexpected end of snapshot");
      return {};
    }
    const std::string_view t(reinterpret_cast<const char*>(in_.data() + at_), size);
    if (!(size == 0 && may_be_empty) && !id_is_valid(t)) {
      fail("invalid identifier");
      return {};
    }
    at_ += size;
    return t;
  }
  void skip_text() {
    const std::uint8_t size = u8();
    skip(size);
  }
  void skip(std::size_t size) {
    if (!ok() || in_.size() - at_ < size) {
      fail("unexpected end of snapshot");
      return;
    }
    at_ += size;
  }
  Currency ccy() {
    if (!ok() || in_.size() - at_ < 3) {
      fail("unexpected end of snapshot");
      return {};
    }
    const auto c = currency_from_code(std::string_view(reinterpret_cast<const char*>(in_.data() + at_), 3));
    if (!c) {
      fail("unknown currency");
      return {};
    }
    at_ += 3;
    return *c;
  }
  bool section(std::uint32_t tag, std::uint64_t rows) {
    const auto t = le<std::uint32_t>();
    const auto zero = le<std::uint32_t>();
    const auto n = le<std::uint64_t>();
    if (!ok()) return false;
    if (t != tag) return fail("unexpected section tag");
    if (zero != 0) return fail("non-zero reserved field in section header");
    if (n != rows) return fail("section row count differs from header");
    return true;
  }

 private:
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
  std::string error_;
};

static_assert(std::endian::native == std::endian::little, "the snapshot is little-endian");

bool is_v1(const SnapshotInfo& info) { return info.format_version == snapshot::format_version_v1; }
bool is_v3(const SnapshotInfo& info) { return info.format_version >= snapshot::format_version; }

// What the payments refer to: channel names and account ids, kept once in the LocalData.
struct Names {
  std::vector<std::string_view> channels;
  std::vector<std::string_view> accounts;
};

bool read_channels(Cursor& c, const SnapshotInfo& info, LocalData* local, Names* names) {
  if (!c.section(snapshot::tag_channels, info.channels)) return false;
  for (std::uint32_t i = 0; i < info.channels; ++i) {
    const std::string_view name = c.text(false);
    if (!c.ok()) return false;
    names->channels.push_back(local->intern(name));
  }
  return true;
}

bool skip_system_and_principals(Cursor& c, const SnapshotInfo& info) {
  if (!c.section(snapshot::tag_system, info.system_balances)) return false;
  c.skip(std::size_t{info.system_balances} * (4 + 3 + 8));
  if (!c.section(snapshot::tag_principals, info.principals)) return false;
  for (std::uint32_t i = 0; i < info.principals && c.ok(); ++i) c.skip_text();
  return c.ok();
}

bool read_accounts(Cursor& c, const SnapshotInfo& info, LocalData* local, Names* names) {
  if (!c.section(snapshot::tag_accounts, info.accounts)) return false;
  names->accounts.reserve(info.accounts);
  for (std::uint32_t i = 0; i < info.accounts; ++i) {
    const std::string_view id = c.text(false);
    c.skip(1 + 3 + 8 + 8 + 8);  // kind, currency, balance, created, updated
    if (!c.ok()) return false;
    names->accounts.push_back(local->intern(id));
  }
  return true;
}

bool skip_mandates(Cursor& c, const SnapshotInfo& info) {
  if (is_v1(info)) return true;  // none before version 2
  if (!c.section(snapshot::tag_mandates, info.mandates)) return false;
  for (std::uint32_t i = 0; i < info.mandates && c.ok(); ++i) {
    c.skip_text();
    c.skip(4 + 4 + 8 + 8 + 1 + 1 + 8 + 8);
  }
  return c.ok();
}

// The status a reader sees at `as_of_us` (core/apply.hpp effective_status).
PaymentStatus status_at(std::uint8_t stored, std::int64_t created_at_us, const SnapshotInfo& info,
                        std::int64_t as_of_us) {
  const auto status = static_cast<paycore::PaymentStatus>(stored);
  if (status == paycore::PaymentStatus::pending && created_at_us + info.pending_lifetime_us <= as_of_us) {
    return PaymentStatus::cancelled;
  }
  return local_status_from_core(status);
}

struct PaymentScan {
  const SnapshotInfo& info;
  const Names& names;
  std::int64_t as_of_us;
  std::uint64_t refunds_left;
  std::vector<LocalRefund> refunds;  // one payment's, reused
};

bool read_refunds(Cursor& c, PaymentScan& scan, std::uint32_t count, Amount* sum) {
  if (count > scan.refunds_left) return c.fail("more refunds than the header counts");
  scan.refunds_left -= count;
  scan.refunds.clear();
  for (std::uint32_t k = 0; k < count; ++k) {
    LocalRefund r;
    r.request_id = c.text(false);
    r.amount = c.le<std::int64_t>();
    r.at_us = c.le<std::int64_t>();
    if (!c.ok()) return false;
    if (r.amount <= 0 || !checked_add(*sum, r.amount, sum)) return c.fail("bad refund amount");
    scan.refunds.push_back(r);
  }
  return true;
}

bool read_payment(Cursor& c, PaymentScan& scan, LocalData* local) {
  LocalPayment p;
  const std::uint32_t merchant = c.le<std::uint32_t>();
  p.order_id = c.text(false);
  p.request_id = c.text(false);
  const std::uint8_t channel = c.u8();
  c.skip(is_v1(scan.info) ? 4 : 8);  // payer, mandate
  p.amount = c.le<std::int64_t>();
  p.refunded_amount = c.le<std::int64_t>();
  p.currency = c.ccy();
  const std::uint8_t status = c.u8();
  p.channel_txn_id = c.text(true);
  p.created_at_us = c.le<std::int64_t>();
  p.updated_at_us = c.le<std::int64_t>();
  const std::uint8_t flags = is_v3(scan.info) ? c.u8() : 0;
  const std::uint32_t refund_count = c.le<std::uint32_t>();
  if (!c.ok()) return false;
  if (merchant >= scan.names.accounts.size()) return c.fail("payment of an unknown merchant account");
  if (channel >= scan.names.channels.size()) return c.fail("payment through an unknown channel");
  if (p.amount <= 0 || p.refunded_amount < 0 || p.refunded_amount > p.amount) return c.fail("bad payment amounts");
  if (!payment_status_is_valid(status)) return c.fail("bad payment status");
  if ((flags & ~payment_flag_from_archive) != 0) return c.fail("bad payment flags");
  Amount refunded = 0;
  if (!read_refunds(c, scan, refund_count, &refunded)) return false;
  // A payment back from the archive holds only its later refunds; the rest are archived.
  const bool from_archive = (flags & payment_flag_from_archive) != 0;
  if (from_archive ? refunded > p.refunded_amount : refunded != p.refunded_amount)
    return c.fail("refunds do not add up to the refunded amount");
  p.merchant_id = scan.names.accounts[merchant];
  p.channel = scan.names.channels[channel];
  p.status = status_at(status, p.created_at_us, scan.info, scan.as_of_us);
  local->add_payment_interned(p, scan.refunds);
  return true;
}

bool read_payments(Cursor& c, const SnapshotInfo& info, const Names& names, std::int64_t as_of_us,
                   LocalData* local, MappedFile* file) {
  if (!c.section(snapshot::tag_payments, info.payments - info.payments_begin)) return false;
  PaymentScan scan{info, names, as_of_us, info.refunds, {}};
  constexpr std::uint32_t drop_every_rows = 1u << 16;
  for (std::uint32_t i = info.payments_begin; i < info.payments; ++i) {
    if (!read_payment(c, scan, local)) return false;
    if ((i & (drop_every_rows - 1)) == 0) file->drop_below(c.offset());
  }
  if (scan.refunds_left != 0) return c.fail("refund count differs from header");
  return true;
}

// Idempotency records: recon needs none, but they lie between the payments and the anomalies.
bool skip_idempotency(Cursor& c, const SnapshotInfo& info) {
  if (!c.section(snapshot::tag_idempotency, info.idempotency - info.idempotency_begin)) return false;
  const std::size_t after_request = 1 + 1 + (is_v1(info) ? 0 : 1) + 8 + 4 + (is_v3(info) ? 8 : 0);
  for (std::uint32_t i = info.idempotency_begin; i < info.idempotency && c.ok(); ++i) {
    c.skip(4);
    c.skip_text();
    c.skip(after_request);
  }
  return c.ok();
}

bool read_anomalies(Cursor& c, const SnapshotInfo& info, const Names& names, LocalData* local) {
  if (!c.section(snapshot::tag_anomalies, info.anomalies)) return false;
  for (std::uint32_t i = 0; i < info.anomalies; ++i) {
    LocalAnomaly a;
    const std::uint8_t channel = c.u8();
    a.channel_txn_id = c.text(false);
    a.merchant_id = c.text(false);
    a.order_id = c.text(false);
    a.amount = c.le<std::int64_t>();
    a.currency = c.ccy();
    const std::uint8_t status = c.u8();
    const std::uint8_t reason = c.u8();
    a.paid_at_us = c.le<std::int64_t>();
    c.skip(8);  // received_at_us
    if (!c.ok()) return false;
    if (channel == 0 || channel >= names.channels.size()) return c.fail("anomaly of an unknown channel");
    if (!notification_status_is_valid(status) || !anomaly_reason_is_valid(reason))
      return c.fail("bad anomaly enum");
    a.channel = names.channels[channel];
    a.status = to_string(static_cast<NotificationStatus>(status));
    a.reason = to_string(static_cast<AnomalyReason>(reason));
    local->add_anomaly(a);
  }
  return true;
}

bool scan_sections(Cursor& c, const SnapshotInfo& info, std::int64_t as_of_us, LocalData* local,
                   MappedFile* file) {
  Names names;
  c.skip(snapshot::header_bytes);  // check_snapshot read it
  return read_channels(c, info, local, &names) && skip_system_and_principals(c, info) &&
         read_accounts(c, info, local, &names) && skip_mandates(c, info) &&
         read_payments(c, info, names, as_of_us, local, file) && skip_idempotency(c, info) &&
         read_anomalies(c, info, names, local);
}

// The checks of check_snapshot that need only the file's two ends (size, magic, the header's
// own checksum and fields, the trailer's magic), through check_snapshot itself, without the
// content checksum over every byte: that one runs beside the decoding (check_content).
// check_snapshot is given the real header and a trailer made for it; a file too short or
// without its trailer is given whole, and fails before any hashing with the same message.
Status check_ends(std::span<const std::byte> bytes, SnapshotInfo* info) {
  const std::size_t ends_bytes = snapshot::header_bytes + snapshot::trailer_bytes;
  if (bytes.size() < ends_bytes ||
      std::memcmp(bytes.data() + bytes.size() - snapshot::trailer_bytes, snapshot::trailer_magic,
                  sizeof(snapshot::trailer_magic)) != 0) {
    return check_snapshot(bytes, info);
  }
  std::array<std::byte, ends_bytes> image{};
  std::memcpy(image.data(), bytes.data(), snapshot::header_bytes);
  const XXH128_hash_t digest = XXH3_128bits(image.data(), snapshot::header_bytes);
  std::byte* trailer = image.data() + snapshot::header_bytes;
  std::memcpy(trailer, snapshot::trailer_magic, sizeof(snapshot::trailer_magic));
  std::memcpy(trailer + 8, &digest.low64, 8);
  std::memcpy(trailer + 16, &digest.high64, 8);
  PAYCORE_RETURN_IF_ERROR(check_snapshot(image, info));
  const std::byte* stored = bytes.data() + bytes.size() - snapshot::trailer_bytes + 8;
  std::memcpy(&info->checksum_low, stored, 8);
  std::memcpy(&info->checksum_high, stored + 8, 8);
  return Status::ok();
}

// The trailer's xxHash3-128 of every byte before it, as check_snapshot computes it, but read
// with pread on a descriptor of its own: no mapping, so it adds nothing to the peak RSS, and it
// can run on the second core while the first decodes.
Status check_content(const std::string& path, std::size_t trailer_at, const SnapshotInfo& info) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(errno_status("open " + path, errno).message());
  XXH3_state_t* state = XXH3_createState();
  PAYCORE_ASSERT(state != nullptr);
  (void)XXH3_128bits_reset(state);
  constexpr std::size_t block_bytes = std::size_t{4} << 20;
  std::vector<std::byte> block(block_bytes);
  Status status = Status::ok();
  for (std::size_t at = 0; at < trailer_at && status.is_ok();) {
    const ssize_t got = ::pread(fd, block.data(), std::min(block_bytes, trailer_at - at),
                                static_cast<off_t>(at));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      status = Status::io_error(errno_status("read " + path, got < 0 ? errno : EIO).message());
      break;
    }
    (void)XXH3_128bits_update(state, block.data(), static_cast<std::size_t>(got));
    at += static_cast<std::size_t>(got);
  }
  const XXH128_hash_t digest = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  ::close(fd);
  if (!status.is_ok()) return status;
  if (digest.low64 != info.checksum_low || digest.high64 != info.checksum_high) {
    return Status::corruption("content checksum mismatch (trailer at offset " +
                              std::to_string(trailer_at) + ")");
  }
  return Status::ok();
}

// Faults in memory the decoding is about to fill (LocalData::unused_reserve), ahead of it:
// the whole pages of each range (madvise wants a page-aligned start; the decoding faults the
// partial ones itself).
void populate_memory(const std::vector<std::span<std::byte>>& ranges) {
  const std::uintptr_t page_bytes = 4096;
  for (const std::span<std::byte> range : ranges) {
    const auto begin = reinterpret_cast<std::uintptr_t>(range.data());
    const std::uintptr_t first = (begin + page_bytes - 1) & ~(page_bytes - 1);
    const std::uintptr_t last = (begin + range.size()) & ~(page_bytes - 1);
    if (last <= first) continue;
    // Advice only: on a kernel without MADV_POPULATE_WRITE (5.14) the decoding faults them.
    (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
  }
}

}  // namespace

StatusOr<LocalData> scan_snapshot(const std::string& path, SnapshotInfo* info) {
  MappedFile file;
  PAYCORE_RETURN_IF_ERROR(file.open(path));
  if (const Status ends = check_ends(file.bytes(), info); !ends.is_ok()) {
    return Status::corruption(ends.message());
  }
  // The decoding gives the mapping's pages back as it goes while the LocalData grows, so the
  // peak is about the LocalData, not the file plus the LocalData.
  LocalData local;
  local.reserve(info->payments - info->payments_begin, info->refunds);
  // The second core faults in the tables and checks the content checksum meanwhile; a damaged
  // file is then refused by the checksum, whatever the decoding made of it.
  const std::size_t trailer_at = file.bytes().size() - snapshot::trailer_bytes;
  Status content = Status::ok();
  std::jthread helper([&content, &path, trailer_at, info, ranges = local.unused_reserve()] {
    populate_memory(ranges);
    content = check_content(path, trailer_at, *info);
  });
  Cursor c(file.bytes().first(trailer_at));
  const bool decoded = scan_sections(c, *info, snapshot_as_of_us(*info), &local, &file);
  helper.join();
  PAYCORE_RETURN_IF_ERROR(content);
  if (!decoded) return Status::corruption(c.error());
  return local;
}

}  // namespace paycore::recon
