// The three statement importers: our CSV, Alipay's 业务明细 (GBK) and WeChat Pay's ALL bill.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "recon/statement.hpp"
#include "recon/text.hpp"
#include "test_util.hpp"

namespace paycore::recon {
namespace {

using test::at;
using test::CollectingSink;

std::string read_fixture(const char* name) {
  std::ifstream in(std::string(RECON_TEST_DATA_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Read {
  CollectingSink sink;
  StatementStats stats;
  std::optional<std::string> error;
};

Read read(std::string_view bytes, StatementFormat format, std::string merchant = "",
          std::string channel = "") {
  Read r;
  std::vector<std::string> merchants;
  if (!merchant.empty()) merchants.push_back(std::move(merchant));
  const StatementSource source{"bill", format, std::move(channel), std::move(merchants)};
  r.error = test::error_of(read_statement_bytes(bytes, source, r.sink, &r.stats));
  return r;
}

TEST(ReconStatementCsv, RowsParseWithMinorUnitsAndTimes) {
  const std::string text = std::string(test::csv_header) +
      "alipay,2026112600001,m_001,o-1001,PAYMENT,,1234,CNY,SUCCESS,2026-11-26T08:00:01Z\r\n"
      "alipay,2026112600002,m_001,o-1001,REFUND,r-77,234,CNY,SUCCESS,2026-11-26T09:10:00Z\r\n";
  const Read r = read(text, StatementFormat::csv);
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_EQ(r.sink.rows.size(), 2u);
  EXPECT_TRUE(r.sink.malformed_rows.empty());
  EXPECT_EQ(r.sink.rows[0].order, "o-1001");
  EXPECT_EQ(r.sink.rows[0].amount, 1234);
  EXPECT_EQ(r.sink.rows[0].type, RowType::payment);
  EXPECT_EQ(r.sink.rows[0].time_us, at("2026-11-26T08:00:01Z"));
  EXPECT_EQ(r.sink.rows[0].line, 2u);
  EXPECT_EQ(r.sink.rows[1].type, RowType::refund);
  EXPECT_EQ(r.sink.rows[1].refund_id, "r-77");
  EXPECT_EQ(r.sink.rows[1].line, 3u);
  EXPECT_EQ(r.stats.rows_count, 2u);
}

TEST(ReconStatementCsv, ColumnsMayComeInAnyOrder) {
  const std::string text =
      "time,status,currency,amount,refund_id,type,order_id,merchant_id,channel_txn_id,channel\n"
      "2026-11-26T08:00:01Z,SUCCESS,JPY,1500,,PAYMENT,o-1,m_1,T1,card\n";
  const Read r = read(text, StatementFormat::csv);
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_EQ(r.sink.rows.size(), 1u);
  EXPECT_EQ(r.sink.rows[0].currency, "JPY");
  EXPECT_EQ(r.sink.rows[0].amount, 1500);
  EXPECT_EQ(r.sink.rows[0].channel, "card");
}

TEST(ReconStatementCsv, MalformedRowsAreReportedWithLineNumbers) {
  const std::string text = std::string(test::csv_header) +
      "alipay,T1,m_1,o-1,PAYMENT,,12.34,CNY,SUCCESS,2026-11-26T08:00:01Z\n"   // line 2
      "alipay,T2,m_1,o-2,PAYMENT,,-5,CNY,SUCCESS,2026-11-26T08:00:01Z\n"      // 3
      "alipay,T3,m_1,o-3,CHARGE,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n"        // 4
      "alipay,T4,m_1,o-4,REFUND,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n"        // 5
      "alipay,T5,m_1,o-5,PAYMENT,,5,XXX,SUCCESS,2026-11-26T08:00:01Z\n"       // 6
      "alipay,T6,m_1,o-6,PAYMENT,,5,CNY,SUCCESS,2026-11-26 08:00:01\n"        // 7
      "alipay,T7,m_1,o-7,PAYMENT,,5,CNY,SUCCESS\n"                            // 8
      "alipay,T8,m 1,o-8,PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n"       // 9
      "\n"                                                                     // 10: blank
      "alipay,T9,m_1,o-9,PAYMENT,,5,CNY,DONE,2026-11-26T08:00:01Z\n"          // 11
      "alipay,T10,m_1,o-10,PAYMENT,,0,CNY,SUCCESS,2026-11-26T08:00:01Z\n"     // 12
      "alipay,T11,m_1,o-11,PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n";    // 13: good
  const Read r = read(text, StatementFormat::csv);
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_EQ(r.sink.rows.size(), 1u);
  EXPECT_EQ(r.sink.rows[0].line, 13u);
  const std::vector<std::pair<std::uint64_t, std::string>> expected = {
      {2, "minor units"}, {3, "minor units"}, {4, "neither PAYMENT nor REFUND"},
      {5, "refund_id"},   {6, "ISO 4217"},    {7, "RFC 3339"},
      {8, "9 fields"},    {9, "merchant_id"}, {11, "status"},
      {12, "out of range"}};
  ASSERT_EQ(r.sink.malformed_rows.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.sink.malformed_rows[i].file, "bill");
    EXPECT_EQ(r.sink.malformed_rows[i].line, expected[i].first) << i;
    EXPECT_NE(r.sink.malformed_rows[i].reason.find(expected[i].second), std::string::npos)
        << r.sink.malformed_rows[i].reason;
  }
  EXPECT_EQ(r.stats.malformed_count, expected.size());
  EXPECT_EQ(r.stats.rows_count, expected.size() + 1);
}

TEST(ReconStatementCsv, RowForAnotherChannelThanDeclaredIsMalformed) {
  const std::string text = std::string(test::csv_header) +
      "wechat,T1,m_1,o-1,PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n";
  const Read r = read(text, StatementFormat::csv, "", "alipay");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("'wechat'"), std::string::npos);
}

TEST(ReconStatementCsv, MissingHeaderColumnIsAnError) {
  const Read r = read("channel,channel_txn_id,merchant_id,order_id,type,amount,currency,status,time\n",
                      StatementFormat::csv);
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("refund_id"), std::string::npos);
  EXPECT_TRUE(read("", StatementFormat::csv).error.has_value());
}

TEST(ReconStatementAlipay, FixtureInGbkImports) {
  const std::string bytes = read_fixture("alipay_trade_detail.csv");
  ASSERT_FALSE(is_ascii(bytes));  // really GBK, not UTF-8
  const Read r = read(bytes, StatementFormat::alipay, "m_001");
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_EQ(r.sink.rows.size(), 3u);
  EXPECT_EQ(r.stats.channel, "alipay");
  EXPECT_EQ(r.sink.rows[0].channel, "alipay");
  EXPECT_EQ(r.sink.rows[0].merchant, "m_001");
  EXPECT_EQ(r.sink.rows[0].txn, "2026112622001400001");  // the '\t' padding is gone
  EXPECT_EQ(r.sink.rows[0].order, "o-1001");
  EXPECT_EQ(r.sink.rows[0].amount, 1234);
  EXPECT_EQ(r.sink.rows[0].currency, "CNY");
  EXPECT_EQ(r.sink.rows[0].time_us, at("2026-11-26T08:00:05Z"));  // 完成时间, Beijing time
  EXPECT_EQ(r.sink.rows[1].amount, 10000);
  EXPECT_EQ(r.sink.rows[2].type, RowType::refund);
  EXPECT_EQ(r.sink.rows[2].refund_id, "r-77");
  EXPECT_EQ(r.sink.rows[2].amount, 234);  // written -2.34: a refund loses its sign
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_EQ(r.sink.malformed_rows[0].line, 9u);  // 5.001 yuan
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("at most 2 decimals"), std::string::npos)
      << r.sink.malformed_rows[0].reason;
}

using test::alipay_bill_gbk;
using test::alipay_bill_utf8;
using test::alipay_row;

TEST(ReconStatementAlipay, BillWrittenWithIconvImportsAndChecksEveryRow) {
  const std::string gbk = alipay_bill_gbk({
      alipay_row("交易", "0.29"),             // line 5
      alipay_row("退款", "-0.10", "r-1\t"),  // 6
      alipay_row("退款", "-0.10"),            // 7: no 请求号
      alipay_row("转账", "1.00"),             // 8: unknown 业务类型
      alipay_row("交易", "-1.00"),            // 9: negative payment
      alipay_row("交易", "1.00") + ",extra",  // 10: 26 fields
  });
  const Read r = read(gbk, StatementFormat::alipay, "m_9", "alipay_hk");
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_EQ(r.sink.rows.size(), 2u);
  EXPECT_EQ(r.sink.rows[0].amount, 29);
  EXPECT_EQ(r.sink.rows[0].channel, "alipay_hk");
  EXPECT_EQ(r.sink.rows[1].amount, 10);
  EXPECT_EQ(r.sink.rows[1].refund_id, "r-1");
  ASSERT_EQ(r.sink.malformed_rows.size(), 4u);
  EXPECT_EQ(r.sink.malformed_rows[0].line, 7u);
  EXPECT_EQ(r.sink.malformed_rows[1].line, 8u);
  EXPECT_EQ(r.sink.malformed_rows[2].line, 9u);
  EXPECT_EQ(r.sink.malformed_rows[3].line, 10u);
  EXPECT_NE(r.sink.malformed_rows[3].reason.find("26 fields"), std::string::npos);
}

TEST(ReconStatementAlipay, BillNeedsTheMerchantItBelongsTo) {
  const Read r = read(alipay_bill_gbk({alipay_row("交易", "1.00")}), StatementFormat::alipay);
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("merchant"), std::string::npos);
}

