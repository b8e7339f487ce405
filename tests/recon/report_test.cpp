// The job end to end: files written, repairs deterministic, exit statuses, recon_main.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "recon/cli.hpp"
#include "recon/recon.hpp"
#include "test_util.hpp"

namespace paycore::recon {
namespace {

using test::at;
using test::payment;

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class ReconJob : public ::testing::Test {
 protected:
  ReconJob() {
    dir = std::filesystem::path(::testing::TempDir()) /
          ("recon_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~ReconJob() override { std::filesystem::remove_all(dir); }

  std::string statement(const std::string& name, const std::string& rows) {
    const std::filesystem::path path = dir / name;
    std::ofstream(path, std::ios::binary) << test::csv_header << rows;
    return path.string();
  }

  ReconOptions options_for(std::vector<std::string> paths, const std::string& out = "out") {
    ReconOptions options;
    for (std::string& path : paths) options.statements.push_back({std::move(path), StatementFormat::auto_detect, "", {}});
    options.out_dir = dir / out;
    options.cutoff_us = at("2026-11-27T00:00:00Z");
    return options;
  }

  std::filesystem::path dir;
};

constexpr const char* paid_row = "alipay,T1,m_1,o-1,PAYMENT,,1234,CNY,SUCCESS,2026-11-26T08:00:05Z\n";
constexpr const char* pending_row = "alipay,T2,m_1,o-2,PAYMENT,,500,CNY,SUCCESS,2026-11-26T08:10:00Z\n";

TEST_F(ReconJob, AllMatchedExitsZero) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_for({statement("s.csv", paid_row)}), local, out, err), exit_matched);
  EXPECT_TRUE(err.str().empty()) << err.str();
  EXPECT_NE(out.str().find("matched"), std::string::npos);
  const std::string summary = slurp(dir / "out" / "summary.json");
  EXPECT_NE(summary.find("\"matched\": {\"count\": 1, \"local_amount\": {\"CNY\": 1234}"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("\"exit_status\": 0"), std::string::npos);
  EXPECT_EQ(slurp(dir / "out" / "repairs.jsonl"), "");
}

TEST_F(ReconJob, FindingsExitOneAndEveryFileIsWritten) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  local.add_payment(payment("m_1", "o-2", "alipay", 500, "", PaymentStatus::pending));
  local.add_payment(payment("m_1", "o-3", "alipay", 700, "T3"));
  std::ostringstream out, err;
  const int status = run_recon(
      options_for({statement("s.csv", std::string(paid_row) + pending_row +
                                          "alipay,T9,m_1,o-9,PAYMENT,,900,CNY,SUCCESS,2026-11-26T09:00:00Z\n")}),
      local, out, err);
  EXPECT_EQ(status, exit_findings);
  const std::string summary = slurp(dir / "out" / "summary.json");
  EXPECT_NE(summary.find("\"local_not_paid\": {\"count\": 1"), std::string::npos);
  EXPECT_NE(summary.find("\"missing_local\": {\"count\": 1"), std::string::npos);
  EXPECT_NE(summary.find("\"missing_channel\": {\"count\": 1"), std::string::npos);
  EXPECT_NE(summary.find("\"alipay\": {"), std::string::npos);

