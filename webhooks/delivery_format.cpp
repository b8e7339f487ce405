// The bytes of webhooks/delivery_format.hpp: a writer and a bounds-checked reader of
// little-endian integers and length-prefixed strings, and the values and keys built from them.
#include "webhooks/delivery_format.hpp"

#include <xxhash.h>

#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "base/assert.hpp"

namespace paycore::webhooks {

std::string_view delivery_state_name(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending: return "PENDING";
    case DeliveryState::kDelivered: return "DELIVERED";
    case DeliveryState::kFailed: return "FAILED";
  }
  return "UNKNOWN";
}

void add_attempt(Delivery& delivery, Attempt attempt) {
  if (attempt.error.size() > attempt_error_bytes_max) attempt.error.resize(attempt_error_bytes_max);
  if (delivery.attempts.size() == attempts_kept_max) delivery.attempts.erase(delivery.attempts.begin());
  delivery.attempts.push_back(std::move(attempt));
  delivery.attempts_count += 1;
  PAYCORE_ASSERT_LE(delivery.attempts.size(), attempts_kept_max);
  PAYCORE_ASSERT_GE(delivery.attempts_count, delivery.attempts.size());
}

namespace {

bool id_valid(std::string_view id) { return !id.empty() && id.size() <= id_bytes_max; }

}  // namespace

Status check_event(const StoredEvent& event) {
  if (!id_valid(event.id)) return Status::invalid_argument("event id is 1..64 bytes");
  if (!id_valid(event.merchant_id)) return Status::invalid_argument("merchant_id is 1..64 bytes");
  if (!id_valid(event.type)) return Status::invalid_argument("event type is 1..64 bytes");
  if (event.body.size() > event_body_bytes_max) {
    return Status::invalid_argument("event body over " + std::to_string(event_body_bytes_max) +
                                    " bytes");
  }
  return Status::ok();
}

Status check_delivery(const Delivery& d) {
  if (!id_valid(d.event_id)) return Status::invalid_argument("event id is 1..64 bytes");
  if (!id_valid(d.endpoint_id)) return Status::invalid_argument("endpoint id is 1..64 bytes");
  const bool pending = d.state == DeliveryState::kPending;
  if (!pending && d.state != DeliveryState::kDelivered && d.state != DeliveryState::kFailed) {
    return Status::invalid_argument("delivery state unknown");
  }
  if (pending != (d.next_attempt_at_us != 0)) {
    return Status::invalid_argument("next_attempt_at is set exactly when PENDING");
  }
  if (pending == (d.finished_at_us != 0)) {
    return Status::invalid_argument("finished_at is set exactly when not PENDING");
  }
  if (d.url.empty() || d.url.size() > 0xffff) return Status::invalid_argument("url length");
  if (d.secret.empty() || d.secret.size() > 256) return Status::invalid_argument("secret length");
  if (d.last_error.size() > attempt_error_bytes_max) return Status::invalid_argument("last_error");
  if (d.attempts.size() > attempts_kept_max || d.attempts_count < d.attempts.size()) {
    return Status::invalid_argument("attempts over the cap or over attempts_count");
  }
  return Status::ok();
}

namespace format {
namespace {

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  template <typename T>
  void integer(T value) {
    static_assert(std::is_integral_v<T>);
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));  // x86-64 and aarch64 Linux: little-endian
    out_->append(bytes, sizeof(T));
  }
  void big_endian64(std::int64_t value) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      out_->push_back(static_cast<char>((static_cast<std::uint64_t>(value) >> shift) & 0xff));
    }
  }
  template <typename Length>
  void text(std::string_view bytes) {
    PAYCORE_ASSERT_LE(bytes.size(), std::size_t{std::numeric_limits<Length>::max()});
    integer(static_cast<Length>(bytes.size()));
    out_->append(bytes);
  }

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool integer(T* value) {
    if (bytes_.size() < sizeof(T)) return false;
    std::memcpy(value, bytes_.data(), sizeof(T));
    bytes_.remove_prefix(sizeof(T));
    return true;
  }
  bool big_endian64(std::int64_t* value) {
    if (bytes_.size() < 8) return false;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes_[static_cast<std::size_t>(i)]);
    *value = static_cast<std::int64_t>(v);
    bytes_.remove_prefix(8);
    return true;
  }
  template <typename Length>
  bool text(std::string* out) {
    Length length = 0;
    if (!integer(&length) || bytes_.size() < length) return false;
    out->assign(bytes_.substr(0, length));
    bytes_.remove_prefix(length);
    return true;
  }
  bool done() const { return bytes_.empty(); }
  std::size_t left() const { return bytes_.size(); }

 private:
  std::string_view bytes_;
};

