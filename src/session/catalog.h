// CatalogCache: what sessions of one worker learned from the primary's catalog — function
// volatility (pg_proc) and relation persistence (pg_class) — for the routing policy
// (pgpool-II's relcache).
//
// Purpose: Policy::decide() asks a router::CatalogView; unknown names make it answer
// "primary" and ask for a lookup. The session then runs one query on its primary connection
// for all unknown names (lookupQuery / store) and decides again. Entries are keyed by
// database, user and search_path (names are resolved as the session resolves them) and
// expire after relcache_expire (0 = never).
// Thread-safety: none; one cache per worker thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pool/server_conn.h"
#include "router/policy.h"

namespace pgpilot::session {

class CatalogCache {
 public:
  void setExpiry(std::chrono::milliseconds e) { expiry_ = e; }
  std::optional<char> volatility(const std::string& ctx, std::string_view fn) const;
  std::optional<char> persistence(const std::string& ctx, std::string_view rel) const;

  // The lookup query for the names of `functions` and `relations` that the cache does not
  // know (empty string: nothing to look up). One row per name: kind ('f'/'r'), name, value.
  std::string lookupQuery(const std::string& ctx, const std::vector<std::string>& functions,
                          const std::vector<std::string>& relations) const;
  void store(const std::string& ctx, const pool::ServerConn::Result& r);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    char value = 0;
    std::chrono::steady_clock::time_point at;
  };
  // Looks up ctx '\0' kind name. The key is built in scratch_ (the cache belongs to one
  // worker thread), so a lookup on the query path allocates nothing once warm.
  std::optional<char> get(const std::string& ctx, char kind, std::string_view name) const;
  std::unordered_map<std::string, Entry> entries_;
  mutable std::string scratch_;
  std::chrono::milliseconds expiry_{0};
};

// The CatalogView of one session: the worker's cache in the session's context. Temporary
// tables are tracked by the session itself (one that creates one stays on the primary), so
// isTempTable() is always false here.
class SessionCatalog final : public router::CatalogView {
 public:
  SessionCatalog(const CatalogCache& cache, const std::string& ctx) : cache_(cache), ctx_(ctx) {}
  std::optional<char> functionVolatility(std::string_view name) const override {
    return cache_.volatility(ctx_, name);
  }
  std::optional<bool> isTempTable(std::string_view) const override { return false; }
  std::optional<bool> isUnloggedTable(std::string_view rel) const override {
    auto p = cache_.persistence(ctx_, rel);
    if (!p) return std::nullopt;
    return *p == 'u';
  }

 private:
  const CatalogCache& cache_;
  const std::string& ctx_;
};

}  // namespace pgpilot::session

namespace pgpilot::router {
// What the session assumes when the primary cannot be asked: every function stable, no
// temporary or unlogged tables.
class PermissiveCatalog final : public CatalogView {
 public:
  std::optional<char> functionVolatility(std::string_view) const override { return 's'; }
  std::optional<bool> isTempTable(std::string_view) const override { return false; }
  std::optional<bool> isUnloggedTable(std::string_view) const override { return false; }
};
}  // namespace pgpilot::router
