#include "snapshot_export.hpp"

#include <iostream>
#include <span>

#include "apply.hpp"
#include "base/json_text.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "snapshot.hpp"

namespace paycore {
namespace {

// Built by appending: GCC 12 at -O3 reports a false -Wrestrict on chains of string operator+.
std::string q(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  out += json_escape(s);
  out += '"';
  return out;
}
std::string n(std::int64_t v) { return std::to_string(v); }

// Calls fn(account_id, currency, balance) for every non-zero system balance: `external` and
// `channel:{name}`, one per currency.
template <class Fn>
void for_each_system_balance(const State& s, Fn&& fn) {
  for (std::uint32_t c = 0; c < s.channels.size(); ++c) {
    const std::string id = c == 0 ? std::string(system_account_external)
                                  : std::string(system_account_channel_prefix) + std::string(s.str(s.channels[c]));
    for (std::uint16_t k = 1; k < currency_table_size(); ++k) {
      const Currency ccy{k};
      const Amount balance = c == 0 ? s.external_balance(ccy) : s.channel_balance(c, ccy);
      if (balance != 0) fn(id, ccy, balance);
    }
  }
}

// CSV fields here are ids, codes and numbers: none holds a comma or a quote (ids are
// [A-Za-z0-9_.:-]), so no quoting is needed; the timestamp columns are RFC 3339.
void export_csv(const State& s, std::ostream& out) {
  out << "record,account_id,kind,currency,balance,created_at,updated_at\n";
  for (std::uint32_t i = 0; i < s.accounts.size(); ++i) {
    const AccountRow& a = s.accounts[i];
    out << "account," << a.id.view() << ',' << to_string(a.kind) << ',' << currency_code(a.currency) << ','
        << a.balance << ',' << format_rfc3339_us(a.created_at_us) << ',' << format_rfc3339_us(a.updated_at_us) << '\n';
  }
  out << "record,account_id,currency,balance\n";
  for_each_system_balance(s, [&](const std::string& id, Currency ccy, Amount balance) {
    out << "system," << id << ',' << currency_code(ccy) << ',' << balance << '\n';
  });
  out << "record,merchant_id,order_id,request_id,channel,payer_account_id,amount,currency,status,"
         "refunded_amount,channel_txn_id,created_at,updated_at\n";
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) {
    const PaymentRow& p = s.payments[i];
    out << "payment," << s.accounts[p.merchant].id.view() << ',' << s.str(p.order_id) << ','
        << s.str(p.request_id) << ',' << s.str(s.channels[p.channel]) << ','
        << (p.payer == row_none ? std::string_view() : s.accounts[p.payer].id.view()) << ',' << p.amount << ','
        << currency_code(p.currency) << ',' << to_string(p.status) << ',' << p.refunded_amount << ','
        << s.str(p.channel_txn_id) << ',' << format_rfc3339_us(p.created_at_us) << ','
        << format_rfc3339_us(p.updated_at_us) << '\n';
  }
  out << "record,merchant_id,order_id,refund_request_id,amount,currency,created_at\n";
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) {
    const PaymentRow& p = s.payments[i];
    for (std::uint32_t r = p.first_refund; r != row_none; r = s.refunds[r].next) {
      out << "refund," << s.accounts[p.merchant].id.view() << ',' << s.str(p.order_id) << ','
          << s.str(s.refunds[r].request_id) << ',' << s.refunds[r].amount << ',' << currency_code(p.currency)
          << ',' << format_rfc3339_us(s.refunds[r].created_at_us) << '\n';
    }
  }
  out << "record,channel,channel_txn_id,merchant_id,order_id,amount,currency,status,reason,paid_at,received_at\n";
  for (std::uint32_t i = 0; i < s.anomalies.size(); ++i) {
    const AnomalyRow& a = s.anomalies[i];
    out << "anomaly," << s.str(s.channels[a.channel]) << ',' << s.str(a.channel_txn_id) << ','
        << s.str(a.merchant_id) << ',' << s.str(a.order_id) << ',' << a.amount << ',' << currency_code(a.currency)
        << ',' << to_string(a.status) << ',' << to_string(a.reason) << ',' << format_rfc3339_us(a.paid_at_us) << ','
        << format_rfc3339_us(a.received_at_us) << '\n';
  }
  out << "record,mandate_id,payer_account_id,merchant_id,amount_max,currency,expires_at,single_use,status,"
         "created_at,updated_at\n";
  for (std::uint32_t i = 0; i < s.mandates.size(); ++i) {
    const MandateView m = mandate_view(s, i, s.last_timestamp_us);
    out << "mandate," << m.mandate_id.view() << ',' << m.payer_account_id.view() << ',' << m.merchant_id.view()
        << ',' << m.amount_max << ',' << currency_code(m.currency) << ','
        << (m.expires_at_us == 0 ? std::string() : format_rfc3339_us(m.expires_at_us)) << ','
        << (m.single_use ? "true" : "false") << ',' << to_string(m.status) << ','
        << format_rfc3339_us(m.created_at_us) << ',' << format_rfc3339_us(m.updated_at_us) << '\n';
  }
}

