// Reading snapshots (layout: snapshot_format.hpp): every count, reference, enum and id is
// checked, and an error names the byte offset where the file went wrong. Inside this file a
// Decoder records the first failure (bool returns keep the section parsers short); the public
// functions return it as a Status.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <xxhash.h>

#include "base/assert.hpp"
#include "result.hpp"
#include "snapshot.hpp"
#include "snapshot_format.hpp"

namespace paycore {

// ---- Reading ---------------------------------------------------------------------------------

namespace {

class Decoder {
 public:
  Decoder(std::span<const std::byte> in, std::string* error) : in_(in), error_(error) {}

  bool fail(std::string_view what) {
    if (ok_) {
      *error_ = std::string(what) + " at offset " + std::to_string(at_);
      ok_ = false;
    }
    return false;
  }
  bool ok() const { return ok_; }
  std::size_t offset() const { return at_; }
  // Steps over `size` bytes the caller has read in place (checked to be there).
  void skip(std::size_t size) {
    PAYCORE_ASSERT_LE(size, in_.size() - at_);
    at_ += size;
  }

  bool raw(void* out, std::size_t size) {
    if (!ok_) return false;
    if (in_.size() - at_ < size) return fail("unexpected end of snapshot");
    std::memcpy(out, in_.data() + at_, size);
    at_ += size;
    return true;
  }
  template <class T>
  T le() {
    unsigned char b[sizeof(T)] = {};
    raw(b, sizeof(T));
    std::make_unsigned_t<T> u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      u = static_cast<std::make_unsigned_t<T>>(u | static_cast<std::make_unsigned_t<T>>(b[i])
                                                       << (8 * i));
    }
    return static_cast<T>(u);
  }
  std::uint8_t u8() { return le<std::uint8_t>(); }
  // An id (or, when allowed, an empty string).
  std::string_view id(bool may_be_empty = false) {
    const std::uint8_t size = u8();
    if (!ok_) return {};
    if (in_.size() - at_ < size) {
      fail("unexpected end of snapshot");
      return {};
    }
    const std::string_view text(reinterpret_cast<const char*>(in_.data() + at_), size);
    if (!(size == 0 && may_be_empty) && !id_is_valid(text)) {
      fail("invalid identifier");
      return {};
    }
    at_ += size;
    return text;
  }
  Currency ccy() {
    char code[3] = {};
    raw(code, 3);
    if (!ok_) return {};
    const auto c = currency_from_code(std::string_view(code, 3));
    if (!c) {
      fail("unknown currency");
      return {};
    }
    return *c;
  }
  bool section(std::uint32_t expected_tag, std::uint64_t expected_rows) {
    const auto t = le<std::uint32_t>();
    const auto zero = le<std::uint32_t>();
    const auto rows = le<std::uint64_t>();
    if (!ok_) return false;
    if (t != expected_tag) return fail("unexpected section tag");
    if (zero != 0) return fail("non-zero reserved field in section header");
    if (rows != expected_rows) return fail("section row count differs from header");
    return true;
  }