TEST(ReconStatementAlipay, HeaderWithoutTheTwentyFiveColumnsIsRefused) {
  std::string utf8 = "支付宝交易号,商户订单号\n";
  const Read r = read(utf8, StatementFormat::alipay, "m_1");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_NE(r.error->find("expected 25 columns"), std::string::npos) << *r.error;
}

// ---- Alipay: encodings, end marker, totals ------------------------------------------------

// What a reader saw, comparable across two reads of the same bill.
std::string rows_text(const Read& r) {
  std::string text;
  for (const CollectingSink::Row& row : r.sink.rows) {
    text += row.channel + "|" + row.txn + "|" + row.merchant + "|" + row.order + "|" + row.refund_id + "|" +
            std::to_string(row.amount) + "|" + row.currency + "|" + std::to_string(row.time_us) + "|" +
            std::to_string(row.line) + "\n";
  }
  for (const MalformedRow& m : r.sink.malformed_rows) text += std::to_string(m.line) + ": " + m.reason + "\n";
  return text;
}

TEST(ReconStatementAlipay, BillResavedAsUtf8WithBomReadsAsTheGbkOriginal) {
  const Read gbk = read(read_fixture("alipay_trade_detail.csv"), StatementFormat::alipay, "m_1");
  const Read utf8 = read(read_fixture("alipay_trade_detail_utf8_bom.csv"), StatementFormat::alipay, "m_1");
  ASSERT_FALSE(gbk.error) << *gbk.error;
  ASSERT_FALSE(utf8.error) << *utf8.error;
  EXPECT_EQ(gbk.stats.encoding, TextEncoding::gb18030);
  EXPECT_EQ(utf8.stats.encoding, TextEncoding::utf8);
  EXPECT_EQ(gbk.sink.rows.size(), 3u);
  EXPECT_EQ(rows_text(utf8), rows_text(gbk));
  // auto finds it too
  EXPECT_EQ(detect_statement_format(read_fixture("alipay_trade_detail_utf8_bom.csv")), StatementFormat::alipay);
}

