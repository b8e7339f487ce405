// Recon across both tiers (issue 12; docs/recon.md "Cold payments"): the local side is the
// snapshot's hot payments plus the archive's cold ones, and recon classifies a statement exactly
// as it would with every payment in memory. States are built through the real core (apply); the
// archive is written with ArchiveStore::write, as the archiver writes it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "archive/store.hpp"
#include "core/apply.hpp"
#include "core/snapshot.hpp"
#include "recon/gen_state.hpp"
#include "recon/recon.hpp"
#include "recon/snapshot_loader.hpp"
#include "test_util.hpp"
#include "tests/core/commands.hpp"

namespace paycore::recon {
namespace {

namespace fs = std::filesystem;
using paycore::testing::Driver;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "recon-tier-XXXXXX").string();
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

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// What a run leaves for a reader: summary.json and mismatches.csv (its rows sorted: the order
// of findings follows the order of the local records, which differs between tiers).
struct JobOutput {
  std::string summary;
  std::vector<std::string> mismatches;
  std::array<std::uint64_t, finding_class_count> counts{};
};

JobOutput run_job(const LocalData& local, const fs::path& statement, std::int64_t cutoff_us,
                  const fs::path& out_dir) {
  ReconOptions options;
  options.statements.push_back({statement.string(), StatementFormat::csv, "", {}});
  options.cutoff_us = cutoff_us;
  options.out_dir = out_dir;
  const StatusOr<ReconReport> report = reconcile(options, local);
  EXPECT_TRUE(report.is_ok()) << report.status().to_string();
  if (!report.is_ok()) return {};
  EXPECT_TRUE(write_report_files(*report, out_dir).is_ok());
  JobOutput output;
  output.summary = read_bytes(out_dir / "summary.json");
  std::istringstream rows(read_bytes(out_dir / "mismatches.csv"));
  for (std::string row; std::getline(rows, row);) output.mismatches.push_back(row);
  std::sort(output.mismatches.begin(), output.mismatches.end());
  for (std::size_t i = 0; i < finding_class_count; ++i) {
    output.counts[i] = report->match.totals.classes[i].count;
  }
  return output;
}

LocalData load_or_fail(const LocalSources& sources) {
  StatusOr<LocalData> local = load_local_data(sources);
  EXPECT_TRUE(local.is_ok()) << local.status().to_string();
  return local.is_ok() ? std::move(*local) : LocalData{};
}

// ---- Generated days, part of them archived

struct TierCase {
  std::uint32_t archive_percent;
  bool with_since;  // the archive read from --since, else whole
  friend void PrintTo(const TierCase& c, std::ostream* out) {
    *out << c.archive_percent << "% archived, " << (c.with_since ? "--since" : "whole archive");
  }
};

class ReconGeneratedTiers : public ::testing::TestWithParam<TierCase> {};

// The same day recon'd from memory alone (before archiving) and from the tiered snapshot and
// the archive: identical summary and findings, and the generator's counts.
TEST_P(ReconGeneratedTiers, ClassifyExactlyAsWithEverythingInMemory) {
  const TierCase tier_case = GetParam();
  TempDir dir;
  StateGenOptions options;
  options.payments_count = 4000;
  options.seed = 11;
  State state;
  StateGenExpected expected;
  {
    std::ofstream csv(dir / "statement.csv", std::ios::binary);
    expected = generate_state(options, &state, csv);
  }
  write_bytes(dir / "memory.snap",
              serialize_snapshot(state, expected.commands_count, expected.last_timestamp_us));
  const StatusOr<GenTierResult> tier =
      archive_generated(options, tier_case.archive_percent, (dir / "archive").string(), &state,
                        expected.commands_count, expected.last_timestamp_us);
  ASSERT_TRUE(tier.is_ok()) << tier.status().to_string();
  write_bytes(dir / "tier.snap", serialize_snapshot(state, tier->commands_count, tier->last_timestamp_us));
  if (tier_case.archive_percent >= 50) {
    EXPECT_GT(tier->evicted_count, expected.payments_count / 4);  // cold: only in the archive
    EXPECT_GT(tier->archived_count, tier->evicted_count);        // both: archived, still in memory
  }

  const LocalData memory = load_or_fail({(dir / "memory.snap").string(), "", std::nullopt});
  LocalSources sources{(dir / "tier.snap").string(), (dir / "archive").string(), std::nullopt};
  if (tier_case.with_since) sources.archive_from_us = options.start_us;
  const LocalData tiered = load_or_fail(sources);
  EXPECT_EQ(tiered.payments().size(), memory.payments().size());
  EXPECT_EQ(tiered.refunds().size(), memory.refunds().size());

  const JobOutput from_memory = run_job(memory, dir / "statement.csv", options.cutoff_us(), dir / "r-memory");
  const JobOutput from_tiers = run_job(tiered, dir / "statement.csv", options.cutoff_us(), dir / "r-tier");
  EXPECT_EQ(from_tiers.counts, expected.counts);
  EXPECT_EQ(from_tiers.counts, from_memory.counts);
  EXPECT_EQ(from_tiers.summary, from_memory.summary);
  EXPECT_EQ(from_tiers.mismatches, from_memory.mismatches);
}

INSTANTIATE_TEST_SUITE_P(HotOnlyColdAndBoth, ReconGeneratedTiers,
                         ::testing::Values(TierCase{0, false}, TierCase{50, false}, TierCase{50, true},
                                           TierCase{100, true}),
                         [](const ::testing::TestParamInfo<TierCase>& param_info) {
                           return "archive_" + std::to_string(param_info.param.archive_percent) + "_percent" +
                                  (param_info.param.with_since ? "_since" : "_whole");
                         });

// ---- A payment back from the archive, with refunds on both sides

constexpr std::int64_t retention_us = 3'600'000'000;

Command retention_tick() {
  Command c = paycore::testing::tick(pending_lifetime_default_us, 1'000'000);
  c.idempotency_retention_us = retention_us;
  return c;
}

Command archive_command(std::uint32_t rows_end, std::int64_t as_of_us) {
  Command c;
  c.kind = CommandKind::archive_payments;
  c.archive_rows_end = rows_end;
  c.archive_as_of_us = as_of_us;
  return c;
}

// The command as the edge hands it in again with the payment the archive holds.
Command carrying(Command c, const PaymentView& v) {
  c.flags |= command_flag_archive_checked | command_flag_in_archive | command_flag_archived_payment;
  c.currency = v.currency;
  c.channel = v.channel;
  c.account = v.payer_account_id;
  c.mandate_id = v.mandate_id;
  c.channel_txn_id = v.channel_txn_id;
  c.archived.request_id = v.request_id;
  c.archived.amount = v.amount;
  c.archived.refunded_amount = v.refunded_amount;
  c.archived.status = v.status;
  c.archived.created_at_us = v.created_at_us;
  c.archived.updated_at_us = v.updated_at_us;
  return c;
}

ArchivedPayment copy_of(const State& s, std::uint32_t row, std::int64_t now_us) {
  ArchivedPayment a;
  a.payment = payment_view(s, row, now_us);
  for (std::uint32_t r = s.payments[row].first_refund; r != row_none; r = s.refunds[r].next) {
    a.refunds.push_back(refund_view(s, r));
  }
  return a;
}

constexpr std::string_view back_statement =
    "channel,channel_txn_id,merchant_id,order_id,type,refund_id,amount,currency,status,time\n"
    "alipay,t1,m1,ox,PAYMENT,,100,CNY,SUCCESS,2023-11-14T22:30:00Z\n"
    "alipay,t1-f1,m1,ox,REFUND,f1,10,CNY,SUCCESS,2023-11-14T22:40:00Z\n"
    "alipay,t1-f2,m1,ox,REFUND,f2,20,CNY,SUCCESS,2023-11-15T01:00:00Z\n";
const std::int64_t back_cutoff_us = test::at("2023-11-16T00:00:00Z");

class ReconBackFromArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    write_bytes(dir / "statement.csv", std::string(back_statement));
    ArchiveOptions options;
    options.dir = (dir / "archive").string();
    StatusOr<std::unique_ptr<ArchiveStore>> opened = ArchiveStore::open(options);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store = std::move(*opened);
    for (Driver* driver : {&hot, &tiered}) {
      ASSERT_TRUE(driver->run(paycore::testing::add_channel("alipay")).mutated);
      ASSERT_EQ(driver->run(paycore::testing::pay_external("m1", "rx", "ox", 100, "alipay")).code, ResultCode::ok);
      ASSERT_EQ(driver->run(paycore::testing::notify("alipay", "t1", "m1", "ox", 100, NotificationStatus::success))
                    .code,
                ResultCode::ok);
      ASSERT_EQ(driver->run(paycore::testing::refund("m1", "f1", "ox", 10)).code, ResultCode::ok);
    }
    // The tiered one: ox goes cold with f1, then f2 brings it back.
    ASSERT_TRUE(tiered.run(retention_tick(), retention_us + 1).mutated);
    const ArchivedPayment cold = copy_of(tiered.state, 0, tiered.now_us());
    ASSERT_TRUE(store->write({&cold, 1}, {1, 1, tiered.now_us(), 1}).is_ok());
    ASSERT_EQ(tiered.run(archive_command(1, tiered.now_us())).archived_count, 1u);
    ASSERT_EQ(tiered.run(carrying(paycore::testing::refund("m1", "f2", "ox", 20), cold.payment)).code,
              ResultCode::ok);
    ASSERT_EQ(hot.run(paycore::testing::refund("m1", "f2", "ox", 20), retention_us + 3'000'000).code,
              ResultCode::ok);
  }

  JobOutput job(const LocalData& local, const std::string& name) {
    return run_job(local, dir / "statement.csv", back_cutoff_us, dir / name);
  }

  TempDir dir;
  std::unique_ptr<ArchiveStore> store;
  Driver hot, tiered;
};

