// The snapshot loader on snapshots the core itself wrote from states built through apply(), and
// the state-machine generator reconciled against what it says it injected.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <xxhash.h>

#include "recon/gen_state.hpp"
#include "recon/match.hpp"
#include "recon/recon.hpp"
#include "recon/snapshot_loader.hpp"
#include "recon/snapshot_scan.hpp"
#include "core/snapshot_format.hpp"
#include "core/apply.hpp"
#include "core/snapshot.hpp"
#include "test_util.hpp"

namespace paycore::recon {
namespace {

using test::at;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "recon-loader-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Commands with strictly increasing timestamps, each expected to succeed.
class Script {
 public:
  explicit Script(State& state) : state_(state) {}

  Result run(Command c, std::string_view time) {
    c.timestamp_us = std::max(at(time), state_.last_timestamp_us + 1);
    const Result r = apply(state_, c);
    EXPECT_EQ(r.code, ResultCode::ok) << to_string(c.kind) << " at " << time << ": " << to_string(r.code);
    return r;
  }
  void channel(std::string_view name) {
    Command c;
    c.kind = CommandKind::add_channel;
    c.channel = Id::of(name);
    run(c, "2026-11-26T00:00:00Z");
  }
  void customer(std::string_view id, Amount deposit) {
    Command c = by("operator", CommandKind::open_account, std::string("open-") + std::string(id));
    c.flags = command_flag_operator;
    c.account = Id::of(id);
    c.account_kind = AccountKind::customer;
    c.currency = cny();
    run(c, "2026-11-26T00:00:00Z");
    c = by("operator", CommandKind::deposit, std::string("dep-") + std::string(id));
    c.flags = command_flag_operator;
    c.account = Id::of(id);
    c.amount = deposit;
    c.currency = cny();
    run(c, "2026-11-26T00:00:00Z");
  }
  // The customer's consent that `merchant` may debit it (docs/api.md "Mandates").
  void mandate(std::string_view customer, std::string_view merchant) {
    const std::string id = "md-" + std::string(customer) + "-" + std::string(merchant);
    Command c = by("operator", CommandKind::create_mandate, id);
    c.flags = command_flag_operator;
    c.mandate_id = Id::of(id);
    c.account = Id::of(customer);
    c.merchant_id = Id::of(merchant);
    c.amount = amount_max_default;
    run(c, "2026-11-26T00:00:00Z");
  }
  void pay(std::string_view merchant, std::string_view order, std::string_view channel, Amount amount,
           std::string_view time, std::string_view payer = {}) {
    Command c = by(merchant, CommandKind::create_payment, "rq-" + std::string(order));
    c.order_id = Id::of(order);
    c.amount = amount;
    c.currency = cny();
    c.channel = Id::of(channel);
    if (!payer.empty()) c.account = Id::of(payer);
    run(c, time);
  }
  Result notify(std::string_view channel, std::string_view txn, std::string_view merchant, std::string_view order,
                Amount amount, NotificationStatus status, std::string_view time) {
    Command c;
    c.kind = CommandKind::channel_notification;
    c.channel = Id::of(channel);
    c.channel_txn_id = Id::of(txn);
    c.principal = Id::of(merchant);
    c.order_id = Id::of(order);
    c.amount = amount;
    c.currency = cny();
    c.notification_status = status;
    c.paid_at_us = at(time);
    return run(c, time);
  }
  void refund(std::string_view merchant, std::string_view order, std::string_view request_id, Amount amount,
              std::string_view time) {
    Command c = by(merchant, CommandKind::refund_payment, request_id);
    c.order_id = Id::of(order);
    c.amount = amount;
    run(c, time);
  }