  const std::string csv = slurp(dir / "out" / "mismatches.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 findings
  EXPECT_NE(csv.find("local_not_paid,local_pending,payment,alipay,m_1,o-2,,PENDING,500,CNY"),
            std::string::npos)
      << csv;

  const std::string html = slurp(dir / "out" / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("missing_channel"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, nothing to run
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "summary.json.tmp"));
}

TEST_F(ReconJob, PendingPaidOnChannelGetsAReplayedNotification) {
  LocalData local;
  local.add_payment(payment("m_1", "o-2", "alipay", 500, "", PaymentStatus::pending));
  local.add_payment(payment("m_1", "o-3", "alipay", 700, "T3"));
  std::ostringstream out, err;
  ASSERT_EQ(run_recon(options_for({statement("s.csv", pending_row)}), local, out, err), exit_findings);
  const std::string repairs = slurp(dir / "out" / "repairs.jsonl");
  ASSERT_EQ(std::count(repairs.begin(), repairs.end(), '\n'), 2);
  const std::string notify = repairs.substr(0, repairs.find('\n'));
  EXPECT_NE(notify.find("\"needs_person\": false"), std::string::npos) << notify;
  EXPECT_NE(notify.find("\"method\": \"POST\", \"path\": \"/v1/notify/alipay\""), std::string::npos);
  EXPECT_NE(notify.find("\"body\": {\"channel_txn_id\": \"T2\", \"merchant_id\": \"m_1\", "
                        "\"order_id\": \"o-2\", \"amount\": 500, \"currency\": \"CNY\", "
                        "\"status\": \"SUCCESS\", \"paid_at\": \"2026-11-26T08:10:00.000000Z\"}"),
            std::string::npos)
      << notify;
  const std::string person = repairs.substr(repairs.find('\n') + 1);
  EXPECT_NE(person.find("\"finding\": \"missing_channel\""), std::string::npos);
  EXPECT_NE(person.find("\"needs_person\": true"), std::string::npos);
}

TEST_F(ReconJob, RepairIdsAreTheSameOnEveryRun) {
  LocalData local;
  local.add_payment(payment("m_1", "o-2", "alipay", 500, "", PaymentStatus::pending));
  const std::string path = statement("s.csv", pending_row);
  std::ostringstream out, err;
  ASSERT_EQ(run_recon(options_for({path}, "run1"), local, out, err), exit_findings);
  ASSERT_EQ(run_recon(options_for({path}, "run2"), local, out, err), exit_findings);
  const std::string first = slurp(dir / "run1" / "repairs.jsonl");
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, slurp(dir / "run2" / "repairs.jsonl"));
  EXPECT_NE(first.find("\"repair_id\": \"rp_"), std::string::npos);
}

TEST_F(ReconJob, MalformedRowsAloneExitOne) {
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  std::ostringstream out, err;
  const std::string path = statement("s.csv", std::string(paid_row) + "alipay,T2,m_1,o-2,PAYMENT,,1.5,CNY,SUCCESS,2026-11-26T08:00:05Z\n");
  EXPECT_EQ(run_recon(options_for({path}), local, out, err), exit_findings);
  EXPECT_NE(out.str().find(path + ":3: amount"), std::string::npos) << out.str();
  EXPECT_NE(slurp(dir / "out" / "summary.json").find("\"malformed_rows\": 1"), std::string::npos);
}

TEST_F(ReconJob, UnreadableStatementExitsTwo) {
  LocalData local;
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_for({(dir / "nope.csv").string()}), local, out, err), exit_error);
  EXPECT_NE(err.str().find("cannot open"), std::string::npos);
  std::ofstream(dir / "junk.txt") << "hello\n";
  EXPECT_EQ(run_recon(options_for({(dir / "junk.txt").string()}), local, out, err), exit_error);
  EXPECT_NE(err.str().find("cannot tell the statement format"), std::string::npos);
}

TEST_F(ReconJob, BothChannelBillsReconcileTogether) {
  LocalData local;
  LocalPayment ali = payment("m_001", "o-1001", "alipay", 1234, "2026112622001400001");
  ali.refunded_amount = 234;
  const LocalRefund ali_refund{"r-77", 234, at("2026-11-26T10:00:01Z")};
  local.add_payment(ali, std::span(&ali_refund, 1));
  local.add_payment(payment("m_001", "o-1002", "alipay", 10000, "2026112622001400002"));
  LocalPayment wx = payment("m_001", "o-2001", "wechat", 1234, "4200000001202611260000000001");
  wx.refunded_amount = 234;
  const LocalRefund wx_refund{"r-88", 234, at("2026-11-26T10:00:00Z")};
  local.add_payment(wx, std::span(&wx_refund, 1));
  local.add_payment(payment("m_001", "o-2002", "wechat", 500, "", PaymentStatus::cancelled));
  ReconOptions options = options_for({std::string(RECON_TEST_DATA_DIR) + "/alipay_trade_detail.csv",
                                      std::string(RECON_TEST_DATA_DIR) + "/wechat_all.csv"});
  for (StatementSource& source : options.statements) source.merchant_ids = {"m_001"};
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options, local, out, err), exit_findings) << err.str();  // 1 malformed row
  const std::string summary = slurp(dir / "out" / "summary.json");
  EXPECT_NE(summary.find("\"matched\": {\"count\": 6"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"malformed_rows\": 1"), std::string::npos);
  EXPECT_NE(summary.find("\"problems\": 0"), std::string::npos);
  EXPECT_NE(summary.find("\"format\": \"alipay\""), std::string::npos);
  EXPECT_NE(summary.find("\"format\": \"wechat\""), std::string::npos);
}

// ---- Coverage: which (channel, merchant) pairs a run sweeps ---------------------------------

