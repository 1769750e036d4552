#include "router/lexer.h"

#include <gtest/gtest.h>

#include <string>

namespace pgpilot::router {
namespace {

uint64_t h(std::string_view sql) {
  return lexShape(sql).hash;
}

void expectSame(std::string_view a, std::string_view b) {
  EXPECT_EQ(h(a), h(b)) << a << "\n  vs\n" << b;
  EXPECT_FALSE(lexShape(a).lex_error) << a;
  EXPECT_FALSE(lexShape(b).lex_error) << b;
}
void expectDifferent(std::string_view a, std::string_view b) {
  EXPECT_NE(h(a), h(b)) << a << "\n  vs\n" << b;
}

TEST(Lexer, PgbenchStatementsShareShapeAcrossLiterals) {
  expectSame("SELECT abalance FROM pgbench_accounts WHERE aid = 42",
             "SELECT abalance FROM pgbench_accounts WHERE aid = 7");
  expectSame("UPDATE pgbench_accounts SET abalance = abalance + -4230 WHERE aid = 88817;",
             "UPDATE pgbench_accounts SET abalance = abalance + 12 WHERE aid = 1;");
  expectSame(
      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, "
      "CURRENT_TIMESTAMP);",
      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (9, 8, 7, -6, "
      "CURRENT_TIMESTAMP);");
}

TEST(Lexer, CaseWhitespaceAndCommentsDoNotMatter) {
  expectSame("SELECT a FROM t WHERE b = 1", "select   A\n\tfrom T where B=1");
  expectSame("SELECT a FROM t", "SELECT /* hi */ a -- trailing\n FROM t");
  expectSame("SELECT a FROM t", "SELECT a FROM t -- comment at end");
}

TEST(Lexer, DifferentStructureDifferentShape) {
  expectDifferent("SELECT a FROM t", "SELECT b FROM t");
  expectDifferent("SELECT a FROM t", "SELECT a FROM t FOR UPDATE");
  expectDifferent("SELECT ab FROM t", "SELECT a b FROM t");
  expectDifferent("SELECT a FROM t WHERE x = 1", "SELECT a FROM t WHERE x = 1 AND y = 2");
  expectDifferent("SELECT 1", "SELECT 1, 2");
  expectDifferent("SELECT a <= b", "SELECT a < = b");
  expectDifferent("SELECT x", "SELECT 'x'");
}

TEST(Lexer, QuotedIdentifiersAreKeptCaseSensitive) {
  expectDifferent("SELECT \"A\" FROM t", "SELECT \"a\" FROM t");
  expectDifferent("SELECT \"a\" FROM t", "SELECT 'a' FROM t");
  expectSame("SELECT \"a\"\"b\" FROM t", "SELECT  \"a\"\"b\"  FROM t");
  expectDifferent("SELECT \"a\"\"b\" FROM t", "SELECT \"a\"\"c\" FROM t");
  expectDifferent("SELECT \"nextval\"(1)", "SELECT \"currval\"(1)");
  expectDifferent("SELECT U&\"d\\0061t\" FROM t", "SELECT U&\"d\\0062t\" FROM t");
  EXPECT_TRUE(lexShape("SELECT \"abc FROM t").lex_error);
}

TEST(Lexer, StandardStrings) {
  expectSame("SELECT 'abc'", "SELECT 'it''s'");
  expectSame("SELECT 'a' FROM t", "SELECT '' FROM t");
  // standard_conforming_strings = on: a backslash is an ordinary character.
  expectSame("SELECT 'a\\' FROM t", "SELECT 'b' FROM t");
  EXPECT_TRUE(lexShape("SELECT 'abc").lex_error);
  EXPECT_TRUE(lexShape("SELECT 'it''s").lex_error);
}

TEST(Lexer, LiteralContentIsNotSql) {
  expectSame("SELECT 'FOR UPDATE'", "SELECT 'x'");
  expectSame("SELECT 'a -- b' FROM t", "SELECT 'c' FROM t");
  expectSame("SELECT 'a /* b' FROM t", "SELECT 'c' FROM t");
  expectSame("SELECT 'a; DELETE FROM t'", "SELECT 'c'");
  EXPECT_FALSE(lexShape("SELECT 'a; DELETE FROM t'").multi_statement);
  expectSame("SELECT $$ FOR UPDATE $$", "SELECT $$x$$");
  expectSame("SELECT $$ FOR UPDATE $$", "SELECT 'x'");
}

TEST(Lexer, EscapeStrings) {
  expectSame("SELECT E'\\''", "SELECT E'x'");                 // E'\'' is one literal
  expectSame("SELECT E'\\\\' FROM t", "SELECT E'x' FROM t");  // E'\\'
  expectSame("SELECT e'a\\nb''c' FROM t", "SELECT E'x' FROM t");
  expectSame("SELECT E'\\'' || E'\\\\', 1", "SELECT E'a' || E'b', 2");
  expectSame("SELECT E'\\' FOR UPDATE'", "SELECT E'x'");  // the \' does not end it
  EXPECT_TRUE(lexShape("SELECT E'\\'").lex_error);        // the quote is escaped: unterminated
  // Without the E prefix the same bytes end the literal after the backslash.
  EXPECT_FALSE(lexShape("SELECT '\\'").lex_error);
  // An identifier ending in e is not a prefix: "somE'x'" is the identifier some, then 'x'.
  expectSame("SELECT some 'x'", "SELECT somE'x'");
  expectDifferent("SELECT some 'x'", "SELECT E'x'");
}

TEST(Lexer, DollarQuoting) {
  expectSame("SELECT $$a$$", "SELECT $$it's$$");
  expectSame("SELECT $a$ ' $a$", "SELECT 'x'");
  expectSame("SELECT $tag$ $$ nested $$ $tag$", "SELECT 'x'");
  expectSame("SELECT $Tag_1$ x $Tag_1$", "SELECT 'x'");
  EXPECT_TRUE(lexShape("SELECT $a$ x $A$").lex_error);  // tags are case-sensitive
  EXPECT_TRUE(lexShape("SELECT $$ x").lex_error);
  // $1 is a parameter, not a dollar quote.
  EXPECT_FALSE(lexShape("SELECT $1 FROM t WHERE a = $2").lex_error);
  expectDifferent("SELECT $1", "SELECT $2");
  expectDifferent("SELECT $1", "SELECT 1");
  // A '$' inside an identifier is part of it.
  expectSame("SELECT a$b FROM t", "SELECT a$b FROM t");
  EXPECT_FALSE(lexShape("SELECT a$$b FROM t").lex_error);
  // Digits cannot start a tag: $1$ is parameter $1 followed by '$'.
  EXPECT_FALSE(lexShape("SELECT $1$").lex_error);
}

TEST(Lexer, UnicodeBitHexNationalStrings) {
  expectSame("SELECT U&'d\\0061t\\+000061'", "SELECT U&'x'");
  expectSame("SELECT U&'d!0061t' UESCAPE '!'", "SELECT U&'x' UESCAPE '#'");
  expectSame("SELECT u&'it''s'", "SELECT U&'x'");
  expectSame("SELECT B'1010'", "SELECT b'1'");
  expectSame("SELECT X'1F'", "SELECT x'ABCDEF'");
  expectSame("SELECT N'abc'", "SELECT n'x'");
  expectDifferent("SELECT B'1'", "SELECT X'1'");
  EXPECT_TRUE(lexShape("SELECT B'101").lex_error);
  EXPECT_TRUE(lexShape("SELECT U&'x").lex_error);
  // U&'\'' : the backslash does not escape the quote in U& strings, so this is complete
  // ('\' followed by ').
  EXPECT_TRUE(lexShape("SELECT U&'\\'' ").lex_error);
  EXPECT_FALSE(lexShape("SELECT U&'\\' ").lex_error);
}

TEST(Lexer, Numbers) {
  for (std::string_view n : {"1", "42", "1.5", ".5", "5.", "1e10", "1E-10", "2.5e+3", "0x1F",
                             "0X1f", "0o17", "0b101", "1_000", "1_000.000_1"}) {
    std::string sql = "SELECT " + std::string(n) + " FROM t";
    expectSame(sql, "SELECT 0 FROM t");
  }
  // "1e" is the number 1 followed by the identifier e (PostgreSQL's realfail rule).
  expectDifferent("SELECT 1e FROM t", "SELECT 1 FROM t");
  expectSame("SELECT a.b FROM t", "SELECT a . b FROM t");
  expectDifferent("SELECT a.b FROM t", "SELECT a.5 FROM t");
  // A minus sign right after an operator, '(' or ',' belongs to the constant (PostgreSQL
  // folds it too), so pgbench's negative and positive deltas share a shape.
  expectSame("SELECT a FROM t WHERE b = -1", "SELECT a FROM t WHERE b = 2.5");
  expectSame("SELECT f(-1, - 2)", "SELECT f(1, 2)");
  expectDifferent("SELECT a -1 FROM t", "SELECT a 1 FROM t");  // binary minus stays
}

TEST(Lexer, Comments) {
  expectSame("SELECT /* a /* nested */ still comment */ 1", "SELECT 1");
  EXPECT_TRUE(lexShape("SELECT /* a /* nested */ 1").lex_error);
  EXPECT_TRUE(lexShape("SELECT 1 /* open").lex_error);
  expectSame("SELECT 1 -- x\n, 2", "SELECT 1, 2");
  // An operator run stops at a comment start.
  expectSame("SELECT 1 +-- c\n 2", "SELECT 1 + 2");
  expectSame("SELECT 1 +/* c */2", "SELECT 1 + 2");
  // Comments separate tokens.
  expectDifferent("SELECT a/**/b", "SELECT ab");
}

TEST(Lexer, NoLoadBalanceHintOnlyWhenLeading) {
  EXPECT_TRUE(lexShape("/*NO LOAD BALANCE*/ SELECT 1").no_load_balance);
  EXPECT_TRUE(lexShape("  /*no load balance*/SELECT 1").no_load_balance);
  EXPECT_TRUE(lexShape("/* NO LOAD BALANCE */ SELECT 1").no_load_balance);
  EXPECT_TRUE(lexShape("-- app\n/*NO LOAD BALANCE*/ SELECT 1").no_load_balance);
  EXPECT_FALSE(lexShape("SELECT /*NO LOAD BALANCE*/ 1").no_load_balance);
  EXPECT_FALSE(lexShape("SELECT 1 /*NO LOAD BALANCE*/").no_load_balance);
  EXPECT_FALSE(lexShape("SELECT '/*NO LOAD BALANCE*/'").no_load_balance);
  EXPECT_FALSE(lexShape("/*NO LOAD BALANCING*/ SELECT 1").no_load_balance);
  // The hint does not change the shape; the cache key adds the flag itself.
  EXPECT_EQ(h("/*NO LOAD BALANCE*/ SELECT 1"), h("SELECT 1"));
}

TEST(Lexer, LeadingComment) {
  EXPECT_TRUE(lexShape("/* app=web */ SELECT 1").leading_comment);
  EXPECT_TRUE(lexShape("-- tag\nSELECT 1").leading_comment);
  EXPECT_TRUE(lexShape("  /*NO LOAD BALANCE*/ SELECT 1").leading_comment);
  EXPECT_FALSE(lexShape("SELECT 1 /* trailing */").leading_comment);
  EXPECT_FALSE(lexShape("SELECT /* inside */ 1 -- end").leading_comment);
  EXPECT_FALSE(lexShape("SELECT '/* literal */'").leading_comment);
  EXPECT_FALSE(lexShape("  SELECT 1").leading_comment);
  EXPECT_EQ(h("/* x */ SELECT 1"), h("SELECT 1"));
}

TEST(Lexer, MultiStatement) {
  EXPECT_FALSE(lexShape("SELECT 1;").multi_statement);
  EXPECT_FALSE(lexShape("SELECT 1; -- done").multi_statement);
  EXPECT_FALSE(lexShape("SELECT 1;;  ").multi_statement);
  EXPECT_TRUE(lexShape("SELECT 1; SELECT 2").multi_statement);
  EXPECT_TRUE(lexShape("BEGIN; UPDATE t SET a = 1; COMMIT;").multi_statement);
  EXPECT_FALSE(lexShape("SELECT ';'").multi_statement);
  EXPECT_FALSE(lexShape("SELECT $$;$$").multi_statement);
  EXPECT_FALSE(lexShape("SELECT \";\" FROM t").multi_statement);
  EXPECT_FALSE(lexShape("SELECT 1 /* ; */ ").multi_statement);
}

TEST(Lexer, FirstKeyword) {
  EXPECT_EQ(lexShape("  select 1").first_keyword, "select");
  EXPECT_EQ(lexShape("/* c */ INSERT INTO t VALUES (1)").first_keyword, "INSERT");
  EXPECT_EQ(lexShape("(SELECT 1)").first_keyword, "");
  EXPECT_EQ(lexShape("").first_keyword, "");
  EXPECT_TRUE(keywordEquals(lexShape("WiTh x AS (SELECT 1) SELECT 2").first_keyword, "with"));
}

TEST(Lexer, SetStatementsKeepLiteralValues) {
  // The value of a SET decides routing (transaction_isolation = 'serializable').
  expectDifferent("SET transaction_isolation = 'serializable'",
                  "SET transaction_isolation = 'read committed'");
  expectDifferent("SET statement_timeout = 10", "SET statement_timeout = 20");
  expectSame("set transaction_isolation = 'serializable'",
             "SET  transaction_isolation='serializable'");
}

TEST(Lexer, EmptyAndBlank) {
  Shape s = lexShape("");
  EXPECT_FALSE(s.lex_error);
  EXPECT_EQ(s.hash, lexShape("   \n -- nothing\n").hash);
}

TEST(Lexer, HighBitBytesAreIdentifierCharacters) {
  expectSame("SELECT café FROM t", "SELECT café FROM t");
  expectDifferent("SELECT café FROM t", "SELECT cafe FROM t");
}

// Identifiers are folded and hashed eight bytes at a time: every length and offset of an
// upper-case letter must fold, and only ASCII letters fold (PostgreSQL in UTF-8).
TEST(Lexer, FoldingIsExactAcrossWordBoundaries) {
  const std::string lower = "abcdefghijklmnopqrstuvwxyz_0123456789$";
  for (size_t len = 1; len <= lower.size(); ++len) {
    for (size_t at = 0; at < len; ++at) {
      std::string ident = lower.substr(0, len);
      std::string upper = ident;
      if (upper[at] >= 'a' && upper[at] <= 'z') upper[at] = static_cast<char>(upper[at] - 32);
      expectSame("SELECT " + ident + " FROM t", "SELECT " + upper + " FROM t");
      if (at + 1 < len) expectDifferent("SELECT " + ident, "SELECT " + ident.substr(0, at + 1));
    }
  }
  // Bytes >= 0x80 (here UTF-8 'É' and 'é') are kept as they are.
  expectDifferent("SELECT ÉTÉ_longer_name", "SELECT été_longer_name");
  expectSame("SELECT ÉTÉ_LONGER_NAME", "select ÉTÉ_longer_name");
}

}  // namespace
}  // namespace pgpilot::router