 private:
  static Currency cny() { return *currency_from_code("CNY"); }
  static Command by(std::string_view principal, CommandKind kind, std::string_view request_id) {
    Command c;
    c.kind = kind;
    c.principal = Id::of(principal);
    c.request_id = Id::of(request_id);
    return c;
  }
  State& state_;
};

// A small day: a balance payment, a paid alipay payment refunded twice, a pending wechat
// payment, an expired one, and a notification for an order nobody has.
void build_day(State& state) {
  Script s(state);
  s.channel("alipay");
  s.channel("wechat");
  s.customer("c_1", 1'000'000);
  s.mandate("c_1", "m_001");
  s.pay("m_001", "o-bal", "balance", 500, "2026-11-26T08:00:00Z", "c_1");
  s.pay("m_001", "o-ali", "alipay", 1234, "2026-11-26T09:00:00Z");
  s.notify("alipay", "T-ali", "m_001", "o-ali", 1234, NotificationStatus::success, "2026-11-26T09:00:05Z");
  s.refund("m_001", "o-ali", "rf-1", 200, "2026-11-26T10:00:00Z");
  s.refund("m_001", "o-ali", "rf-2", 34, "2026-11-26T11:00:00Z");
  s.pay("m_002", "o-old", "wechat", 700, "2026-11-26T12:00:00Z");
  s.notify("wechat", "T-ghost", "m_002", "o-none", 999, NotificationStatus::success, "2026-11-26T13:00:00Z");
  s.pay("m_002", "o-wx", "wechat", 800, "2026-11-26T13:10:00Z");
}

const LocalPayment& find(const LocalData& local, std::string_view order) {
  for (const LocalPayment& p : local.payments()) {
    if (p.order_id == order) return p;
  }
  ADD_FAILURE() << "no payment " << order;
  static const LocalPayment none;
  return none;
}

TEST(ReconSnapshotLoader, ReadsPaymentsRefundsAndAnomaliesOfARealSnapshot) {
  State state;
  build_day(state);
  TempDir dir;
  write_bytes(dir / "day.snap", serialize_snapshot(state, 42, at("2026-11-26T13:10:01Z")));

  SnapshotInfo info;
  const StatusOr<LocalData> local = load_local_data((dir / "day.snap").string(), &info);
  ASSERT_TRUE(local.is_ok()) << local.status().message();
  EXPECT_EQ(info.lsn, 42u);
  ASSERT_EQ(local->payments().size(), 4u);
  ASSERT_EQ(local->refunds().size(), 2u);
  ASSERT_EQ(local->anomalies().size(), 1u);

  const LocalPayment& bal = find(*local, "o-bal");
  EXPECT_EQ(bal.channel, "balance");
  EXPECT_EQ(bal.status, PaymentStatus::paid);
  EXPECT_EQ(bal.merchant_id, "m_001");
  EXPECT_EQ(bal.request_id, "rq-o-bal");
  EXPECT_TRUE(bal.channel_txn_id.empty());

  const LocalPayment& ali = find(*local, "o-ali");
  EXPECT_EQ(ali.channel, "alipay");
  EXPECT_EQ(ali.channel_txn_id, "T-ali");
  EXPECT_EQ(ali.amount, 1234);
  EXPECT_EQ(ali.refunded_amount, 234);
  EXPECT_EQ(ali.currency, test::currency("CNY"));
  EXPECT_EQ(ali.created_at_us, at("2026-11-26T09:00:00Z"));
  const auto refunds = local->refunds_of(ali);
  ASSERT_EQ(refunds.size(), 2u);
  EXPECT_EQ(refunds[0].request_id, "rf-1");
  EXPECT_EQ(refunds[0].amount, 200);
  EXPECT_EQ(refunds[0].at_us, at("2026-11-26T10:00:00Z"));
  EXPECT_EQ(refunds[1].request_id, "rf-2");
  EXPECT_EQ(refunds[1].amount, 34);

  const LocalAnomaly& ghost = local->anomalies()[0];
  EXPECT_EQ(ghost.channel, "wechat");
  EXPECT_EQ(ghost.channel_txn_id, "T-ghost");
  EXPECT_EQ(ghost.order_id, "o-none");
  EXPECT_EQ(ghost.amount, 999);
  EXPECT_EQ(ghost.status, "SUCCESS");
  EXPECT_EQ(ghost.reason, "unknown_order");
  EXPECT_EQ(ghost.paid_at_us, at("2026-11-26T13:00:00Z"));
}

TEST(ReconSnapshotLoader, PendingPastItsLifetimeReadsCancelled) {
  State state;
  build_day(state);
  TempDir dir;
  write_bytes(dir / "day.snap", serialize_snapshot(state, 1, at("2026-11-26T13:10:01Z")));
  const StatusOr<LocalData> local = load_local_data((dir / "day.snap").string());
  ASSERT_TRUE(local.is_ok()) << local.status().message();
  // Created 12:00, 15 minutes of lifetime, judged at 13:10:01: a live server says CANCELLED.
  EXPECT_EQ(find(*local, "o-old").status, PaymentStatus::cancelled);
  EXPECT_EQ(find(*local, "o-wx").status, PaymentStatus::pending);
}

TEST(ReconSnapshotLoader, DamagedSnapshotNamesTheOffset) {
  State state;
  build_day(state);
  TempDir dir;
  std::string bytes = serialize_snapshot(state, 7, at("2026-11-26T13:10:01Z"));
  bytes[bytes.size() / 2] ^= 0x5a;
  write_bytes(dir / "bad.snap", bytes);
  const StatusOr<LocalData> local = load_local_data((dir / "bad.snap").string());
  EXPECT_FALSE(local.is_ok());
  const std::string error = local.status().message();
  EXPECT_NE(error.find("offset"), std::string::npos) << error;
}

// The content checksum runs beside the decoding (recon/snapshot_scan.cpp): damage in the
// middle is still told as the checksum's mismatch, whatever the decoding made of the bytes.
TEST(ReconSnapshotLoader, DamagedContentIsAChecksumMismatch) {
  State state;
  build_day(state);
  TempDir dir;
  std::string bytes = serialize_snapshot(state, 7, at("2026-11-26T13:10:01Z"));
  bytes[bytes.size() / 2] ^= 0x5a;
  write_bytes(dir / "bad.snap", bytes);
  const StatusOr<LocalData> local = load_local_data((dir / "bad.snap").string());
  ASSERT_FALSE(local.is_ok());
  EXPECT_EQ(local.status().code(), StatusCode::kCorruption);
  const std::string error = local.status().message();
  EXPECT_NE(error.find("content checksum mismatch (trailer at offset " +
                       std::to_string(bytes.size() - snapshot::trailer_bytes) + ")"),
            std::string::npos)
      << error;
}

// The header is checked by check_snapshot given the header and a trailer made for it: its own
// checksum still guards it, with the offset of the file.
TEST(ReconSnapshotLoader, DamagedHeaderIsAHeaderChecksumMismatch) {
  State state;
  build_day(state);
  TempDir dir;
  std::string bytes = serialize_snapshot(state, 7, at("2026-11-26T13:10:01Z"));
  bytes[20] ^= 0x01;  // inside the lsn
  write_bytes(dir / "bad.snap", bytes);
  const StatusOr<LocalData> local = load_local_data((dir / "bad.snap").string());
  ASSERT_FALSE(local.is_ok());
  const std::string error = local.status().message();
  EXPECT_NE(error.find("header checksum mismatch at offset 120"), std::string::npos) << error;
}

TEST(ReconSnapshotLoader, TruncatedSnapshotIsRefused) {
  State state;
  build_day(state);
  TempDir dir;
  const std::string bytes = serialize_snapshot(state, 7, at("2026-11-26T13:10:01Z"));
  write_bytes(dir / "short.snap", bytes.substr(0, bytes.size() - 5));
  const StatusOr<LocalData> local = load_local_data((dir / "short.snap").string());
  EXPECT_FALSE(local.is_ok());
  EXPECT_FALSE(local.status().message().empty());
}

TEST(ReconSnapshotLoader, MissingFileIsRefused) {
  const StatusOr<LocalData> local = load_local_data("/nonexistent/recon.snap");
  EXPECT_FALSE(local.is_ok());
  const std::string error = local.status().message();
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

// ---- The generator, through the state machine ------------------------------------------------

struct Generated {
  StateGenOptions options;
  std::unique_ptr<State> state = std::make_unique<State>();
  StateGenExpected expected;
};

Generated generate(std::uint64_t payments, std::uint64_t seed, const std::filesystem::path& statement) {
  Generated g;
  g.options.payments_count = payments;
  g.options.seed = seed;
  std::ofstream csv(statement, std::ios::binary | std::ios::trunc);
  g.expected = generate_state(g.options, g.state.get(), csv);
  return g;
}

ReconReport reconcile_state(const Generated& g, const State& state, const std::filesystem::path& statement) {
  const LocalData local = local_data_from_state(state, state.last_timestamp_us);
  ReconOptions options;
  options.statements.push_back({statement.string(), StatementFormat::csv, "", {}});
  options.cutoff_us = g.options.cutoff_us();
  options.tolerance_seconds = g.options.tolerance_seconds;
  StatusOr<ReconReport> report = reconcile(options, local);
  EXPECT_TRUE(report.is_ok()) << report.status().message();
  return report.is_ok() ? std::move(*report) : ReconReport{};
}

void expect_counts(const ReconReport& report, const std::array<std::uint64_t, finding_class_count>& expected) {
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    EXPECT_EQ(report.match.totals.classes[c].count, expected[c]) << finding_class_name(static_cast<FindingClass>(c));
  }
}

TEST(ReconStateGen, ReconOfGeneratedStateFindsExactlyWhatWasInjected) {
  TempDir dir;
  for (std::uint64_t seed : {1u, 7u, 2026u}) {
    SCOPED_TRACE(seed);
    const Generated g = generate(20'000, seed, dir / "statement.csv");
    for (std::size_t c = 1; c < finding_class_count; ++c) {
      EXPECT_GT(g.expected.counts[c], 0u) << "class never injected: " << finding_class_name(static_cast<FindingClass>(c));
    }
    EXPECT_GT(g.expected.repairable_count, 0u);
    const ReconReport report = reconcile_state(g, *g.state, dir / "statement.csv");
    expect_counts(report, g.expected.counts);
    EXPECT_EQ(report.match.statement_rows_count, g.expected.statement_rows_count);
    EXPECT_EQ(report.match.malformed_count, 0u);
    std::uint64_t repairable = 0;
    for (const Finding& f : report.match.findings) repairable += f.repairable ? 1 : 0;
    EXPECT_EQ(repairable, g.expected.repairable_count);
  }
}

TEST(ReconStateGen, SnapshotFilesRoundTripThroughTheLoader) {
  TempDir dir;
  StateGenOptions options;
  options.payments_count = 3000;
  StateGenExpected expected;
  ASSERT_TRUE(generate_state_files(options, dir.path(), &expected).is_ok());
  SnapshotInfo info;
  const StatusOr<LocalData> local = load_local_data((dir / "snapshot.snap").string(), &info);
  ASSERT_TRUE(local.is_ok()) << local.status().message();
  EXPECT_EQ(info.lsn, expected.commands_count);
  EXPECT_EQ(local->payments().size(), expected.payments_count);
  EXPECT_EQ(local->refunds().size(), expected.refunds_count);
  EXPECT_EQ(local->anomalies().size(), expected.anomalies_count);
  EXPECT_NE(read_bytes(dir / "expected.json").find("\"counts_after_repairs\""), std::string::npos);
}

bool same_payment(const LocalPayment& a, const LocalPayment& b) {
  return a.merchant_id == b.merchant_id && a.order_id == b.order_id && a.request_id == b.request_id &&
         a.channel == b.channel && a.channel_txn_id == b.channel_txn_id && a.amount == b.amount &&
         a.refunded_amount == b.refunded_amount && a.created_at_us == b.created_at_us &&
         a.updated_at_us == b.updated_at_us && a.currency == b.currency && a.status == b.status &&
         a.refund_first == b.refund_first && a.refund_count == b.refund_count;
}

bool same_anomaly(const LocalAnomaly& a, const LocalAnomaly& b) {
  return a.channel == b.channel && a.channel_txn_id == b.channel_txn_id && a.merchant_id == b.merchant_id &&
         a.order_id == b.order_id && a.amount == b.amount && a.currency == b.currency && a.status == b.status &&
         a.paid_at_us == b.paid_at_us && a.reason == b.reason;
}

// The direct reader (recon/snapshot_scan.hpp) gives field for field what the core's reader and
// local_data_from_state give, expired PENDING payments included.
TEST(ReconStateGen, ScanOfTheSnapshotEqualsTheStatePath) {
  TempDir dir;
  const Generated g = generate(6000, 3, dir / "statement.csv");
  const std::string bytes = serialize_snapshot(*g.state, g.expected.commands_count, g.expected.last_timestamp_us);
  write_bytes(dir / "s.snap", bytes);
  SnapshotInfo info;
  const StatusOr<LocalData> scanned = scan_snapshot((dir / "s.snap").string(), &info);
  ASSERT_TRUE(scanned.is_ok()) << scanned.status().message();
  State loaded;
  ASSERT_TRUE(load_snapshot(std::as_bytes(std::span(bytes)), &loaded, &info).is_ok());
  const LocalData via_state = local_data_from_state(loaded, snapshot_as_of_us(info));
  ASSERT_EQ(scanned->payments().size(), via_state.payments().size());
  for (std::size_t i = 0; i < via_state.payments().size(); ++i) {
    ASSERT_TRUE(same_payment(scanned->payments()[i], via_state.payments()[i])) << i;
  }
  ASSERT_EQ(scanned->refunds().size(), via_state.refunds().size());
  for (std::size_t i = 0; i < via_state.refunds().size(); ++i) {
    const LocalRefund& a = scanned->refunds()[i];
    const LocalRefund& b = via_state.refunds()[i];
    ASSERT_TRUE(a.request_id == b.request_id && a.amount == b.amount && a.at_us == b.at_us) << i;
  }
  ASSERT_EQ(scanned->anomalies().size(), via_state.anomalies().size());
  for (std::size_t i = 0; i < via_state.anomalies().size(); ++i) {
    ASSERT_TRUE(same_anomaly(scanned->anomalies()[i], via_state.anomalies()[i])) << i;
  }
}

// A file cut inside its sections whose checksums were made to fit: the scan names an offset
// rather than reading past the end.
TEST(ReconSnapshotLoader, ScanOfSectionsCutShortNamesTheOffset) {
  State state;
  build_day(state);
  TempDir dir;
  const std::string whole = serialize_snapshot(state, 7, at("2026-11-26T13:10:01Z"));
  std::string cut = whole.substr(0, snapshot::header_bytes + 40);
  const XXH128_hash_t digest = XXH3_128bits(cut.data(), cut.size());
  cut += std::string(snapshot::trailer_magic, 8);
  for (const std::uint64_t half : {digest.low64, digest.high64}) {
    for (int b = 0; b < 8; ++b) cut.push_back(static_cast<char>((half >> (8 * b)) & 0xff));
  }
  write_bytes(dir / "cut.snap", cut);
  SnapshotInfo info;
  const StatusOr<LocalData> local = scan_snapshot((dir / "cut.snap").string(), &info);
  ASSERT_FALSE(local.is_ok());
  EXPECT_EQ(local.status().code(), StatusCode::kCorruption);
  EXPECT_NE(local.status().message().find("offset"), std::string::npos) << local.status().message();
}

TEST(ReconStateGen, SameSeedSameSnapshotBytes) {
  TempDir a, b;
  StateGenOptions options;
  options.payments_count = 2000;
  StateGenExpected ea, eb;
  ASSERT_TRUE(generate_state_files(options, a.path(), &ea).is_ok());
  ASSERT_TRUE(generate_state_files(options, b.path(), &eb).is_ok());
  EXPECT_EQ(read_bytes(a / "snapshot.snap"), read_bytes(b / "snapshot.snap"));
  EXPECT_EQ(read_bytes(a / "statement.csv"), read_bytes(b / "statement.csv"));
}

// The stand-in for the server: each repairable finding's notification goes through apply()
// itself, exactly as the engine would apply the HTTP request's command. (The integration test
// does the same through `paycore serve`.)
Command notification_of(const Finding& f, std::int64_t now_us) {
  Command c;
  c.kind = CommandKind::channel_notification;
  c.channel = Id::of(f.channel);
  c.channel_txn_id = Id::of(f.channel_txn_id);
  c.principal = Id::of(f.merchant_id);
  c.order_id = Id::of(f.order_id);
  c.amount = f.channel_amount;
  c.currency = f.channel_currency;
  c.notification_status = f.channel_status == ChannelStatus::success ? NotificationStatus::success : NotificationStatus::failed;
  c.paid_at_us = f.channel_time_us;
  c.timestamp_us = now_us;
  return c;
}

TEST(ReconStateGen, RepairsThroughApplyLeaveNothingRepairableAndRepeatChangesNothing) {
  TempDir dir;
  Generated g = generate(20'000, 3, dir / "statement.csv");
  const ReconReport before = reconcile_state(g, *g.state, dir / "statement.csv");
  std::uint64_t applied = 0;
  for (int round = 0; round < 2; ++round) {
    for (const Finding& f : before.match.findings) {
      if (!f.repairable) continue;
      const Result r = apply(*g.state, notification_of(f, g.state->last_timestamp_us + 1));
      ASSERT_EQ(r.code, ResultCode::ok);
      if (round == 0) {
        EXPECT_EQ(r.notification, NotificationOutcome::applied) << f.order_id;
        ++applied;
      } else {
        EXPECT_EQ(r.notification, NotificationOutcome::duplicate) << f.order_id;
        EXPECT_FALSE(r.mutated);
      }
    }
  }
  EXPECT_EQ(applied, g.expected.repairable_count);
  EXPECT_TRUE(g.state->balances_sum_to_zero_slow());
  const ReconReport after = reconcile_state(g, *g.state, dir / "statement.csv");
  expect_counts(after, g.expected.counts_after_repairs);
  for (const Finding& f : after.match.findings) EXPECT_FALSE(f.repairable) << f.order_id << " " << f.reason;
}

}  // namespace
}  // namespace paycore::recon