 private:
  std::span<const std::byte> in_;
  std::string* error_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

bool is_v3(const SnapshotInfo& info) { return info.format_version >= snapshot::format_version; }
bool is_v1(const SnapshotInfo& info) { return info.format_version == snapshot::format_version_v1; }

// The header's version 3 fields (the cold tier) and the reserved bytes after them.
bool parse_header_tail(Decoder& d, SnapshotInfo* info) {
  const bool v1 = is_v1(*info);
  if (!v1) info->mandates = d.le<std::uint32_t>();
  if (is_v3(*info)) {
    info->payments_begin = d.le<std::uint32_t>();
    info->idempotency_begin = d.le<std::uint32_t>();
    info->archived_rows_end = d.le<std::uint32_t>();
    info->idempotency_horizon_us = d.le<std::int64_t>();
  }
  const std::size_t reserved_bytes = v1 ? 32 : is_v3(*info) ? 8 : 28;
  char reserved[32];
  d.raw(reserved, reserved_bytes);
  for (std::size_t i = 0; i < reserved_bytes; ++i) {
    if (reserved[i] != 0 && d.ok()) return d.fail("non-zero reserved header bytes");
  }
  return d.ok();
}

bool parse_header(Decoder& d, SnapshotInfo* info, std::uint32_t* expiry_cursor) {
  char m[8];
  if (!d.raw(m, 8)) return false;
  if (std::memcmp(m, snapshot::magic, 8) != 0) return d.fail("not a paycore snapshot (bad magic)");
  info->format_version = d.le<std::uint32_t>();
  if (d.ok() && info->format_version != snapshot::format_version &&
      info->format_version != snapshot::format_version_v2 &&
      info->format_version != snapshot::format_version_v1) {
    return d.fail("unsupported snapshot format version " + std::to_string(info->format_version));
  }
  if (d.le<std::uint32_t>() != snapshot::header_bytes && d.ok()) return d.fail("bad header size");
  info->lsn = d.le<std::uint64_t>();
  info->created_at_us = d.le<std::int64_t>();
  info->last_timestamp_us = d.le<std::int64_t>();
  info->pending_lifetime_us = d.le<std::int64_t>();
  *expiry_cursor = d.le<std::uint32_t>();
  info->channels = d.le<std::uint32_t>();
  info->accounts = d.le<std::uint32_t>();
  info->payments = d.le<std::uint32_t>();
  info->refunds = d.le<std::uint32_t>();
  info->idempotency = d.le<std::uint32_t>();
  info->anomalies = d.le<std::uint32_t>();
  info->principals = d.le<std::uint32_t>();
  info->pending = d.le<std::uint32_t>();
  info->system_balances = d.le<std::uint32_t>();
  // Version 1 had no mandates: its bytes 88..91 are part of the reserved (zero) area.
  if (!parse_header_tail(d, info)) return false;
  d.le<std::uint64_t>();  // header checksum: verified by check_snapshot
  if (!d.ok()) return false;
  info->expiry_cursor = *expiry_cursor;
  if (info->channels == 0 || info->channels > channels_max) return d.fail("bad channel count");
  if (info->pending_lifetime_us <= 0) return d.fail("bad pending lifetime");
  if (*expiry_cursor > info->pending) return d.fail("expiry cursor past the pending queue");
  if (info->payments_begin > info->payments) return d.fail("payments begin past their end");
  if (info->idempotency_begin > info->idempotency)
    return d.fail("idempotency begin past its end");
  if (info->archived_rows_end < info->payments_begin)
    return d.fail("payments left memory that the archive does not hold");
  return true;
}

bool parse_channels(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_channels, info.channels)) return false;
  for (std::uint32_t i = 0; i < info.channels; ++i) {
    const std::string_view name = d.id();
    if (!d.ok()) return false;
    if (i == 0) {
      if (name != channel_name_balance) return d.fail("channel row 0 must be \"balance\"");
      continue;
    }
    if (s->find_channel(name) != row_none) return d.fail("duplicate channel");
    s->add_channel(name);
  }
  return true;
}

bool parse_system(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_system, info.system_balances)) return false;
  for (std::uint32_t i = 0; i < info.system_balances; ++i) {
    const auto channel = d.le<std::uint32_t>();
    const Currency ccy = d.ccy();
    const auto balance = d.le<std::int64_t>();
    if (!d.ok()) return false;
    if (channel >= s->channels.size()) return d.fail("system balance of an unknown channel");
    Amount& slot = channel == 0 ? s->external_balance(ccy) : s->channel_balance(channel, ccy);
    if (slot != 0) return d.fail("duplicate system balance");
    slot = balance;
  }
  return true;
}

bool parse_principals(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_principals, info.principals)) return false;
  for (std::uint32_t i = 0; i < info.principals; ++i) {
    const std::string_view id = d.id();
    if (!d.ok()) return false;
    if (s->find_principal(id) != row_none) return d.fail("duplicate principal");
    s->add_principal(id);
  }
  return true;
}

bool parse_accounts(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_accounts, info.accounts)) return false;
  for (std::uint32_t i = 0; i < info.accounts; ++i) {
    const std::string_view id = d.id();
    AccountRow a;
    const std::uint8_t kind = d.u8();
    a.currency = d.ccy();
    a.balance = d.le<std::int64_t>();
    a.created_at_us = d.le<std::int64_t>();
    a.updated_at_us = d.le<std::int64_t>();
    if (!d.ok()) return false;
    if (!account_kind_is_valid(kind)) return d.fail("bad account kind");
    if (s->find_account(id) != row_none) return d.fail("duplicate account");
    a.kind = static_cast<AccountKind>(kind);
    const bool id_copied = Id::from(id, &a.id);
    PAYCORE_ASSERT(id_copied);  // d.id() validated it
    s->add_account(a);
  }
  return true;
}

