// Writing snapshots (layout: snapshot_format.hpp). Nothing here allocates: it runs in a forked
// child of a multi-threaded process, where malloc is not safe.
#include "snapshot.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack: no malloc while writing
#include <xxhash.h>

#include "base/assert.hpp"
#include "result.hpp"
#include "snapshot_format.hpp"

namespace paycore {

bool FdSink::write(const std::byte* data, std::size_t size) {
  while (size > 0) {
    if (used_ == buffer_.size() && !flush()) return false;
    const std::size_t n = std::min(size, buffer_.size() - used_);
    std::memcpy(buffer_.data() + used_, data, n);
    used_ += n;
    data += n;
    size -= n;
  }
  return true;
}

bool FdSink::flush() {
  std::size_t done = 0;
  while (done < used_) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, used_ - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      errno_ = errno;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  used_ = 0;
  return true;
}

namespace {

// ---- Writing ---------------------------------------------------------------------------------

class Encoder {
 public:
  explicit Encoder(ByteSink& sink) : sink_(sink) { XXH3_128bits_reset(&hash_); }

  void bytes(const void* data, std::size_t size) {
    if (!ok_) return;
    XXH3_128bits_update(&hash_, data, size);
    ok_ = sink_.write(static_cast<const std::byte*>(data), size);
  }
  template <class T>
  void le(T value) {
    unsigned char out[sizeof(T)];
    auto u = static_cast<std::make_unsigned_t<T>>(value);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      out[i] = static_cast<unsigned char>(u & 0xff);
      u = static_cast<std::make_unsigned_t<T>>(u >> 8);
    }
    bytes(out, sizeof(T));
  }
  void u8(std::uint8_t v) { bytes(&v, 1); }
  void str(std::string_view s) {
    PAYCORE_ASSERT(s.size() <= 255);
    u8(static_cast<std::uint8_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void ccy(Currency c) {
    const std::string_view code = currency_code(c);
    PAYCORE_ASSERT(code.size() == 3);
    bytes(code.data(), 3);
  }
  void section(std::uint32_t tag, std::uint64_t rows) {
    le(tag);
    le(std::uint32_t{0});
    le(rows);
  }
  void trailer() {
    const XXH128_hash_t digest = XXH3_128bits_digest(&hash_);
    bytes(snapshot::trailer_magic, 8);
    le(digest.low64);
    le(digest.high64);
  }
  bool ok() const { return ok_; }

 private:
  ByteSink& sink_;
  XXH3_state_t hash_;
  bool ok_ = true;
};

std::uint32_t count_system_balances(const State& s) {
  std::uint32_t n = 0;
  for (std::uint32_t c = 0; c < s.channels.size(); ++c) {
    for (std::uint16_t k = 1; k < currency_table_size(); ++k) {
      const Currency ccy{k};
      if ((c == 0 ? s.external_balance(ccy) : s.channel_balance(c, ccy)) != 0) ++n;
    }
  }
  return n;
}

std::uint32_t refunds_of(const State& s, const PaymentRow& p) {
  std::uint32_t n = 0;
  for (std::uint32_t r = p.first_refund; r != row_none; r = s.refunds[r].next) ++n;
  return n;
}

// The refunds of the payments in memory: the refund rows the file holds.
std::uint32_t count_live_refunds(const State& s) {
  std::uint32_t n = 0;
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) n += refunds_of(s, s.payments[i]);
  return n;
}

void write_header(Encoder& e, const State& s, std::uint64_t lsn, std::int64_t created_at_us) {
  unsigned char header[snapshot::header_bytes] = {};
  std::size_t at = 0;
  const auto put = [&](auto value) {
    auto u = static_cast<std::make_unsigned_t<decltype(value)>>(value);
    for (std::size_t i = 0; i < sizeof(value); ++i) {
      header[at++] = static_cast<unsigned char>(u & 0xff);
      u = static_cast<decltype(u)>(u >> 8);
    }
  };
  std::memcpy(header, snapshot::magic, 8);
  at = 8;
  put(snapshot::format_version);
  put(static_cast<std::uint32_t>(snapshot::header_bytes));
  put(lsn);
  put(created_at_us);
  put(s.last_timestamp_us);
  put(s.pending_lifetime_us);
  put(s.expiry_cursor);
  put(static_cast<std::uint32_t>(s.channels.size()));
  put(s.accounts.size());
  put(s.payments.size());
  put(count_live_refunds(s));
  put(s.idempotency.size());
  put(s.anomalies.size());
  put(s.principals.size());
  put(s.pending_queue.size());
  put(count_system_balances(s));
  put(s.mandates.size());
  put(s.payments.begin());
  put(s.idempotency.begin());
  put(s.archived_rows_end);
  put(s.idempotency_horizon_us);
  PAYCORE_ASSERT(at == 112);
  at = snapshot::header_checksum_offset;
  put(static_cast<std::uint64_t>(XXH3_64bits(header, snapshot::header_checksum_offset)));
  e.bytes(header, sizeof(header));
}

void write_channels(Encoder& e, const State& s) {
  e.section(snapshot::tag_channels, s.channels.size());
  for (StrRef name : s.channels) e.str(s.str(name));
}

void write_system_balances(Encoder& e, const State& s) {
  e.section(snapshot::tag_system, count_system_balances(s));
  for (std::uint32_t c = 0; c < s.channels.size(); ++c) {
    for (std::uint16_t k = 1; k < currency_table_size(); ++k) {
      const Currency ccy{k};
      const Amount balance = c == 0 ? s.external_balance(ccy) : s.channel_balance(c, ccy);
      if (balance == 0) continue;
      e.le(c);
      e.ccy(ccy);
      e.le(balance);
    }
  }
}

void write_principals(Encoder& e, const State& s) {
  e.section(snapshot::tag_principals, s.principals.size());
  for (std::uint32_t i = 0; i < s.principals.size(); ++i) e.str(s.str(s.principals[i]));
}

void write_accounts(Encoder& e, const State& s) {
  e.section(snapshot::tag_accounts, s.accounts.size());
  for (std::uint32_t i = 0; i < s.accounts.size(); ++i) {
    const AccountRow& a = s.accounts[i];
    e.str(a.id.view());
    e.u8(static_cast<std::uint8_t>(a.kind));
    e.ccy(a.currency);
    e.le(a.balance);
    e.le(a.created_at_us);
    e.le(a.updated_at_us);
  }
}

void write_mandates(Encoder& e, const State& s) {
  e.section(snapshot::tag_mandates, s.mandates.size());
  for (std::uint32_t i = 0; i < s.mandates.size(); ++i) {
    const MandateRow& m = s.mandates[i];
    e.str(s.str(m.mandate_id));
    e.le(m.payer);
    e.le(m.merchant);
    e.le(m.amount_max);
    e.le(m.expires_at_us);
    e.u8(static_cast<std::uint8_t>(m.status));
    e.u8(m.single_use ? 1 : 0);
    e.le(m.created_at_us);
    e.le(m.updated_at_us);
  }
}

void write_payments(Encoder& e, const State& s) {
  e.section(snapshot::tag_payments, s.payments.live_count());
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) {
    const PaymentRow& p = s.payments[i];
    e.le(p.merchant);
    e.str(s.str(p.order_id));
    e.str(s.str(p.request_id));
    e.u8(p.channel);
    e.le(p.payer);
    e.le(p.mandate);
    e.le(p.amount);
    e.le(p.refunded_amount);
    e.ccy(p.currency);
    e.u8(static_cast<std::uint8_t>(p.status));
    e.str(s.str(p.channel_txn_id));
    e.le(p.created_at_us);
    e.le(p.updated_at_us);
    e.u8(p.flags);
    e.le(refunds_of(s, p));
    for (std::uint32_t r = p.first_refund; r != row_none; r = s.refunds[r].next) {
      e.str(s.str(s.refunds[r].request_id));
      e.le(s.refunds[r].amount);
      e.le(s.refunds[r].created_at_us);
    }
  }
}

void write_idempotency(Encoder& e, const State& s) {
  e.section(snapshot::tag_idempotency, s.idempotency.live_count());
  for (std::uint32_t i = s.idempotency.begin(); i < s.idempotency.size(); ++i) {
    const IdempotencyRow& r = s.idempotency[i];
    e.le(r.principal);
    e.str(s.str(r.request_id));
    e.u8(static_cast<std::uint8_t>(r.kind));
    e.u8(r.code);
    e.u8(r.field);
    e.le(r.fingerprint);
    e.le(r.resource);
    e.le(r.created_at_us);
  }
}

void write_anomalies(Encoder& e, const State& s) {
  e.section(snapshot::tag_anomalies, s.anomalies.size());
  for (std::uint32_t i = 0; i < s.anomalies.size(); ++i) {
    const AnomalyRow& a = s.anomalies[i];
    e.u8(a.channel);
    e.str(s.str(a.channel_txn_id));
    e.str(s.str(a.merchant_id));
    e.str(s.str(a.order_id));
    e.le(a.amount);
    e.ccy(a.currency);
    e.u8(static_cast<std::uint8_t>(a.status));
    e.u8(static_cast<std::uint8_t>(a.reason));
    e.le(a.paid_at_us);
    e.le(a.received_at_us);
  }
}

void write_pending(Encoder& e, const State& s) {
  // Entries below the expiry cursor are settled: they are not written.
  e.section(snapshot::tag_pending, s.pending_queue.size() - s.expiry_cursor);
  for (std::uint32_t i = s.expiry_cursor; i < s.pending_queue.size(); ++i) e.le(s.pending_queue[i]);
}

void write_filter(Encoder& e, const State& s) {
  const OrderFilter& filter = s.archived_orders;
  e.section(snapshot::tag_filter, filter.partitions());
  for (std::size_t i = 0; i < filter.partitions(); ++i) {
    const OrderFilter::PartitionImage image = filter.partition(i);
    e.le(image.capacity_keys);
    e.le(image.count_keys);
    e.bytes(image.blocks.data(), image.blocks.size());
  }
}

// The sections in the order of snapshot_format.hpp.
void write_sections(Encoder& e, const State& s) {
  write_channels(e, s);
  write_system_balances(e, s);
  write_principals(e, s);
  write_accounts(e, s);
  write_mandates(e, s);
  write_payments(e, s);
  write_idempotency(e, s);
  write_anomalies(e, s);
  write_pending(e, s);
  write_filter(e, s);
}

}  // namespace

bool write_snapshot(const State& s, std::uint64_t lsn, std::int64_t created_at_us, ByteSink& sink) {
  Encoder e(sink);
  write_header(e, s, lsn, created_at_us);
  write_sections(e, s);
  e.trailer();
  return e.ok();
}

std::string serialize_snapshot(const State& s, std::uint64_t lsn, std::int64_t created_at_us) {
  StringSink sink;
  const bool written = write_snapshot(s, lsn, created_at_us, sink);
  PAYCORE_ASSERT(written);  // a string sink cannot fail
  return std::move(sink.bytes);
}

}  // namespace paycore
