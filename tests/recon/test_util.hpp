#pragma once
// Shared helpers for the recon tests: local records and CSV statements in a few lines.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "recon/local.hpp"
#include "recon/match.hpp"
#include "recon/statement.hpp"
#include "recon/text.hpp"

namespace paycore::recon::test {

// A Status as the tests have always looked at errors: nullopt when ok, else its message.
inline std::optional<std::string> error_of(const Status& status) {
  if (status.is_ok()) return std::nullopt;
  return status.message();
}

inline std::int64_t at(std::string_view rfc3339) {
  const auto time = parse_statement_time_us(rfc3339);
  EXPECT_TRUE(time.has_value()) << rfc3339;
  return time.value_or(0);
}

inline Currency currency(std::string_view code) { return *currency_from_code(code); }

inline LocalPayment payment(std::string_view merchant, std::string_view order,
                            std::string_view channel, Amount amount, std::string_view txn,
                            PaymentStatus status = PaymentStatus::paid,
                            std::string_view created = "2026-11-26T08:00:00Z") {
  LocalPayment p;
  p.merchant_id = merchant;
  p.order_id = order;
  p.request_id = "rq";  // plays no part in matching
  p.channel = channel;
  p.channel_txn_id = txn;
  p.amount = amount;
  p.currency = currency("CNY");
  p.status = status;
  p.created_at_us = at(created);
  p.updated_at_us = p.created_at_us;
  return p;
}

inline constexpr std::string_view csv_header =
    "channel,channel_txn_id,merchant_id,order_id,type,refund_id,amount,currency,status,time\n";

// Collects what a statement reader hands over.
struct CollectingSink final : RowSink {
  struct Row {
    std::string channel, txn, merchant, order, refund_id;
    RowType type;
    Amount amount;
    std::string currency;
    ChannelStatus status;
    std::int64_t time_us;
    std::uint64_t line;
  };
  std::vector<Row> rows;
  std::vector<MalformedRow> malformed_rows;

  void row(const StatementRow& r) override {
    rows.push_back({std::string(r.channel), std::string(r.channel_txn_id), std::string(r.merchant_id),
                    std::string(r.order_id), std::string(r.refund_id), r.type, r.amount,
                    std::string(currency_code(r.currency)), r.status, r.time_us, r.line});
  }
  void malformed(MalformedRow m) override { malformed_rows.push_back(std::move(m)); }
};

// Matches `local` against CSV statements given as text (header added).
inline MatchResult match_csv(const LocalData& local, const std::vector<std::string>& statements,
                             MatchOptions options = {}) {
  Reconciler reconciler(local, std::move(options));
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const std::string name = "statement" + std::to_string(i + 1) + ".csv";
    const std::string text = std::string(csv_header) + statements[i];
    reconciler.begin_statement(name);
    StatementStats stats;
    StatementSource source{name, StatementFormat::csv, "", {}};
    const auto error = error_of(read_statement_bytes(text, source, reconciler.sink(), &stats));
    EXPECT_FALSE(error.has_value()) << *error;
  }
  return reconciler.finish();
}

inline std::uint64_t count(const MatchResult& result, FindingClass c) {
  return result.totals.classes[static_cast<std::size_t>(c)].count;
}

// The first finding of class `c`; a failure (and an empty finding) when there is none.
inline const Finding& first(const MatchResult& result, FindingClass c) {
  for (const Finding& f : result.findings) {
    if (f.finding_class == c) return f;
  }
  ADD_FAILURE() << "no finding of class " << finding_class_name(c);
  static const Finding none;
  return none;
}

inline std::size_t count_of(const std::vector<std::string>& rows, std::string_view needle) {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [&](const std::string& row) {
    return row.find(needle) != std::string::npos;
  }));
}

// An Alipay 业务明细 bill in UTF-8 as Alipay lays it out, its totals lines counting the rows.
inline std::string alipay_bill_utf8(const std::vector<std::string>& rows) {
  std::string utf8 =
      "#支付宝业务明细查询\n#账号：[20880000000000000156]\n"
      "#-----------------------------------------业务明细列表----------------------------------------\n"
      "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
      "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
      "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n";
  for (const std::string& row : rows) utf8 += row + "\n";
  utf8 += "#-----------------------------------------业务明细列表结束------------------------------------\n"
          "#交易合计：" + std::to_string(count_of(rows, "\t,交易,")) + "笔，商家实收共0.00元，商家优惠共0.00元\n"
          "#退款合计：" + std::to_string(count_of(rows, "\t,退款,")) + "笔，商家实收退款共0.00元，商家优惠退款共0.00元\n"
          "#导出时间：[2026年11月27日 09:12:45]\n";
  return utf8;
}

// The same as Alipay's download has it: GBK.
inline std::string alipay_bill_gbk(const std::vector<std::string>& rows) {
  std::string gbk;
  EXPECT_TRUE(utf8_to_gbk(alipay_bill_utf8(rows), &gbk));
  return gbk;
}

inline std::string alipay_row(const std::string& type, const std::string& amount,
                       const std::string& refund_no = "", const std::string& order = "o-1",
                       const std::string& txn = "20261126220014000099") {
  return txn + "\t," + order + "\t," + type +
         ",商品,2026-11-26 10:00:00,2026-11-26 10:00:30,,,,,buy***@example.com," + amount + "," +
         amount + ",0.00,0.00,0.00,0.00,0.00,,0.00,0.00," + refund_no + ",-0.01,0.00,";
}

}  // namespace paycore::recon::test