std::uint64_t checksum_of(std::string_view value) {
  return XXH3_64bits(value.data() + value_checksum_bytes, value.size() - value_checksum_bytes);
}

// A value with room for its checksum and the version; seal() fills the checksum in.
std::string start_value() {
  std::string value(value_checksum_bytes, '\0');
  value.push_back(static_cast<char>(delivery_format_version));
  return value;
}

std::string seal(std::string value) {
  const std::uint64_t checksum = checksum_of(value);
  std::memcpy(value.data(), &checksum, sizeof checksum);
  return value;
}

// Checks checksum and version; the reader is left after the 9 common bytes.
Status open_value(std::string_view value, std::string_view what, Reader* reader) {
  if (value.size() < value_header_bytes) return Status::corruption(std::string(what) + ": short");
  std::uint64_t stored = 0;
  std::memcpy(&stored, value.data(), sizeof stored);
  if (stored != checksum_of(value)) return Status::corruption(std::string(what) + ": checksum");
  if (static_cast<std::uint8_t>(value[value_checksum_bytes]) != delivery_format_version) {
    return Status::corruption(std::string(what) + ": format version " +
                              std::to_string(static_cast<int>(value[value_checksum_bytes])));
  }
  *reader = Reader(value.substr(value_header_bytes));
  return Status::ok();
}

void write_attempt(Writer& w, const Attempt& attempt) {
  w.integer(attempt.started_at_us);
  w.integer(attempt.duration_ms);
  w.integer(attempt.http_status);
  w.text<std::uint8_t>(attempt.error);
}

bool read_attempt(Reader& r, Attempt* attempt) {
  return r.integer(&attempt->started_at_us) && r.integer(&attempt->duration_ms) &&
         r.integer(&attempt->http_status) && r.text<std::uint8_t>(&attempt->error);
}

}  // namespace

std::string event_key(std::string_view event_id) {
  std::string key(1, 'E');
  Writer(&key).text<std::uint8_t>(event_id);
  return key;
}

std::string delivery_prefix(std::string_view event_id) {
  std::string key(1, 'D');
  Writer(&key).text<std::uint8_t>(event_id);
  return key;
}

std::string delivery_key(std::string_view event_id, std::string_view endpoint_id) {
  std::string key = delivery_prefix(event_id);
  Writer(&key).text<std::uint8_t>(endpoint_id);
  return key;
}

std::string due_prefix(std::string_view endpoint_id) {
  std::string key(1, 'T');
  Writer(&key).text<std::uint8_t>(endpoint_id);
  return key;
}

std::string due_seek_key(std::string_view endpoint_id, std::int64_t from_us,
                         std::string_view from_event_id) {
  PAYCORE_ASSERT_GE(from_us, 0);
  std::string key = due_prefix(endpoint_id);
  Writer w(&key);
  w.big_endian64(from_us);
  w.text<std::uint8_t>(from_event_id);  // "" sorts before every id at that time
  return key;
}

std::string due_key(std::string_view endpoint_id, std::int64_t next_attempt_at_us,
                    std::string_view event_id) {
  PAYCORE_ASSERT_GT(next_attempt_at_us, 0);
  PAYCORE_ASSERT(!event_id.empty());
  return due_seek_key(endpoint_id, next_attempt_at_us, event_id);  // the same bytes
}

