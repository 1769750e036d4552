#include "pool/pool.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace pgpilot::pool {

size_t PoolKeyHash::operator()(const PoolKey& k) const {
  size_t h = std::hash<int>{}(k.node);
  auto mix = [&h](const std::string& s) {
    h ^= std::hash<std::string>{}(s) + 0x9e3779b9 + (h << 6) + (h >> 2);
  };
  mix(k.user);
  mix(k.database);
  mix(k.options);
  return h;
}

bool PoolLimits::tryReserve(const PoolKey& key, int max) {
  std::lock_guard lock(mu_);
  int& c = counts_[key];
  if (c >= max) return false;
  ++c;
  ++total_;
  return true;
}

void PoolLimits::release(const PoolKey& key) {
  std::lock_guard lock(mu_);
  auto it = counts_.find(key);
  if (it == counts_.end() || it->second == 0) return;
  --it->second;
  --total_;
}

int PoolLimits::count(const PoolKey& key) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

int PoolLimits::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

std::vector<std::string> splitResetQueries(std::string_view list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(';', pos);
    if (end == std::string_view::npos) end = list.size();
    std::string_view q = list.substr(pos, end - pos);
    while (!q.empty() && std::isspace(static_cast<unsigned char>(q.front()))) q.remove_prefix(1);
    while (!q.empty() && std::isspace(static_cast<unsigned char>(q.back()))) q.remove_suffix(1);
    if (!q.empty()) out.emplace_back(q);
    pos = end + 1;
  }
  return out;
}

Pool::Pool(asio::any_io_executor ex, PoolLimits& limits, std::shared_ptr<asio::ssl::context> tls,
           std::function<void(const PoolKey&)> evict_elsewhere)
    : ex_(ex),
      limits_(limits),
      tls_(std::move(tls)),
      evict_elsewhere_(std::move(evict_elsewhere)),
      released_(ex) {}

