// `paycore recon` command-line words: the pairing of per-statement options with the
// --statement they follow, and every kind of mistake refused with a message (exit status 2 in
// the binary: tests/recon/recon_cli_test.cpp runs it).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recon/cli.hpp"

namespace paycore::recon {
namespace {

struct Parsed {
  ReconArgs args;
  std::optional<std::string> error;
};

const std::vector<std::string> required = {"--snapshot", "s.snap", "--out", "o"};

Parsed parse(std::vector<std::string> words, bool add_required = true) {
  if (add_required) words.insert(words.begin(), required.begin(), required.end());
  Parsed p;
  const Status parsed = parse_recon_args(words, &p.args);
  if (!parsed.is_ok()) p.error = parsed.message();
  return p;
}

std::vector<std::string> merchants(const Parsed& p, std::size_t statement) {
  return p.args.statements.at(statement).merchant_ids;
}

TEST(ReconArgs, StatementMerchantPairsWithTheStatementItFollows) {
  const Parsed p = parse({"--statement", "a.csv", "--statement-merchant", "m_001", "--statement", "b.csv",
                          "--statement-merchant", "m_002", "--statement-format", "alipay", "--statement", "c.csv"});
  ASSERT_FALSE(p.error) << *p.error;
  ASSERT_EQ(p.args.statements.size(), 3u);
  EXPECT_EQ(merchants(p, 0), std::vector<std::string>{"m_001"});
  EXPECT_EQ(merchants(p, 1), std::vector<std::string>{"m_002"});
  EXPECT_EQ(p.args.statements[1].format, "alipay");
  EXPECT_TRUE(merchants(p, 2).empty());
  EXPECT_EQ(p.args.statements[2].format, "");  // auto
}

TEST(ReconArgs, StatementMerchantBeforeEveryStatementIsTheirDefault) {
  const Parsed p = parse({"--statement-merchant", "m_001", "--statement-format=alipay", "--statement", "a",
                          "--statement", "b"});
  ASSERT_FALSE(p.error) << *p.error;
  EXPECT_EQ(merchants(p, 0), std::vector<std::string>{"m_001"});
  EXPECT_EQ(merchants(p, 1), std::vector<std::string>{"m_001"});
  EXPECT_EQ(p.args.statements[1].format, "alipay");
}

TEST(ReconArgs, SeveralMerchantsForOneCsvStatement) {
  const Parsed p = parse({"--statement", "a.csv", "--statement-merchant", "m_001", "--statement-merchant", "m_002"});
  ASSERT_FALSE(p.error) << *p.error;
  EXPECT_EQ(merchants(p, 0), (std::vector<std::string>{"m_001", "m_002"}));
}

TEST(ReconArgs, StatementMerchantBothBeforeAndAfterIsAmbiguous) {
  const Parsed p = parse({"--statement-merchant", "m_001", "--statement", "a", "--statement-merchant", "m_002"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("ambiguous: --statement-merchant"), std::string::npos) << *p.error;
  EXPECT_TRUE(parse({"--statement-channel", "x", "--statement", "a", "--statement-channel", "y"}).error);
}

TEST(ReconArgs, FormatOrChannelTwiceForOneStatementIsRefused) {
  const Parsed p = parse({"--statement", "a", "--statement-format", "csv", "--statement-format", "alipay"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("--statement-format is given twice for --statement a"), std::string::npos) << *p.error;
  EXPECT_TRUE(parse({"--statement", "a", "--statement-channel", "x", "--statement-channel", "x"}).error);
}

TEST(ReconArgs, SameMerchantTwiceForOneStatementIsRefused) {
  const Parsed p = parse({"--statement", "a", "--statement-merchant", "m_1", "--statement-merchant", "m_1"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("given twice"), std::string::npos) << *p.error;
}

TEST(ReconArgs, SingleValuedOptionGivenTwiceIsRefused) {
  const Parsed p = parse({"--statement", "a", "--out", "other"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("--out is given twice"), std::string::npos) << *p.error;
}

TEST(ReconArgs, ArchiveIsTakenOnce) {
  const Parsed p = parse({"--statement", "a", "--archive", "/data/archive"});
  ASSERT_FALSE(p.error) << *p.error;
  EXPECT_EQ(p.args.archive, "/data/archive");
  const Parsed twice = parse({"--statement", "a", "--archive", "x", "--archive", "y"});
  ASSERT_TRUE(twice.error);
  EXPECT_NE(twice.error->find("--archive is given twice"), std::string::npos) << *twice.error;
}

TEST(ReconArgs, UnknownOptionIsRefused) {
  const Parsed p = parse({"--statement", "a", "--statment-merchant", "m_1"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("unknown option '--statment-merchant'"), std::string::npos) << *p.error;
  EXPECT_TRUE(parse({"--statement", "a", "-x"}).error);
}

TEST(ReconArgs, OptionWithoutItsValueIsRefused) {
  for (const std::vector<std::string>& words :
       {std::vector<std::string>{"--statement"}, {"--statement", "--statement-merchant", "m_1"},
        {"--statement", "a", "--cutoff="}, {"--statement", "a", "--statement-merchant"}}) {
    const Parsed p = parse(words);
    ASSERT_TRUE(p.error) << words.back();
    EXPECT_NE(p.error->find("needs a value"), std::string::npos) << *p.error;
  }
}

TEST(ReconArgs, PositionalWordIsRefused) {
  const Parsed p = parse({"--statement", "a", "b.csv"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("unexpected argument 'b.csv'"), std::string::npos) << *p.error;
  EXPECT_TRUE(parse({"--statement", "a", "--"}).error);
}

TEST(ReconArgs, MissingRequiredOptionIsRefused) {
  EXPECT_NE(parse({"--out", "o", "--statement", "a"}, false).error.value_or("").find("--snapshot"), std::string::npos);
  EXPECT_NE(parse({"--snapshot", "s", "--statement", "a"}, false).error.value_or("").find("--out"), std::string::npos);
  EXPECT_NE(parse({}).error.value_or("").find("--statement"), std::string::npos);
  EXPECT_NE(parse({}, false).error.value_or("").find("usage"), std::string::npos);
}

TEST(ReconArgs, BadToleranceIsRefused) {
  for (const char* bad : {"-5", "1e3", "99999999999", "ten"}) {
    const Parsed p = parse({"--statement", "a", "--tolerance-seconds", bad});
    ASSERT_TRUE(p.error) << bad;
    EXPECT_NE(p.error->find("--tolerance-seconds"), std::string::npos) << *p.error;
  }
  const Parsed ok = parse({"--statement", "a", "--tolerance-seconds=60"});
  ASSERT_FALSE(ok.error) << *ok.error;
  EXPECT_EQ(ok.args.tolerance_seconds, 60);
}

TEST(ReconArgs, FlagGivenAValueIsRefused) {
  const Parsed p = parse({"--help=yes"});
  ASSERT_TRUE(p.error);
  EXPECT_NE(p.error->find("takes no value"), std::string::npos) << *p.error;
}

TEST(ReconArgs, HelpIsNotAnError) {
  for (const char* help : {"--help", "-h"}) {
    const Parsed p = parse({help}, false);
    ASSERT_FALSE(p.error) << *p.error;
    EXPECT_TRUE(p.args.help);
  }
  EXPECT_NE(recon_usage().find("--statement-merchant"), std::string::npos);
}

}  // namespace
}  // namespace paycore::recon
