#include "wal/tools.hpp"

#include "base/hex.hpp"
#include "base/json_text.hpp"
#include "wal/reader.hpp"

namespace paycore::wal {
namespace {

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// "\"0x0123456789abcdef\"": a checksum as a JSON string (a JSON number would lose bits).
std::string hex64(std::uint64_t v) {
  std::string out = "\"0x";
  append_hex(out, v, 16);
  out += '"';
  return out;
}

std::string hex_bytes(std::span<const std::byte> bytes) {
  std::string out;
  append_hex(out, {reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()});
  return out;
}

std::string torn_note(const detail::ScanResult& scan) {
  return "torn tail in " + scan.segments.back().path + " at offset " +
         std::to_string(scan.torn_offset) + " (" +
         std::to_string(scan.torn_end - scan.torn_offset) + " bytes; opening the log zeroes them): " +
         scan.torn_reason;
}

}  // namespace

int wal_verify(const std::string& dir, std::ostream& out) {
  detail::ScanResult scan;
  const Status s = detail::scan_log(dir, nullptr, &scan);
  if (!s.is_ok()) {
    out << "error: " << s.to_string() << "\n";
    return 1;
  }
  out << "ok, " << scan.records_count << " records";
  if (scan.records_count > 0) out << ", LSN " << scan.first_lsn << ".." << scan.last_lsn;
  out << ", " << scan.segments.size() << " segments";
  if (scan.torn) out << "; " << torn_note(scan);
  out << "\n";
  return 0;
}

int wal_dump(const std::string& dir, std::ostream& out, PayloadFormatter fmt) {
  auto print = [&](const detail::SegmentFile& seg, const detail::RecordView& r) {
    out << "{\"file\":" << json_string(seg.path) << ",\"offset\":" << r.offset
        << ",\"lsn\":" << r.header.lsn << ",\"type\":" << r.header.type
        << ",\"length\":" << r.header.length << ",\"checksum\":" << hex64(r.header.checksum)
        << ",\"prev_checksum\":" << hex64(r.header.prev_checksum);
    std::string formatted = fmt ? fmt(r.header.type, r.payload) : std::string();
    if (formatted.empty()) {
      out << ",\"payload_hex\":\"" << hex_bytes(r.payload) << "\"}\n";
    } else {
      out << ",\"payload\":" << formatted << "}\n";
    }
    return true;
  };
  detail::RecordVisitor visit(print);
  detail::ScanResult scan;
  const Status s = detail::scan_log(dir, &visit, &scan);
  if (!s.is_ok()) {
    out << "{\"error\":" << json_string(s.to_string()) << "}\n";
    return 1;
  }
  if (scan.torn) {
    out << "{\"torn_tail\":{\"file\":" << json_string(scan.segments.back().path)
        << ",\"offset\":" << scan.torn_offset << ",\"bytes\":" << (scan.torn_end - scan.torn_offset)
        << ",\"reason\":" << json_string(scan.torn_reason) << "}}\n";
  }
  return 0;
}

}  // namespace paycore::wal
