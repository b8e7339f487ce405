#pragma once
// The state: every account, mandate, payment, refund, idempotency record and notification
// anomaly, in memory. Only the core thread touches it (docs/design.md rule 1); only `apply` (apply.cpp) and the
// snapshot loader change it. Rows live in chunked tables in insertion order (the order in
// which they are serialized), strings in an arena, and the lookups in incrementally growing
// hash indexes, so that no insert ever pauses the core for a large copy or rehash.

#include <cstdint>
#include <string_view>
#include <vector>

#include "chunked.hpp"
#include "command.hpp"
#include "hash_index.hpp"
#include "model.hpp"
#include "money.hpp"
#include "order_filter.hpp"

namespace paycore {

inline constexpr std::uint32_t row_none = UINT32_MAX;

// The id is inline: an account lookup compares and reads one row, not a row and a string.
struct AccountRow {
  Id id;
  Amount balance = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  Currency currency{};
  AccountKind kind{};
  // A merchant's payments in memory, newest first (core/payment_list.hpp): the newest made
  // here, and the newest back from the archive; each row links to the next older one of its
  // chain (PaymentRow::previous_of_merchant). A link below payments.begin() has left memory,
  // and so has everything after it. Not in snapshots: add_payment rebuilds them on load.
  std::uint32_t newest_payment = row_none;
  std::uint32_t newest_returned_payment = row_none;
};

struct PaymentRow {
  StrRef order_id = 0;
  StrRef request_id = 0;
  StrRef channel_txn_id = 0;  // 0: none yet
  Amount amount = 0;
  Amount refunded_amount = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  std::uint32_t merchant = row_none;  // account row of the merchant
  std::uint32_t payer = row_none;     // account row of the payer (balance channel only)
  std::uint32_t mandate = row_none;   // mandate row that authorized it (balance channel only)
  std::uint32_t first_refund = row_none;
  std::uint32_t last_refund = row_none;
  // The merchant's previous payment in the same chain (AccountRow::newest_payment or
  // newest_returned_payment, by payment_flag_from_archive). Set by add_payment.
  std::uint32_t previous_of_merchant = row_none;
  Currency currency{};
  std::uint8_t channel = 0;  // channel row; 0 = balance
  PaymentStatus status{};
  std::uint8_t flags = 0;    // payment_flag_*
};

// The payment came back from the archive (a command on a cold payment): its refunds before
// that are in the archive, only the later ones in memory (their sum is below refunded_amount).
inline constexpr std::uint8_t payment_flag_from_archive = 1;

struct RefundRow {
  StrRef request_id = 0;
  Amount amount = 0;
  std::int64_t created_at_us = 0;
  std::uint32_t next = row_none;     // the payment's next refund
  std::uint32_t payment = row_none;  // the payment refunded: the row leaves memory with it
};

// An idempotency record: (principal, request_id) -> outcome + request fingerprint.
struct IdempotencyRow {
  StrRef request_id = 0;
  std::uint64_t fingerprint = 0;
  std::uint32_t principal = row_none;  // principal row
  std::uint32_t resource = row_none;   // account or payment row, per the command kind
  CommandKind kind{};
  std::uint8_t code = 0;               // ResultCode
  std::uint8_t field = 0;              // Field at fault of a kept refusal (replayed as is)
  std::int64_t created_at_us = 0;      // the command's timestamp: retention counts from it
};

// A customer's consent that one merchant may debit its account (docs/api.md "Mandates"). Mandates
// of one (payer, merchant) pair form a chain in creation order: the pair index finds the
// first, whose `newest` names the one that governs payments (creating a mandate for a pair
// supersedes the previous one, which is revoked by the same command).
struct MandateRow {
  StrRef mandate_id = 0;
  std::uint32_t payer = row_none;     // account row (a customer account)
  std::uint32_t merchant = row_none;  // principal row of the merchant
  std::uint32_t newest = row_none;    // first row of a pair only: the pair's newest mandate
  Amount amount_max = 0;              // in the payer's currency, minor units
  std::int64_t expires_at_us = 0;     // 0: never
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  MandateStatus status{};             // active, revoked or used (expired is computed)
  bool single_use = false;
};

// A channel notification that could not be applied (docs/api.md "Channel notifications").
struct AnomalyRow {
  StrRef channel_txn_id = 0;
  StrRef merchant_id = 0;
  StrRef order_id = 0;
  Amount amount = 0;
  std::int64_t paid_at_us = 0;
  std::int64_t received_at_us = 0;
  Currency currency{};
  std::uint8_t channel = 0;
  NotificationStatus status{};
  AnomalyReason reason{};
};

// Channel transaction ids seen: (channel, channel_txn_id) -> payment row, or anomaly row with
// the top bit set. Repeated notifications find their first outcome here.
inline constexpr std::uint32_t channel_txn_anomaly_bit = 0x8000'0000u;

struct StateConfig {
  // Expected sizes in rows held in memory: the indexes start at these capacities (they still
  // grow past them).
  std::uint64_t accounts_expected = 1024;
  std::uint64_t payments_expected = 4096;
  std::uint64_t idempotency_expected = 4096;
};

// Strings of payments, refunds and idempotency records live in their own arena, which is freed
// from the front as those rows leave memory (docs/design.md "Hot and cold"); this bit of a
// StrRef says which arena holds it.
inline constexpr StrRef history_string_bit = StrRef{1} << 63;

inline constexpr std::size_t channels_max = 64;  // including "balance" at row 0
inline constexpr std::int64_t pending_lifetime_default_us = 15LL * 60 * 1'000'000;

class State {
 public:
  explicit State(const StateConfig& config = {});
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  // ---- Lookups (no mutation). Return row_none when absent.
  std::uint32_t find_account(std::string_view id) const;
  std::uint32_t find_payment(std::uint32_t merchant, std::string_view order_id) const;
  std::uint32_t find_idempotency(std::uint32_t principal, std::string_view request_id) const;
  std::uint32_t find_principal(std::string_view id) const;
  std::uint32_t find_channel(std::string_view name) const;  // 0 for "balance"
  std::uint32_t find_channel_txn(std::uint32_t channel, std::string_view txn_id) const;
  std::uint32_t find_mandate(std::string_view mandate_id) const;
  // The mandate that governs payments of `merchant` (a principal row) from `payer` (an account
  // row): the newest of the pair, whatever its status.
  std::uint32_t find_pair_mandate(std::uint32_t payer, std::uint32_t merchant) const;

