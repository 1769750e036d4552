#include "common/error_classes.h"

#include <gtest/gtest.h>

namespace pgpilot::common {
namespace {

using Rows = std::vector<std::pair<std::string, uint64_t>>;

TEST(ErrorClassCounts, CountsByFirstTwoCharacters) {
  ErrorClassCounts c;
  EXPECT_TRUE(c.nonZero().empty());
  c.count("23505");
  c.count("23503");
  c.count("42P01");
  c.count("57P03");
  c.count("08P01");
  c.count("28P01");
  c.count("XX000");
  EXPECT_EQ(c.nonZero(), (Rows{{"08", 1}, {"23", 2}, {"28", 1}, {"42", 1}, {"57", 1}, {"XX", 1}}));
}

TEST(ErrorClassCounts, MalformedCodesAreCountedApart) {
  ErrorClassCounts c;
  c.count("");
  c.count("4");
  c.count("a2000");  // lower case is not a SQLSTATE character
  c.count("4\xff");
  c.count("42");
  EXPECT_EQ(c.nonZero(), (Rows{{"42", 1}, {"invalid", 4}}));
}

}  // namespace
}  // namespace pgpilot::common
