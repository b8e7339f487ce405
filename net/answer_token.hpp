#pragma once
// AnswerToken: the 64-bit tag an I/O thread gives every request it hands to the engine
// (Request::token) and gets back with the answer (Response::token). It names where the answer
// goes: a connection of this I/O thread, that connection's generation, the slot of the request
// in its pipeline, and for a POST /v1/payments/batch the item of the batch.
//
//   bits 63..44 connection index (20) | 43..20 generation (24) | 19..12 slot (8) | 11..0 item (12)
//
// Lifetime: a token is valid while its connection still has the token's generation. A
// connection closed with answers outstanding bumps its generation (modulo 2^24), so a late
// answer for the old connection, or for a new one that reuses the index, is recognised and
// dropped (ServerMetrics::stale_responses). A slot is reused only after its answer was
// written, so (connection, generation, slot) names one request in flight.
//
// A single request (a command or a snapshot) is made with for_request() and has item 0; only
// a batch slot's answers are made with for_batch_item(), and only for a slot of kind batch is
// `item` read back (net/slot.hpp says what each kind carries).

#include <cstdint>

namespace paycore::net {

inline constexpr std::uint32_t answer_token_connection_bits = 20;
inline constexpr std::uint32_t answer_token_generation_bits = 24;
inline constexpr std::uint32_t answer_token_slot_bits = 8;
inline constexpr std::uint32_t answer_token_item_bits = 12;
static_assert(answer_token_connection_bits + answer_token_generation_bits + answer_token_slot_bits +
                  answer_token_item_bits ==
              64);

/// Where an engine answer goes (see the layout above). The generation is kept modulo 2^24.
struct AnswerToken {
  std::uint32_t connection = 0;  // index in the I/O thread's connection table, < 2^20
  std::uint32_t generation = 0;  // the connection's generation when the request was submitted
  std::uint32_t slot = 0;        // pipeline slot, < 2^8
  std::uint32_t item = 0;        // batch item, < 2^12; 0 for a single request

  static constexpr std::uint32_t generation_mask = (1u << answer_token_generation_bits) - 1;

  /// The token of a single request (command or snapshot) in `slot`.
  static constexpr AnswerToken for_request(std::uint32_t connection, std::uint32_t generation,
                                           std::uint32_t slot) {
    return AnswerToken{connection, generation, slot, 0};
  }
  /// The token of item `item` of the batch in `slot`.
  static constexpr AnswerToken for_batch_item(std::uint32_t connection, std::uint32_t generation,
                                              std::uint32_t slot, std::uint32_t item) {
    return AnswerToken{connection, generation, slot, item};
  }

  constexpr std::uint64_t pack() const {
    return (std::uint64_t{connection} << 44) | (std::uint64_t{generation & generation_mask} << 20) |
           (std::uint64_t{slot} << 12) | std::uint64_t{item};
  }
  static constexpr AnswerToken unpack(std::uint64_t bits) {
    return AnswerToken{static_cast<std::uint32_t>(bits >> 44),
                       static_cast<std::uint32_t>((bits >> 20) & generation_mask),
                       static_cast<std::uint32_t>((bits >> 12) & 0xff),
                       static_cast<std::uint32_t>(bits & 0xfff)};
  }
};

/// The generation a connection takes when it closes (answers for the old one become stale).
constexpr std::uint32_t next_generation(std::uint32_t generation) {
  return (generation + 1) & AnswerToken::generation_mask;
}

}  // namespace paycore::net
