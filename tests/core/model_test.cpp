// Model-based test: seeded random commands applied both to paycore's state machine and to a
// deliberately simple reference written here with std::map (no indexes, no arena, no
// cleverness). Every result and the final balances must agree.
//
//   PAYCORE_SEED=123 PAYCORE_MODEL_COMMANDS=1000000 ./core_tests --gtest_filter='Model*'

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>

#include "commands.hpp"
#include "random_commands.hpp"

namespace paycore::testing {
namespace {

// ---- The reference ---------------------------------------------------------------------------

struct RefAccount {
  std::string currency;
  AccountKind kind;
  Amount balance = 0;
};
struct RefPayment {
  std::string channel, payer, currency, txn;
  Amount amount = 0, refunded = 0;
  PaymentStatus status{};
  std::int64_t created_us = 0;
};
struct RefMandate {
  std::string payer, merchant;
  Amount amount_max = 0;
  std::int64_t expires_us = 0;
  MandateStatus status{};
  bool single_use = false;
};
struct RefRecord {
  std::string body;  // the canonical request
  ResultCode code;
  std::string resource;  // account id, or "merchant/order"
};

struct Reference {
  std::map<std::string, RefAccount> accounts;
  std::map<std::string, RefPayment> payments;  // "merchant/order"
  std::map<std::string, RefRecord> records;    // "principal/request_id"
  std::map<std::string, RefMandate> mandates;  // mandate_id
  std::map<std::string, std::string> newest;   // "payer/merchant" -> mandate_id
  std::set<std::string> txns;                  // "channel/txn"
  std::map<std::string, Amount> system;        // "external/CNY", "alipay/CNY"
  std::set<std::string> channels = {"alipay", "wechat"};
  std::int64_t lifetime_us = pending_lifetime_default_us;
  std::size_t anomalies = 0;

  PaymentStatus status_at(const RefPayment& p, std::int64_t now) const {
    if (p.status == PaymentStatus::pending && p.created_us + lifetime_us <= now) return PaymentStatus::cancelled;
    return p.status;
  }

  MandateStatus mandate_at(const RefMandate& m, std::int64_t now) const {
    if (m.status == MandateStatus::active && m.expires_us != 0 && m.expires_us <= now) return MandateStatus::expired;
    return m.status;
  }

  static std::string body(const Command& c) {
    return std::to_string(static_cast<int>(c.kind)) + "|" + std::string(c.account.view()) + "|" +
           std::string(c.order_id.view()) + "|" + std::to_string(c.amount) + "|" +
           std::string(currency_code(c.currency)) + "|" + std::string(c.channel.view()) + "|" +
           std::to_string(static_cast<int>(c.account_kind)) + "|" + std::string(c.mandate_id.view()) +
           "|" + std::string(c.merchant_id.view()) + "|" + std::to_string(c.expires_at_us) + "|" +
           std::to_string(c.is_single_use());
  }

  // Returns {code, replayed, resource key}.
  struct Outcome {
    ResultCode code;
    bool replayed = false;
    std::string resource;
  };

  Outcome run(const Command& c) {
    const std::string p(c.principal.view()), order(c.order_id.view()), acct(c.account.view());
    const std::string key = p + "/" + std::string(c.request_id.view());
    const std::string pkey = p + "/" + order;
    if (command_is_idempotent(c.kind)) {
      if (c.amount <= 0 && (c.kind == CommandKind::deposit || c.kind == CommandKind::create_payment ||
                            c.kind == CommandKind::refund_payment)) {
        return {ResultCode::invalid_amount};
      }
      if (c.kind == CommandKind::create_payment && !channels.count(std::string(c.channel.view())) &&
          c.channel.view() != "balance") {
        return {ResultCode::unknown_channel};
      }
      if (c.kind == CommandKind::create_mandate && c.expires_at_us != 0 && c.expires_at_us <= c.timestamp_us) {
        return {ResultCode::invalid_field};
      }
      auto it = records.find(key);
      if (it != records.end()) {
        if (it->second.body != body(c)) return {ResultCode::idempotency_key_reused};
        return {it->second.code, true, it->second.resource};
      }
      Outcome o = decide(c, p, acct, pkey);
      if (result_is_kept(o.code)) records[key] = {body(c), o.code, o.resource};
      return o;
    }
    return decide(c, p, acct, pkey);
  }