// Whether `row` is a live row of the table an idempotency record of `kind` refers to.
bool is_resource_row(const State& s, CommandKind kind, std::uint32_t row) {
  switch (kind) {
    case CommandKind::open_account:
    case CommandKind::deposit: return row < s.accounts.size();
    case CommandKind::create_mandate:
    case CommandKind::revoke_mandate: return row < s.mandates.size();
    default: return row >= s.payments.begin() && row < s.payments.size();
  }
}

bool parse_mandates(Decoder& d, const SnapshotInfo& info, State* s) {
  if (info.format_version == snapshot::format_version_v1) return true;  // none before v2
  if (!d.section(snapshot::tag_mandates, info.mandates)) return false;
  for (std::uint32_t i = 0; i < info.mandates; ++i) {
    MandateRow m;
    const std::string_view id = d.id();
    m.payer = d.le<std::uint32_t>();
    m.merchant = d.le<std::uint32_t>();
    m.amount_max = d.le<std::int64_t>();
    m.expires_at_us = d.le<std::int64_t>();
    const std::uint8_t status = d.u8();
    const std::uint8_t single_use = d.u8();
    m.created_at_us = d.le<std::int64_t>();
    m.updated_at_us = d.le<std::int64_t>();
    if (!d.ok()) return false;
    if (m.payer >= s->accounts.size()) return d.fail("mandate of an unknown payer");
    if (s->accounts[m.payer].kind != AccountKind::customer)
      return d.fail("mandate's payer is not a customer");
    if (m.merchant >= s->principals.size()) return d.fail("mandate of an unknown merchant");
    if (m.amount_max <= 0 || m.expires_at_us < 0) return d.fail("bad mandate amount or expiry");
    if (!mandate_status_is_stored(status) || single_use > 1) return d.fail("bad mandate enum");
    if (s->find_mandate(id) != row_none) return d.fail("duplicate mandate");
    m.status = static_cast<MandateStatus>(status);
    m.single_use = single_use == 1;
    m.mandate_id = s->intern(id);
    std::uint32_t previous = row_none;
    s->add_mandate(m, &previous);
  }
  return true;
}

bool parse_payment(Decoder& d, const SnapshotInfo& info, State* s) {
  PaymentRow p;
  p.merchant = d.le<std::uint32_t>();
  const std::string_view order = d.id();
  const std::string_view request = d.id();
  p.channel = d.u8();
  p.payer = d.le<std::uint32_t>();
  if (!is_v1(info)) p.mandate = d.le<std::uint32_t>();
  p.amount = d.le<std::int64_t>();
  p.refunded_amount = d.le<std::int64_t>();
  p.currency = d.ccy();
  const std::uint8_t status = d.u8();
  const std::string_view txn = d.id(true);
  p.created_at_us = d.le<std::int64_t>();
  p.updated_at_us = d.le<std::int64_t>();
  if (is_v3(info)) p.flags = d.u8();
  const auto refund_count = d.le<std::uint32_t>();
  if (!d.ok()) return false;
  if (p.merchant >= s->accounts.size()) return d.fail("payment of an unknown merchant account");
  if (p.channel >= s->channels.size()) return d.fail("payment through an unknown channel");
  if ((p.channel == 0) != (p.payer != snapshot::row_none_on_disk))
    return d.fail("payer does not fit the channel");
  if (p.payer != snapshot::row_none_on_disk && p.payer >= s->accounts.size())
    return d.fail("payment from an unknown payer");
  if (p.mandate != snapshot::row_none_on_disk) {
    if (p.channel != 0) return d.fail("mandate on an external channel payment");
    if (p.mandate >= s->mandates.size()) return d.fail("payment under an unknown mandate");
    if (s->mandates[p.mandate].payer != p.payer)
      return d.fail("payment's mandate is of another payer");
  }
  if (p.amount <= 0 || p.refunded_amount < 0 || p.refunded_amount > p.amount)
    return d.fail("bad payment amounts");
  if (!payment_status_is_valid(status)) return d.fail("bad payment status");
  if ((p.flags & ~payment_flag_from_archive) != 0) return d.fail("bad payment flags");
  if (s->find_payment(p.merchant, order) != row_none) return d.fail("duplicate payment");
  if (refund_count > info.refunds - s->refunds.size())
    return d.fail("more refunds than the header counts");
  p.status = static_cast<PaymentStatus>(status);
  p.order_id = s->intern_history(order);
  p.request_id = s->intern_history(request);
  if (!txn.empty()) p.channel_txn_id = s->intern_history(txn);
  const std::uint32_t row = s->add_payment(p);
  Amount refunded = 0;
  for (std::uint32_t k = 0; k < refund_count; ++k) {
    RefundRow r;
    const std::string_view refund_request = d.id();
    r.amount = d.le<std::int64_t>();
    r.created_at_us = d.le<std::int64_t>();
    if (!d.ok()) return false;
    if (r.amount <= 0 || !checked_add(refunded, r.amount, &refunded))
      return d.fail("bad refund amount");
    r.request_id = s->intern_history(refund_request);
    s->add_refund(row, r);
  }
  // A payment back from the archive holds only its later refunds; the rest are archived.
  const bool from_archive = (p.flags & payment_flag_from_archive) != 0;
  if (from_archive ? refunded > p.refunded_amount : refunded != p.refunded_amount)
    return d.fail("refunds do not add up to the refunded amount");
  if (p.channel_txn_id != 0) {
    if (s->find_channel_txn(p.channel, txn) != row_none)
      return d.fail("duplicate channel transaction");
    s->add_channel_txn(row);
  }
  return true;
}