  // Prefetch of the index slots a command will probe (a hint: no effect on results).
  void prefetch_account(std::string_view id) const;
  // Second stage, once the slot is cached: starts loading the account row itself.
  void prefetch_account_row(std::string_view id) const;
  void prefetch_payment(std::uint32_t merchant, std::string_view order_id) const;
  void prefetch_idempotency(std::uint32_t principal, std::string_view request_id) const;

  // ---- Inserts (the caller, apply, has checked that the key is absent). add_payment links
  // the row into its merchant's chain.
  std::uint32_t add_account(const AccountRow& row);
  std::uint32_t add_payment(const PaymentRow& row);
  std::uint32_t add_refund(std::uint32_t payment, const RefundRow& row);
  std::uint32_t add_idempotency(const IdempotencyRow& row);
  std::uint32_t add_principal(std::string_view id);
  std::uint32_t add_channel(std::string_view name);
  // `target`'s row already holds its channel and channel_txn_id.
  void add_channel_txn(std::uint32_t target);
  std::uint32_t add_anomaly(const AnomalyRow& row);
  // Appends the mandate and makes it its pair's newest; returns the pair's previous newest
  // (row_none if it is the pair's first).
  std::uint32_t add_mandate(const MandateRow& row, std::uint32_t* previous);
  // Strings that live as long as the state: ids of accounts, mandates, principals, channels,
  // anomalies.
  StrRef intern(std::string_view text) { return strings_.add(text); }
  // Strings of payments, refunds and idempotency records, in the order their rows are made:
  // freed once every row that could refer to them has left memory.
  StrRef intern_history(std::string_view text) { return history_.add(text) | history_string_bit; }

  // ---- Hot and cold (docs/design.md "Hot and cold"): rows leave from the front of their
  // table, in the order they were made; their indices never change.
  // Whether payment row `row` (live) may leave memory, given a copy of it read at `as_of_us`:
  // it is not PENDING, has not changed since the copy, and no idempotency record that refers
  // to it is left (it last changed before the idempotency horizon).
  bool payment_is_evictable(std::uint32_t row, std::int64_t as_of_us) const;
  // Takes payment rows [payments.begin(), end) out of memory: their index entries, their
  // refunds once no live payment's refund precedes them, and the history strings below every
  // live row. The caller has checked each with payment_is_evictable. O(rows evicted).
  void evict_payments(std::uint32_t end);
  // Drops idempotency records created before `cutoff_us`, oldest first, at most `count_max`;
  // returns how many. Moves idempotency_horizon_us forward.
  std::uint32_t drop_idempotency(std::int64_t cutoff_us, std::uint32_t count_max);
  // Bytes held by the tables, indexes and arenas (what `memory per hot payment` counts).
  std::size_t memory_bytes() const;
  // Faults in the account, payment and idempotency indexes' tables (HashIndex::populate): run
  // on a helper thread while a snapshot loads into this state, it takes the kernel's page
  // zeroing off the loading thread. Safe beside the loader (it changes no byte).
  void populate_indexes() const;