TEST(ReconStatementAlipay, BillResavedAsUtf8WithoutBomReadsAsTheGbkOriginal) {
  std::string bill = read_fixture("alipay_trade_detail_utf8_bom.csv");
  ASSERT_TRUE(bill.starts_with("\xEF\xBB\xBF"));
  bill.erase(0, 3);
  const Read gbk = read(read_fixture("alipay_trade_detail.csv"), StatementFormat::alipay, "m_1");
  const Read utf8 = read(bill, StatementFormat::auto_detect, "m_1");
  ASSERT_FALSE(utf8.error) << *utf8.error;
  EXPECT_EQ(utf8.stats.format, StatementFormat::alipay);
  EXPECT_EQ(utf8.stats.encoding, TextEncoding::utf8);
  EXPECT_EQ(rows_text(utf8), rows_text(gbk));
}

TEST(ReconStatementAlipay, Gb18030FourByteCharactersInFreeTextAreNotAnError) {
  // U+20000 (CJK Extension B) and U+1F600 (an emoji) take four bytes in GB18030; GBK has neither.
  std::string row = alipay_row("交易", "0.29");
  const std::size_t name = row.find("商品");
  ASSERT_NE(name, std::string::npos);
  row.replace(name, std::string_view("商品").size(), "商品\xF0\xA0\x80\x80\xF0\x9F\x98\x80");
  std::string gb18030;
  ASSERT_TRUE(utf8_to_gb18030(alipay_bill_utf8({row}), &gb18030));
  std::string gbk;
  ASSERT_FALSE(utf8_to_gbk(alipay_bill_utf8({row}), &gbk));  // really beyond GBK
  const Read r = read(gb18030, StatementFormat::auto_detect, "m_1");
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.stats.format, StatementFormat::alipay);
  EXPECT_TRUE(r.sink.malformed_rows.empty()) << r.sink.malformed_rows[0].reason;
  ASSERT_EQ(r.sink.rows.size(), 1u);
  EXPECT_EQ(r.sink.rows[0].amount, 29);
}

