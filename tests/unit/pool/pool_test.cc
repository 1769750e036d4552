#include "pool/pool.h"

#include <gtest/gtest.h>

namespace pgpilot::pool {
namespace {

TEST(ResetQueries, SplitsPgpoolList) {
  EXPECT_EQ(splitResetQueries("ABORT; DISCARD ALL"),
            (std::vector<std::string>{"ABORT", "DISCARD ALL"}));
  EXPECT_EQ(splitResetQueries("DISCARD ALL"), (std::vector<std::string>{"DISCARD ALL"}));
  EXPECT_TRUE(splitResetQueries(" ; ;").empty());
}

TEST(PoolLimits, IsProcessWidePerKey) {
  PoolLimits limits;
  const PoolKey a{0, "alice", "db", ""};
  const PoolKey b{0, "bob", "db", ""};
  EXPECT_TRUE(limits.tryReserve(a, 2));
  EXPECT_TRUE(limits.tryReserve(a, 2));
  EXPECT_FALSE(limits.tryReserve(a, 2));
  EXPECT_TRUE(limits.tryReserve(b, 2));  // another key has its own budget
  EXPECT_EQ(limits.total(), 3);
  limits.release(a);
  EXPECT_TRUE(limits.tryReserve(a, 2));
  limits.release(PoolKey{9, "x", "y", ""});  // unknown key: no underflow
  EXPECT_EQ(limits.total(), 3);
}

TEST(PoolKey, HashSeparatesFields) {
  PoolKeyHash h;
  EXPECT_NE(h(PoolKey{0, "a", "b", ""}), h(PoolKey{0, "b", "a", ""}));
  EXPECT_EQ(h(PoolKey{1, "a", "b", "-c x=1"}), h(PoolKey{1, "a", "b", "-c x=1"}));
}

}  // namespace
}  // namespace pgpilot::pool
