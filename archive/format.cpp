// The archive's keys and values (archive/format.hpp draws the bytes).
#include "archive/format.hpp"

#include <xxhash.h>

#include <bit>
#include <cstring>
#include <optional>
#include <span>

#include "base/hex.hpp"
#include "core/model.hpp"
#include "core/money.hpp"

namespace paycore::archive {

static_assert(std::endian::native == std::endian::little, "values are stored little-endian");

namespace {

void append_le(std::string* out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

void append_be64(std::string* out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}

// Keys are made only of ids validated where they entered paycore.
void assert_id(std::string_view id) {
  const bool valid = id_is_valid(id);
  PAYCORE_ASSERT(valid);
}

void append_id(std::string* out, std::string_view id) {
  PAYCORE_ASSERT_LE(id.size(), id_bytes_max);
  out->push_back(static_cast<char>(id.size()));
  out->append(id);
}

std::string hex_of(std::string_view bytes) {
  std::string text;
  append_hex(text, std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
  return text;
}

std::string hex_of(std::uint64_t value) {
  std::string text = "0x";
  append_hex(text, value, 16);
  return text;
}

std::uint64_t read_be64(std::string_view bytes) {
  PAYCORE_ASSERT_GE(bytes.size(), 8U);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// The complement that sorts newer times first in 'L' keys.
std::uint64_t newest_first(std::int64_t created_at_us) {
  PAYCORE_ASSERT_GE(created_at_us, 0);
  return ~static_cast<std::uint64_t>(created_at_us);
}

// Fills the checksum of a value whose other bytes are written.
void seal(std::string* value) {
  PAYCORE_ASSERT_GE(value->size(), value_header_bytes);
  const std::uint64_t checksum = value_checksum(*value);
  for (std::size_t i = 0; i < 8; ++i) (*value)[i] = static_cast<char>(checksum >> (8 * i));
}

std::string value_header(std::uint8_t version) {
  std::string value(8, '\0');
  value.push_back(static_cast<char>(version));
  return value;
}

// A key taken apart. Only the fields of its table are set.
struct KeyParts {
  char table = 0;
  std::string_view merchant_id;
  std::string_view order_id;
  std::int64_t created_at_us = -1;
  std::string_view meta_name;
};

// Takes a length-prefixed merchant id off the front of `rest`.
bool take_merchant(std::string_view* rest, std::string_view* merchant_id) {
  if (rest->empty()) return false;
  const std::size_t size = static_cast<unsigned char>(rest->front());
  if (size == 0 || rest->size() < 1 + size) return false;
  *merchant_id = rest->substr(1, size);
  rest->remove_prefix(1 + size);
  return true;
}

bool take_time(std::string_view* rest, bool complemented, std::int64_t* created_at_us) {
  if (rest->size() < 8) return false;
  std::uint64_t raw = read_be64(*rest);
  if (complemented) raw = ~raw;
  if (raw > static_cast<std::uint64_t>(INT64_MAX)) return false;
  *created_at_us = static_cast<std::int64_t>(raw);
  rest->remove_prefix(8);
  return true;
}

std::optional<KeyParts> parse_key(std::string_view key) {
  KeyParts parts;
  if (key.empty()) return std::nullopt;
  parts.table = key.front();
  std::string_view rest = key.substr(1);
  bool ok = false;
  if (parts.table == table_payment) {
    ok = take_merchant(&rest, &parts.merchant_id);
  } else if (parts.table == table_list) {
    ok = take_merchant(&rest, &parts.merchant_id) && take_time(&rest, true, &parts.created_at_us);
  } else if (parts.table == table_day) {
    ok = take_time(&rest, false, &parts.created_at_us) && take_merchant(&rest, &parts.merchant_id);
  } else if (parts.table == table_meta) {
    parts.meta_name = rest;
    return id_is_valid(rest) ? std::optional(parts) : std::nullopt;
  }
  parts.order_id = rest;
  if (!ok || !id_is_valid(parts.merchant_id) || !id_is_valid(parts.order_id)) return std::nullopt;
  return parts;
}

// Bounds-checked reading of a value; the first failure sticks and names what was being read.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::uint64_t le(std::size_t size, const char* what) {
    if (!take(size, what)) return 0;
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i) {
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[offset_ - size + i]))
               << (8 * i);
    }
    return value;
  }
  std::int64_t i64(const char* what) { return static_cast<std::int64_t>(le(8, what)); }
  std::string_view bytes(std::size_t size, const char* what) {
    if (!take(size, what)) return {};
    return bytes_.substr(offset_ - size, size);
  }
  // An id of 0..64 valid characters (0 only if `optional`) into *out.
  void id(const char* what, bool optional, Id* out) {
    const std::size_t size = le(1, what);
    const std::string_view text = bytes(size, what);
    if (!ok()) return;
    if ((size == 0 && optional) || Id::from(text, out)) return;
    fail(std::string("bad ") + what + " (" + std::to_string(size) + " bytes)");
  }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  bool ok() const { return error_.empty(); }
  bool at_end() const { return offset_ == bytes_.size(); }
  const std::string& error() const { return error_; }

