#include "router/cache.h"

#include <gtest/gtest.h>

#include <string>

namespace pgpilot::router {
namespace {

TEST(Cache, SameShapeHits) {
  ClassificationCache cache(16);
  auto a = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1");
  EXPECT_FALSE(a.hit);
  auto b = cache.classify("select abalance from pgbench_accounts where aid = 99;");
  EXPECT_FALSE(b.hit);  // the trailing ';' is a token: another shape
  auto c = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid =   777");
  EXPECT_TRUE(c.hit);
  EXPECT_EQ(c.classification->target, Target::kAny);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(Cache, HintIsPartOfTheKey) {
  ClassificationCache cache(16);
  EXPECT_FALSE(cache.classify("SELECT 1").hit);
  auto r = cache.classify("/*NO LOAD BALANCE*/ SELECT 2");
  EXPECT_FALSE(r.hit);
  EXPECT_TRUE(r.shape.no_load_balance);
  EXPECT_TRUE(cache.classify("/*NO LOAD BALANCE*/ SELECT 3").hit);
}

TEST(Cache, CapacityIsBoundedAndEvicts) {
  ClassificationCache cache(8);
  EXPECT_EQ(cache.capacity(), 8u);
  for (int i = 0; i < 100; ++i) {
    cache.classify("SELECT c" + std::to_string(i) + " FROM t");
  }
  EXPECT_LE(cache.size(), 8u);
  EXPECT_GE(cache.evictions(), 92u);
  // Recently used entries survive in their set.
  EXPECT_TRUE(cache.classify("SELECT c99 FROM t").hit);
}

TEST(Cache, CapacityRoundsUpToPowerOfTwo) {
  EXPECT_EQ(ClassificationCache(1).capacity(), 4u);
  EXPECT_EQ(ClassificationCache(100).capacity(), 128u);
}

TEST(Cache, LexAndParseErrorsAreNotCached) {
  ClassificationCache cache(16);
  auto a = cache.classify("SELECT 'unterminated");
  EXPECT_EQ(a.classification->target, Target::kPrimary);
  EXPECT_TRUE(a.shape.lex_error);
  EXPECT_FALSE(cache.classify("SELECT 'unterminated").hit);
  // PostgreSQL 15 rejects 0x1F ("trailing junk"), which shares its shape with SELECT 0:
  // the error must not pin the shape to the primary.
  auto junk = cache.classify("SELECT 0x1F");
  EXPECT_TRUE(junk.classification->parse_error);
  EXPECT_EQ(cache.size(), 0u);
  auto ok = cache.classify("SELECT 0");
  EXPECT_FALSE(ok.hit);
  EXPECT_EQ(ok.classification->target, Target::kAny);
}

TEST(Cache, FindAndInsert) {
  ClassificationCache cache(4);
  Shape s = lexShape("SELECT 1");
  EXPECT_EQ(cache.find(s), nullptr);
  Classification c;
  c.target = Target::kAny;
  c.reason = "custom";
  cache.insert(s, c);
  ASSERT_NE(cache.find(s), nullptr);
  EXPECT_EQ(cache.find(s)->reason, "custom");
  cache.clear();
  EXPECT_EQ(cache.find(s), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace pgpilot::router
