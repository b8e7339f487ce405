// `paycore recon`, `paycore recon gen` and `paycore recon apply` as an operator runs them: the
// real binary, real files, and for the round trip the real `paycore serve` on 127.0.0.1:0.

#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "recon/match.hpp"
#include "recon/text.hpp"

#ifndef PAYCORE_BINARY
#error "PAYCORE_BINARY must name the paycore executable"
#endif

extern char** environ;

namespace paycore::recon {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "recon-cli-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  std::vector<std::string> argv_text = {PAYCORE_BINARY};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0);
  return rc == 0 ? pid : -1;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Outcome {
  int status = -1;
  std::string out, err;
};

Outcome paycore(const std::vector<std::string>& args) {
  TempDir io;
  Outcome run;
  const pid_t pid = spawn(args, io / "out", io / "err");
  if (pid > 0) run.status = wait_exit(pid);
  run.out = read_text(io / "out");
  run.err = read_text(io / "err");
  return run;
}

// `paycore serve --listen 127.0.0.1:0`; the port comes from its "listening on" line.
class Server {
 public:
  Server(const fs::path& data_dir, const fs::path& keys, const fs::path& log) : log_(log) {
    pid_ = spawn({"serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir.string(), "--keys", keys.string()},
                 log.string() + ".out", log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pid_ > 0 && port_.empty() && std::chrono::steady_clock::now() < deadline) {
      const std::string text = read_text(log_);
      const std::size_t at = text.find("listening on 127.0.0.1:");
      if (at != std::string::npos) {
        const std::size_t digits = at + std::string_view("listening on 127.0.0.1:").size();
        port_ = text.substr(digits, text.find_first_not_of("0123456789", digits) - digits);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Server() {
    if (pid_ > 0) (void)stop();
  }
  std::string url() const { return "http://127.0.0.1:" + port_; }
  bool up() const { return !port_.empty(); }
  std::string log() const { return read_text(log_); }
  // SIGTERM: a clean stop writes a final snapshot.
  int stop() {
    ::kill(pid_, SIGTERM);
    const int status = wait_exit(pid_);
    pid_ = -1;
    return status;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  std::string port_;
};

std::optional<std::uint64_t> json_count(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::uint64_t value = 0;
  const simdjson::padded_string padded(json);
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return std::nullopt;
  if (doc.at_pointer(pointer).get_uint64().get(value) != simdjson::SUCCESS) return std::nullopt;
  return value;
}

std::string json_text(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view value;
  const simdjson::padded_string padded(json);
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return {};
  if (doc.at_pointer(pointer).get_string().get(value) != simdjson::SUCCESS) return {};
  return std::string(value);
}

// summary.json's class counts equal expected.json's `counts_key`.
void expect_summary_counts(const fs::path& summary, const fs::path& expected, const std::string& counts_key) {
  const std::string s = read_text(summary), e = read_text(expected);
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    const std::string name(finding_class_name(static_cast<FindingClass>(c)));
    const auto want = json_count(e, "/" + counts_key + "/" + name);
    ASSERT_TRUE(want.has_value()) << name;
    EXPECT_EQ(json_count(s, "/classes/" + name + "/count"), want) << name;
  }
}

std::size_t count_lines(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// ---- Arguments ------------------------------------------------------------------------------

TEST(ReconCli, NoArgumentsIsUsageErrorTwo) {
  const Outcome r = paycore({"recon"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("usage"), std::string::npos) << r.err;
}

TEST(ReconCli, MissingOutIsUsageErrorTwo) {
  const Outcome r = paycore({"recon", "--snapshot", "a.snap", "--statement", "b.csv"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  // An option without its value is the same mistake, not a parser crash or another status.
  EXPECT_EQ(paycore({"recon", "--snapshot", "a.snap", "--statement", "b.csv", "--out"}).status, 2);
  EXPECT_EQ(paycore({"recon", "--snapshot", "a.snap", "--statement", "--out", "c"}).status, 2);
  EXPECT_EQ(paycore({"recon", "apply", "r.jsonl", "--keys", "k.json", "--server"}).status, 2);
}

TEST(ReconCli, UnknownOptionIsUsageErrorTwo) {
  const Outcome r = paycore({"recon", "--snapshot", "a", "--statement", "b", "--out", "c", "--bogus"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
}

TEST(ReconCli, BadToleranceIsUsageErrorTwo) {
  const Outcome r = paycore({"recon", "--snapshot", "a", "--statement", "b", "--out", "c", "--tolerance-seconds", "-5"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--tolerance-seconds"), std::string::npos) << r.err;
}

TEST(ReconCli, BadStatementFormatIsUsageErrorTwo) {
  const Outcome r = paycore({"recon", "--snapshot", "a", "--statement", "b", "--out", "c", "--statement-format", "xls"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--statement-format"), std::string::npos) << r.err;
}

TEST(ReconCli, BadCutoffIsUsageErrorTwo) {
  const Outcome r = paycore({"recon", "--snapshot", "a", "--statement", "b", "--out", "c", "--cutoff", "yesterday"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--cutoff"), std::string::npos) << r.err;
}

TEST(ReconCli, ApplyWithoutServerIsUsageErrorTwo) {
  const Outcome r = paycore({"recon", "apply", "repairs.jsonl", "--keys", "k.json"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--server"), std::string::npos) << r.err;
}

TEST(ReconCli, ApplyRefusesHttpsAndMalformedRepairs) {
  TempDir dir;
  ASSERT_EQ(paycore({"keys", "init", "--keys", (dir / "keys.json").string()}).status, 0);
  std::ofstream(dir / "repairs.jsonl") << "{\"repair_id\": \"rp_1\"}\n";
  Outcome r = paycore({"recon", "apply", (dir / "repairs.jsonl").string(), "--server", "https://127.0.0.1:1", "--keys",
                   (dir / "keys.json").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("http://"), std::string::npos) << r.err;
  r = paycore({"recon", "apply", (dir / "repairs.jsonl").string(), "--server", "http://127.0.0.1:1", "--keys",
               (dir / "keys.json").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("repairs.jsonl:1:"), std::string::npos) << r.err;
}

TEST(ReconCli, GenWithZeroPaymentsIsUsageErrorTwo) {
  TempDir dir;
  const Outcome r = paycore({"recon", "gen", "--payments", "0", "--out", (dir / "g").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--payments"), std::string::npos) << r.err;
}

// ---- Snapshots ------------------------------------------------------------------------------

// Every kind of argument mistake of recon, recon apply and recon gen: exit status 2 and a
// message of ours (CLI11's own parse errors exit 105-114 and say "Run with --help ..."), except
// for a "--" right after `recon`, which CLI11 handles before recon sees a word: its message, but
// exit status 2 all the same (app/main.cpp).
TEST(ReconCli, EveryArgumentMistakeExitsTwo) {
  TempDir dir;
  std::ofstream(dir / "s.csv") << "channel,channel_txn_id,merchant_id,order_id,type,refund_id,amount,currency,status,time\n";
  std::ofstream(dir / "r.jsonl") << "";
  const std::string statement = (dir / "s.csv").string(), out = (dir / "out").string();
  const std::string repairs = (dir / "r.jsonl").string(), missing = (dir / "missing").string();
  struct Case {
    const char* kind;
    std::vector<std::string> args;
    const char* said;  // in the message
  };
  const std::vector<Case> cases = {
      {"recon: unknown option", {"recon", "--snapshot", "a", "--statement", statement, "--out", out, "--bogus"}, "--bogus"},
      {"recon: unknown short option", {"recon", "-x"}, "'-x'"},
      {"recon: missing value at the end", {"recon", "--statement", statement, "--out", out, "--snapshot"}, "--snapshot needs a value"},
      {"recon: missing value before an option", {"recon", "--snapshot", "--statement", statement, "--out", out}, "--snapshot needs a value"},
      {"recon: empty --x=", {"recon", "--snapshot=", "--statement", statement, "--out", out}, "--snapshot needs a value"},
      {"recon: missing --snapshot", {"recon", "--statement", statement, "--out", out}, "--snapshot FILE is required"},
      {"recon: missing --statement", {"recon", "--snapshot", "a", "--out", out}, "--statement FILE is required"},
      {"recon: missing --out", {"recon", "--snapshot", "a", "--statement", statement}, "--out DIR is required"},
      {"recon: unreadable statement", {"recon", "--snapshot", "a", "--statement", missing, "--out", out}, "cannot open statement"},
      {"recon: unreadable snapshot", {"recon", "--snapshot", missing, "--statement", statement, "--out", out}, "cannot load"},
      {"recon: bad tolerance", {"recon", "--snapshot", "a", "--statement", statement, "--out", out, "--tolerance-seconds", "ten"}, "--tolerance-seconds"},
      {"recon: bad format", {"recon", "--snapshot", "a", "--statement", statement, "--statement-format", "xls", "--out", out}, "--statement-format"},
      {"recon: bad cutoff", {"recon", "--snapshot", "a", "--statement", statement, "--out", out, "--since", "today"}, "--since"},
      {"recon: extra positional", {"recon", "--snapshot", "a", "--statement", statement, "--out", out, "extra"}, "'extra'"},
      {"recon: --since not before --cutoff", {"recon", "--snapshot", "a", "--statement", statement, "--out", out, "--cutoff", "2020-01-01T00:00:00Z", "--since", "2030-01-01T00:00:00Z"}, "is not before --cutoff"},
      {"recon: the same statement twice", {"recon", "--snapshot", "a", "--statement", statement, "--statement", statement, "--out", out}, "is given twice"},
      {"recon: a subcommand's name out of place", {"recon", "--snapshot", "a", "apply"}, "'apply'"},
      {"recon: leading --", {"recon", "--", "x"}, "not expected: x"},
      {"recon: flag with a value", {"recon", "--help=yes"}, "takes no value"},
      {"recon: option twice", {"recon", "--snapshot", "a", "--snapshot", "b", "--statement", statement, "--out", out}, "given twice"},
      {"recon: ambiguous pairing", {"recon", "--snapshot", "a", "--statement-merchant", "m_001", "--statement", statement,
                                    "--statement-merchant", "m_002", "--out", out}, "ambiguous"},
      {"recon: a bill with two merchants", {"recon", "--snapshot", "a", "--statement", (dir / "bill").string(),
                                            "--statement-format", "alipay", "--statement-merchant", "m_1",
                                            "--statement-merchant", "m_2", "--out", out}, "one --statement-merchant"},
      {"apply: unknown option", {"recon", "apply", repairs, "--server", "http://127.0.0.1:1", "--keys", "k", "--bogus"}, "--bogus"},
      {"apply: missing value", {"recon", "apply", repairs, "--keys", "k.json", "--server"}, "--server needs a value"},
      {"apply: missing REPAIRS", {"recon", "apply", "--server", "http://127.0.0.1:1", "--keys", "k"}, "REPAIRS.jsonl is required"},
      {"apply: missing --keys", {"recon", "apply", repairs, "--server", "http://127.0.0.1:1"}, "--keys FILE is required"},
      {"apply: extra positional", {"recon", "apply", repairs, "more.jsonl", "--server", "http://127.0.0.1:1", "--keys", "k"}, "'more.jsonl'"},
      {"apply: bad timeout", {"recon", "apply", repairs, "--server", "http://127.0.0.1:1", "--keys", "k", "--timeout-ms", "0"}, "--timeout-ms"},
      {"apply: flag with a value", {"recon", "apply", repairs, "--server", "http://127.0.0.1:1", "--keys", "k", "--dry-run=1"}, "takes no value"},
      {"apply: unreadable keys", {"recon", "apply", repairs, "--server", "http://127.0.0.1:1", "--keys", missing}, ""},
      {"apply: leading --", {"recon", "apply", "--", "x"}, ""},
      {"gen: unknown option", {"recon", "gen", "--payments", "5", "--out", out, "--bogus"}, "--bogus"},
      {"gen: missing value", {"recon", "gen", "--out", out, "--payments"}, "--payments needs a value"},
      {"gen: missing --payments", {"recon", "gen", "--out", out}, "--payments N is required"},
      {"gen: extra positional", {"recon", "gen", "--payments", "5", "--out", out, "x"}, "'x'"},
      {"gen: bad payments", {"recon", "gen", "--payments", "ten", "--out", out}, "--payments"},
      {"gen: bad seed", {"recon", "gen", "--payments", "5", "--seed", "-1", "--out", out}, "--seed"},
      {"gen: bad start", {"recon", "gen", "--payments", "5", "--start", "soon", "--out", out}, "--start"},
      {"gen: unwritable out", {"recon", "gen", "--payments", "5", "--out", (dir / "s.csv" / "sub").string()}, ""},
  };
  std::ofstream(dir / "bill") << "#x\n";
  for (const Case& c : cases) {
    const Outcome r = paycore(c.args);
    EXPECT_EQ(r.status, 2) << c.kind << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << c.kind;
    EXPECT_NE(r.err.find(c.said), std::string::npos) << c.kind << ": " << r.err;
    if (std::string_view(c.kind) != "recon: leading --") {
      EXPECT_EQ(r.err.find("Run with --help"), std::string::npos) << c.kind << ": " << r.err;
    }
  }
}

TEST(ReconCli, HelpExitsZeroWithTheUsage) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"recon", "--help"}, {"recon", "-h"},
                                               {"recon", "--snapshot", "a", "--help"}}) {
    const Outcome r = paycore(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("--statement-merchant"), std::string::npos) << r.out;
  }
  for (const char* sub : {"apply", "gen"}) {
    const Outcome r = paycore({"recon", sub, "--help"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("usage: paycore recon ") + sub), std::string::npos) << r.out;
  }
}

// Two merchants' Alipay bills in one run, each paired with its --statement-merchant: only
// those two merchants' alipay payments are expected; both bills being empty, each of theirs is
// missing_channel and nobody else's is.
TEST(ReconCli, TwoMerchantsBillsInOneRunCoverExactlyTheirPairs) {
  TempDir dir;
  const Outcome gen = paycore({"recon", "gen", "--payments", "400", "--seed", "3", "--out", (dir / "g").string()});
  ASSERT_EQ(gen.status, 0) << gen.err;
  const std::string bill_utf8 =
      "#支付宝业务明细查询\n#-----业务明细列表-----\n"
      "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
      "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
      "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n"
      "#-----业务明细列表结束-----\n#交易合计：0笔\n#退款合计：0笔\n";
  std::string bill;
  ASSERT_TRUE(utf8_to_gbk(bill_utf8, &bill));
  std::ofstream(dir / "m_001.csv", std::ios::binary) << bill;
  std::ofstream(dir / "m_002.csv", std::ios::binary) << "\xEF\xBB\xBF" << bill_utf8;  // a UTF-8 re-save
  const Outcome r = paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--out", (dir / "out").string(),
                             "--statement", (dir / "m_001.csv").string(), "--statement-merchant", "m_001",
                             "--statement", (dir / "m_002.csv").string(), "--statement-merchant", "m_002",
                             "--cutoff", "2026-11-27T00:00:00Z"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find("covered (channel/merchant): alipay/m_001, alipay/m_002\n"), std::string::npos) << r.out;
  const std::string mismatches = read_text(dir / "out/mismatches.csv");
  EXPECT_GT(count_lines(mismatches, "missing_channel,no_channel_row,payment,alipay,m_001,"), 0u) << mismatches;
  EXPECT_GT(count_lines(mismatches, "missing_channel,no_channel_row,payment,alipay,m_002,"), 0u) << mismatches;
  for (const char* other : {",alipay,m_003,", ",alipay,m_004,", ",wechat,", ",card,"}) {
    EXPECT_EQ(count_lines(mismatches, std::string("missing_channel,no_channel_row,payment") + other), 0u) << other;
  }
  const std::string summary = read_text(dir / "out/summary.json");
  EXPECT_NE(summary.find("\"encoding\": \"UTF-8\""), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"encoding\": \"GB18030\""), std::string::npos) << summary;
}

TEST(ReconCli, DamagedSnapshotExitsTwoNamingFileAndOffset) {
  TempDir dir;
  ASSERT_EQ(paycore({"recon", "gen", "--payments", "500", "--out", (dir / "g").string()}).status, 0);
  std::string bytes = read_text(dir / "g/snapshot.snap");
  bytes[bytes.size() / 3] ^= 0x01;
  std::ofstream(dir / "bad.snap", std::ios::binary) << bytes;
  const Outcome r = paycore({"recon", "--snapshot", (dir / "bad.snap").string(), "--statement",
                         (dir / "g/statement.csv").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find((dir / "bad.snap").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("offset"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out/summary.json"));
}

TEST(ReconCli, MissingSnapshotExitsTwo) {
  TempDir dir;
  ASSERT_EQ(paycore({"recon", "gen", "--payments", "100", "--out", (dir / "g").string()}).status, 0);
  const Outcome r = paycore({"recon", "--snapshot", (dir / "none.snap").string(), "--statement",
                         (dir / "g/statement.csv").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("none.snap"), std::string::npos) << r.err;
}

TEST(ReconCli, GenThenReconFindsTheExpectedCounts) {
  TempDir dir;
  const Outcome gen = paycore({"recon", "gen", "--payments", "20000", "--seed", "11", "--out", (dir / "g").string()});
  ASSERT_EQ(gen.status, 0) << gen.err;
  const std::string expected = read_text(dir / "g/expected.json");
  const std::string cutoff = json_text(expected, "/cutoff");
  const Outcome r = paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--statement",
                         (dir / "g/statement.csv").string(), "--out", (dir / "out").string(), "--cutoff", cutoff});
  EXPECT_EQ(r.status, 1) << r.err;  // findings
  expect_summary_counts(dir / "out/summary.json", dir / "g/expected.json", "counts");
  const std::string repairs = read_text(dir / "out/repairs.jsonl");
  EXPECT_EQ(count_lines(repairs, "\"needs_person\": false"), json_count(expected, "/repairable").value_or(0));
}

// The generator's tiered day: half of it archived (DIR/archive), recon with --archive finds the
// same counts as with every payment in memory.
TEST(ReconCli, TieredGenThenReconWithTheArchiveFindsTheExpectedCounts) {
  TempDir dir;
  const Outcome gen = paycore({"recon", "gen", "--payments", "5000", "--seed", "11", "--archive-percent", "50",
                               "--out", (dir / "g").string()});
  ASSERT_EQ(gen.status, 0) << gen.err;
  const std::string expected = read_text(dir / "g/expected.json");
  EXPECT_GT(json_count(expected, "/archived_payments_not_in_snapshot").value_or(0), 0u);
  const Outcome r = paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--archive",
                             (dir / "g/archive").string(), "--since", json_text(expected, "/start"), "--statement",
                             (dir / "g/statement.csv").string(), "--out", (dir / "out").string(), "--cutoff",
                             json_text(expected, "/cutoff")});
  EXPECT_EQ(r.status, 1) << r.err;  // findings
  expect_summary_counts(dir / "out/summary.json", dir / "g/expected.json", "counts");
}

TEST(ReconCli, SnapshotWithArchivedPaymentsWithoutArchiveExitsTwo) {
  TempDir dir;
  ASSERT_EQ(paycore({"recon", "gen", "--payments", "500", "--archive-percent", "50", "--out", (dir / "g").string()})
                .status,
            0);
  const Outcome r = paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--statement",
                             (dir / "g/statement.csv").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--archive"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out/summary.json"));
}

TEST(ReconCli, MissingArchiveExitsTwoNamingIt) {
  TempDir dir;
  ASSERT_EQ(paycore({"recon", "gen", "--payments", "500", "--archive-percent", "50", "--out", (dir / "g").string()})
                .status,
            0);
  const std::string missing = (dir / "no-archive").string();
  const Outcome r = paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--archive", missing,
                             "--statement", (dir / "g/statement.csv").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
}

// ---- The round trip -------------------------------------------------------------------------
// state (via apply) -> snapshot -> recon -> repairs -> `paycore serve` with that snapshot ->
// `paycore recon apply` (twice) -> the server's own snapshot at shutdown -> recon again.

TEST(ReconRoundTrip, RepairsThroughTheServerLeaveNothingRepairable) {
  TempDir dir;
  // The statement's day ends ten minutes from now: the payments still PENDING in the snapshot
  // were made about five minutes ago, inside the server's 15-minute pending lifetime.
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string start = format_rfc3339_us(now_us - 24LL * 3600 * 1'000'000 + 10LL * 60 * 1'000'000);
  const Outcome gen = paycore({"recon", "gen", "--payments", "5000", "--seed", "5", "--start", start, "--out",
                           (dir / "g").string()});
  ASSERT_EQ(gen.status, 0) << gen.err;
  const std::string expected = read_text(dir / "g/expected.json");
  const std::string cutoff = json_text(expected, "/cutoff");
  const std::uint64_t repairable = json_count(expected, "/repairable").value_or(0);
  ASSERT_GT(repairable, 0u);

  const Outcome first = paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--statement",
                             (dir / "g/statement.csv").string(), "--out", (dir / "r1").string(), "--cutoff", cutoff});
  ASSERT_EQ(first.status, 1) << first.err;
  expect_summary_counts(dir / "r1/summary.json", dir / "g/expected.json", "counts");

  // The server's data directory holds the generated snapshot under its LSN; no log yet.
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.snap",
                static_cast<unsigned long long>(json_count(expected, "/snapshot_lsn").value_or(0)));
  fs::create_directories(dir / "data/snapshots");
  fs::copy_file(dir / "g/snapshot.snap", dir / "data/snapshots" / name);
  ASSERT_EQ(paycore({"keys", "init", "--keys", (dir / "keys/keys.json").string()}).status, 0);

  Server server(dir / "data", dir / "keys/keys.json", dir / "serve.log");
  ASSERT_TRUE(server.up()) << server.log();
  const std::vector<std::string> apply_args = {"recon", "apply", (dir / "r1/repairs.jsonl").string(), "--server",
                                               server.url(), "--keys", (dir / "keys/keys.json").string()};
  const Outcome apply1 = paycore(apply_args);
  EXPECT_EQ(apply1.status, 0) << apply1.out << apply1.err;
  EXPECT_NE(apply1.out.find("applied " + std::to_string(repairable) + ","), std::string::npos) << apply1.out;
  EXPECT_EQ(count_lines(apply1.out, "\napplied "), repairable - (apply1.out.starts_with("applied ") ? 1 : 0));
  // Idempotent: the same file again changes nothing.
  const Outcome apply2 = paycore(apply_args);
  EXPECT_EQ(apply2.status, 0) << apply2.out << apply2.err;
  EXPECT_NE(apply2.out.find("applied 0, already in place " + std::to_string(repairable) + ","), std::string::npos)
      << apply2.out;
  ASSERT_EQ(server.stop(), 0) << server.log();

  fs::path newest;
  for (const auto& entry : fs::directory_iterator(dir / "data/snapshots")) {
    if (entry.path().extension() == ".snap" && entry.path().filename() > newest.filename()) newest = entry.path();
  }
  ASSERT_NE(newest.filename(), name) << "no snapshot at shutdown: " << server.log();
  const Outcome second = paycore({"recon", "--snapshot", newest.string(), "--statement", (dir / "g/statement.csv").string(),
                              "--out", (dir / "r2").string(), "--cutoff", cutoff});
  EXPECT_EQ(second.status, 1) << second.err;  // what needs a person is still there
  expect_summary_counts(dir / "r2/summary.json", dir / "g/expected.json", "counts_after_repairs");
  EXPECT_EQ(count_lines(read_text(dir / "r2/repairs.jsonl"), "\"needs_person\": false"), 0u);
}

// Repairs made after the pending lifetime: the payments have expired on the server, so each
// notification is kept there as an anomaly. apply says so per repair and exits 1.
TEST(ReconRoundTrip, RepairsAfterThePendingLifetimeAreReportedNotApplied) {
  TempDir dir;
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string start = format_rfc3339_us(now_us - 48LL * 3600 * 1'000'000);
  ASSERT_EQ(paycore({"recon", "gen", "--payments", "2000", "--seed", "9", "--start", start, "--out",
                     (dir / "g").string()}).status, 0);
  const std::string expected = read_text(dir / "g/expected.json");
  const std::uint64_t repairable = json_count(expected, "/repairable").value_or(0);
  ASSERT_GT(repairable, 0u);
  ASSERT_EQ(paycore({"recon", "--snapshot", (dir / "g/snapshot.snap").string(), "--statement",
                     (dir / "g/statement.csv").string(), "--out", (dir / "r1").string(), "--cutoff",
                     json_text(expected, "/cutoff")}).status, 1);
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.snap",
                static_cast<unsigned long long>(json_count(expected, "/snapshot_lsn").value_or(0)));
  fs::create_directories(dir / "data/snapshots");
  fs::copy_file(dir / "g/snapshot.snap", dir / "data/snapshots" / name);
  ASSERT_EQ(paycore({"keys", "init", "--keys", (dir / "keys/keys.json").string()}).status, 0);
  Server server(dir / "data", dir / "keys/keys.json", dir / "serve.log");
  ASSERT_TRUE(server.up()) << server.log();
  const Outcome apply = paycore({"recon", "apply", (dir / "r1/repairs.jsonl").string(), "--server", server.url(),
                                 "--keys", (dir / "keys/keys.json").string()});
  EXPECT_EQ(apply.status, 1) << apply.out << apply.err;
  EXPECT_NE(apply.out.find("applied 0, already in place 0, not applied " + std::to_string(repairable) + ","),
            std::string::npos)
      << apply.out;
  EXPECT_NE(apply.out.find("kept the notification as an anomaly"), std::string::npos) << apply.out;
}

}  // namespace
}  // namespace paycore::recon