TEST(ReconStatementAlipay, BillCutOffBeforeItsEndMarkerIsReportedWithFileAndLine) {
  std::string bill = read_fixture("alipay_trade_detail.csv");
  std::string end_marker;
  ASSERT_TRUE(utf8_to_gbk("#-----------------------------------------业务明细列表结束", &end_marker));
  const std::size_t at = bill.find(end_marker);
  ASSERT_NE(at, std::string::npos);
  bill.resize(at);  // lines 1-9: comments, header, four rows
  const Read r = read(bill, StatementFormat::alipay, "m_1");
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.sink.rows.size(), 3u);
  ASSERT_EQ(r.sink.malformed_rows.size(), 2u);  // the 5.001 row, and the cut
  EXPECT_EQ(r.sink.malformed_rows[1].file, "bill");
  EXPECT_EQ(r.sink.malformed_rows[1].line, 10u);
  EXPECT_NE(r.sink.malformed_rows[1].reason.find("cut off"), std::string::npos) << r.sink.malformed_rows[1].reason;
}

TEST(ReconStatementAlipay, BillCutOffBeforeItsTotalsIsReported) {
  std::string bill = read_fixture("alipay_trade_detail.csv");
  std::string totals;
  ASSERT_TRUE(utf8_to_gbk("#交易合计", &totals));
  bill.resize(bill.find(totals));
  const Read r = read(bill, StatementFormat::alipay, "m_1");
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_EQ(r.sink.malformed_rows.size(), 3u);  // 5.001, no 交易合计, no 退款合计
  EXPECT_NE(r.sink.malformed_rows[1].reason.find("#交易合计"), std::string::npos) << r.sink.malformed_rows[1].reason;
  EXPECT_NE(r.sink.malformed_rows[2].reason.find("#退款合计"), std::string::npos) << r.sink.malformed_rows[2].reason;
}