net::Task<std::expected<std::unique_ptr<ServerConn>, ServerError>> Pool::acquire(
    const PoolKey& key, const config::BackendConfig& backend, const Params& startup,
    const Credentials& creds) {
  const auto deadline = Clock::now() + settings_.wait_timeout;
  bool counted_wait = false;
  // Counts this acquire in waiting() while it waits, whichever way it ends.
  struct WaitMark {
    size_t& n;
    bool on = false;
    ~WaitMark() {
      if (on) --n;
    }
  } mark{waiting_};
  for (;;) {
    auto it = idle_.find(key);
    while (it != idle_.end() && !it->second.empty()) {
      auto conn = std::move(it->second.back());
      it->second.pop_back();
      // An idle server that closed (restart, idle kill) or spoke is unusable.
      if (conn->stream().peerClosedOrReadable()) {
        discard(std::move(conn), key);
        continue;
      }
      ++stats_.reused;
      conn->touch();
      co_return conn;
    }
    if (limits_.tryReserve(key, settings_.max_pool)) {
      auto conn = co_await connectServer(ex_, backend, startup, creds, settings_.connect_timeout,
                                         tls_.get(), settings_.sslmode);
      if (!conn) {
        limits_.release(key);
        released_.notify();
        co_return std::unexpected(conn.error());
      }
      ++stats_.opened;
      co_return std::move(*conn);
    }
    // The process-wide limit is reached: ask other workers to give back an idle slot and
    // wait for a release here. Bounded by pool_wait_timeout.
    if (!counted_wait) {
      ++stats_.waits;
      counted_wait = true;
      ++waiting_;
      mark.on = true;
    }
    if (evict_elsewhere_) evict_elsewhere_(key);
    const auto now = Clock::now();
    if (now >= deadline) {
      ++stats_.wait_timeouts;
      co_return std::unexpected(makeError(
          "53300", fmt::format("all {} server connections for user \"{}\" database \"{}\" on "
                               "node {} are in use (max_pool); waited {} ms",
                               settings_.max_pool, key.user, key.database, key.node,
                               settings_.wait_timeout.count())));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    co_await released_.wait(std::min(left, std::chrono::milliseconds(50)));
  }
}

void Pool::release(std::unique_ptr<ServerConn> conn, const PoolKey& key, bool clean) {
  if (!clean || !conn->pending().empty()) {
    discard(std::move(conn), key);
    return;
  }
  asio::co_spawn(ex_, resetAndKeep(std::move(conn), key), asio::detached);
}

net::Task<void> Pool::resetAndKeep(std::unique_ptr<ServerConn> conn, PoolKey key) {
  // A client that vanished inside a transaction must not leave it open for the next one.
  if (conn->txStatus() != 'I') {
    auto r = co_await conn->query("ROLLBACK", settings_.connect_timeout);
    if (!r || conn->txStatus() != 'I') {
      ++stats_.reset_failures;
      discard(std::move(conn), key);
      co_return;
    }
  }
  for (const auto& q : settings_.reset_queries) {
    auto r = co_await conn->query(q, settings_.connect_timeout);
    if (!r) {
      ++stats_.reset_failures;
      discard(std::move(conn), key);
      co_return;
    }
  }
  const auto now = Clock::now();
  if (settings_.life_time.count() > 0 && now - conn->createdAt() > settings_.life_time) {
    discard(std::move(conn), key);
    co_return;
  }
  conn->touch();
  idle_[key].push_back(std::move(conn));
  released_.notify();
}

void Pool::discard(std::unique_ptr<ServerConn> conn, const PoolKey& key) {
  if (!conn) return;
  if (conn->stream().isOpen()) {
    // Terminate politely so the server does not log an unexpected EOF; best effort.
    // (A TLS connection cannot take raw bytes; closing is enough there.)
    if (!conn->stream().isTls()) {
      std::string out;
      protocol::buildTerminate(out);
      std::error_code ignored;
      asio::write(conn->stream().socket(), asio::buffer(out), ignored);
    }
    conn->stream().close();
  }
  ++stats_.closed;
  limits_.release(key);
  released_.notify();
}

void Pool::evictOne(const PoolKey& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return;
  auto conn = std::move(it->second.front());
  it->second.pop_front();
  discard(std::move(conn), key);
}

void Pool::closeNode(int node) {
  for (auto& [key, list] : idle_) {
    if (key.node != node) continue;
    while (!list.empty()) {
      auto conn = std::move(list.back());
      list.pop_back();
      discard(std::move(conn), key);
    }
  }
}

void Pool::closeAll() {
  for (auto& [key, list] : idle_) {
    while (!list.empty()) {
      auto conn = std::move(list.back());
      list.pop_back();
      discard(std::move(conn), key);
    }
  }
}

void Pool::reap() {
  const auto now = Clock::now();
  for (auto& [key, list] : idle_) {
    for (auto it = list.begin(); it != list.end();) {
      ServerConn& c = **it;
      const bool too_old =
          settings_.life_time.count() > 0 && now - c.createdAt() > settings_.life_time;
      const bool idle_long =
          settings_.idle_timeout.count() > 0 && now - c.lastUsed() > settings_.idle_timeout;
      if (too_old || idle_long || c.stream().peerClosedOrReadable()) {
        auto conn = std::move(*it);
        it = list.erase(it);
        discard(std::move(conn), key);
      } else {
        ++it;
      }
    }
  }
}

size_t Pool::idleCount() const {
  size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

}  // namespace pgpilot::pool

namespace pgpilot::pool {

std::vector<std::pair<PoolKey, int>> PoolLimits::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<PoolKey, int>> out;
  for (const auto& [key, n] : counts_) {
    if (n > 0) out.emplace_back(key, n);
  }
  return out;
}

std::vector<std::pair<PoolKey, size_t>> Pool::idleByKey() const {
  std::vector<std::pair<PoolKey, size_t>> out;
  for (const auto& [key, list] : idle_) {
    if (!list.empty()) out.emplace_back(key, list.size());
  }
  return out;
}

}  // namespace pgpilot::pool