bool parse_idempotency(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_idempotency, info.idempotency - info.idempotency_begin)) return false;
  s->idempotency.start_at(info.idempotency_begin);
  for (std::uint32_t i = info.idempotency_begin; i < info.idempotency; ++i) {
    IdempotencyRow r;
    r.principal = d.le<std::uint32_t>();
    const std::string_view request = d.id();
    const std::uint8_t kind = d.u8();
    r.code = d.u8();
    if (!is_v1(info)) r.field = d.u8();
    r.fingerprint = d.le<std::uint64_t>();
    r.resource = d.le<std::uint32_t>();
    // Records of older files get their retention from the snapshot's time.
    r.created_at_us = is_v3(info) ? d.le<std::int64_t>() : info.last_timestamp_us;
    if (!d.ok()) return false;
    if (r.principal >= s->principals.size())
      return d.fail("idempotency record of an unknown principal");
    if (!command_kind_is_valid(kind) || !command_is_idempotent(static_cast<CommandKind>(kind))) {
      return d.fail("bad idempotency command kind");
    }
    if (r.code > result_code_max || !result_is_kept(static_cast<ResultCode>(r.code))) {
      return d.fail("bad idempotency result code");
    }
    if (r.field > field_max) return d.fail("bad idempotency field");
    r.kind = static_cast<CommandKind>(kind);
    const bool ok = r.code == static_cast<std::uint8_t>(ResultCode::ok);
    if (ok ? !is_resource_row(*s, r.kind, r.resource) : r.resource != snapshot::row_none_on_disk) {
      return d.fail("idempotency record refers to no row");
    }
    if (s->find_idempotency(r.principal, request) != row_none)
      return d.fail("duplicate idempotency record");
    // Share the payment's copy of its request_id, as apply does.
    if (ok && r.kind == CommandKind::create_payment &&
        s->str(s->payments[r.resource].request_id) == request) {
      r.request_id = s->payments[r.resource].request_id;
    } else {
      r.request_id = s->intern_history(request);
    }
    s->add_idempotency(r);
  }
  return true;
}