TEST(ReconStatementAlipay, TotalsDisagreeingWithTheRowsAreReported) {
  std::string utf8 = alipay_bill_utf8({alipay_row("交易", "0.29"), alipay_row("交易", "1.00", "", "o-2")});
  const std::size_t at = utf8.find("#交易合计：2笔");
  ASSERT_NE(at, std::string::npos);
  utf8.replace(at, std::string_view("#交易合计：2笔").size(), "#交易合计：3笔");
  std::string gbk;
  ASSERT_TRUE(utf8_to_gbk(utf8, &gbk));
  const Read r = read(gbk, StatementFormat::alipay, "m_1");
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.sink.rows.size(), 2u);
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_EQ(r.sink.malformed_rows[0].line, 8u);  // the 交易合计 line
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("says 3 交易 rows, the detail list has 2"), std::string::npos)
      << r.sink.malformed_rows[0].reason;
}

TEST(ReconStatementAlipay, BillOfNeitherGbkNorUtf8SaysWhatIsWrong) {
  // Latin-1 bytes (0xE9 0x20) are neither: the row says so instead of an unrelated header error.
  std::string bill = read_fixture("alipay_trade_detail.csv");
  const std::size_t at = bill.find("buy***");
  ASSERT_NE(at, std::string::npos);
  bill.replace(at, 3, "\xE9 y");
  const Read r = read(bill, StatementFormat::alipay, "m_1");
  ASSERT_FALSE(r.error) << *r.error;
  ASSERT_FALSE(r.sink.malformed_rows.empty());
  EXPECT_EQ(r.sink.malformed_rows[0].line, 6u);
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("GBK"), std::string::npos) << r.sink.malformed_rows[0].reason;
}

TEST(ReconStatementAlipay, BillSavedAsUtf16IsRefusedSayingSo) {
  std::string utf16 = "\xFF\xFE";
  for (const char c : std::string("#x\n")) {
    utf16.push_back(c);
    utf16.push_back('\0');
  }
  for (const StatementFormat format : {StatementFormat::auto_detect, StatementFormat::alipay}) {
    const Read r = read(utf16, format, "m_1");
    ASSERT_TRUE(r.error);
    EXPECT_NE(r.error->find("bill: the file is UTF-16"), std::string::npos) << *r.error;
  }
}

TEST(ReconStatementAlipay, HeaderNeverReadableSaysHowManyLinesWereNot) {
  // Latin-1 text where the header should be: neither GBK nor UTF-8.
  const Read r = read("#\xD6\xA7\xB8\xB6\n\xE9\xE9\xE9,\xFF\n", StatementFormat::alipay, "m_1");
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("1 line(s) were neither GB18030 nor ASCII"), std::string::npos) << *r.error;
}

TEST(ReconStatementAlipay, BillBelongsToOneMerchantOnly) {
  CollectingSink sink;
  StatementStats stats;
  const StatementSource source{"bill", StatementFormat::alipay, "", {"m_1", "m_2"}};
  const auto error =
      test::error_of(read_statement_bytes(read_fixture("alipay_trade_detail.csv"), source, sink, &stats));
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("one --statement-merchant"), std::string::npos) << *error;
}

// ---- WeChat -----------------------------------------------------------------------------

TEST(ReconStatementWechat, OlderTwentyFourColumnAllBillReadsAsTheCurrentOne) {
  const Read current = read(read_fixture("wechat_all.csv"), StatementFormat::wechat, "m_002");
  const Read legacy = read(read_fixture("wechat_all_legacy.csv"), StatementFormat::auto_detect, "m_002");
  ASSERT_FALSE(legacy.error) << *legacy.error;
  EXPECT_EQ(legacy.stats.format, StatementFormat::wechat);
  EXPECT_TRUE(legacy.sink.malformed_rows.empty()) << legacy.sink.malformed_rows[0].reason;
  ASSERT_EQ(legacy.sink.rows.size(), 3u);
  EXPECT_EQ(rows_text(legacy), rows_text(current));
}