TEST_F(ReconBackFromArchive, RefundsOfBothTiersAddUp) {
  write_bytes(dir / "hot.snap", serialize_snapshot(hot.state, 9, 0));
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  const LocalData local = load_or_fail({(dir / "tier.snap").string(), (dir / "archive").string(), std::nullopt});
  ASSERT_EQ(local.payments().size(), 1u);
  const LocalPayment& ox = local.payments()[0];
  EXPECT_EQ(ox.refunded_amount, 30);
  ASSERT_EQ(local.refunds_of(ox).size(), 2u);
  EXPECT_EQ(local.refunds_of(ox)[0].request_id, "f1");  // the archive's, then memory's
  EXPECT_EQ(local.refunds_of(ox)[1].request_id, "f2");

  const JobOutput from_tiers = job(local, "r-tier");
  const JobOutput from_memory = job(load_or_fail({(dir / "hot.snap").string(), "", std::nullopt}), "r-hot");
  EXPECT_EQ(from_tiers.counts[static_cast<std::size_t>(FindingClass::matched)], 3u);
  EXPECT_EQ(from_tiers.counts, from_memory.counts);
  EXPECT_EQ(from_tiers.mismatches, from_memory.mismatches);
}

// Re-archived after it came back, still in memory: the archive holds f1 and f2 (the scheduler
// sends f2 with refunds_follow_archived; the store's record is then the whole list, written here
// directly because the store does not append yet), memory f2: f2 counts once.
TEST_F(ReconBackFromArchive, ARefundInBothTiersCountsOnce) {
  const std::uint32_t row = tiered.state.find_payment(tiered.state.find_account("m1"), "ox");
  ASSERT_NE(row, row_none);
  ArchivedPayment again = copy_of(tiered.state, row, tiered.now_us());
  ASSERT_EQ(again.refunds.size(), 1u);  // memory holds f2 only
  const StatusOr<std::optional<ArchivedPayment>> cold = store->get_payment("m1", "ox");
  ASSERT_TRUE(cold.is_ok() && cold->has_value());
  again.refunds.insert(again.refunds.begin(), (*cold)->refunds.begin(), (*cold)->refunds.end());
  const Status written = store->write({&again, 1}, {row + 1, 2, tiered.now_us(), 2});
  ASSERT_TRUE(written.is_ok()) << written.to_string();
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  const LocalData local = load_or_fail({(dir / "tier.snap").string(), (dir / "archive").string(), std::nullopt});
  ASSERT_EQ(local.payments().size(), 1u);
  EXPECT_EQ(local.refunds_of(local.payments()[0]).size(), 2u);
  EXPECT_EQ(job(local, "r").counts[static_cast<std::size_t>(FindingClass::matched)], 3u);
}

