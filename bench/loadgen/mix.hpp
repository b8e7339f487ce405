#pragma once
// The operations a run sends and the weighted mix of them: "pay=80,get=10,refund=5,notify=3,batch=2".
//
//   pay     POST /v1/payments, channel balance (payer debited, merchant credited: 201 PAID)
//   ext     POST /v1/payments on an external channel (201 PENDING, left pending)
//   notify  an external payment followed by the channel's signed notification
//           POST /v1/notify/{channel} that settles it (the pair counts as two requests:
//           the payment under `ext`, the notification under `notify`)
//   get     GET /v1/payments/{order_id} of an order this run created
//   refund  POST /v1/payments/{order_id}/refunds of a small amount of a paid order
//   batch   POST /v1/payments/batch with --batch-size balance payments
//   list    GET /v1/payments?limit=10&starting_after={order_id} of an order this run created
//           (the next page after it: from memory, or from the archive for an order gone cold)
// open_account, deposit and mandate (POST /v1/mandates: one per payer and merchant, so that
// the merchants may debit the payers, docs/api.md "Mandates") are the set-up requests; they are not
// allowed in a mix.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace paycore::loadgen {

enum class Op : std::uint8_t { pay, ext, notify, get, refund, batch, list, open_account, deposit, mandate };
inline constexpr std::size_t ops_count = 10;
inline constexpr std::size_t mix_ops_count = 7;  // the first seven may appear in a mix

std::string_view op_name(Op op);

struct Mix {
  std::array<std::uint32_t, mix_ops_count> weights{};
  std::uint32_t total = 0;
  // Maps a uniform draw in [0, total) to an operation.
  Op pick(std::uint64_t draw) const;
  std::uint32_t weight(Op op) const { return weights[static_cast<std::size_t>(op)]; }
  // "pay=80,get=10" (zero weights left out).
  std::string to_string() const;
};

inline constexpr std::string_view mix_default = "pay=80,get=10,refund=5,notify=3,batch=2";
inline constexpr std::uint32_t mix_weight_max = 1'000'000;

struct MixParseResult {
  Mix mix;
  std::string error;  // empty on success
  bool ok() const { return error.empty(); }
};

// Comma-separated name=weight pairs; each name at most once, weights 0..mix_weight_max,
// at least one non-zero.
[[nodiscard]] MixParseResult parse_mix(std::string_view text);

}  // namespace paycore::loadgen
