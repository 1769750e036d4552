#include "config/lexer.h"

#include <gtest/gtest.h>

namespace pgpilot::config {
namespace {

std::vector<Directive> parse(std::string_view text) {
  auto r = parseDirectives(text, "t.conf");
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().str());
  return r ? *r : std::vector<Directive>{};
}

std::string parseError(std::string_view text) {
  auto r = parseDirectives(text, "t.conf");
  EXPECT_FALSE(r.has_value()) << text;
  return r ? std::string() : r.error().str();
}

std::string valueOf(std::string_view line) {
  auto d = parse(line);
  EXPECT_EQ(d.size(), 1u) << line;
  return d.empty() ? std::string() : d[0].value;
}

TEST(Lexer, NameEqualsValueAndNameValue) {
  auto d = parse("port = 9999\nmax_pool 4\nssl=on\n  worker_threads\t=\t2");
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].name, "port");
  EXPECT_EQ(d[0].value, "9999");
  EXPECT_EQ(d[0].line, 1);
  EXPECT_EQ(d[1].name, "max_pool");
  EXPECT_EQ(d[1].value, "4");
  EXPECT_EQ(d[2].value, "on");
  EXPECT_EQ(d[3].name, "worker_threads");
  EXPECT_EQ(d[3].value, "2");
  EXPECT_EQ(d[3].line, 4);  // no trailing newline is fine
}

TEST(Lexer, CommentsBlankLinesAndCarriageReturns) {
  auto d = parse("# header\n\n   \nport = 1 # trailing comment\r\n#x = y\nssl = 'a#b'\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].value, "1");
  EXPECT_EQ(d[0].line, 4);
  EXPECT_EQ(d[1].value, "a#b");
  EXPECT_EQ(d[1].line, 6);
}

TEST(Lexer, ValueKinds) {
  EXPECT_EQ(valueOf("a = localhost"), "localhost");
  EXPECT_EQ(valueOf("a = db-1.example.com"), "db-1.example.com");  // UNQUOTED_STRING
  EXPECT_EQ(valueOf("a = db.local"), "db.local");                  // QUALIFIED_ID accepted
  EXPECT_EQ(valueOf("a = host:5432/x"), "host:5432/x");
  EXPECT_EQ(valueOf("a = 10s"), "10s");
  EXPECT_EQ(valueOf("a = 5min"), "5min");
  EXPECT_EQ(valueOf("a = -1"), "-1");
  EXPECT_EQ(valueOf("a = 0x1F"), "0x1F");
  EXPECT_EQ(valueOf("a = 1.5"), "1.5");
  EXPECT_EQ(valueOf("a = .5"), ".5");
  EXPECT_EQ(valueOf("a = 2.5e3"), "2.5e3");
  EXPECT_EQ(valueOf("a = ''"), "");
}

TEST(Lexer, QuotedStringsAndEscapes) {
  EXPECT_EQ(valueOf("a = 'it''s'"), "it's");
  EXPECT_EQ(valueOf(R"(a = 'it\'s')"), "it's");
  EXPECT_EQ(valueOf(R"(a = 'tab\there')"), "tab\there");
  EXPECT_EQ(valueOf(R"(a = 'a\nb\rc\bd\fe')"), "a\nb\rc\bd\fe");
  EXPECT_EQ(valueOf(R"(a = 'back\\slash')"), "back\\slash");
  EXPECT_EQ(valueOf(R"(a = '\101\60x')"), "A0x");   // octal escapes, up to three digits
  EXPECT_EQ(valueOf(R"(a = '\q')"), "q");           // unknown escape: the character itself
  EXPECT_EQ(valueOf(R"(a = 'cut\0here')"), "cut");  // NUL ends the C string, as in PostgreSQL
  EXPECT_EQ(valueOf("a = 'ABORT; DISCARD ALL'"), "ABORT; DISCARD ALL");
  EXPECT_EQ(valueOf("a = '  spaced  '"), "  spaced  ");
  EXPECT_EQ(valueOf("a = '#not a comment'"), "#not a comment");
  EXPECT_EQ(valueOf("a = ''''''"), "''");
}

TEST(Lexer, NamesKeepTheirSpelling) {
  auto d = parse("Port = 1\next.custom = 2\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].name, "Port");
  EXPECT_FALSE(d[0].qualified);
  EXPECT_EQ(d[1].name, "ext.custom");
  EXPECT_TRUE(d[1].qualified);
}

TEST(Lexer, SyntaxErrors) {
  EXPECT_EQ(parseError("port =\n"), "t.conf:1: syntax error near end of line");
  EXPECT_EQ(parseError("port"), "t.conf:1: syntax error near end of line");
  EXPECT_EQ(parseError("ok = 1\nport = 1 2\n"), "t.conf:2: syntax error near token \"2\"");
  EXPECT_EQ(parseError("\n\n= 1\n"), "t.conf:3: syntax error near token \"=\"");
  EXPECT_EQ(parseError("a = 'unterminated\n"), "t.conf:1: syntax error near token \"'\"");
  EXPECT_EQ(parseError("a = /tmp/x\n"), "t.conf:1: syntax error near token \"/\"");
  EXPECT_EQ(parseError("a = 1.5s\n"), "t.conf:1: syntax error near token \"s\"");
  EXPECT_EQ(parseError("a = 127.0.0.1\n"), "t.conf:1: syntax error near token \".0\"");
  EXPECT_EQ(parseError("a = = 1\n"), "t.conf:1: syntax error near token \"=\"");
  EXPECT_EQ(parseError("1abc = 1\n"), "t.conf:1: syntax error near token \"1abc\"");
  EXPECT_EQ(parseError("a-b = 1\n"), "t.conf:1: syntax error near token \"a-b\"");
  EXPECT_EQ(parseError("a = 'x' 'y'\n"), "t.conf:1: syntax error near token \"'y'\"");
  EXPECT_EQ(parseError("a = \"x\"\n"), "t.conf:1: syntax error near token \"\"\"");
}

TEST(Lexer, DoubledQuoteAtEndIsLongestMatch) {
  // "'a'''" is one string (a + escaped quote); "'a'' b" cannot close after the '' so flex
  // takes "'a'" and the rest is a second, unterminated token.
  EXPECT_EQ(valueOf("x = 'a'''"), "a'");
  EXPECT_EQ(parseError("x = 'a'' b\n"), "t.conf:1: syntax error near token \"'\"");
}

TEST(Lexer, HighBitBytesAreLetters) {
  EXPECT_EQ(valueOf("a = caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(Unquote, Basics) {
  EXPECT_EQ(unquote("''"), "");
  EXPECT_EQ(unquote("'x'"), "x");
  EXPECT_EQ(unquote("'"), "");
}

}  // namespace
}  // namespace pgpilot::config