TEST(ReconStatementWechat, SuccessBillIsRefusedSayingWhichBillIsRead) {
  const std::string success_bill =
      "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
      "货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注\n";
  const Read r = read(success_bill, StatementFormat::wechat, "m_002");
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("20 columns"), std::string::npos) << *r.error;
  EXPECT_NE(r.error->find("bill_type=ALL"), std::string::npos) << *r.error;
}

TEST(ReconStatementWechat, BillResavedInGbkIsRefusedSayingSo) {
  std::string gbk;
  ASSERT_TRUE(utf8_to_gbk(read_fixture("wechat_all.csv").substr(3), &gbk));  // without the BOM
  const Read r = read(gbk, StatementFormat::wechat, "m_002");
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("not UTF-8"), std::string::npos) << *r.error;
  EXPECT_NE(r.error->find("bill:"), std::string::npos) << *r.error;  // the file is named
}

// ---- csv: merchants -----------------------------------------------------------------------

TEST(ReconStatementCsv, RowOfOneChannelTooManyIsMalformed) {
  std::string text(test::csv_header);
  for (std::size_t i = 0; i <= statement_channels_max; ++i) {
    text += "ch" + std::to_string(i) + ",T" + std::to_string(i) + ",m_1,o-" + std::to_string(i) +
            ",PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n";
  }
  const Read r = read(text, StatementFormat::csv);
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.sink.rows.size(), statement_channels_max);
  EXPECT_EQ(r.stats.channels.size(), statement_channels_max);
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_EQ(r.sink.malformed_rows[0].line, statement_channels_max + 2);
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("channels in one statement"), std::string::npos);
}

TEST(ReconStatementCsv, RowOfAMerchantTheStatementIsNotForIsMalformed) {
  CollectingSink sink;
  StatementStats stats;
  const StatementSource source{"m1.csv", StatementFormat::csv, "", {"m_1"}};
  const std::string text = std::string(test::csv_header) +
                           "alipay,T1,m_1,o-1,PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n"
                           "alipay,T2,m_2,o-2,PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n";
  ASSERT_FALSE(test::error_of(read_statement_bytes(text, source, sink, &stats)));
  ASSERT_EQ(sink.rows.size(), 1u);
  ASSERT_EQ(sink.malformed_rows.size(), 1u);
  EXPECT_EQ(sink.malformed_rows[0].line, 3u);
  EXPECT_NE(sink.malformed_rows[0].reason.find("merchant_id 'm_2'"), std::string::npos) << sink.malformed_rows[0].reason;
  EXPECT_EQ(stats.channels, std::vector<std::string>{"alipay"});
}

TEST(ReconStatementWechat, FixtureImports) {
  const Read r = read(read_fixture("wechat_all.csv"), StatementFormat::wechat, "m_002");
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_TRUE(r.sink.malformed_rows.empty()) << r.sink.malformed_rows[0].reason;
  ASSERT_EQ(r.sink.rows.size(), 3u);
  EXPECT_EQ(r.sink.rows[0].channel, "wechat");
  EXPECT_EQ(r.sink.rows[0].txn, "4200000001202611260000000001");  // backtick gone
  EXPECT_EQ(r.sink.rows[0].order, "o-2001");
  EXPECT_EQ(r.sink.rows[0].amount, 1234);
  EXPECT_EQ(r.sink.rows[0].status, ChannelStatus::success);
  EXPECT_EQ(r.sink.rows[0].time_us, at("2026-11-26T08:00:05Z"));
  EXPECT_EQ(r.sink.rows[1].type, RowType::refund);
  EXPECT_EQ(r.sink.rows[1].refund_id, "r-88");
  EXPECT_EQ(r.sink.rows[1].amount, 234);
  EXPECT_EQ(r.sink.rows[2].status, ChannelStatus::closed);  // REVOKED
  EXPECT_EQ(r.sink.rows[2].amount, 500);
}