void export_jsonl(const State& s, std::ostream& out) {
  for (std::uint32_t i = 0; i < s.accounts.size(); ++i) {
    const AccountRow& a = s.accounts[i];
    out << "{\"type\":\"account\",\"account_id\":" << q(a.id.view()) << ",\"kind\":" << q(to_string(a.kind))
        << ",\"currency\":" << q(currency_code(a.currency)) << ",\"balance\":" << a.balance
        << ",\"created_at\":" << q(format_rfc3339_us(a.created_at_us))
        << ",\"updated_at\":" << q(format_rfc3339_us(a.updated_at_us)) << "}\n";
  }
  for_each_system_balance(s, [&](const std::string& id, Currency ccy, Amount balance) {
    out << "{\"type\":\"system\",\"account_id\":" << q(id) << ",\"currency\":" << q(currency_code(ccy))
        << ",\"balance\":" << balance << "}\n";
  });
  for (std::uint32_t i = s.payments.begin(); i < s.payments.size(); ++i) {
    const PaymentRow& p = s.payments[i];
    out << "{\"type\":\"payment\",\"merchant_id\":" << q(s.accounts[p.merchant].id.view())
        << ",\"order_id\":" << q(s.str(p.order_id)) << ",\"request_id\":" << q(s.str(p.request_id))
        << ",\"channel\":" << q(s.str(s.channels[p.channel])) << ",\"payer_account_id\":"
        << (p.payer == row_none ? "null" : q(s.accounts[p.payer].id.view())) << ",\"amount\":" << p.amount
        << ",\"currency\":" << q(currency_code(p.currency)) << ",\"status\":" << q(to_string(p.status))
        << ",\"refunded_amount\":" << p.refunded_amount << ",\"channel_txn_id\":"
        << (p.channel_txn_id == 0 ? "null" : q(s.str(p.channel_txn_id))) << ",\"mandate_id\":"
        << (p.mandate == row_none ? "null" : q(s.str(s.mandates[p.mandate].mandate_id)))
        << ",\"created_at\":" << q(format_rfc3339_us(p.created_at_us))
        << ",\"updated_at\":" << q(format_rfc3339_us(p.updated_at_us)) << ",\"refunds\":[";
    bool first = true;
    for (std::uint32_t r = p.first_refund; r != row_none; r = s.refunds[r].next) {
      out << (first ? "" : ",") << "{\"request_id\":" << q(s.str(s.refunds[r].request_id))
          << ",\"amount\":" << s.refunds[r].amount << ",\"created_at\":"
          << q(format_rfc3339_us(s.refunds[r].created_at_us)) << "}";
      first = false;
    }
    out << "]}\n";
  }
  for (std::uint32_t i = 0; i < s.anomalies.size(); ++i) {
    const AnomalyRow& a = s.anomalies[i];
    out << "{\"type\":\"anomaly\",\"channel\":" << q(s.str(s.channels[a.channel]))
        << ",\"channel_txn_id\":" << q(s.str(a.channel_txn_id)) << ",\"merchant_id\":" << q(s.str(a.merchant_id))
        << ",\"order_id\":" << q(s.str(a.order_id)) << ",\"amount\":" << a.amount
        << ",\"currency\":" << q(currency_code(a.currency)) << ",\"status\":" << q(to_string(a.status))
        << ",\"reason\":" << q(to_string(a.reason)) << ",\"paid_at\":" << q(format_rfc3339_us(a.paid_at_us))
        << ",\"received_at\":" << q(format_rfc3339_us(a.received_at_us)) << "}\n";
  }
  // Statuses as read at the snapshot's newest command time (EXPIRED is computed, not stored).
  for (std::uint32_t i = 0; i < s.mandates.size(); ++i) {
    const MandateView m = mandate_view(s, i, s.last_timestamp_us);
    out << "{\"type\":\"mandate\",\"mandate_id\":" << q(m.mandate_id.view())
        << ",\"payer_account_id\":" << q(m.payer_account_id.view()) << ",\"merchant_id\":" << q(m.merchant_id.view())
        << ",\"amount_max\":" << m.amount_max << ",\"currency\":" << q(currency_code(m.currency))
        << ",\"expires_at\":" << (m.expires_at_us == 0 ? "null" : q(format_rfc3339_us(m.expires_at_us)))
        << ",\"single_use\":" << (m.single_use ? "true" : "false") << ",\"status\":" << q(to_string(m.status))
        << ",\"created_at\":" << q(format_rfc3339_us(m.created_at_us))
        << ",\"updated_at\":" << q(format_rfc3339_us(m.updated_at_us)) << "}\n";
  }
}

}  // namespace

