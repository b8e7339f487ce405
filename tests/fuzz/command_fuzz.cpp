// Command decoding from log record payloads. Input: the payload bytes.
// Properties: no crash, no sanitizer report; a payload that decodes re-encodes to exactly the
// same bytes (the encoding is canonical: replay and the idempotency fingerprint depend on it)
// — a version 1 payload to the same bytes as version 2, that is with version byte 2 and two
// empty ids and a zero expires_at_us appended — holds only well-formed ids, and its fingerprint does not depend on
// the timestamp or the nonce.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_target.hpp"
#include "core/command.hpp"

// Version 2 appends two ids (one length byte each when empty) and expires_at_us.
constexpr std::size_t v1_to_v2_bytes = 2 + 8;

PAYCORE_FUZZ_TARGET(command) {
  using namespace paycore;
  Command command;
  const CommandDecodeError error = decode_command(fuzz::as_bytes(data, size), &command);
  FUZZ_CHECK(command, !to_string(error).empty());
  if (error != CommandDecodeError::ok) return 0;

  FUZZ_CHECK(command, command_kind_is_valid(static_cast<std::uint8_t>(command.kind)));
  for (const Id* id : {&command.principal, &command.request_id, &command.account,
                       &command.order_id, &command.channel, &command.channel_txn_id,
                       &command.mandate_id, &command.merchant_id}) {
    FUZZ_CHECK(command, id->well_formed());
  }
  std::array<std::byte, command_encoded_bytes_max> encoded{};
  const std::size_t encoded_bytes = encode_command(command, encoded);
  if (data[0] == command_encoding_version_v1) {
    FUZZ_CHECK(command, command.mandate_id.empty() && command.merchant_id.empty());
    FUZZ_CHECK(command, encoded_bytes == size + v1_to_v2_bytes);
    FUZZ_CHECK(command, encoded[0] == std::byte{command_encoding_version});
    FUZZ_CHECK(command, std::memcmp(encoded.data() + 1, data + 1, size - 1) == 0);
    for (std::size_t i = size; i < encoded_bytes; ++i) FUZZ_CHECK(command, encoded[i] == std::byte{0});
  } else {
    FUZZ_CHECK(command, encoded_bytes == size);
    FUZZ_CHECK(command, std::memcmp(encoded.data(), data, size) == 0);
  }

  Command again;
  FUZZ_CHECK(command, decode_command(std::span(encoded.data(), encoded_bytes), &again) == CommandDecodeError::ok);
  std::array<std::byte, command_encoded_bytes_max> reencoded{};
  FUZZ_CHECK(command, encode_command(again, reencoded) == encoded_bytes);
  FUZZ_CHECK(command, reencoded == encoded);

  Command restamped = command;
  restamped.timestamp_us ^= 0x5555;
  FUZZ_CHECK(command, command_fingerprint(restamped) == command_fingerprint(command));
  // The nonce (command_flag_nonce) is transport: well formed when present, outside the
  // fingerprint.
  if (command.carries_nonce()) FUZZ_CHECK(command, !command.nonce.empty() && command.nonce.well_formed());
  Command renonced = command;
  renonced.nonce = Id::of("another-nonce");
  renonced.nonce_timestamp_s ^= 0x77;
  FUZZ_CHECK(command, command_fingerprint(renonced) == command_fingerprint(command));
  return 0;
}