class ReconCoverage : public ReconJob {
 protected:
  // An Alipay bill (GBK, as downloaded) with one 交易 row per order: ORDER:AMOUNT_YUAN.
  std::string alipay_bill(const std::string& name, const std::vector<std::pair<std::string, std::string>>& orders) {
    std::vector<std::string> rows;
    for (const auto& [order, yuan] : orders) {
      rows.push_back(test::alipay_row("交易", yuan, "", order, "2026112622" + order.substr(2) + "0000000001"));
    }
    const std::filesystem::path path = dir / name;
    std::ofstream(path, std::ios::binary) << test::alipay_bill_gbk(rows);
    return path.string();
  }
  StatementSource source(std::string path, StatementFormat format, std::vector<std::string> merchants,
                         std::string channel = "") {
    return {std::move(path), format, std::move(channel), std::move(merchants)};
  }
  ReconOptions options_with(std::vector<StatementSource> statements) {
    ReconOptions options = options_for({});
    options.statements = std::move(statements);
    return options;
  }
  // Three paid payments (o-1 m_001 alipay, o-2 m_002 alipay, o-3 m_001 wechat) on 2026-11-26.
  static LocalData three_payments() {
    LocalData local;
    local.add_payment(payment("m_001", "o-1", "alipay", 29, ""));
    local.add_payment(payment("m_002", "o-2", "alipay", 100, ""));
    local.add_payment(payment("m_001", "o-3", "wechat", 500, ""));
    return local;
  }
};

TEST_F(ReconCoverage, OtherMerchantsPaymentsAreNotMissingFromOneMerchantsBill) {
  const LocalData local = three_payments();
  const std::string bill = alipay_bill("m_001.csv", {{"o-1", "0.29"}});
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_with({source(bill, StatementFormat::auto_detect, {"m_001"})}), local, out, err),
            exit_matched)
      << err.str() << out.str();
  const std::string summary = slurp(dir / "out" / "summary.json");
  EXPECT_NE(summary.find("\"missing_channel\": {\"count\": 0"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"covered\": [\n    {\"channel\": \"alipay\", \"merchant_id\": \"m_001\"}]"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("\"merchants\": [\"m_001\"], \"encoding\": \"GB18030\""), std::string::npos) << summary;
  EXPECT_NE(out.str().find("covered (channel/merchant): alipay/m_001\n"), std::string::npos) << out.str();
  EXPECT_NE(slurp(dir / "out" / "report.html").find("covered (channel/merchant): alipay/m_001"), std::string::npos);
}

TEST_F(ReconCoverage, TwoMerchantsBillsInOneRunEachExpectTheirOwnPayments) {
  const LocalData local = three_payments();
  const std::string bill_1 = alipay_bill("m_001.csv", {{"o-1", "0.29"}});
  const std::string bill_2 = alipay_bill("m_002.csv", {});  // o-2 is missing from m_002's bill
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_with({source(bill_1, StatementFormat::alipay, {"m_001"}),
                                    source(bill_2, StatementFormat::alipay, {"m_002"})}),
                      local, out, err),
            exit_findings)
      << err.str();
  const std::string mismatches = slurp(dir / "out" / "mismatches.csv");
  EXPECT_NE(mismatches.find("missing_channel,no_channel_row,payment,alipay,m_002,o-2"), std::string::npos)
      << mismatches;
  EXPECT_EQ(std::count(mismatches.begin(), mismatches.end(), '\n'), 2) << mismatches;  // header + 1
  EXPECT_NE(out.str().find("covered (channel/merchant): alipay/m_001, alipay/m_002\n"), std::string::npos)
      << out.str();
}

TEST_F(ReconCoverage, CsvWithoutStatementMerchantCoversEveryMerchantOfItsChannels) {
  const LocalData local = three_payments();
  const std::string csv = statement("all.csv", "alipay,T1,m_001,o-1,PAYMENT,,29,CNY,SUCCESS,2026-11-26T08:00:05Z\n");
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_with({source(csv, StatementFormat::csv, {})}), local, out, err), exit_findings);
  const std::string mismatches = slurp(dir / "out" / "mismatches.csv");
  EXPECT_NE(mismatches.find("missing_channel,no_channel_row,payment,alipay,m_002,o-2"), std::string::npos)
      << mismatches;
  EXPECT_NE(out.str().find("covered (channel/merchant): alipay/* (every merchant)\n"), std::string::npos)
      << out.str();
}

