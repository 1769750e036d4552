#pragma once
// Statement shape lexer: the first, cheapest step of the query path (ARCHITECTURE.md,
// "The query path"). One pass over the SQL text, no allocation: it drops comments and
// whitespace, replaces every literal with a placeholder, folds unquoted identifiers and
// keywords to lower case, and hashes the resulting token stream. Two statements that
// differ only in literal values, spacing, comments or keyword case share a shape, and
// therefore a classification (see cache.h).
//
// Invariant the cache relies on: the classifier (classifier.h) never looks at a literal's
// value, so statements with equal shapes classify equally. The one exception is SET,
// whose value decides routing (`SET transaction_isolation = 'serializable'`): in a
// statement whose first keyword is SET the literals are hashed verbatim.
//
// Literal forms recognised (PostgreSQL 15/16 lexer, standard_conforming_strings = on):
// '...' with '' doubling, E'...' with backslash escapes, U&'...' (UESCAPE follows as
// ordinary tokens), B'...', X'...', N'...', $$...$$ and $tag$...$tag$ dollar quoting
// ($1 is a parameter), numbers (1, 1.5, .5, 1e10, 0x1F, 0o17, 0b101, 1_000).
// "quoted identifiers" are kept verbatim (case-sensitive); they are not literals.
// Comments: -- to end of line and nested /* ... */.
//
// Thread-safety: pure function, no state.
//
//   Shape s = lexShape("SELECT abalance FROM pgbench_accounts WHERE aid = 42");
//   // s.hash == lexShape("select abalance from pgbench_accounts where aid=7").hash
#include <cstdint>
#include <string_view>

namespace pgpilot::router {

struct Shape {
  // Hash of the normalised token stream. Equal for statements that differ only in
  // literal values, whitespace, comments and keyword/identifier case.
  uint64_t hash = 0;
  // A /*NO LOAD BALANCE*/ comment before the first token (pgpool-II hint).
  bool no_load_balance = false;
  // Any comment (-- or /* */, the hint included) before the first token: with pgpool's
  // allow_sql_comments = off such a read is not load balanced (policy.h).
  bool leading_comment = false;
  // A top-level ';' followed by more tokens: the string holds several statements.
  bool multi_statement = false;
  // Unterminated quoted string, quoted identifier, dollar quote or block comment.
  bool lex_error = false;
  // The first token if it is a keyword or unquoted identifier, as written in the input
  // (not case-folded; compare with keywordEquals). Empty otherwise.
  std::string_view first_keyword;
  // Upper bound on how deeply the statement can nest once parsed: operators, ':' and
  // identifiers/keywords count 1, '(' and '[' count 3. Depends on tokens only, not on
  // literal values. classify() refuses to parse above a budget, because libpg_query
  // recurses without a stack check (a 100,000-term `1 + 1 + ...` would crash it).
  uint32_t nesting_cost = 0;
};

// Lexes `sql` and returns its shape. Never fails; malformed input sets lex_error.
Shape lexShape(std::string_view sql) noexcept;

// ASCII case-insensitive comparison of a keyword as written against a lower-case word.
bool keywordEquals(std::string_view written, std::string_view lower) noexcept;

}  // namespace pgpilot::router
