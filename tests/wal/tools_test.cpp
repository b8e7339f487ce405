// `paycore wal verify|dump`: output a person or a script can rely on.

#include <sstream>

#include <gtest/gtest.h>

#include "wal/tools.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

Options tool_options(const TempDir& tmp) {
  Options o;
  o.dir = tmp.log_dir();
  o.segment_bytes = 64 << 10;
  o.batch_bytes_max = 16 << 10;
  o.spare_segments = false;  // the tests edit and count the segment files
  return o;
}

void make_log(const TempDir& tmp, std::uint64_t records) {
  auto log = open_log(tool_options(tmp));
  ASSERT_TRUE(log);
  write_records(*log, records);
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(WalTools, VerifyReportsRecordCountAndRange) {
  TempDir tmp;
  make_log(tmp, 1500);
  std::ostringstream out;
  EXPECT_EQ(wal_verify(tmp.log_dir(), out), 0);
  EXPECT_EQ(out.str().rfind("ok, 1500 records, LSN 1..1500, ", 0), 0u) << out.str();
}

TEST(WalTools, VerifyNamesFileAndOffsetOfCorruption) {
  TempDir tmp;
  make_log(tmp, 20);
  const std::string seg = segment_path(tmp.log_dir(), 1);
  flip_byte(seg, record_offset(7) + 40);
  std::ostringstream out;
  EXPECT_EQ(wal_verify(tmp.log_dir(), out), 1);
  EXPECT_EQ(out.str().rfind("error: corruption: " + seg + " offset " +
                                std::to_string(record_offset(7)), 0),
            0u)
      << out.str();
}

TEST(WalTools, VerifyNotesTornTailWithoutChangingIt) {
  TempDir tmp;
  make_log(tmp, 5);
  const std::string seg = segment_path(tmp.log_dir(), 1);
  flip_byte(seg, record_offset(5) + 40);
  std::ostringstream out;
  EXPECT_EQ(wal_verify(tmp.log_dir(), out), 0);
  EXPECT_NE(out.str().find("ok, 4 records, LSN 1..4"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("torn tail in " + seg + " at offset " + std::to_string(record_offset(5))),
            std::string::npos)
      << out.str();
  std::ostringstream again;
  EXPECT_EQ(wal_verify(tmp.log_dir(), again), 0);
  EXPECT_EQ(again.str(), out.str()) << "verify must not modify the log";
}

TEST(WalTools, VerifyReportsMissingSegment) {
  TempDir tmp;
  make_log(tmp, 2000);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(tmp.log_dir())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 3u);
  std::filesystem::remove(files[1]);
  std::ostringstream out;
  EXPECT_EQ(wal_verify(tmp.log_dir(), out), 1);
  EXPECT_NE(out.str().find("missing segment " + std::filesystem::path(files[1]).filename().string()),
            std::string::npos)
      << out.str();
}

TEST(WalTools, DumpPrintsOneJsonObjectPerRecord) {
  TempDir tmp;
  make_log(tmp, 3);
  std::ostringstream out;
  EXPECT_EQ(wal_dump(tmp.log_dir(), out), 0);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  const std::string seg = segment_path(tmp.log_dir(), 1);
  EXPECT_EQ(lines[0].rfind("{\"file\":\"" + seg + "\",\"offset\":40,\"lsn\":1,\"type\":" +
                               std::to_string(type_for(1)) + ",\"length\":" +
                               std::to_string(payload_for(1).size()) + ",\"checksum\":\"0x",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[2].find("\"lsn\":3,"), std::string::npos);
  EXPECT_NE(lines[1].find("\"prev_checksum\":\"0x"), std::string::npos);
  // payload_for(1) starts 1f 20 21 ...
  EXPECT_NE(lines[0].find("\"payload_hex\":\"1f2021"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].back(), '}');
}

TEST(WalTools, DumpUsesThePayloadFormatter) {
  TempDir tmp;
  make_log(tmp, 4);
  std::ostringstream out;
  const PayloadFormatter fmt = [](std::uint16_t type, std::span<const std::byte> p) -> std::string {
    if (type % 2 == 0) return {};  // let even types fall back to hex
    return "{\"bytes\":" + std::to_string(p.size()) + "}";
  };
  EXPECT_EQ(wal_dump(tmp.log_dir(), out, fmt), 0);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 4u);
  for (std::uint64_t lsn = 1; lsn <= 4; ++lsn) {
    const std::string& line = lines[lsn - 1];
    if (type_for(lsn) % 2 == 0) {
      EXPECT_NE(line.find("\"payload_hex\":"), std::string::npos) << line;
    } else {
      EXPECT_NE(line.find("\"payload\":{\"bytes\":" + std::to_string(payload_for(lsn).size()) + "}}"),
                std::string::npos)
          << line;
    }
  }
}

TEST(WalTools, DumpStopsAtCorruptionWithAnError) {
  TempDir tmp;
  make_log(tmp, 10);
  flip_byte(segment_path(tmp.log_dir(), 1), record_offset(4) + 50);
  std::ostringstream out;
  EXPECT_EQ(wal_dump(tmp.log_dir(), out), 1);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 4u);  // records 1..3, then the error
  EXPECT_EQ(lines[3].rfind("{\"error\":\"corruption: ", 0), 0u) << lines[3];
}

}  // namespace
}  // namespace paycore::wal
