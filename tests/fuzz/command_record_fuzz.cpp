// Command records with outcomes (core/command_record.hpp), as the log holds them since events.
// Input: a record_type_command_outcome payload. Properties: no crash, no sanitizer report; a
// payload that decodes holds only well-formed ids and a kept result code, and re-encodes to
// exactly the same bytes when its command part was written in the current encoding (event ids
// and the replay check depend on the outcome reading back as it was written).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/command_record.hpp"
#include "core/engine_records.hpp"
#include "fuzz_target.hpp"

PAYCORE_FUZZ_TARGET(command_record) {
  using namespace paycore;
  Command command;
  CommandOutcome outcome;
  bool has_outcome = false;
  const CommandDecodeError error = decode_command_record(
      record_type_command_outcome, fuzz::as_bytes(data, size), &command, &outcome, &has_outcome);
  FUZZ_CHECK(command_record, !to_string(error).empty());
  FUZZ_CHECK(command_record, has_outcome == (error == CommandDecodeError::ok));
  if (error != CommandDecodeError::ok) return 0;

  FUZZ_CHECK(command_record, result_is_kept(outcome.code));
  for (const Id* id : {&outcome.account.account_id, &outcome.payment.merchant_id,
                       &outcome.payment.order_id, &outcome.payment.request_id,
                       &outcome.mandate.mandate_id}) {
    FUZZ_CHECK(command_record, id->well_formed());
  }
  std::array<std::byte, command_record_bytes_max> encoded{};
  const std::size_t encoded_bytes = encode_command_record(command, outcome, encoded);
  // The command part is data[2], after its u16 length; version 1 re-encodes as version 2.
  if (size > 2 && data[2] != command_encoding_version_v1) {
    FUZZ_CHECK(command_record, encoded_bytes == size);
    FUZZ_CHECK(command_record, std::memcmp(encoded.data(), data, size) == 0);
  }
  Command again;
  CommandOutcome outcome_again;
  bool again_has_outcome = false;
  FUZZ_CHECK(command_record,
             decode_command_record(record_type_command_outcome,
                                   std::span(encoded.data(), encoded_bytes), &again,
                                   &outcome_again, &again_has_outcome) == CommandDecodeError::ok);
  FUZZ_CHECK(command_record, again == command && outcome_again == outcome);
  return 0;
}
