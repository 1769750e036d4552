#include "router/policy.h"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <utility>

namespace pgpilot::router {
namespace {

using RegexList = std::vector<std::unique_ptr<re2::RE2>>;

std::expected<RegexList, std::string> compileList(const std::vector<std::string>& patterns,
                                                  std::string_view list_name,
                                                  bool case_insensitive) {
  RegexList out;
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_case_sensitive(!case_insensitive);
  options.set_dot_nl(true);  // query texts span lines
  for (const std::string& p : patterns) {
    auto re = std::make_unique<re2::RE2>(p, options);
    if (!re->ok()) {
      return std::unexpected(std::string(list_name) + ": invalid regular expression '" + p +
                             "': " + re->error());
    }
    out.push_back(std::move(re));
  }
  return out;
}

bool anyFullMatch(const RegexList& list, std::string_view text) {
  return std::any_of(list.begin(), list.end(),
                     [&](const auto& re) { return re2::RE2::FullMatch(text, *re); });
}

std::string_view unqualified(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// Volatile built-ins that only read: a standby runs them fine. Without this list the
// volatility rule would send e.g. `SELECT pg_is_in_recovery()` or `SELECT random()` to
// the primary. Only consulted when both function lists are empty, and only for
// unqualified or pg_catalog-qualified names.
constexpr std::array<std::string_view, 14> kReadOnlyVolatileBuiltins = {
    "random",
    "clock_timestamp",
    "timeofday",
    "pg_sleep",
    "gen_random_uuid",
    "pg_is_in_recovery",
    "inet_server_port",
    "inet_server_addr",
    "pg_last_wal_replay_lsn",
    "pg_last_wal_receive_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_is_wal_replay_paused",
    "pg_get_wal_replay_pause_state",
    "pg_backend_pid",
};

bool isReadOnlyVolatileBuiltin(std::string_view name) {
  constexpr std::string_view kCatalog = "pg_catalog.";
  if (name.starts_with(kCatalog)) name.remove_prefix(kCatalog.size());
  if (name.find('.') != std::string_view::npos) return false;
  return std::find(kReadOnlyVolatileBuiltins.begin(), kReadOnlyVolatileBuiltins.end(), name) !=
         kReadOnlyVolatileBuiltins.end();
}

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

struct Policy::Compiled {
  RegexList write_functions;
  RegexList read_only_functions;
  RegexList primary_patterns;
  bool check_temp_table = true;
  bool check_unlogged_table = true;
  bool allow_sql_comments = false;
};

Policy::Policy(std::unique_ptr<Compiled> compiled) : compiled_(std::move(compiled)) {}
Policy::Policy(Policy&&) noexcept = default;
Policy& Policy::operator=(Policy&&) noexcept = default;
Policy::~Policy() = default;

std::expected<Policy, std::string> Policy::create(const PolicyConfig& config) {
  auto compiled = std::make_unique<Compiled>();
  auto w = compileList(config.write_function_list, "write_function_list", false);
  if (!w) return std::unexpected(w.error());
  auto r = compileList(config.read_only_function_list, "read_only_function_list", false);
  if (!r) return std::unexpected(r.error());
  auto p = compileList(config.primary_routing_query_pattern_list,
                       "primary_routing_query_pattern_list", true);
  if (!p) return std::unexpected(p.error());
  compiled->write_functions = std::move(*w);
  compiled->read_only_functions = std::move(*r);
  compiled->primary_patterns = std::move(*p);
  compiled->check_temp_table = config.check_temp_table;
  compiled->check_unlogged_table = config.check_unlogged_table;
  compiled->allow_sql_comments = config.allow_sql_comments;
  return Policy(std::move(compiled));
}

std::optional<bool> Policy::functionIsWriteByConfig(std::string_view function) const {
  auto matches = [&](const RegexList& list) {
    return anyFullMatch(list, function) || anyFullMatch(list, unqualified(function));
  };
  if (!compiled_->write_functions.empty()) return matches(compiled_->write_functions);
  if (!compiled_->read_only_functions.empty()) return !matches(compiled_->read_only_functions);
  return std::nullopt;
}

Route Policy::decide(const Classification& c, const Shape& shape, std::string_view sql,
                     const CatalogView& catalog) const {
  if (!shape.no_load_balance && shape.leading_comment && !compiled_->allow_sql_comments &&
      c.kind == Classification::Kind::kRead && c.target == Target::kAny) {
    return {Target::kPrimary, "read starts with a comment (allow_sql_comments = off)", false};
  }
  return decide(c, shape.no_load_balance, sql, catalog);
}

Route Policy::decide(const Classification& c, bool no_load_balance, std::string_view sql,
                     const CatalogView& catalog) const {
  if (no_load_balance) return {Target::kPrimary, "/*NO LOAD BALANCE*/ hint", false};
  if (c.target == Target::kPrimary) return {Target::kPrimary, c.reason, false};
  if (!compiled_->primary_patterns.empty() && anyFullMatch(compiled_->primary_patterns, trim(sql)))
    return {Target::kPrimary, "matches primary_routing_query_pattern_list", false};

  Route route{Target::kAny, c.reason, false};
  for (const std::string& f : c.functions) {
    std::optional<bool> write = functionIsWriteByConfig(f);
    if (!write) {
      if (isReadOnlyVolatileBuiltin(f)) continue;
      std::optional<char> v = catalog.functionVolatility(f);
      if (!v) {
        // Unknown: assume volatile (a write) until the session has looked it up.
        route.needs_catalog = true;
        if (route.target == Target::kAny) {
          route.target = Target::kPrimary;
          route.reason = "calls function " + f + " of unknown volatility";
        }
        continue;
      }
      write = *v == 'v';
    }
    if (*write) return {Target::kPrimary, "calls write function " + f, false};
  }
  for (const std::string& rel : c.relations) {
    if (compiled_->check_temp_table) {
      std::optional<bool> temp = catalog.isTempTable(rel);
      if (temp.value_or(false)) return {Target::kPrimary, "temporary table " + rel, false};
      if (!temp) route.needs_catalog = true;
    }
    if (compiled_->check_unlogged_table) {
      std::optional<bool> unlogged = catalog.isUnloggedTable(rel);
      if (unlogged.value_or(false)) return {Target::kPrimary, "unlogged table " + rel, false};
      if (!unlogged) route.needs_catalog = true;
    }
    if (route.needs_catalog && route.target == Target::kAny) {
      route.target = Target::kPrimary;
      route.reason = "relation " + rel + " not yet known";
    }
  }
  return route;
}

std::vector<std::string> splitPatternList(std::string_view list) {
  std::vector<std::string> out;
  std::string current;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] == '\\' && i + 1 < list.size() && list[i + 1] == ';') {
      current += ';';
      ++i;
    } else if (list[i] == ';') {
      if (!trim(current).empty()) out.emplace_back(trim(current));
      current.clear();
    } else {
      current += list[i];
    }
  }
  if (!trim(current).empty()) out.emplace_back(trim(current));
  return out;
}

}  // namespace pgpilot::router
