#include "bench/loadgen/workload.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include "auth/signing.hpp"
#include "net/response.hpp"
#include "base/assert.hpp"
#include "base/hex.hpp"
#include "base/time.hpp"
#include "core/money.hpp"

namespace paycore::loadgen {
namespace {
void append_int(std::string& out, std::int64_t value) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  PAYCORE_ASSERT(ec == std::errc{});
  out.append(digits, end);
}

std::string unix_seconds_text() {
  std::string text;
  append_int(text, static_cast<std::int64_t>(std::time(nullptr)));
  return text;
}

std::int64_t unix_us_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void append_field(std::string& body, std::string_view name, std::string_view value) {
  if (body.back() != '{') body += ',';
  body += '"';
  body += name;
  body += "\":\"";
  body += value;  // ids and fixed words only: nothing to escape
  body += '"';
}

void append_field(std::string& body, std::string_view name, std::int64_t value) {
  if (body.back() != '{') body += ',';
  body += '"';
  body += name;
  body += "\":";
  append_int(body, value);
}
}  // namespace

std::string payer_account_id(std::uint64_t index) { return "lg-payer-" + std::to_string(index); }

std::string payer_mandate_id(std::uint64_t index, std::string_view merchant_id) {
  // FNV-1a: stable across runs and builds, unlike std::hash.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : merchant_id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  std::string id = "lgm-" + std::to_string(index) + "-";
  append_hex(id, hash, 16);
  return id;
}

Workload::Workload(const WorkloadConfig& config, const ZipfSampler& payers, unsigned thread_index,
                   unsigned threads_count)
    : config_(config),
      payers_(payers),
      thread_index_(thread_index),
      threads_count_(threads_count),
      rng_(config.seed * 0x9e3779b97f4a7c15ULL + thread_index + 1) {
  PAYCORE_ASSERT_GT(threads_count, 0u);
  PAYCORE_ASSERT_LT(thread_index, threads_count);
  PAYCORE_ASSERT(config.keys != nullptr);
  PAYCORE_ASSERT_EQ(config.run_id.size(), std::size_t{8});
  for (const auth::Principal& principal : config.keys->principals()) {
    if (principal.kind == auth::PrincipalKind::merchant) merchants_.push_back(&principal);
  }
  PAYCORE_ASSERT(!merchants_.empty());
  orders_.reserve(orders_remembered_max);
}

void Workload::set_phase(Phase phase) {
  phase_ = phase;
  setup_cursor_ = 0;
}

void Workload::new_id(std::string& out, char kind) {
  out.clear();
  out += kind;
  out += '-';
  out += config_.run_id;
  out += '-';
  append_hex(out, thread_index_, 2);
  out += '-';
  append_int(out, static_cast<std::int64_t>(++counter_));
}

void Workload::append_signed(std::string& out, std::string_view method, std::string_view path,
                             const auth::Principal& principal) {
  // A nonce of [0-9a-z-]: "lg" + run + thread + counter, unique per request of any run.
  std::string nonce_text;
  nonce_text.reserve(32);
  nonce_text += "lg";
  nonce_text += config_.run_id;
  append_hex(nonce_text, thread_index_, 2);
  append_hex(nonce_text, ++counter_, 12);
  [[maybe_unused]] const bool nonce_valid = auth::nonce_is_valid(nonce_text);
  PAYCORE_DEBUG_ASSERT(nonce_valid);
  const std::string timestamp = unix_seconds_text();
  const auth::HexSignature signature = auth::sign_request(
      principal.secret, {method, path, timestamp, nonce_text, body_});
  out += method;
  out += ' ';
  out += path;
  out += " HTTP/1.1\r\nHost: ";
  out += config_.host_header;
  out += "\r\nX-Merchant-Id: ";
  out += principal.id.view();
  out += "\r\nX-Timestamp: ";
  out += timestamp;
  out += "\r\nX-Nonce: ";
  out += nonce_text;
  out += "\r\nX-Signature: ";
  out += signature.view();
  if (!body_.empty()) {
    out += "\r\nContent-Type: application/json\r\nContent-Length: ";
    append_int(out, static_cast<std::int64_t>(body_.size()));
  }
  out += "\r\n\r\n";
  out += body_;
  ++requests_built_;
}

void Workload::append_payment_body(std::string& body, std::string_view order_id,
                                   std::int64_t amount, bool external, std::uint64_t payer) {
  body += '{';
  new_id(id_, 'r');
  append_field(body, "request_id", id_);
  append_field(body, "order_id", order_id);
  append_field(body, "amount", amount);
  append_field(body, "currency", config_.currency);
  if (external) {
    append_field(body, "channel", config_.channel);
  } else {
    append_field(body, "channel", auth::balance_channel);
    append_field(body, "payer_account_id", payer_account_id(payer));
  }
  body += '}';
}

