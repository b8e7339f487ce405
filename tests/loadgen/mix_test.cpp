#include "bench/loadgen/mix.hpp"

#include <gtest/gtest.h>

#include <array>

namespace paycore::loadgen {
namespace {

TEST(Mix, ParsesTheDefaultMix) {
  const MixParseResult r = parse_mix(mix_default);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.mix.weight(Op::pay), 80u);
  EXPECT_EQ(r.mix.weight(Op::get), 10u);
  EXPECT_EQ(r.mix.weight(Op::refund), 5u);
  EXPECT_EQ(r.mix.weight(Op::notify), 3u);
  EXPECT_EQ(r.mix.weight(Op::batch), 2u);
  EXPECT_EQ(r.mix.weight(Op::ext), 0u);
  EXPECT_EQ(r.mix.total, 100u);
  EXPECT_EQ(r.mix.to_string(), "pay=80,notify=3,get=10,refund=5,batch=2");
}

TEST(Mix, ToleratesSpacesAndZeroWeights) {
  const MixParseResult r = parse_mix(" pay = 1 , ext=0,get=3 ");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.mix.total, 4u);
}

TEST(Mix, UnknownOperationIsRejected) {
  const MixParseResult r = parse_mix("pay=1,transfer=2");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("transfer"), std::string::npos);
}

TEST(Mix, SetupOperationsAreNotAllowedInAMix) {
  EXPECT_FALSE(parse_mix("deposit=1").ok());
  EXPECT_FALSE(parse_mix("open_account=1").ok());
}

TEST(Mix, MalformedWeightIsRejected) {
  EXPECT_FALSE(parse_mix("pay=").ok());
  EXPECT_FALSE(parse_mix("pay=-1").ok());
  EXPECT_FALSE(parse_mix("pay=1.5").ok());
  EXPECT_FALSE(parse_mix("pay=2000000").ok());
  EXPECT_FALSE(parse_mix("pay").ok());
  EXPECT_FALSE(parse_mix("pay=1,").ok());
  EXPECT_FALSE(parse_mix("").ok());
}

TEST(Mix, DuplicateOperationIsRejected) { EXPECT_FALSE(parse_mix("pay=1,pay=2").ok()); }

TEST(Mix, ListIsAnOperationOfTheMix) {
  const MixParseResult r = parse_mix("pay=9,list=1");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.mix.weight(Op::list), 1u);
  EXPECT_EQ(r.mix.to_string(), "pay=9,list=1");
  EXPECT_FALSE(parse_mix("open_account=1").ok());
}

TEST(Mix, AllZeroWeightsAreRejected) { EXPECT_FALSE(parse_mix("pay=0,get=0").ok()); }

TEST(Mix, PickFollowsTheWeights) {
  const MixParseResult r = parse_mix("pay=2,get=1,batch=1");
  ASSERT_TRUE(r.ok());
  std::array<int, mix_ops_count> counts{};
  for (std::uint64_t draw = 0; draw < r.mix.total; ++draw) ++counts[static_cast<std::size_t>(r.mix.pick(draw))];
  EXPECT_EQ(counts[static_cast<std::size_t>(Op::pay)], 2);
  EXPECT_EQ(counts[static_cast<std::size_t>(Op::get)], 1);
  EXPECT_EQ(counts[static_cast<std::size_t>(Op::batch)], 1);
  EXPECT_EQ(counts[static_cast<std::size_t>(Op::refund)], 0);
}

}  // namespace
}  // namespace paycore::loadgen