std::string finished_key(std::int64_t finished_at_us, std::string_view event_id,
                         std::string_view endpoint_id) {
  PAYCORE_ASSERT_GT(finished_at_us, 0);
  std::string key(1, 'F');
  Writer w(&key);
  w.big_endian64(finished_at_us);
  w.text<std::uint8_t>(event_id);
  w.text<std::uint8_t>(endpoint_id);
  return key;
}

std::string disabled_key(std::string_view endpoint_id) {
  std::string key(1, 'X');
  Writer(&key).text<std::uint8_t>(endpoint_id);
  return key;
}

std::string format_key() { return "Mformat"; }
std::string handed_over_key() { return "Mhanded_over"; }
std::string changes_applied_key() { return "Mchanges_applied"; }

StatusOr<DueKey> parse_due_key(std::string_view key) {
  DueKey out;
  Reader r(key.substr(key.empty() ? 0 : 1));
  const bool read = !key.empty() && key[0] == 'T' && r.text<std::uint8_t>(&out.endpoint_id) &&
                    r.big_endian64(&out.next_attempt_at_us) && r.text<std::uint8_t>(&out.event_id);
  if (!read || !r.done()) return Status::corruption("delivery store: malformed due key");
  return out;
}

StatusOr<FinishedKey> parse_finished_key(std::string_view key) {
  FinishedKey out;
  Reader r(key.substr(key.empty() ? 0 : 1));
  const bool read = !key.empty() && key[0] == 'F' && r.big_endian64(&out.finished_at_us) &&
                    r.text<std::uint8_t>(&out.event_id) && r.text<std::uint8_t>(&out.endpoint_id);
  if (!read || !r.done()) return Status::corruption("delivery store: malformed finished key");
  return out;
}

StatusOr<std::string> parse_disabled_key(std::string_view key) {
  std::string out;
  Reader r(key.substr(key.empty() ? 0 : 1));
  if (key.empty() || key[0] != 'X' || !r.text<std::uint8_t>(&out) || !r.done()) {
    return Status::corruption("delivery store: malformed disabled key");
  }
  return out;
}

std::string encode_event(const StoredEvent& event) {
  const bool event_valid = check_event(event).is_ok();
  PAYCORE_ASSERT(event_valid);
  std::string value = start_value();
  Writer w(&value);
  w.integer(event.created_at_us);
  w.text<std::uint8_t>(event.merchant_id);
  w.text<std::uint8_t>(event.type);
  w.text<std::uint32_t>(event.body);
  return seal(std::move(value));
}

std::string encode_delivery(const Delivery& d) {
  const bool delivery_valid = check_delivery(d).is_ok();
  PAYCORE_ASSERT(delivery_valid);
  std::string value = start_value();
  Writer w(&value);
  w.integer(static_cast<std::uint8_t>(d.state));
  w.integer(d.event_created_at_us);
  w.integer(d.next_attempt_at_us);
  w.integer(d.finished_at_us);
  w.integer(d.attempts_count);
  PAYCORE_ASSERT_EQ(value.size(), delivery_fixed_bytes);
  w.text<std::uint16_t>(d.url);
  w.text<std::uint16_t>(d.secret);
  w.text<std::uint8_t>(d.last_error);
  w.integer(static_cast<std::uint8_t>(d.attempts.size()));
  for (const Attempt& attempt : d.attempts) write_attempt(w, attempt);
  return seal(std::move(value));
}

std::string encode_format() { return seal(start_value()); }

std::string encode_position(std::uint64_t position) {
  std::string value = start_value();
  Writer w(&value);
  w.integer(position);
  return seal(std::move(value));
}

Status decode_event(std::string_view value, std::string_view event_id, StoredEvent* event) {
  const std::string what = "delivery store: event " + std::string(event_id);
  Reader r{std::string_view()};
  PAYCORE_RETURN_IF_ERROR(open_value(value, what, &r));
  event->id = std::string(event_id);
  const bool read = r.integer(&event->created_at_us) && r.text<std::uint8_t>(&event->merchant_id) &&
                    r.text<std::uint8_t>(&event->type) && r.text<std::uint32_t>(&event->body);
  if (!read || !r.done()) return Status::corruption(what + ": truncated or trailing bytes");
  const Status checked = check_event(*event);
  if (!checked.is_ok()) return Status::corruption(what + ": " + checked.message());
  return Status::ok();
}

