#include "common/sql_quote.h"

#include <gtest/gtest.h>

namespace pgpilot::common {
namespace {

TEST(SqlQuote, DoublesOnlyItsOwnQuote) {
  EXPECT_EQ(quoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(quoteLiteral("a\"b\\c"), "'a\"b\\c'");
  EXPECT_EQ(quoteLiteral(""), "''");
  EXPECT_EQ(quoteIdent("My \"T\""), "\"My \"\"T\"\"\"");
  EXPECT_EQ(quoteIdent("it's"), "\"it's\"");
}

}  // namespace
}  // namespace pgpilot::common