int inspect_snapshot(const std::string& path, std::ostream& out) {
  const StatusOr<std::string> read = read_file(path);
  if (!read.is_ok()) {
    out << "error: " << read.status().message() << '\n';
    return 1;
  }
  const std::string& bytes = *read;
  SnapshotInfo info;
  const Status whole = check_snapshot(std::as_bytes(std::span(bytes)), &info);
  out << "file: " << path << "\nbytes: " << bytes.size() << '\n';
  if (info.format_version != 0) {
    out << "format_version: " << info.format_version << "\nlsn: " << info.lsn
        << "\ncreated_at: " << format_rfc3339_us(info.created_at_us)
        << "\nlast_command_at: " << format_rfc3339_us(info.last_timestamp_us)
        << "\npending_lifetime_s: " << info.pending_lifetime_us / 1'000'000 << "\nchannels: " << info.channels
        << "\naccounts: " << info.accounts << "\npayments: " << info.payments << "\nrefunds: " << info.refunds
        << "\nidempotency_records: " << info.idempotency << "\nanomalies: " << info.anomalies
        << "\nprincipals: " << info.principals << "\npending_queue: " << info.pending
        << "\nmandates: " << info.mandates << '\n';
  }
  if (!whole.is_ok()) {
    out << "checksum: BAD (" << whole.message() << ")\n";
    return 1;
  }
  // The checksums prove integrity; a full load proves the content obeys every rule.
  State state;
  if (const Status loaded = load_snapshot(std::as_bytes(std::span(bytes)), &state, &info);
      !loaded.is_ok()) {
    out << "checksum: ok\ncontent: BAD (" << loaded.message() << ")\n";
    return 1;
  }
  char checksum[40];
  std::snprintf(checksum, sizeof(checksum), "%016llx%016llx", static_cast<unsigned long long>(info.checksum_high),
                static_cast<unsigned long long>(info.checksum_low));
  out << "checksum: ok (xxh3-128 " << checksum << ")\ncontent: ok (balances sum to zero)\n";
  return 0;
}

int export_snapshot(const std::string& path, const std::string& format, std::ostream& out) {
  State state;
  SnapshotInfo info;
  if (const Status loaded = load_snapshot_file(path, &state, &info); !loaded.is_ok()) {
    std::cerr << "paycore snapshot export: " << loaded.message() << '\n';
    return 2;
  }
  if (format == "csv") export_csv(state, out);
  else export_jsonl(state, out);
  return out.good() ? 0 : 2;
}

std::string command_to_json(const Command& c) {
  std::string s = "{\"kind\":";
  const auto field = [&](std::string_view name, const std::string& json_value) {
    s += ",\"";
    s += name;
    s += "\":";
    s += json_value;
  };
  s += q(to_string(c.kind));
  field("timestamp", q(format_rfc3339_us(c.timestamp_us)));
  const auto id = [&](std::string_view name, const Id& v) {
    if (!v.empty()) field(name, q(v.view()));
  };
  id("principal", c.principal);
  id("request_id", c.request_id);
  id("account", c.account);
  id("order_id", c.order_id);
  id("channel", c.channel);
  id("channel_txn_id", c.channel_txn_id);
  id("mandate_id", c.mandate_id);
  id("merchant_id", c.merchant_id);
  if (c.amount != 0) field(c.kind == CommandKind::create_mandate ? "amount_max" : "amount", n(c.amount));
  if (c.currency.valid()) field("currency", q(currency_code(c.currency)));
  if (c.kind == CommandKind::open_account) field("account_kind", q(to_string(c.account_kind)));
  if (c.kind == CommandKind::channel_notification) {
    field("status", q(to_string(c.notification_status)));
    field("paid_at", q(format_rfc3339_us(c.paid_at_us)));
  }
  if (c.kind == CommandKind::create_mandate) {
    field("expires_at", c.expires_at_us == 0 ? "null" : q(format_rfc3339_us(c.expires_at_us)));
    field("single_use", c.is_single_use() ? "true" : "false");
  }
  if (c.kind == CommandKind::tick) {
    field("pending_lifetime_us", n(c.pending_lifetime_us));
    field("expire_max", n(c.expire_max));
  }
  if (c.is_operator()) field("operator", "true");
  s += '}';
  return s;
}

std::string outcome_to_json(const CommandOutcome& o) {
  std::string s = "{\"code\":" + q(to_string(o.code));
  if (o.notification == NotificationOutcome::applied) s += ",\"notification\":\"applied\"";
  if (o.notification == NotificationOutcome::duplicate) s += ",\"notification\":\"duplicate\"";
  if (o.notification == NotificationOutcome::anomaly) {
    s += ",\"notification\":\"anomaly\",\"anomaly\":" + q(to_string(o.anomaly));
  }
  if (o.expired_count != 0) s += ",\"expired\":" + n(o.expired_count);
  switch (o.resource) {
    case ResourceKind::account:
      s += ",\"account_id\":" + q(o.account.account_id.view()) + ",\"balance\":" + n(o.account.balance);
      break;
    case ResourceKind::payment:
      s += ",\"order_id\":" + q(o.payment.order_id.view()) + ",\"status\":" +
           q(to_string(o.payment.status)) + ",\"refunded_amount\":" + n(o.payment.refunded_amount);
      break;
    case ResourceKind::mandate:
      s += ",\"mandate_id\":" + q(o.mandate.mandate_id.view()) + ",\"status\":" +
           q(to_string(o.mandate.status));
      break;
    case ResourceKind::none: break;
  }
  s += '}';
  return s;
}

}  // namespace paycore
