#include "state.hpp"

#include <algorithm>

#include <xxhash.h>

#include "base/assert.hpp"

namespace paycore {

std::uint64_t hash_key(std::uint64_t scope, std::string_view id) {
  return XXH3_64bits_withSeed(id.data(), id.size(), scope * 0x9E3779B97F4A7C15ull + 1);
}

namespace {
// Distinct scopes for the single-keyed indexes, far from any row index.
constexpr std::uint64_t scope_accounts = 0xA11C0000'00000001ull;
constexpr std::uint64_t scope_principals = 0xA11C0000'00000002ull;
constexpr std::uint64_t scope_mandates = 0xA11C0000'00000003ull;

// The pair key: the payer's row seeds the hash of the merchant's principal row.
std::uint64_t hash_pair(std::uint32_t payer, std::uint32_t merchant) {
  return hash_key(payer, std::string_view(reinterpret_cast<const char*>(&merchant), sizeof(merchant)));
}
}  // namespace

State::State(const StateConfig& config)
    : account_index_(config.accounts_expected),
      payment_index_(config.payments_expected),
      idempotency_index_(config.idempotency_expected),
      principal_index_(64),
      channel_txn_index_(1024),
      mandate_index_(1024),
      mandate_pair_index_(1024),
      system_balances_(currency_table_size(), 0) {
  channels.push_back(strings_.add(channel_name_balance));
}

std::uint64_t State::hash_account(std::uint32_t row) const {
  return hash_key(scope_accounts, accounts[row].id.view());
}
std::uint64_t State::hash_payment(std::uint32_t row) const {
  return hash_key(payments[row].merchant, str(payments[row].order_id));
}
std::uint64_t State::hash_idempotency(std::uint32_t row) const {
  return hash_key(idempotency[row].principal, str(idempotency[row].request_id));
}
std::uint64_t State::hash_principal(std::uint32_t row) const {
  return hash_key(scope_principals, str(principals[row]));
}
std::uint64_t State::hash_channel_txn(std::uint32_t target) const {
  if (target & channel_txn_anomaly_bit) {
    const AnomalyRow& a = anomalies[target & ~channel_txn_anomaly_bit];
    return hash_key(a.channel, str(a.channel_txn_id));
  }
  const PaymentRow& p = payments[target];
  return hash_key(p.channel, str(p.channel_txn_id));
}

std::uint64_t State::hash_mandate(std::uint32_t row) const {
  return hash_key(scope_mandates, str(mandates[row].mandate_id));
}
std::uint64_t State::hash_mandate_pair(std::uint32_t row) const {
  return hash_pair(mandates[row].payer, mandates[row].merchant);
}

std::uint32_t State::find_mandate(std::string_view mandate_id) const {
  std::uint32_t row = row_none;
  mandate_index_.find(
      hash_key(scope_mandates, mandate_id),
      [&](std::uint32_t r) { return str(mandates[r].mandate_id) == mandate_id; }, &row);
  return row;
}

std::uint32_t State::find_pair_mandate(std::uint32_t payer, std::uint32_t merchant) const {
  std::uint32_t first = row_none;
  mandate_pair_index_.find(
      hash_pair(payer, merchant),
      [&](std::uint32_t r) { return mandates[r].payer == payer && mandates[r].merchant == merchant; },
      &first);
  if (first == row_none) return row_none;
  PAYCORE_ASSERT(mandates[first].newest < mandates.size());
  return mandates[first].newest;
}

std::uint32_t State::add_mandate(const MandateRow& row, std::uint32_t* previous) {
  PAYCORE_ASSERT(row.payer < accounts.size());
  PAYCORE_ASSERT(row.merchant < principals.size());
  std::uint32_t first = row_none;
  mandate_pair_index_.find(
      hash_pair(row.payer, row.merchant),
      [&](std::uint32_t r) { return mandates[r].payer == row.payer && mandates[r].merchant == row.merchant; },
      &first);
  const std::uint32_t index = mandates.push_back(row);
  mandate_index_.insert(hash_mandate(index), index);
  if (first == row_none) {
    *previous = row_none;
    mandates[index].newest = index;
    mandate_pair_index_.insert(hash_mandate_pair(index), index);
  } else {
    *previous = mandates[first].newest;
    mandates[index].newest = row_none;
    mandates[first].newest = index;
  }
  return index;
}

std::uint32_t State::find_account(std::string_view id) const {
  std::uint32_t row = row_none;
  account_index_.find(
      hash_key(scope_accounts, id), [&](std::uint32_t r) { return accounts[r].id.view() == id; },
      &row);
  return row;
}

std::uint32_t State::find_payment(std::uint32_t merchant, std::string_view order_id) const {
  std::uint32_t row = row_none;
  payment_index_.find(
      hash_key(merchant, order_id),
      [&](std::uint32_t r) {
        return payments[r].merchant == merchant && str(payments[r].order_id) == order_id;
      },
      &row);
  return row;
}

std::uint32_t State::find_idempotency(std::uint32_t principal, std::string_view request_id) const {
  std::uint32_t row = row_none;
  idempotency_index_.find(
      hash_key(principal, request_id),
      [&](std::uint32_t r) {
        return idempotency[r].principal == principal && str(idempotency[r].request_id) == request_id;
      },
      &row);
  return row;
}

std::uint32_t State::find_principal(std::string_view id) const {
  std::uint32_t row = row_none;
  principal_index_.find(
      hash_key(scope_principals, id), [&](std::uint32_t r) { return str(principals[r]) == id; },
      &row);
  return row;
}

std::uint32_t State::find_channel(std::string_view name) const {
  for (std::uint32_t i = 0; i < channels.size(); ++i) {
    if (str(channels[i]) == name) return i;
  }
  return row_none;
}

std::uint32_t State::find_channel_txn(std::uint32_t channel, std::string_view txn_id) const {
  std::uint32_t target = row_none;
  channel_txn_index_.find(
      hash_key(channel, txn_id),
      [&](std::uint32_t t) {
        if (t & channel_txn_anomaly_bit) {
          const AnomalyRow& a = anomalies[t & ~channel_txn_anomaly_bit];
          return a.channel == channel && str(a.channel_txn_id) == txn_id;
        }
        return payments[t].channel == channel && str(payments[t].channel_txn_id) == txn_id;
      },
      &target);
  return target;
}

void State::prefetch_account(std::string_view id) const {
  account_index_.prefetch(hash_key(scope_accounts, id));
}
void State::prefetch_account_row(std::string_view id) const {
  std::uint32_t row = row_none;
  if (account_index_.peek(hash_key(scope_accounts, id), &row) && row < accounts.size()) {
    __builtin_prefetch(&accounts[row]);
    __builtin_prefetch(reinterpret_cast<const char*>(&accounts[row]) + 64);
  }
}
void State::prefetch_payment(std::uint32_t merchant, std::string_view order_id) const {
  const std::uint64_t hash = hash_key(merchant, order_id);
  payment_index_.prefetch(hash);
  archived_orders.prefetch(hash);
}
void State::prefetch_idempotency(std::uint32_t principal, std::string_view request_id) const {
  idempotency_index_.prefetch(hash_key(principal, request_id));
}

std::uint32_t State::add_account(const AccountRow& row) {
  const std::uint32_t index = accounts.push_back(row);
  account_index_.insert(hash_account(index), index);
  return index;
}

std::uint32_t State::add_payment(const PaymentRow& row) {
  PAYCORE_ASSERT(row.merchant < accounts.size());
  const std::uint32_t index = payments.push_back(row);
  payment_index_.insert(hash_payment(index), index);
  AccountRow& merchant = accounts[row.merchant];
  std::uint32_t& newest = (row.flags & payment_flag_from_archive) != 0
                              ? merchant.newest_returned_payment
                              : merchant.newest_payment;
  payments[index].previous_of_merchant = newest;
  newest = index;
  return index;
}

std::uint32_t State::add_refund(std::uint32_t payment, const RefundRow& row) {
  PaymentRow& p = payments[payment];
  const std::uint32_t index = refunds.push_back(row);
  refunds[index].next = row_none;
  refunds[index].payment = payment;
  if (p.last_refund == row_none) {
    p.first_refund = index;
  } else {
    refunds[p.last_refund].next = index;
  }
  p.last_refund = index;
  return index;
}

std::uint32_t State::add_idempotency(const IdempotencyRow& row) {
  PAYCORE_ASSERT(row.principal < principals.size());
  const std::uint32_t index = idempotency.push_back(row);
  idempotency_index_.insert(hash_idempotency(index), index);
  return index;
}

std::uint32_t State::add_principal(std::string_view id) {
  const std::uint32_t index = principals.push_back(strings_.add(id));
  principal_index_.insert(hash_principal(index), index);
  return index;
}

std::uint32_t State::add_channel(std::string_view name) {
  PAYCORE_ASSERT(channels.size() < channels_max);
  PAYCORE_ASSERT(find_channel(name) == row_none);
  channels.push_back(strings_.add(name));
  system_balances_.resize(channels.size() * currency_table_size(), 0);
  return static_cast<std::uint32_t>(channels.size() - 1);
}

void State::add_channel_txn(std::uint32_t target) {
  channel_txn_index_.insert(hash_channel_txn(target), target);
}

std::uint32_t State::add_anomaly(const AnomalyRow& row) {
  const std::uint32_t index = anomalies.push_back(row);
  PAYCORE_ASSERT(index < channel_txn_anomaly_bit);
  return index;
}

std::size_t State::system_slot(std::uint32_t channel, Currency currency) const {
  PAYCORE_ASSERT(channel < channels.size());
  PAYCORE_ASSERT(currency.valid());
  PAYCORE_ASSERT_LT(currency.index, currency_table_size());
  return std::size_t{channel} * currency_table_size() + currency.index;
}

Amount& State::external_balance(Currency currency) { return system_balances_[system_slot(0, currency)]; }
Amount State::external_balance(Currency currency) const {
  return system_balances_[system_slot(0, currency)];
}
Amount& State::channel_balance(std::uint32_t channel, Currency currency) {
  PAYCORE_ASSERT(channel != 0);
  return system_balances_[system_slot(channel, currency)];
}
Amount State::channel_balance(std::uint32_t channel, Currency currency) const {
  PAYCORE_ASSERT(channel != 0);
  return system_balances_[system_slot(channel, currency)];
}

bool State::order_may_be_archived(std::uint32_t merchant, std::string_view order_id) const {
  return archived_orders.may_contain(hash_key(merchant, order_id));
}

bool State::payment_is_evictable(std::uint32_t row, std::int64_t as_of_us) const {
  const PaymentRow& p = payments[row];
  return p.status != PaymentStatus::pending && p.updated_at_us <= as_of_us &&
         p.updated_at_us < idempotency_horizon_us;
}

void State::evict_payments(std::uint32_t end) {
  PAYCORE_ASSERT_LE(end, payments.size());
  for (std::uint32_t row = payments.begin(); row < end; ++row) {
    const std::uint64_t hash = hash_payment(row);
    const bool indexed = payment_index_.erase(hash, [&](std::uint32_t v) { return v == row; });
    PAYCORE_ASSERT(indexed);
    archived_orders.insert(hash);
    const PaymentRow& p = payments[row];
    if (p.channel != 0 && p.channel_txn_id != 0) {
      const bool txn_indexed =
          channel_txn_index_.erase(hash_channel_txn(row), [&](std::uint32_t v) { return v == row; });
      PAYCORE_ASSERT(txn_indexed);
    }
  }
  payments.release_front(end);
  std::uint32_t refunds_begin = refunds.begin();
  while (refunds_begin < refunds.size() && refunds[refunds_begin].payment < end) ++refunds_begin;
  refunds.release_front(refunds_begin);
  release_history_strings();
}

std::uint32_t State::drop_idempotency(std::int64_t cutoff_us, std::uint32_t count_max) {
  std::uint32_t row = idempotency.begin();
  std::uint32_t dropped = 0;
  for (; row < idempotency.size() && dropped < count_max; ++row, ++dropped) {
    if (idempotency[row].created_at_us >= cutoff_us) break;
    const bool indexed =
        idempotency_index_.erase(hash_idempotency(row), [&](std::uint32_t v) { return v == row; });
    PAYCORE_ASSERT(indexed);
  }
  idempotency.release_front(row);
  const std::int64_t first_live_us =
      row < idempotency.size() ? idempotency[row].created_at_us : INT64_MAX;
  idempotency_horizon_us = std::max(idempotency_horizon_us, std::min(cutoff_us, first_live_us));
  if (dropped != 0) release_history_strings();
  return dropped;
}

// History strings are made in the order of the rows that own them, so everything below the
// first string of the first live row of each table is garbage (docs/design.md "Hot and cold":
// a payment leaves only after the idempotency records that share its strings).
void State::release_history_strings() {
  StrRef lowest = UINT64_MAX;
  const auto consider = [&](StrRef ref) {
    if ((ref & history_string_bit) != 0) lowest = std::min(lowest, ref & ~history_string_bit);
  };
  if (payments.begin() < payments.size()) {
    const PaymentRow& p = payments[payments.begin()];
    consider(p.order_id);
    consider(p.request_id);
    consider(p.channel_txn_id);
  }
  if (idempotency.begin() < idempotency.size()) consider(idempotency[idempotency.begin()].request_id);
  if (refunds.begin() < refunds.size()) consider(refunds[refunds.begin()].request_id);
  if (lowest != UINT64_MAX) history_.release_below(lowest);
}

void State::populate_indexes() const {
  payment_index_.populate();
  idempotency_index_.populate();
  account_index_.populate();
}

std::size_t State::memory_bytes() const {
  return accounts.memory_bytes() + payments.memory_bytes() + refunds.memory_bytes() +
         idempotency.memory_bytes() + anomalies.memory_bytes() + mandates.memory_bytes() +
         principals.memory_bytes() + pending_queue.memory_bytes() + strings_.memory_bytes() +
         history_.memory_bytes() + account_index_.memory_bytes() + payment_index_.memory_bytes() +
         idempotency_index_.memory_bytes() + principal_index_.memory_bytes() +
         channel_txn_index_.memory_bytes() + mandate_index_.memory_bytes() +
         mandate_pair_index_.memory_bytes() + archived_orders.memory_bytes();
}

Amount State::balance_sum_slow(Currency currency) const {
  // Wrapping arithmetic: the sum of int64 balances that individually never overflowed is
  // still exact modulo 2^64, and zero is what we check.
  std::uint64_t sum = 0;
  for (std::uint32_t i = 0; i < accounts.size(); ++i) {
    if (accounts[i].currency == currency) sum += static_cast<std::uint64_t>(accounts[i].balance);
  }
  for (std::uint32_t c = 0; c < channels.size(); ++c) {
    sum += static_cast<std::uint64_t>(system_balances_[system_slot(c, currency)]);
  }
  return static_cast<Amount>(sum);
}

bool State::balances_sum_to_zero_slow() const {
  std::vector<std::uint64_t> sums(currency_table_size(), 0);
  for (std::uint32_t i = 0; i < accounts.size(); ++i) {
    sums[accounts[i].currency.index] += static_cast<std::uint64_t>(accounts[i].balance);
  }
  for (std::size_t slot = 0; slot < system_balances_.size(); ++slot) {
    sums[slot % currency_table_size()] += static_cast<std::uint64_t>(system_balances_[slot]);
  }
  for (std::uint64_t sum : sums) {
    if (sum != 0) return false;
  }
  return true;
}


std::uint64_t State::index_growths_count() const {
  std::uint64_t total = 0;
  for (const HashIndex* index : {&account_index_, &payment_index_, &idempotency_index_,
                                 &principal_index_, &channel_txn_index_, &mandate_index_,
                                 &mandate_pair_index_}) {
    total += index->growths_count();
  }
  return total;
}

}  // namespace paycore