Status decode_delivery(std::string_view value, std::string_view event_id,
                       std::string_view endpoint_id, Delivery* d) {
  const std::string what =
      "delivery store: delivery " + std::string(event_id) + "/" + std::string(endpoint_id);
  Reader r{std::string_view()};
  PAYCORE_RETURN_IF_ERROR(open_value(value, what, &r));
  d->event_id = std::string(event_id);
  d->endpoint_id = std::string(endpoint_id);
  std::uint8_t state = 0;
  std::uint8_t kept = 0;
  bool read = r.integer(&state) && r.integer(&d->event_created_at_us) &&
              r.integer(&d->next_attempt_at_us) && r.integer(&d->finished_at_us) &&
              r.integer(&d->attempts_count) && r.text<std::uint16_t>(&d->url) &&
              r.text<std::uint16_t>(&d->secret) && r.text<std::uint8_t>(&d->last_error) &&
              r.integer(&kept) && kept <= attempts_kept_max;
  d->state = static_cast<DeliveryState>(state);
  d->attempts.assign(read ? kept : 0, Attempt{});
  for (Attempt& attempt : d->attempts) read = read && read_attempt(r, &attempt);
  if (!read || !r.done()) return Status::corruption(what + ": truncated or trailing bytes");
  const Status checked = check_delivery(*d);
  if (!checked.is_ok()) return Status::corruption(what + ": " + checked.message());
  return Status::ok();
}

StatusOr<std::uint64_t> decode_position(std::string_view value, std::string_view what) {
  const std::string named = "delivery store: " + std::string(what);
  Reader r{std::string_view()};
  PAYCORE_RETURN_IF_ERROR(open_value(value, named, &r));
  std::uint64_t position = 0;
  if (!r.integer(&position) || !r.done()) return Status::corruption(named + ": truncated or trailing bytes");
  return position;
}

Status decode_format(std::string_view value) {
  Reader r{std::string_view()};
  PAYCORE_RETURN_IF_ERROR(open_value(value, "delivery store: format key", &r));
  if (!r.done()) return Status::corruption("delivery store: format key: trailing bytes");
  return Status::ok();
}

std::string encode_change(const DeliveryChange& change) {
  std::string out;
  Writer w(&out);
  w.text<std::uint8_t>(change.delivery.event_id);
  w.text<std::uint8_t>(change.delivery.endpoint_id);
  w.text<std::uint32_t>(encode_delivery(change.delivery));
  w.text<std::uint32_t>(change.event ? encode_event(*change.event) : std::string());
  return out;
}

std::string encode_changes(std::span<const DeliveryChange> changes) {
  std::string out;
  for (const DeliveryChange& c : changes) out += encode_change(c);
  return out;
}

Status decode_changes(std::string_view message, std::vector<DeliveryChange>* changes) {
  changes->clear();
  Reader r(message);
  while (!r.done()) {
    const std::string where = "webhook changes: entry " + std::to_string(changes->size() + 1);
    std::string event_id, endpoint_id, value, event;
    if (!r.text<std::uint8_t>(&event_id) || !r.text<std::uint8_t>(&endpoint_id) ||
        !r.text<std::uint32_t>(&value) || !r.text<std::uint32_t>(&event)) {
      return Status::corruption(where + ": truncated at byte " + std::to_string(message.size() - r.left()));
    }
    DeliveryChange c;
    Status s = decode_delivery(value, event_id, endpoint_id, &c.delivery);
    if (s.is_ok() && !event.empty()) {
      c.event.emplace();
      s = decode_event(event, event_id, &*c.event);
    }
    if (!s.is_ok()) return Status::corruption(where + ": " + s.message());
    changes->push_back(std::move(c));
  }
  return Status::ok();
}

}  // namespace format
}  // namespace paycore::webhooks
