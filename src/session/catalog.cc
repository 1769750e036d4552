#include "session/catalog.h"

#include "common/sql_quote.h"

namespace pgpilot::session {
namespace {

// "Schema.name" as the classifier reports it (parts already case-resolved) -> a text that
// to_regclass() resolves to the same object: every part quoted.
std::string quotedName(std::string_view name) {
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t dot = name.find('.', start);
    out +=
        common::quoteIdent(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    out += '.';
    start = dot + 1;
  }
  return out;
}

void buildKey(std::string& k, const std::string& ctx, char kind, std::string_view name) {
  k.assign(ctx);
  k += '\0';
  k += kind;
  k += name;
}

std::string key(const std::string& ctx, char kind, std::string_view name) {
  std::string k;
  buildKey(k, ctx, kind, name);
  return k;
}

}  // namespace

std::optional<char> CatalogCache::get(const std::string& ctx, char kind,
                                      std::string_view name) const {
  buildKey(scratch_, ctx, kind, name);
  auto it = entries_.find(scratch_);
  if (it == entries_.end()) return std::nullopt;
  if (expiry_.count() > 0 && std::chrono::steady_clock::now() - it->second.at > expiry_) {
    return std::nullopt;
  }
  return it->second.value;
}

std::optional<char> CatalogCache::volatility(const std::string& ctx, std::string_view fn) const {
  return get(ctx, 'f', fn);
}

std::optional<char> CatalogCache::persistence(const std::string& ctx, std::string_view rel) const {
  return get(ctx, 'r', rel);
}

std::string CatalogCache::lookupQuery(const std::string& ctx,
                                      const std::vector<std::string>& functions,
                                      const std::vector<std::string>& relations) const {
  std::string sql;
  auto add = [&](std::string part) {
    if (!sql.empty()) sql += " UNION ALL ";
    sql += part;
  };
  for (const std::string& f : functions) {
    if (volatility(ctx, f)) continue;
    const size_t dot = f.rfind('.');
    const std::string_view fname =
        dot == std::string::npos ? std::string_view(f) : std::string_view(f).substr(dot + 1);
    const std::string_view schema =
        dot == std::string::npos ? std::string_view() : std::string_view(f).substr(0, dot);
    // Volatile if any overload is; a function that does not exist counts as volatile.
    add("SELECT 'f', " + common::quoteLiteral(f) +
        ", (SELECT CASE WHEN bool_or(p.provolatile = 'v') OR count(*) = 0 THEN 'v' "
        "WHEN bool_or(p.provolatile = 's') THEN 's' ELSE 'i' END "
        "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = " +
        common::quoteLiteral(fname) +
        (schema.empty() ? std::string() : " AND n.nspname = " + common::quoteLiteral(schema)) +
        ")::text");
  }
  for (const std::string& r : relations) {
    if (persistence(ctx, r)) continue;
    // Not found (a CTE name, a table not created yet): 'n'.
    add("SELECT 'r', " + common::quoteLiteral(r) +
        ", coalesce((SELECT c.relpersistence FROM pg_catalog.pg_class c WHERE c.oid = "
        "pg_catalog.to_regclass(" +
        common::quoteLiteral(quotedName(r)) + ")), 'n')::text");
  }
  return sql;
}

void CatalogCache::store(const std::string& ctx, const pool::ServerConn::Result& r) {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& row : r.rows) {
    if (row.size() != 3 || !row[0] || !row[1] || !row[2] || row[2]->empty()) continue;
    entries_[key(ctx, (*row[0])[0], *row[1])] = Entry{(*row[2])[0], now};
  }
  if (entries_.size() > 100000) entries_.clear();  // bound: a workload of generated names
}

}  // namespace pgpilot::session