// Created long before --since, refunded in the window: the scan does not meet it, a point read
// fetches its earlier refunds.
TEST_F(ReconBackFromArchive, EarlierRefundsAreReadOutsideTheWindow) {
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  const LocalData local = load_or_fail(
      {(dir / "tier.snap").string(), (dir / "archive").string(), test::at("2023-11-15T00:30:00Z")});
  ASSERT_EQ(local.payments().size(), 1u);
  EXPECT_EQ(local.refunds_of(local.payments()[0]).size(), 2u);
}

// ---- Refusals, one per failure mode

TEST_F(ReconBackFromArchive, SnapshotWithArchivedRowsAndNoArchiveIsRefused) {
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  const StatusOr<LocalData> local = load_local_data((dir / "tier.snap").string());
  ASSERT_FALSE(local.is_ok());
  EXPECT_EQ(local.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(local.status().message().find("--archive"), std::string::npos) << local.status().message();
}

TEST_F(ReconBackFromArchive, MissingArchiveIsNamed) {
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  const std::string missing = (dir / "no-archive").string();
  const StatusOr<LocalData> local = load_local_data({(dir / "tier.snap").string(), missing, std::nullopt});
  ASSERT_FALSE(local.is_ok());
  EXPECT_EQ(local.status().code(), StatusCode::kNotFound);
  EXPECT_NE(local.status().message().find(missing), std::string::npos) << local.status().message();
}

TEST_F(ReconBackFromArchive, ArchiveBehindTheSnapshotIsRefused) {
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  ArchiveOptions options;
  options.dir = (dir / "empty-archive").string();
  ASSERT_TRUE(ArchiveStore::open(options).is_ok());  // a store that holds no job
  const StatusOr<LocalData> local = load_local_data({(dir / "tier.snap").string(), options.dir, std::nullopt});
  ASSERT_FALSE(local.is_ok());
  EXPECT_EQ(local.status().code(), StatusCode::kCorruption);
  EXPECT_NE(local.status().message().find(options.dir), std::string::npos) << local.status().message();
}

TEST_F(ReconBackFromArchive, DamagedArchiveIsNamed) {
  write_bytes(dir / "tier.snap", serialize_snapshot(tiered.state, 9, 0));
  store.reset();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir / "archive")) {
    if (entry.path().filename().string().starts_with("MANIFEST")) write_bytes(entry.path(), "not a manifest");
  }
  const std::string archive = (dir / "archive").string();
  const StatusOr<LocalData> local = load_local_data({(dir / "tier.snap").string(), archive, std::nullopt});
  ASSERT_FALSE(local.is_ok());
  EXPECT_NE(local.status().message().find(archive), std::string::npos) << local.status().message();
}

}  // namespace
}  // namespace paycore::recon
