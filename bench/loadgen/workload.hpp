#pragma once
// The requests a run sends, built and signed straight into a connection's send buffer.
//
// Every request carries a fresh nonce ("lg" + run id + thread + counter) and, when it
// mutates, a fresh request_id; order ids are "o-<run>-<thread>-<n>", so two runs against
// the same server never collide. Payer accounts are "lg-payer-<i>" (stable across runs:
// a second set-up finds them open and tops them up), and each has a mandate for every
// merchant of the keys file, "lgm-<i>-<hash of the merchant id>" (stable too: a second set-up
// finds them made) with the largest amount_max the API allows, so that every balance payment
// of any run is within it. Each thread has its own Workload: no
// sharing, no locks; it remembers the orders it created (a bounded ring) so that reads and
// refunds address real payments, and queues a notification after each `notify` payment.

#include <openssl/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/check.hpp"
#include "bench/loadgen/mix.hpp"
#include "bench/loadgen/sampling.hpp"
#include "auth/keys.hpp"

namespace paycore::loadgen {

struct WorkloadConfig {
  std::shared_ptr<const auth::Keys> keys;
  Mix mix;
  std::uint64_t payers_count = 1000;
  std::uint32_t batch_size = 10;
  std::int64_t amount_max = 10'000;        // payments draw 1..amount_max
  std::int64_t deposit_amount = 1'000'000'000'000;  // per payer, at set-up
  std::string currency = "CNY";
  std::string channel;                     // external channel for ext/notify
  std::shared_ptr<EVP_PKEY> channel_private_key;
  std::string run_id;                      // 8 chars of [0-9a-f]
  std::string host_header;                 // "HOST:PORT"
  std::uint64_t seed = 1;
};

inline constexpr std::size_t orders_remembered_max = 4096;
inline constexpr std::size_t notifications_queued_max = 4096;
inline constexpr std::uint32_t batch_size_max = 1000;

std::string payer_account_id(std::uint64_t index);
// The mandate that lets `merchant_id` debit payer `index`: at most 41 characters whatever the
// merchant id's length (1..64), so it is always a valid id.
std::string payer_mandate_id(std::uint64_t index, std::string_view merchant_id);

class Workload {
 public:
  enum class Phase : std::uint8_t { open_accounts, deposits, mandates, load };

  // Thread `thread_index` of `threads_count`; in the set-up phases it handles the payers
  // whose index is congruent to it (and thread 0 the merchants' accounts); in `mandates`,
  // one request per payer and merchant.
  Workload(const WorkloadConfig& config, const ZipfSampler& payers, unsigned thread_index,
           unsigned threads_count);

  void set_phase(Phase phase);
  // Appends the next request to `out` and says what to expect of it. False when the phase
  // has no more requests (set-up phases end; the load phase never does).
  [[nodiscard]] bool next(std::string& out, Expect& expect);
  // Learns from an answer: paid orders become readable and refundable, a PENDING `notify`
  // payment queues its notification.
  void on_result(const Expect& expect, const Check& check);

  std::uint64_t requests_built() const { return requests_built_; }

 private:
  struct Order {
    std::string order_id;
    std::uint32_t merchant_index = 0;
    std::int64_t amount = 0;
    std::int64_t refunded = 0;
    bool paid = false;
  };

  void build_payment(std::string& out, Expect& expect, bool external);
  void build_batch(std::string& out, Expect& expect);
  bool build_read(std::string& out, Expect& expect);
  bool build_refund(std::string& out, Expect& expect);
  void build_notification(std::string& out, Expect& expect);
  bool build_setup(std::string& out, Expect& expect);
  void build_mandate(std::string& out, Expect& expect, std::uint64_t payer, const auth::Principal& merchant);
  void append_signed(std::string& out, std::string_view method, std::string_view path,
                     const auth::Principal& principal);
  void new_id(std::string& out, char kind);
  void append_payment_body(std::string& body, std::string_view order_id, std::int64_t amount,
                           bool external, std::uint64_t payer);
  void remember(const Expect& expect, bool paid);

  const WorkloadConfig& config_;
  const ZipfSampler& payers_;
  unsigned thread_index_;
  unsigned threads_count_;
  Phase phase_ = Phase::load;
  Rng rng_;
  std::vector<const auth::Principal*> merchants_;
  std::uint64_t setup_cursor_ = 0;  // set-up: next payer index (or merchant, first)
  std::uint64_t counter_ = 0;       // ids and nonces
  std::uint64_t requests_built_ = 0;
  std::vector<Order> orders_;       // ring of orders_remembered_max
  std::size_t orders_next_ = 0;
  std::deque<Order> notifications_;
  std::string body_;     // scratch
  std::string id_;       // scratch
};

}  // namespace paycore::loadgen