void Workload::build_payment(std::string& out, Expect& expect, bool external) {
  expect.merchant_index = static_cast<std::uint32_t>(rng_.below(merchants_.size()));
  expect.amount = 1 + static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(config_.amount_max)));
  new_id(expect.order_id, 'o');
  body_.clear();
  append_payment_body(body_, expect.order_id, expect.amount, external, payers_.sample(rng_));
  append_signed(out, "POST", "/v1/payments", *merchants_[expect.merchant_index]);
}

void Workload::build_batch(std::string& out, Expect& expect) {
  expect.merchant_index = static_cast<std::uint32_t>(rng_.below(merchants_.size()));
  expect.batch_amounts.clear();
  body_ = "{\"payments\":[";
  std::string order_id;
  for (std::uint32_t i = 0; i < config_.batch_size; ++i) {
    const std::int64_t amount =
        1 + static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(config_.amount_max)));
    expect.batch_amounts.push_back(amount);
    if (i != 0) body_ += ',';
    new_id(order_id, 'o');
    append_payment_body(body_, order_id, amount, false, payers_.sample(rng_));
  }
  body_ += "]}";
  append_signed(out, "POST", "/v1/payments/batch", *merchants_[expect.merchant_index]);
}

// GET of a payment this run made (`get`), or the page after it (`list`).
bool Workload::build_read(std::string& out, Expect& expect) {
  if (orders_.empty()) return false;
  const Order& order = orders_[rng_.below(orders_.size())];
  expect.merchant_index = order.merchant_index;
  expect.order_id = order.order_id;
  expect.amount = order.amount;
  body_.clear();
  const std::string target = expect.op == Op::list
                                 ? "/v1/payments?limit=10&starting_after=" + order.order_id
                                 : "/v1/payments/" + order.order_id;
  append_signed(out, "GET", target, *merchants_[order.merchant_index]);
  return true;
}

bool Workload::build_refund(std::string& out, Expect& expect) {
  for (int probe = 0; probe < 4 && !orders_.empty(); ++probe) {
    Order& order = orders_[rng_.below(orders_.size())];
    if (!order.paid || order.refunded >= order.amount) continue;
    const std::int64_t rest = order.amount - order.refunded;
    const std::int64_t amount = 1 + static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(std::min<std::int64_t>(rest, 100))));
    order.refunded += amount;  // counted when sent, so two refunds in flight never exceed it
    expect.merchant_index = order.merchant_index;
    expect.order_id = order.order_id;
    expect.amount = amount;
    body_.clear();
    body_ += '{';
    new_id(id_, 'r');
    append_field(body_, "request_id", id_);
    append_field(body_, "amount", amount);
    body_ += '}';
    append_signed(out, "POST", "/v1/payments/" + order.order_id + "/refunds",
                  *merchants_[order.merchant_index]);
    return true;
  }
  return false;
}

void Workload::build_notification(std::string& out, Expect& expect) {
  const Order order = std::move(notifications_.front());
  notifications_.pop_front();
  expect.merchant_index = order.merchant_index;
  expect.order_id = order.order_id;
  expect.amount = order.amount;
  char paid_at[rfc3339_us_bytes];
  const bool formatted = format_rfc3339_us(unix_us_now(), paid_at);
  PAYCORE_ASSERT(formatted);
  body_.clear();
  body_ += '{';
  new_id(id_, 't');
  append_field(body_, "channel_txn_id", id_);
  append_field(body_, "merchant_id", merchants_[order.merchant_index]->id.view());
  append_field(body_, "order_id", order.order_id);
  append_field(body_, "amount", order.amount);
  append_field(body_, "currency", config_.currency);
  append_field(body_, "status", "SUCCESS");
  append_field(body_, "paid_at", std::string_view(paid_at, sizeof paid_at));
  body_ += '}';
  std::string nonce = "lgn";
  nonce += config_.run_id;
  append_hex(nonce, thread_index_, 2);
  append_hex(nonce, ++counter_, 12);
  const std::string timestamp = unix_seconds_text();
  const std::string signature =
      auth::sign_notification(config_.channel_private_key.get(), timestamp, nonce, body_);
  PAYCORE_ASSERT(!signature.empty());
  out += "POST /v1/notify/";
  out += config_.channel;
  out += " HTTP/1.1\r\nHost: ";
  out += config_.host_header;
  out += "\r\nX-Channel-Timestamp: ";
  out += timestamp;
  out += "\r\nX-Channel-Nonce: ";
  out += nonce;
  out += "\r\nX-Channel-Signature: ";
  out += signature;
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  append_int(out, static_cast<std::int64_t>(body_.size()));
  out += "\r\n\r\n";
  out += body_;
  ++requests_built_;
}

