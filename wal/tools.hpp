#pragma once
// Offline tools over a log directory, for `paycore wal verify|dump`. They only read: a torn tail
// is reported, not truncated (Log::open does that).

#include <cstdint>
#include <functional>
#include <ostream>
#include <span>
#include <string>

namespace paycore::wal {

// Returns the payload of a record of `type` as one JSON value (object, string, ...), or an empty
// string to have the payload printed as hex instead. Lets the engine decode its own records.
using PayloadFormatter =
    std::function<std::string(std::uint16_t type, std::span<const std::byte> payload)>;

// Prints "ok, N records, LSN a..b" (plus a note on a torn tail) and returns 0, or prints
// "error: <first problem, naming file and byte offset>" and returns 1.
int wal_verify(const std::string& dir, std::ostream& out);

// Prints one JSON object per record:
//   {"file":"...","offset":N,"lsn":N,"type":N,"length":N,"checksum":"0x..","prev_checksum":"0x..",
//    "payload":<formatter's JSON>}  or  ..."payload_hex":"..."}
// then {"torn_tail":{...}} if the last segment ends in a torn write. On the first problem it
// prints {"error":"..."} and returns 1; otherwise returns 0.
int wal_dump(const std::string& dir, std::ostream& out, PayloadFormatter fmt = {});

}  // namespace paycore::wal