bool parse_anomalies(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_anomalies, info.anomalies)) return false;
  for (std::uint32_t i = 0; i < info.anomalies; ++i) {
    AnomalyRow a;
    a.channel = d.u8();
    const std::string_view txn = d.id();
    const std::string_view merchant = d.id();
    const std::string_view order = d.id();
    a.amount = d.le<std::int64_t>();
    a.currency = d.ccy();
    const std::uint8_t status = d.u8();
    const std::uint8_t reason = d.u8();
    a.paid_at_us = d.le<std::int64_t>();
    a.received_at_us = d.le<std::int64_t>();
    if (!d.ok()) return false;
    if (a.channel == 0 || a.channel >= s->channels.size())
      return d.fail("anomaly of an unknown channel");
    if (!notification_status_is_valid(status) || !anomaly_reason_is_valid(reason))
      return d.fail("bad anomaly enum");
    if (s->find_channel_txn(a.channel, txn) != row_none)
      return d.fail("duplicate channel transaction");
    a.status = static_cast<NotificationStatus>(status);
    a.reason = static_cast<AnomalyReason>(reason);
    a.channel_txn_id = s->intern(txn);
    a.merchant_id = s->intern(merchant);
    a.order_id = s->intern(order);
    const std::uint32_t row = s->add_anomaly(a);
    s->add_channel_txn(row | channel_txn_anomaly_bit);
  }
  return true;
}

bool parse_pending(Decoder& d, const SnapshotInfo& info, State* s) {
  // Version 3 leaves out the settled entries below the expiry cursor.
  const std::uint32_t first = is_v3(info) ? info.expiry_cursor : 0;
  if (!d.section(snapshot::tag_pending, info.pending - first)) return false;
  s->pending_queue.start_at(first);
  std::uint32_t previous = 0;
  for (std::uint32_t i = first; i < info.pending; ++i) {
    const auto row = d.le<std::uint32_t>();
    if (!d.ok()) return false;
    // An entry's payment may have left memory (archived once it was settled).
    if (row >= s->payments.size() || (row >= s->payments.begin() && s->payments[row].channel == 0))
      return d.fail("bad pending queue entry");
    if (i > first && row <= previous) return d.fail("pending queue out of order");
    previous = row;
    s->pending_queue.push_back(row);
  }
  return true;
}

bool parse_filter(Decoder& d, const SnapshotInfo& info, State* s, std::span<const std::byte> bytes) {
  if (!is_v3(info)) return true;  // nothing had left memory before version 3
  const auto t = d.le<std::uint32_t>();
  const auto zero = d.le<std::uint32_t>();
  const auto partitions = d.le<std::uint64_t>();
  if (!d.ok()) return false;
  if (t != snapshot::tag_filter || zero != 0) return d.fail("bad archived-orders section header");
  if (partitions > 1024) return d.fail("too many archived-order partitions");
  for (std::uint64_t i = 0; i < partitions; ++i) {
    OrderFilter::PartitionImage image;
    image.capacity_keys = d.le<std::uint64_t>();
    image.count_keys = d.le<std::uint64_t>();
    if (!d.ok()) return false;
    if (image.capacity_keys != s->archived_orders.next_capacity())
      return d.fail("archived-order partition of an unexpected capacity");
    const std::size_t size = OrderFilter::blocks_for(image.capacity_keys) * OrderFilter::bits_per_block / 8;
    if (bytes.size() - d.offset() < size) return d.fail("unexpected end of snapshot");
    image.blocks = bytes.subspan(d.offset(), size);
    if (!s->archived_orders.restore_partition(image)) return d.fail("bad archived-order partition");
    d.skip(size);
  }
  return true;
}

bool parse_payments(Decoder& d, const SnapshotInfo& info, State* s) {
  if (!d.section(snapshot::tag_payments, info.payments - info.payments_begin)) return false;
  s->payments.start_at(info.payments_begin);
  for (std::uint32_t i = info.payments_begin; i < info.payments; ++i) {
    if (!parse_payment(d, info, s)) return false;
  }
  if (s->refunds.size() != info.refunds) return d.fail("refund count differs from header");
  return true;
}

}  // namespace