void Workload::build_mandate(std::string& out, Expect& expect, std::uint64_t payer,
                             const auth::Principal& merchant) {
  expect.op = Op::mandate;
  body_.clear();
  body_ += '{';
  new_id(id_, 'r');
  append_field(body_, "request_id", id_);
  append_field(body_, "mandate_id", payer_mandate_id(payer, merchant.id.view()));
  append_field(body_, "payer_account_id", payer_account_id(payer));
  append_field(body_, "merchant_id", merchant.id.view());
  append_field(body_, "amount_max", amount_max_default);
  body_ += '}';
  append_signed(out, "POST", "/v1/mandates", config_.keys->operator_principal());
}

bool Workload::build_setup(std::string& out, Expect& expect) {
  const auth::Principal& op = config_.keys->operator_principal();
  if (phase_ == Phase::mandates) {
    // This thread's payers, each with every merchant in turn.
    const std::uint64_t payer = (setup_cursor_ / merchants_.size()) * threads_count_ + thread_index_;
    if (payer >= config_.payers_count) return false;
    const auth::Principal& merchant = *merchants_[setup_cursor_ % merchants_.size()];
    ++setup_cursor_;
    build_mandate(out, expect, payer, merchant);
    return true;
  }
  const std::uint64_t merchants_count = thread_index_ == 0 ? merchants_.size() : 0;
  // Merchants' accounts first (thread 0), then this thread's share of the payers.
  if (phase_ == Phase::open_accounts && setup_cursor_ < merchants_count) {
    const auth::Principal& merchant = *merchants_[setup_cursor_++];
    expect.op = Op::open_account;
    body_.clear();
    body_ += '{';
    new_id(id_, 'r');
    append_field(body_, "request_id", id_);
    append_field(body_, "account_id", merchant.id.view());
    append_field(body_, "currency", config_.currency);
    append_field(body_, "kind", "merchant");
    body_ += '}';
    append_signed(out, "POST", "/v1/accounts", op);
    return true;
  }
  const std::uint64_t cursor = setup_cursor_ - (phase_ == Phase::open_accounts ? merchants_count : 0);
  const std::uint64_t payer = cursor * threads_count_ + thread_index_;
  if (payer >= config_.payers_count) return false;
  ++setup_cursor_;
  const std::string account = payer_account_id(payer);
  body_.clear();
  body_ += '{';
  new_id(id_, 'r');
  append_field(body_, "request_id", id_);
  if (phase_ == Phase::open_accounts) {
    expect.op = Op::open_account;
    append_field(body_, "account_id", account);
    append_field(body_, "currency", config_.currency);
    append_field(body_, "kind", "customer");
    body_ += '}';
    append_signed(out, "POST", "/v1/accounts", op);
  } else {
    expect.op = Op::deposit;
    append_field(body_, "amount", config_.deposit_amount);
    append_field(body_, "currency", config_.currency);
    body_ += '}';
    append_signed(out, "POST", "/v1/accounts/" + account + "/deposits", op);
  }
  return true;
}

bool Workload::next(std::string& out, Expect& expect) {
  expect.notify_follows = false;
  if (phase_ != Phase::load) return build_setup(out, expect);
  if (!notifications_.empty()) {
    expect.op = Op::notify;
    build_notification(out, expect);
    return true;
  }
  expect.op = config_.mix.pick(rng_.below(config_.mix.total));
  switch (expect.op) {
    case Op::get:
    case Op::list:
      if (build_read(out, expect)) return true;
      break;
    case Op::refund:
      if (build_refund(out, expect)) return true;
      break;
    case Op::batch:
      build_batch(out, expect);
      return true;
    case Op::ext:
    case Op::notify:
      // notify: the payment now (counted as ext), its notification once it is PENDING.
      expect.notify_follows = expect.op == Op::notify;
      expect.op = Op::ext;
      build_payment(out, expect, true);
      return true;
    default:
      break;
  }
  // pay, and reads or refunds before any order exists to read or refund.
  expect.op = Op::pay;
  build_payment(out, expect, false);
  return true;
}

void Workload::remember(const Expect& expect, bool paid) {
  Order order{expect.order_id, expect.merchant_index, expect.amount, 0, paid};
  if (orders_.size() < orders_remembered_max) {
    orders_.push_back(std::move(order));
  } else {
    orders_[orders_next_] = std::move(order);
    orders_next_ = (orders_next_ + 1) % orders_remembered_max;
  }
}

void Workload::on_result(const Expect& expect, const Check& check) {
  if (check.verdict != Verdict::ok) return;
  if (expect.op == Op::pay) remember(expect, true);
  if (expect.op == Op::ext) {
    remember(expect, false);
    if (expect.notify_follows && notifications_.size() < notifications_queued_max) {
      notifications_.push_back(Order{expect.order_id, expect.merchant_index, expect.amount, 0, false});
    }
  }
  if (expect.op == Op::notify) {
    // Settled now: it may be refunded like a balance payment (to the channel's account).
    for (Order& order : orders_) {
      if (order.order_id == expect.order_id) order.paid = true;
    }
  }
}

}  // namespace paycore::loadgen
