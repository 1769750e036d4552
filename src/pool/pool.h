// Pool: the server connections of one worker, keyed by (node, user, database, options).
//
// Purpose: hand a session an authenticated server connection (an idle one after reset, or
// a new one within the limits), take it back when the session is done with it, reset it
// (ROLLBACK if needed, then reset_query_list) and keep it for the next session.
// Session pooling hands a connection out for a whole client session; transaction pooling
// (later) will call acquire/release around each transaction — the pool does not care.
// Owner: one worker thread (its io_context). Only PoolLimits is shared between workers.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "pool/server_conn.h"

namespace pgpilot::pool {

struct PoolKey {
  int node = 0;
  std::string user;
  std::string database;
  std::string options;  // the startup "options" parameter, if any
  bool operator==(const PoolKey&) const = default;
};

struct PoolKeyHash {
  size_t operator()(const PoolKey& k) const;
};

// The one cross-worker structure of the pool: how many server connections exist per key,
// so that max_pool is a limit for the whole process. Touched only when a server connection
// is opened or closed, never per query.
class PoolLimits {
 public:
  bool tryReserve(const PoolKey& key, int max);
  void release(const PoolKey& key);
  int count(const PoolKey& key) const;
  int total() const;
  // Every key with open connections and their count (SHOW pool_pools).
  std::vector<std::pair<PoolKey, int>> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<PoolKey, int, PoolKeyHash> counts_;
  int total_ = 0;
};

struct PoolSettings {
  int max_pool = 100;
  std::chrono::milliseconds wait_timeout{5000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds life_time{0};
  std::chrono::milliseconds idle_timeout{300000};
  std::vector<std::string> reset_queries{"DISCARD ALL"};
  config::ServerSslMode sslmode = config::ServerSslMode::kDisable;
};

struct PoolStats {
  uint64_t opened = 0;
  uint64_t closed = 0;
  uint64_t reused = 0;
  uint64_t waits = 0;
  uint64_t wait_timeouts = 0;
  uint64_t reset_failures = 0;
};

class Pool {
 public:
  // `evict_elsewhere` asks the other workers to close one idle connection of a key (used
  // when the process-wide limit is reached while other workers hold idle connections).
  Pool(asio::any_io_executor ex, PoolLimits& limits, std::shared_ptr<asio::ssl::context> tls,
       std::function<void(const PoolKey&)> evict_elsewhere);

  void setSettings(PoolSettings s) { settings_ = std::move(s); }
  const PoolSettings& settings() const { return settings_; }

  // Returns a connection for `key`: an idle one, or a new one opened with `startup`
  // parameters and `creds`. Waits up to wait_timeout when the limit is reached.
  net::Task<std::expected<std::unique_ptr<ServerConn>, ServerError>> acquire(
      const PoolKey& key, const config::BackendConfig& backend, const Params& startup,
      const Credentials& creds);

  // Takes a connection back. If it is at a message boundary it is reset (ROLLBACK if in a
  // transaction, then the reset queries) and kept; otherwise, or on any error, closed.
  void release(std::unique_ptr<ServerConn> conn, const PoolKey& key, bool clean);
  // Closes a connection for good.
  void discard(std::unique_ptr<ServerConn> conn, const PoolKey& key);

  // Closes one idle connection of `key`, if this worker has one (request from another
  // worker that needs the slot).
  void evictOne(const PoolKey& key);
  // Closes every idle connection to `node` (node detached or restarted).
  void closeNode(int node);
  void closeAll();
  // Closes idle connections past server_idle_timeout or connection_life_time.
  void reap();

  size_t idleCount() const;
  // Idle connections per key (SHOW pool_pools).
  std::vector<std::pair<PoolKey, size_t>> idleByKey() const;
  const PoolStats& stats() const { return stats_; }
  // Sessions waiting in acquire() right now because max_pool is reached.
  size_t waiting() const { return waiting_; }

 private:
  net::Task<void> resetAndKeep(std::unique_ptr<ServerConn> conn, PoolKey key);

  asio::any_io_executor ex_;
  PoolLimits& limits_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::function<void(const PoolKey&)> evict_elsewhere_;
  PoolSettings settings_;
  std::unordered_map<PoolKey, std::deque<std::unique_ptr<ServerConn>>, PoolKeyHash> idle_;
  net::Event released_;
  PoolStats stats_;
  size_t waiting_ = 0;
};

std::vector<std::string> splitResetQueries(std::string_view list);

}  // namespace pgpilot::pool