namespace {

bool check_image(std::span<const std::byte> bytes, SnapshotInfo* info, std::string* error) {
  *info = SnapshotInfo{};
  if (bytes.size() < snapshot::header_bytes + snapshot::trailer_bytes) {
    *error = "snapshot truncated: " + std::to_string(bytes.size()) + " bytes";
    return false;
  }
  std::uint64_t stored = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    stored |= static_cast<std::uint64_t>(bytes[snapshot::header_checksum_offset + i]) << (8 * i);
  }
  if (std::memcmp(bytes.data(), snapshot::magic, 8) != 0) {
    *error = "not a paycore snapshot (bad magic) at offset 0";
    return false;
  }
  if (XXH3_64bits(bytes.data(), snapshot::header_checksum_offset) != stored) {
    *error =
        "header checksum mismatch at offset " + std::to_string(snapshot::header_checksum_offset);
    return false;
  }
  const std::size_t trailer_at = bytes.size() - snapshot::trailer_bytes;
  if (std::memcmp(bytes.data() + trailer_at, snapshot::trailer_magic, 8) != 0) {
    *error = "snapshot truncated or damaged: no trailer at offset " + std::to_string(trailer_at);
    return false;
  }
  const XXH128_hash_t digest = XXH3_128bits(bytes.data(), trailer_at);
  Decoder trailer(bytes.subspan(trailer_at + 8), error);
  info->checksum_low = trailer.le<std::uint64_t>();
  info->checksum_high = trailer.le<std::uint64_t>();
  if (digest.low64 != info->checksum_low || digest.high64 != info->checksum_high) {
    *error = "content checksum mismatch (trailer at offset " + std::to_string(trailer_at) + ")";
    return false;
  }
  Decoder header(bytes.first(snapshot::header_bytes), error);
  std::uint32_t cursor = 0;
  return parse_header(header, info, &cursor);
}

bool load_image(std::span<const std::byte> bytes, State* s, SnapshotInfo* info,
                std::string* error) {
  if (!check_image(bytes, info, error)) return false;
  Decoder d(bytes.first(bytes.size() - snapshot::trailer_bytes), error);
  std::uint32_t cursor = 0;
  if (!parse_header(d, info, &cursor)) return false;
  if (!parse_channels(d, *info, s) || !parse_system(d, *info, s) ||
      !parse_principals(d, *info, s) || !parse_accounts(d, *info, s) ||
      !parse_mandates(d, *info, s) || !parse_payments(d, *info, s) ||
      !parse_idempotency(d, *info, s) || !parse_anomalies(d, *info, s) ||
      !parse_pending(d, *info, s) ||
      !parse_filter(d, *info, s, bytes.first(bytes.size() - snapshot::trailer_bytes))) {
    return false;
  }
  if (d.offset() != bytes.size() - snapshot::trailer_bytes)
    return d.fail("bytes after the last section");
  s->pending_lifetime_us = info->pending_lifetime_us;
  s->last_timestamp_us = info->last_timestamp_us;
  s->expiry_cursor = cursor;
  s->archived_rows_end = info->archived_rows_end;
  s->idempotency_horizon_us = info->idempotency_horizon_us;
  if (!s->balances_sum_to_zero_slow()) return d.fail("balances do not sum to zero");
  return true;
}

}  // namespace

StateConfig sized_for(const StateConfig& config, const SnapshotInfo& info) {
  // Room for half as many rows again: an index past half load has its next table prepared
  // (faulted in by a helper thread), which loading would otherwise trigger for a table it
  // never needs.
  const auto with_room = [](std::uint64_t floor, std::uint64_t rows) {
    return std::max<std::uint64_t>(floor, rows + rows / 2);
  };
  StateConfig sized = config;
  sized.accounts_expected = with_room(config.accounts_expected, info.accounts);
  sized.payments_expected = with_room(config.payments_expected, info.payments - info.payments_begin);
  sized.idempotency_expected =
      with_room(config.idempotency_expected, info.idempotency - info.idempotency_begin);
  return sized;
}

Status check_snapshot(std::span<const std::byte> bytes, SnapshotInfo* info) {
  std::string error;
  if (!check_image(bytes, info, &error)) return Status::corruption(std::move(error));
  return Status::ok();
}

Status load_snapshot(std::span<const std::byte> bytes, State* state, SnapshotInfo* info) {
  std::string error;
  if (!load_image(bytes, state, info, &error)) return Status::corruption(std::move(error));
  return Status::ok();
}

StatusOr<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(path, errno);
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int read_errno = errno;
      ::close(fd);
      return errno_status(path, read_errno);
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return bytes;
}

Status load_snapshot_file(const std::string& path, State* state, SnapshotInfo* info) {
  StatusOr<std::string> bytes = read_file(path);
  if (!bytes.is_ok()) return bytes.status();
  return load_snapshot(std::as_bytes(std::span(*bytes)), state, info).with_context(path);
}

}  // namespace paycore