 private:
  bool take(std::size_t size, const char* what) {
    if (!ok()) return false;
    if (bytes_.size() - offset_ < size) {
      fail(std::string("truncated at ") + what + " (offset " + std::to_string(offset_) + ")");
      return false;
    }
    offset_ += size;
    return true;
  }

  std::string_view bytes_;
  std::size_t offset_ = 0;
  std::string error_;
};

// The 9 common bytes: checksum and version. Empty on success, else why not.
std::string check_value_header(std::string_view value) {
  if (value.size() < value_header_bytes) {
    return "value of " + std::to_string(value.size()) + " bytes is shorter than its header";
  }
  std::uint64_t stored = 0;
  std::memcpy(&stored, value.data() + value_checksum_offset, sizeof(stored));
  const std::uint64_t computed = value_checksum(value);
  if (stored != computed) {
    return "checksum mismatch (stored " + hex_of(stored) + ", computed " + hex_of(computed) + ")";
  }
  const auto version = static_cast<std::uint8_t>(value[value_version_offset]);
  if (version != archive_format_version) {
    return "format version " + std::to_string(version) + " is not one this build reads (" +
           std::to_string(archive_format_version) + ")";
  }
  return {};
}

Status corrupt(std::string_view key, std::string_view why) {
  return Status::corruption("archive record " + describe_key(key) + ": " + std::string(why));
}

std::string payment_name(const PaymentView& payment) {
  return std::string(payment.merchant_id.view()) + "/" + std::string(payment.order_id.view());
}

// Rules on the ids; empty when they hold.
std::string check_ids(const PaymentView& p) {
  const Id* required[] = {&p.merchant_id, &p.order_id, &p.request_id, &p.channel};
  for (const Id* id : required) {
    if (id->empty() || !id->well_formed()) return "a required id is missing or malformed";
  }
  const Id* optional[] = {&p.payer_account_id, &p.channel_txn_id, &p.mandate_id};
  for (const Id* id : optional) {
    if (!id->well_formed()) return "an optional id is malformed";
  }
  const bool is_balance = p.channel.view() == channel_name_balance;
  if (is_balance == p.payer_account_id.empty()) return "payer_account_id does not fit the channel";
  if (!p.mandate_id.empty() && !is_balance) return "mandate_id on an external channel payment";
  return {};
}

// Rules on amounts, times and refunds; empty when they hold.
std::string check_amounts(const ArchivedPayment& payment) {
  const PaymentView& p = payment.payment;
  if (!payment_status_is_valid(static_cast<std::uint8_t>(p.status))) return "bad status";
  if (currency_code(p.currency).empty()) return "bad currency";
  if (p.amount <= 0 || p.refunded_amount < 0 || p.refunded_amount > p.amount) return "bad amounts";
  if (p.created_at_us < 0 || p.updated_at_us < p.created_at_us) return "bad times";
  if (payment.refunds.size() > archive_refunds_per_payment_max) return "too many refunds";
  Amount refunded = 0;
  for (const RefundView& refund : payment.refunds) {
    if (refund.request_id.empty() || !refund.request_id.well_formed()) return "bad refund id";
    if (refund.amount <= 0 || !checked_add(refunded, refund.amount, &refunded)) {
      return "bad refund amount";
    }
    if (refund.created_at_us < 0) return "bad refund time";
  }
  if (refunded != p.refunded_amount) return "refunds do not add up to the refunded amount";
  return {};
}

std::string check_content(const ArchivedPayment& payment) {
  std::string why = check_ids(payment.payment);
  if (why.empty()) why = check_amounts(payment);
  return why;
}

