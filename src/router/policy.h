#pragma once
// Routing policy: the final primary-or-any decision for one statement, from its
// (possibly cached) Classification, the load-balance hint, the configuration and what
// the session knows of the catalog. Pure: no I/O; catalog facts come through CatalogView,
// which the session backs with its own cache of pg_proc / pg_class lookups on the primary
// (pgpool-II's relcache). When the view does not know a name, decide() answers
// conservatively (primary) and sets needs_catalog so the session can look the name up and
// decide again.
//
// Rules, in order (docs/routing.md explains each):
//   1. /*NO LOAD BALANCE*/ hint                         -> primary
//   1b. allow_sql_comments = off and a read starting with a comment
//                                                        -> primary
//   2. the classification says primary                  -> primary
//   3. primary_routing_query_pattern_list matches       -> primary
//   4. a called function is a write (function lists, else volatility from pg_proc)
//                                                        -> primary
//   5. check_temp_table / check_unlogged_table and a referenced relation is one
//                                                        -> primary
//   6. otherwise                                        -> any
//
// Thread-safety: a Policy is immutable after create(); share it as
// std::shared_ptr<const Policy> with the config snapshot.
//
//   auto policy = Policy::create(cfg);  // std::expected<Policy, std::string>
//   Route r = policy->decide(classification, shape, sql, catalog);
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/classifier.h"
#include "router/lexer.h"

namespace re2 {
class RE2;
}

namespace pgpilot::router {

// What the session knows about the catalog of the primary. nullopt = unknown: the policy
// treats it conservatively and asks for a lookup (Route::needs_catalog).
class CatalogView {
 public:
  virtual ~CatalogView() = default;
  // pg_proc.provolatile of the function ('i', 's' or 'v'), name as in
  // Classification::functions.
  virtual std::optional<char> functionVolatility(std::string_view name) const = 0;
  virtual std::optional<bool> isTempTable(std::string_view relation) const = 0;
  virtual std::optional<bool> isUnloggedTable(std::string_view relation) const = 0;
};

// A CatalogView that knows nothing (every lookup is nullopt).
class EmptyCatalog final : public CatalogView {
 public:
  std::optional<char> functionVolatility(std::string_view) const override { return std::nullopt; }
  std::optional<bool> isTempTable(std::string_view) const override { return std::nullopt; }
  std::optional<bool> isUnloggedTable(std::string_view) const override { return std::nullopt; }
};

struct PolicyConfig {
  // pgpool-II semantics: regexes anchored at both ends, matched against the function name
  // as written and against its unqualified name. If write_function_list is non-empty only
  // matching functions are writes; else if read_only_function_list is non-empty every
  // function NOT matching is a write; if both are empty the volatility decides
  // (volatile = write).
  std::vector<std::string> write_function_list;
  std::vector<std::string> read_only_function_list;
  // Regexes matched (case-insensitively, anchored) against the whole query text, leading
  // and trailing blanks removed. Use splitPatternList() for pgpool's ';'-separated string.
  std::vector<std::string> primary_routing_query_pattern_list;
  bool check_temp_table = true;
  bool check_unlogged_table = true;
  // pgpool-II's allow_sql_comments. Off (pgpool's default): a read whose text starts with
  // a comment goes to the primary (pgpool only load-balances a SELECT whose text starts
  // with the statement itself). On: comments are ignored; only the /*NO LOAD BALANCE*/
  // hint keeps a read on the primary.
  bool allow_sql_comments = false;
};

struct Route {
  Target target = Target::kPrimary;
  std::string reason;
  // A function or relation was unknown to the CatalogView: the decision is the
  // conservative one; look the names up and decide again for a better one.
  bool needs_catalog = false;
};

class Policy {
 public:
  // Compiles the regexes; the error names the list and the offending pattern.
  static std::expected<Policy, std::string> create(const PolicyConfig& config);

  Policy(Policy&&) noexcept;
  Policy& operator=(Policy&&) noexcept;
  ~Policy();

  Route decide(const Classification& c, bool no_load_balance, std::string_view sql,
               const CatalogView& catalog) const;
  // The same with the statement's Shape: also applies allow_sql_comments (rule 1b).
  Route decide(const Classification& c, const Shape& shape, std::string_view sql,
               const CatalogView& catalog) const;

  // Whether a call of `function` counts as a write under the function lists alone;
  // nullopt when both lists are empty (the catalog decides).
  std::optional<bool> functionIsWriteByConfig(std::string_view function) const;

 private:
  struct Compiled;
  explicit Policy(std::unique_ptr<Compiled> compiled);
  std::unique_ptr<Compiled> compiled_;
};

// Splits pgpool's primary_routing_query_pattern_list string: patterns separated by ';',
// "\;" stands for a literal ';'. Empty patterns are dropped.
std::vector<std::string> splitPatternList(std::string_view list);

}  // namespace pgpilot::router