TEST(ReconStatementWechat, SummaryCountDisagreeingWithRowsIsReported) {
  std::string bill = read_fixture("wechat_all.csv");
  const std::size_t at_summary = bill.rfind("`3,");
  ASSERT_NE(at_summary, std::string::npos);
  bill.replace(at_summary, 3, "`4,");
  const Read r = read(bill, StatementFormat::wechat, "m_002");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_EQ(r.sink.malformed_rows[0].line, 6u);
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("summary says 4 rows, the bill has 3"),
            std::string::npos);
}

TEST(ReconStatementWechat, TruncatedBillWithoutSummaryIsReported) {
  std::string bill = read_fixture("wechat_all.csv");
  bill.resize(bill.find("总交易单数"));
  const Read r = read(bill, StatementFormat::wechat, "m_002");
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.sink.rows.size(), 3u);
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_NE(r.sink.malformed_rows[0].reason.find("truncated"), std::string::npos);
}

TEST(ReconStatementWechat, MoreDecimalsThanTheCurrencyIsMalformed) {
  std::string bill = read_fixture("wechat_all.csv");
  const std::size_t amount = bill.find("`12.34,`0.00,`\r\n");  // the first row's 订单金额
  ASSERT_NE(amount, std::string::npos);
  bill.replace(amount, 6, "`12.345");
  const Read r = read(bill, StatementFormat::wechat, "m_002");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.sink.malformed_rows.size(), 1u);
  EXPECT_EQ(r.sink.malformed_rows[0].line, 2u);
  EXPECT_EQ(r.sink.rows.size(), 2u);
}

TEST(ReconStatement, FormatIsDetectedFromContent) {
  EXPECT_EQ(detect_statement_format(std::string(test::csv_header)), StatementFormat::csv);
  EXPECT_EQ(detect_statement_format(read_fixture("alipay_trade_detail.csv")), StatementFormat::alipay);
  EXPECT_EQ(detect_statement_format(read_fixture("wechat_all.csv")), StatementFormat::wechat);
  EXPECT_FALSE(detect_statement_format("id,amount\n1,2\n").has_value());
  // auto reads each file with the format it detects
  const Read r = read(read_fixture("alipay_trade_detail.csv"), StatementFormat::auto_detect, "m_1");
  ASSERT_FALSE(r.error) << *r.error;
  EXPECT_EQ(r.stats.format, StatementFormat::alipay);
  EXPECT_EQ(r.sink.rows.size(), 3u);
}

TEST(ReconStatement, FileIsReadInBlocksAcrossLineBoundaries) {
  // Bigger than one 1 MiB read block, so that lines straddle blocks.
  std::string text(test::csv_header);
  constexpr int rows_count = 30'000;
  for (int i = 0; i < rows_count; ++i) {
    text += "alipay,T" + std::to_string(i) + ",m_1,o-" + std::to_string(i) +
            ",PAYMENT,,5,CNY,SUCCESS,2026-11-26T08:00:01Z\n";
  }
  ASSERT_GT(text.size(), std::size_t{1} << 20);
  const std::string path = ::testing::TempDir() + "/recon_block_test.csv";
  std::ofstream(path, std::ios::binary) << text;
  CollectingSink sink;
  StatementStats stats;
  const auto error = test::error_of(read_statement({path, StatementFormat::auto_detect, "", {}}, sink, &stats));
  ASSERT_FALSE(error) << *error;
  ASSERT_EQ(sink.rows.size(), static_cast<std::size_t>(rows_count));
  EXPECT_TRUE(sink.malformed_rows.empty());
  EXPECT_EQ(sink.rows.back().order, "o-" + std::to_string(rows_count - 1));
  EXPECT_EQ(sink.rows.back().line, static_cast<std::uint64_t>(rows_count + 1));
  EXPECT_TRUE(test::error_of(read_statement({path + ".missing", StatementFormat::csv, "", {}}, sink, &stats)));
}

}  // namespace
}  // namespace paycore::recon