void read_fixed_fields(Reader& r, PaymentView* p) {
  const auto status = static_cast<std::uint8_t>(r.le(1, "status"));
  const std::string_view currency = r.bytes(3, "currency");
  p->amount = r.i64("amount");
  p->refunded_amount = r.i64("refunded_amount");
  p->created_at_us = r.i64("created_at_us");
  p->updated_at_us = r.i64("updated_at_us");
  if (!r.ok()) return;
  if (!payment_status_is_valid(status)) r.fail("bad status " + std::to_string(status));
  p->status = static_cast<PaymentStatus>(status);
  const std::optional<Currency> parsed = currency_from_code(currency);
  if (!parsed) r.fail("unknown currency");
  p->currency = parsed.value_or(Currency{});
}

void read_ids(Reader& r, PaymentView* p) {
  r.id("merchant_id", false, &p->merchant_id);
  r.id("order_id", false, &p->order_id);
  r.id("request_id", false, &p->request_id);
  r.id("channel", false, &p->channel);
  r.id("payer_account_id", true, &p->payer_account_id);
  r.id("channel_txn_id", true, &p->channel_txn_id);
  r.id("mandate_id", true, &p->mandate_id);
}

void read_refunds(Reader& r, std::vector<RefundView>* refunds) {
  const std::size_t count = r.le(2, "refunds count");
  if (!r.ok()) return;
  refunds->reserve(count);
  for (std::size_t i = 0; i < count && r.ok(); ++i) {
    RefundView refund;
    r.id("refund request_id", false, &refund.request_id);
    refund.amount = r.i64("refund amount");
    refund.created_at_us = r.i64("refund created_at_us");
    refunds->push_back(refund);
  }
  if (r.ok() && !r.at_end()) r.fail("trailing bytes after the refunds");
}

// The record is the one its key names. Empty when it is.
std::string check_matches_key(const KeyParts& key, const PaymentView& p) {
  if (key.merchant_id != p.merchant_id.view() || key.order_id != p.order_id.view()) {
    return "record is of another payment (" + payment_name(p) + ")";
  }
  if (key.table != table_payment && key.created_at_us != p.created_at_us) {
    return "record's created_at_us " + std::to_string(p.created_at_us) + " is not its key's";
  }
  return {};
}

}  // namespace

std::uint64_t value_checksum(std::string_view value) {
  PAYCORE_ASSERT_GE(value.size(), value_header_bytes);
  return XXH3_64bits(value.data() + value_version_offset, value.size() - value_version_offset);
}

std::string payment_key(std::string_view merchant_id, std::string_view order_id) {
  assert_id(merchant_id);
  assert_id(order_id);
  std::string key(1, table_payment);
  append_id(&key, merchant_id);
  key.append(order_id);
  return key;
}

std::string list_prefix(std::string_view merchant_id) {
  assert_id(merchant_id);
  std::string key(1, table_list);
  append_id(&key, merchant_id);
  return key;
}

std::string list_prefix_end(std::string_view merchant_id) {
  std::string key = list_prefix(merchant_id);
  // The last byte is an id character (< 0x7f): one more is the first key past the prefix.
  key.back() = static_cast<char>(key.back() + 1);
  return key;
}

std::string list_time_key(std::string_view merchant_id, std::int64_t created_at_us) {
  std::string key = list_prefix(merchant_id);
  append_be64(&key, newest_first(created_at_us));
  return key;
}

std::string list_key(std::string_view merchant_id, std::int64_t created_at_us,
                     std::string_view order_id) {
  assert_id(order_id);
  std::string key = list_time_key(merchant_id, created_at_us);
  key.append(order_id);
  return key;
}

std::string day_prefix(std::int64_t created_at_us) {
  PAYCORE_ASSERT_GE(created_at_us, 0);
  std::string key(1, table_day);
  append_be64(&key, static_cast<std::uint64_t>(created_at_us));
  return key;
}

std::string day_key(std::int64_t created_at_us, std::string_view merchant_id,
                    std::string_view order_id) {
  assert_id(merchant_id);
  assert_id(order_id);
  std::string key = day_prefix(created_at_us);
  append_id(&key, merchant_id);
  key.append(order_id);
  return key;
}

std::string meta_key(std::string_view name) {
  std::string key(1, table_meta);
  key.append(name);
  return key;
}

std::string describe_key(std::string_view key) {
  const std::optional<KeyParts> parts = parse_key(key);
  if (!parts) return "0x" + hex_of(key);
  std::string text(1, parts->table);
  if (parts->table == table_meta) return text + "/" + std::string(parts->meta_name);
  if (parts->table == table_day) text += "/created_at_us=" + std::to_string(parts->created_at_us);
  text += "/" + std::string(parts->merchant_id);
  if (parts->table == table_list) text += "/created_at_us=" + std::to_string(parts->created_at_us);
  return text + "/" + std::string(parts->order_id);
}