TEST_F(ReconCoverage, CsvStatementMerchantWithoutRowsStillExpectsItsPayments) {
  LocalData local = three_payments();
  local.add_payment(payment("m_003", "o-4", "alipay", 700, ""));  // not this statement's merchant
  const std::string csv = statement("m1m2.csv", "alipay,T1,m_001,o-1,PAYMENT,,29,CNY,SUCCESS,2026-11-26T08:00:05Z\n");
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_with({source(csv, StatementFormat::csv, {"m_001", "m_002"})}), local, out, err),
            exit_findings);
  const std::string mismatches = slurp(dir / "out" / "mismatches.csv");
  EXPECT_NE(mismatches.find("missing_channel,no_channel_row,payment,alipay,m_002,o-2"), std::string::npos)
      << mismatches;
  EXPECT_EQ(mismatches.find("m_003"), std::string::npos) << mismatches;
  EXPECT_NE(out.str().find("covered (channel/merchant): alipay/m_001, alipay/m_002\n"), std::string::npos)
      << out.str();
}

TEST_F(ReconCoverage, CsvForMerchantsThatNamesNoChannelIsAnError) {
  const LocalData local = three_payments();
  const std::string csv = statement("empty.csv", "");
  std::ostringstream out, err;
  EXPECT_EQ(run_recon(options_with({source(csv, StatementFormat::csv, {"m_001"})}), local, out, err), exit_error);
  EXPECT_NE(err.str().find("--statement-channel"), std::string::npos) << err.str();
  // Named, the channel is covered for that merchant: its payment is missing.
  std::ostringstream out2, err2;
  EXPECT_EQ(run_recon(options_with({source(csv, StatementFormat::csv, {"m_001"}, "wechat")}), local, out2, err2),
            exit_findings);
  const std::string mismatches = slurp(dir / "out" / "mismatches.csv");
  EXPECT_NE(mismatches.find("missing_channel,no_channel_row,payment,wechat,m_001,o-3"), std::string::npos)
      << mismatches;
}

StatusOr<LocalData> load_two(const LocalSources& sources) {
  if (sources.snapshot_path != "snap") return Status::not_found("no such snapshot");
  LocalData local;
  local.add_payment(payment("m_1", "o-1", "alipay", 1234, "T1"));
  return local;
}

TEST_F(ReconJob, ReconMainLoadsThroughTheCallback) {
  ReconArgs args;
  args.snapshot = "snap";
  args.statements = {{statement("s.csv", paid_row), "", "", {}}};
  args.out_dir = (dir / "main").string();
  args.cutoff = "2026-11-27T00:00:00Z";
  std::ostringstream out, err;
  EXPECT_EQ(recon_main(args, load_two, out, err), exit_matched) << err.str();
  EXPECT_TRUE(std::filesystem::exists(dir / "main" / "report.html"));

  args.snapshot = "other";
  EXPECT_EQ(recon_main(args, load_two, out, err), exit_error);
  EXPECT_NE(err.str().find("no such snapshot"), std::string::npos);
}

// --archive and --since reach the loader: the archive is read from --since (docs/recon.md
// "Cold payments").
TEST_F(ReconJob, ReconMainPassesTheArchiveAndTheWindowToTheLoader) {
  ReconArgs args;
  args.snapshot = "snap";
  args.archive = "/data/archive";
  args.since = "2026-11-26T00:00:00Z";
  args.statements = {{statement("s.csv", paid_row), "", "", {}}};
  args.cutoff = "2026-11-27T00:00:00Z";
  LocalSources seen;
  const LocalLoader spy = [&](const LocalSources& sources) {
    seen = sources;
    return load_two(sources);
  };
  std::ostringstream out, err;
  EXPECT_EQ(recon_main(args, spy, out, err), exit_matched) << err.str();
  EXPECT_EQ(seen.snapshot_path, "snap");
  EXPECT_EQ(seen.archive_dir, "/data/archive");
  EXPECT_EQ(seen.archive_from_us, test::at("2026-11-26T00:00:00Z"));
}

TEST_F(ReconJob, ReconMainRejectsBadArguments) {
  ReconArgs args;
  args.snapshot = "snap";
  args.statements = {{statement("s.csv", paid_row), "", "", {}}};
  std::ostringstream out, err;
  args.cutoff = "yesterday";
  EXPECT_EQ(recon_main(args, load_two, out, err), exit_error);
  args.cutoff.clear();
  args.statements[0].format = "xml";
  EXPECT_EQ(recon_main(args, load_two, out, err), exit_error);
  args.statements[0].format = "alipay";  // an Alipay bill needs --statement-merchant
  EXPECT_EQ(recon_main(args, load_two, out, err), exit_error);
  EXPECT_NE(err.str().find("merchant"), std::string::npos);
}

}  // namespace
}  // namespace paycore::recon