  Outcome decide(const Command& c, const std::string& p,
                 const std::string& acct, const std::string& pkey) {
    const std::string ccy(currency_code(c.currency));
    switch (c.kind) {
      case CommandKind::open_account:
        if (accounts.count(acct)) return {ResultCode::account_exists};
        accounts[acct] = {ccy, c.account_kind, 0};
        return {ResultCode::ok, false, acct};
      case CommandKind::deposit: {
        if (!accounts.count(acct)) return {ResultCode::account_not_found};
        if (accounts[acct].currency != ccy) return {ResultCode::currency_mismatch};
        accounts[acct].balance += c.amount;
        system["external/" + ccy] -= c.amount;
        return {ResultCode::ok, false, acct};
      }
      case CommandKind::create_payment: {
        const bool balance = c.channel.view() == "balance";
        auto m = accounts.find(p);
        if (m != accounts.end()) {
          if (m->second.kind != AccountKind::merchant) return {ResultCode::account_not_found};
          if (payments.count(pkey)) return {ResultCode::duplicate_order};
          if (m->second.currency != ccy) return {ResultCode::currency_mismatch};
        }
        RefMandate* mandate = nullptr;
        if (balance) {
          auto payer = accounts.find(acct);
          if (payer == accounts.end()) return {ResultCode::account_not_found};
          if (payer->second.kind != AccountKind::customer) return {ResultCode::account_not_found};
          auto pair = newest.find(acct + "/" + p);
          if (pair == newest.end()) return {ResultCode::account_not_found};
          mandate = &mandates[pair->second];
          if (mandate_at(*mandate, c.timestamp_us) != MandateStatus::active) return {ResultCode::mandate_inactive};
          if (payer->second.currency != ccy) return {ResultCode::currency_mismatch};
          if (c.amount > mandate->amount_max) return {ResultCode::mandate_limit_exceeded};
          if (payer->second.balance < c.amount) return {ResultCode::insufficient_funds};
        }
        if (m == accounts.end()) accounts[p] = {ccy, AccountKind::merchant, 0};
        RefPayment pay{std::string(c.channel.view()), balance ? acct : "", ccy, "", c.amount, 0,
                       balance ? PaymentStatus::paid : PaymentStatus::pending, c.timestamp_us};
        if (balance) {
          accounts[acct].balance -= c.amount;
          accounts[p].balance += c.amount;
          if (mandate->single_use) mandate->status = MandateStatus::used;
        }
        payments[pkey] = pay;
        return {ResultCode::ok, false, pkey};
      }
      case CommandKind::cancel_payment:
      case CommandKind::ship_payment:
      case CommandKind::complete_payment: {
        auto it = payments.find(pkey);
        if (it == payments.end()) return {ResultCode::payment_not_found};
        const PaymentStatus now = status_at(it->second, c.timestamp_us);
        const PaymentStatus from = c.kind == CommandKind::cancel_payment ? PaymentStatus::pending
                                   : c.kind == CommandKind::ship_payment ? PaymentStatus::paid
                                                                         : PaymentStatus::shipped;
        const PaymentStatus to = c.kind == CommandKind::cancel_payment ? PaymentStatus::cancelled
                                 : c.kind == CommandKind::ship_payment ? PaymentStatus::shipped
                                                                       : PaymentStatus::completed;
        if (now != from) return {ResultCode::invalid_state};
        it->second.status = to;
        return {ResultCode::ok, false, pkey};
      }
      case CommandKind::refund_payment: {
        auto it = payments.find(pkey);
        if (it == payments.end()) return {ResultCode::payment_not_found};
        RefPayment& pay = it->second;
        const PaymentStatus now = status_at(pay, c.timestamp_us);
        if (now != PaymentStatus::paid && now != PaymentStatus::shipped && now != PaymentStatus::completed) {
          return {ResultCode::invalid_state};
        }
        if (c.amount > pay.amount - pay.refunded) return {ResultCode::refund_exceeds_payment};
        if (accounts[p].balance < c.amount) return {ResultCode::insufficient_funds};
        accounts[p].balance -= c.amount;
        if (pay.channel == "balance") {
          accounts[pay.payer].balance += c.amount;
        } else {
          system[pay.channel + "/" + pay.currency] += c.amount;
        }
        pay.refunded += c.amount;
        if (pay.refunded == pay.amount) pay.status = PaymentStatus::refunded;
        return {ResultCode::ok, false, pkey};
      }
      case CommandKind::channel_notification: {
        const std::string channel(c.channel.view());
        const std::string tkey = channel + "/" + std::string(c.channel_txn_id.view());
        if (txns.count(tkey)) return {ResultCode::ok, false, "duplicate"};
        txns.insert(tkey);
        auto it = payments.find(pkey);
        if (it == payments.end() || it->second.channel != channel ||
            status_at(it->second, c.timestamp_us) != PaymentStatus::pending ||
            it->second.currency != ccy || it->second.amount != c.amount) {
          ++anomalies;
          return {ResultCode::ok, false, "anomaly"};
        }
        if (c.notification_status == NotificationStatus::success) {
          it->second.status = PaymentStatus::paid;
          accounts[p].balance += c.amount;
          system[channel + "/" + ccy] -= c.amount;
        } else {
          it->second.status = PaymentStatus::failed;
        }
        return {ResultCode::ok, false, "applied"};
      }
      case CommandKind::tick:
        for (auto& [k, pay] : payments) {
          if (pay.status == PaymentStatus::pending && pay.created_us + lifetime_us <= c.timestamp_us) {
            pay.status = PaymentStatus::cancelled;
          }
        }
        return {ResultCode::ok};
      case CommandKind::get_account:
        if (!accounts.count(acct) || (!c.is_operator() && acct != p)) return {ResultCode::account_not_found};
        return {ResultCode::ok, false, acct};
      case CommandKind::get_payment:
        if (!payments.count(pkey)) return {ResultCode::payment_not_found};
        return {ResultCode::ok, false, pkey};
      case CommandKind::create_mandate: {
        const std::string id(c.mandate_id.view()), merchant(c.merchant_id.view());
        if (mandates.count(id)) return {ResultCode::mandate_exists};
        auto payer = accounts.find(acct);
        if (payer == accounts.end()) return {ResultCode::account_not_found};
        if (payer->second.kind != AccountKind::customer) return {ResultCode::invalid_payer};
        auto pair = newest.find(acct + "/" + merchant);
        if (pair != newest.end()) {
          RefMandate& previous = mandates[pair->second];
          if (mandate_at(previous, c.timestamp_us) == MandateStatus::active) previous.status = MandateStatus::revoked;
        }
        mandates[id] = {acct, merchant, c.amount, c.expires_at_us, MandateStatus::active, c.is_single_use()};
        newest[acct + "/" + merchant] = id;
        return {ResultCode::ok, false, id};
      }
      case CommandKind::revoke_mandate: {
        auto it = mandates.find(std::string(c.mandate_id.view()));
        if (it == mandates.end()) return {ResultCode::not_found};
        if (mandate_at(it->second, c.timestamp_us) != MandateStatus::active) return {ResultCode::invalid_state};
        it->second.status = MandateStatus::revoked;
        return {ResultCode::ok, false, it->first};
      }
      case CommandKind::get_mandate: {
        auto it = mandates.find(std::string(c.mandate_id.view()));
        if (it == mandates.end() || (!c.is_operator() && it->second.merchant != p)) return {ResultCode::not_found};
        return {ResultCode::ok, false, it->first};
      }
      default:
        return {ResultCode::invalid_field};
    }
  }
};

TEST(Model, StateMachineAgreesWithReference) {
  const std::uint64_t seed = env_or("PAYCORE_SEED", std::random_device{}());
  const std::uint64_t count = env_or("PAYCORE_MODEL_COMMANDS", 150'000);
  SCOPED_TRACE("PAYCORE_SEED=" + std::to_string(seed));
  RecordProperty("seed", std::to_string(seed));
  std::printf("model test: PAYCORE_SEED=%llu, %llu commands\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(count));

  Driver d;
  ASSERT_TRUE(d.run(add_channel("alipay")).mutated);
  ASSERT_TRUE(d.run(add_channel("wechat")).mutated);
  Reference ref;
  Generator gen(seed, d.now_us());
  std::map<ResultCode, std::uint64_t> seen;
  for (std::uint64_t i = 0; i < count; ++i) {
    const Command c = gen.next();
    const Result got = d.run(c, gen.step_us());
    Command stamped = c;
    stamped.timestamp_us = d.now_us();
    const Reference::Outcome want = ref.run(stamped);
    ++seen[got.code];
    ASSERT_EQ(to_string(got.code), to_string(want.code))
        << "command " << i << " " << to_string(c.kind) << " seed " << seed;
    ASSERT_EQ(got.replayed, want.replayed) << "command " << i << " seed " << seed;
    if (c.kind == CommandKind::channel_notification && got.code == ResultCode::ok) {
      const char* kinds[] = {"", "applied", "duplicate", "anomaly"};
      ASSERT_EQ(kinds[static_cast<int>(got.notification)], want.resource) << "command " << i << " seed " << seed;
    }
    if (c.kind == CommandKind::channel_notification && got.notification == NotificationOutcome::applied) {
      // The settled payment is the one the notification names.
      const auto it = ref.payments.find(std::string(c.principal.view()) + "/" + std::string(c.order_id.view()));
      ASSERT_NE(it, ref.payments.end()) << "command " << i << " seed " << seed;
      ASSERT_EQ(got.payment.status, it->second.status) << "command " << i << " seed " << seed;
    }
    if (c.kind != CommandKind::channel_notification && got.code == ResultCode::ok && got.resource == ResourceKind::payment) {
      const auto found = ref.payments.find(want.resource);
      ASSERT_NE(found, ref.payments.end()) << "command " << i << " seed " << seed;
      const RefPayment& p = found->second;
      ASSERT_EQ(got.payment.status, ref.status_at(p, stamped.timestamp_us)) << "command " << i << " seed " << seed;
      ASSERT_EQ(got.payment.refunded_amount, p.refunded) << "command " << i;
      ASSERT_EQ(got.payment.amount, p.amount) << "command " << i;
    }
    if (got.code == ResultCode::ok && got.resource == ResourceKind::mandate) {
      const auto found = ref.mandates.find(want.resource);
      ASSERT_NE(found, ref.mandates.end()) << "command " << i << " seed " << seed;
      ASSERT_EQ(got.mandate.status, ref.mandate_at(found->second, stamped.timestamp_us))
          << "command " << i << " seed " << seed;
      ASSERT_EQ(got.mandate.payer_account_id.view(), found->second.payer) << "command " << i;
    }
    if (got.code == ResultCode::ok && got.resource == ResourceKind::account) {
      const auto found = ref.accounts.find(want.resource);
      ASSERT_NE(found, ref.accounts.end()) << "command " << i << " seed " << seed;
      ASSERT_EQ(got.account.balance, found->second.balance) << "command " << i << " seed " << seed;
    }
  }

  // Final balances agree, account by account and for the system accounts.
  ASSERT_EQ(d.state.accounts.size(), ref.accounts.size());
  for (const auto& [id, account] : ref.accounts) {
    const std::uint32_t row = d.state.find_account(id);
    ASSERT_NE(row, row_none) << id;
    EXPECT_EQ(d.state.accounts[row].balance, account.balance) << id;
  }
  for (const char* ccy_code : {"CNY", "USD"}) {
    EXPECT_EQ(d.state.external_balance(ccy(ccy_code)), ref.system["external/" + std::string(ccy_code)]);
    for (const char* channel : {"alipay", "wechat"}) {
      EXPECT_EQ(d.state.channel_balance(d.state.find_channel(channel), ccy(ccy_code)),
                ref.system[std::string(channel) + "/" + ccy_code]);
    }
  }
  EXPECT_EQ(d.state.payments.size(), ref.payments.size());
  EXPECT_EQ(d.state.anomalies.size(), ref.anomalies);
  EXPECT_TRUE(d.state.balances_sum_to_zero_slow());
  // The mix must actually reach the interesting outcomes, or the comparison proves little.
  for (ResultCode code : {ResultCode::ok, ResultCode::insufficient_funds, ResultCode::duplicate_order,
                          ResultCode::invalid_state, ResultCode::refund_exceeds_payment,
                          ResultCode::idempotency_key_reused, ResultCode::account_not_found,
                          ResultCode::payment_not_found, ResultCode::currency_mismatch,
                          ResultCode::account_exists, ResultCode::mandate_inactive,
                          ResultCode::mandate_limit_exceeded, ResultCode::mandate_exists,
                          ResultCode::invalid_payer, ResultCode::not_found}) {
    EXPECT_GT(seen[code], 0u) << to_string(code);
  }
}

}  // namespace
}  // namespace paycore::testing