  // ---- Money. Every movement goes through here: one debit, one credit, same currency.
  // System balances (`external`, `channel:{name}`) are per currency and may go negative.
  Amount& external_balance(Currency currency);
  Amount& channel_balance(std::uint32_t channel, Currency currency);
  Amount external_balance(Currency currency) const;
  Amount channel_balance(std::uint32_t channel, Currency currency) const;
  // Sum over every account and system balance of `currency`: O(accounts). Zero, always.
  Amount balance_sum_slow(Currency currency) const;
  // Checks the double-entry invariant for every currency; O(accounts).
  bool balances_sum_to_zero_slow() const;

  std::string_view str(StrRef ref) const {
    return (ref & history_string_bit) != 0 ? history_.get(ref & ~history_string_bit)
                                           : strings_.get(ref);
  }

  // ---- Tables (read access for apply, snapshots and tests).
  ChunkedVector<AccountRow> accounts;
  ChunkedVector<PaymentRow> payments;
  ChunkedVector<RefundRow> refunds;
  ChunkedVector<IdempotencyRow> idempotency;
  ChunkedVector<AnomalyRow> anomalies;
  ChunkedVector<MandateRow> mandates;
  ChunkedVector<StrRef> principals;
  // Payments through external channels in creation order: candidates for expiry.
  ChunkedVector<std::uint32_t> pending_queue;
  std::vector<StrRef> channels;  // row 0 is "balance"

  // Expiry of PENDING payments (docs/api.md): pending_queue entries below the cursor are settled.
  std::uint32_t expiry_cursor = 0;
  std::int64_t pending_lifetime_us = pending_lifetime_default_us;
  // The newest command timestamp applied: the engine never stamps a smaller one.
  std::int64_t last_timestamp_us = 0;
  // Every idempotency record created before this time has been dropped (INT64_MIN: none yet).
  std::int64_t idempotency_horizon_us = INT64_MIN;
  // The archive holds payment rows below this, as the log last said (archive_payments).
  std::uint32_t archived_rows_end = 0;
  // Every (merchant, order_id) that has left memory: a hit sends a new order to the archive.
  OrderFilter archived_orders;
  // Whether order `order_id` of merchant account row `merchant` may be in the archive.
  bool order_may_be_archived(std::uint32_t merchant, std::string_view order_id) const;
  // Growths started by all the indexes so far (HashIndex::growths_count).
  std::uint64_t index_growths_count() const;

 private:
  std::uint64_t hash_account(std::uint32_t row) const;
  std::uint64_t hash_payment(std::uint32_t row) const;  // = hash_key(merchant, order_id)
  std::uint64_t hash_idempotency(std::uint32_t row) const;
  std::uint64_t hash_principal(std::uint32_t row) const;
  std::uint64_t hash_channel_txn(std::uint32_t target) const;
  std::uint64_t hash_mandate(std::uint32_t row) const;
  std::uint64_t hash_mandate_pair(std::uint32_t row) const;
  std::size_t system_slot(std::uint32_t channel, Currency currency) const;
  void release_history_strings();

  StringArena strings_;
  StringArena history_;
  HashIndex account_index_;
  HashIndex payment_index_;
  HashIndex idempotency_index_;
  HashIndex principal_index_;
  HashIndex channel_txn_index_;
  HashIndex mandate_index_;       // mandate_id -> row
  HashIndex mandate_pair_index_;  // (payer, merchant) -> the pair's first row
  // system_balances_[channel * currencies + currency]; channel row 0 holds `external`.
  std::vector<Amount> system_balances_;
};

// Keyed hashes: the scope (a row index) seeds the hash of the id, so that the same order_id
// under two merchants lands in different places.
std::uint64_t hash_key(std::uint64_t scope, std::string_view id);

}  // namespace paycore
