#include "repl/stream_format.hpp"

#include <sys/random.h>

#include <cstdio>

#include "wal/format.hpp"

namespace paycore::repl {
namespace fmt = wal::format;

Status check_cluster_name(std::string_view cluster) {
  if (cluster.empty() || cluster.size() > 64) {
    return Status::invalid_argument("cluster name must be 1..64 bytes");
  }
  for (const char c : cluster) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!allowed) {
      return Status::invalid_argument("cluster name \"" + std::string(cluster) +
                                      "\" may hold only letters, digits, '-' and '_'");
    }
  }
  return Status::ok();
}

std::string log_stream_name(std::string_view cluster) {
  return "PAYCORE_LOG_" + std::string(cluster);
}

std::string log_subject(std::string_view cluster) {
  return "paycore." + std::string(cluster) + ".log";
}

std::uint64_t random_writer_id() {
  std::uint64_t id = 0;
  while (getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
  }
  return id;
}

std::string writer_id_text(std::uint64_t writer_id) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(writer_id));
  return text;
}

std::string message_id(std::uint64_t writer_id, std::uint64_t first_lsn) {
  return writer_id_text(writer_id) + "-" + std::to_string(first_lsn);
}

namespace {

Status corrupt_at(std::size_t offset, const std::string& what) {
  return Status::corruption("shared log message offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

Status split_frames(std::span<const std::byte> frames, std::uint64_t first_lsn,
                    std::size_t bytes_max, std::vector<MessageSlice>* out) {
  out->clear();
  std::size_t offset = 0;
  std::uint64_t lsn = first_lsn;
  MessageSlice current{first_lsn, 0, 0, 0};
  while (offset < frames.size()) {
    const std::size_t bytes = wal::frame_bytes(frames.subspan(offset));
    if (bytes == 0) return corrupt_at(offset, "record runs past the end of the batch");
    if (bytes > bytes_max) {
      return Status::invalid_argument("record LSN " + std::to_string(lsn) + " of " +
                                      std::to_string(bytes) + " bytes exceeds the message limit " +
                                      std::to_string(bytes_max));
    }
    if (current.bytes + bytes > bytes_max) {
      out->push_back(current);
      current = MessageSlice{lsn, 0, offset, 0};
    }
    current.last_lsn = lsn;
    current.bytes += bytes;
    offset += bytes;
    ++lsn;
  }
  if (current.bytes > 0) out->push_back(current);
  return Status::ok();
}

}  // namespace paycore::repl