Status check_payment(const ArchivedPayment& payment) {
  const std::string why = check_content(payment);
  if (why.empty()) return Status::ok();
  return Status::invalid_argument("payment " + payment_name(payment.payment) +
                                  " cannot be archived: " + why);
}

std::string encode_payment(const ArchivedPayment& payment) {
  const PaymentView& p = payment.payment;
  std::string value = value_header(archive_format_version);
  value.push_back(static_cast<char>(p.status));
  const std::string_view currency = currency_code(p.currency);
  PAYCORE_ASSERT_EQ(currency.size(), 3U);
  value.append(currency);
  for (const std::int64_t field : {p.amount, p.refunded_amount, p.created_at_us, p.updated_at_us}) {
    append_le(&value, static_cast<std::uint64_t>(field), 8);
  }
  PAYCORE_ASSERT_EQ(value.size(), record_fixed_bytes);
  for (const Id* id : {&p.merchant_id, &p.order_id, &p.request_id, &p.channel, &p.payer_account_id,
                       &p.channel_txn_id, &p.mandate_id}) {
    append_id(&value, id->view());
  }
  PAYCORE_ASSERT_LE(payment.refunds.size(), archive_refunds_per_payment_max);
  append_le(&value, payment.refunds.size(), 2);
  for (const RefundView& refund : payment.refunds) {
    append_id(&value, refund.request_id.view());
    append_le(&value, static_cast<std::uint64_t>(refund.amount), 8);
    append_le(&value, static_cast<std::uint64_t>(refund.created_at_us), 8);
  }
  PAYCORE_ASSERT_LE(value.size(), record_bytes_max);
  seal(&value);
  return value;
}

StatusOr<ArchivedPayment> decode_payment(std::string_view key, std::string_view value) {
  const std::optional<KeyParts> parts = parse_key(key);
  if (!parts || parts->table == table_meta) return corrupt(key, "not a payment key");
  const std::string header_error = check_value_header(value);
  if (!header_error.empty()) return corrupt(key, header_error);
  Reader r(value.substr(value_header_bytes));
  ArchivedPayment payment;
  read_fixed_fields(r, &payment.payment);
  read_ids(r, &payment.payment);
  read_refunds(r, &payment.refunds);
  if (!r.ok()) return corrupt(key, r.error());
  std::string why = check_content(payment);
  if (why.empty()) why = check_matches_key(*parts, payment.payment);
  if (!why.empty()) return corrupt(key, why);
  return payment;
}

std::string encode_position(std::uint32_t rows_end, std::uint64_t lsn, std::int64_t as_of_us,
                            std::uint64_t jobs) {
  std::string value = value_header(archive_format_version);
  append_le(&value, rows_end, 4);
  append_le(&value, lsn, 8);
  append_le(&value, static_cast<std::uint64_t>(as_of_us), 8);
  append_le(&value, jobs, 8);
  PAYCORE_ASSERT_EQ(value.size(), position_value_bytes);
  seal(&value);
  return value;
}

StatusOr<PositionFields> decode_position(std::string_view value) {
  const std::string key = meta_key(meta_position_name);
  std::string why = check_value_header(value);
  if (why.empty() && value.size() != position_value_bytes) {
    why = "position of " + std::to_string(value.size()) + " bytes, not " +
          std::to_string(position_value_bytes);
  }
  if (!why.empty()) return corrupt(key, why);
  Reader r(value.substr(value_header_bytes));
  PositionFields fields;
  fields.rows_end = static_cast<std::uint32_t>(r.le(4, "rows_end"));
  fields.lsn = r.le(8, "lsn");
  fields.as_of_us = r.i64("as_of_us");
  fields.jobs = r.le(8, "jobs");
  PAYCORE_ASSERT(r.ok());  // the size was checked above
  return fields;
}

std::string encode_format(std::uint8_t version) {
  std::string value = value_header(version);
  seal(&value);
  return value;
}

StatusOr<std::uint8_t> decode_format(std::string_view value) {
  const std::string key = meta_key(meta_format_name);
  if (value.size() != format_value_bytes) {
    return corrupt(key, "format value of " + std::to_string(value.size()) + " bytes, not " +
                            std::to_string(format_value_bytes));
  }
  std::uint64_t stored = 0;
  std::memcpy(&stored, value.data(), sizeof(stored));
  if (stored != value_checksum(value)) return corrupt(key, "checksum mismatch");
  return static_cast<std::uint8_t>(value[value_version_offset]);
}

}  // namespace paycore::archive
