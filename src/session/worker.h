// Worker: one thread with its own io_context, SO_REUSEPORT listeners, client sessions and
// server-connection pool. A client session and its server connections live on one worker
// for their whole life, so the query path takes no locks.
//
// Other threads talk to a worker only by posting to its io_context (cancel requests,
// evictions, shutdown).
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "admin/show.h"
#include "common/error_classes.h"
#include "common/histogram.h"
#include "net/unix_listener.h"
#include "pool/pool.h"
#include "router/cache.h"
#include "router/policy.h"
#include "session/catalog.h"
#include "session/shared.h"

namespace pgpilot::session {

class ClientSession;

class Worker {
 public:
  Worker(Shared& shared, int index);
  ~Worker();

  // Opens the listeners (throws nothing; returns an error text on failure). Worker 0 also
  // listens on admin_port when it is set.
  std::expected<void, std::string> listen();
  // Accepts client connections on `listener` too (unix_socket_directories; opened once
  // by the app, shared by every worker).
  // Unix-domain sockets have no SO_REUSEPORT, and a listening socket shared by every
  // worker's epoll wakes all of them for each connection. So one worker accepts on it and
  // deals the connections round-robin to `workers` (every worker, itself included).
  std::expected<void, std::string> listenUnix(const net::UnixListener& listener,
                                              std::vector<Worker*> workers);
  void start();
  // Stops accepting new clients (smart shutdown).
  void stopAccepting();
  // Ends every client session now (fast shutdown).
  void closeSessions();
  // A node was detached: close pooled and in-use connections to it (thread-safe: posts).
  void closeNode(int node);
  void stop();
  void join();

  asio::io_context& context() { return ctx_; }
  pool::Pool& pool() { return *pool_; }
  Shared& shared() { return shared_; }
  int index() const { return index_; }
  size_t sessionCount() const { return session_count_.load(std::memory_order_relaxed); }
  // Statement latency through this worker (bumped by its sessions; read by /metrics).
  common::LatencyHistogram& latency() { return latency_; }
  // ErrorResponses sent to this worker's clients by SQLSTATE class (worker thread only:
  // bumped by its sessions, read by /metrics through a post).
  common::ErrorClassCounts& errorClasses() { return error_classes_; }
  // Statements this worker's sessions ran on a server besides their clients' own: the cost
  // of routing in round trips (worker thread only, like errorClasses).
  void countInternalQuery() { ++internal_queries_; }
  uint64_t internalQueries() const { return internal_queries_; }
  // The current cluster snapshot for the worker's synchronous code (cluster::TopologyView:
  // valid until the next call; never hold it across a co_await).
  const cluster::Topology& topology() {
    if (!topology_view_) topology_view_.emplace(*shared_.cluster);
    return topology_view_->get();
  }

  // Session registry (worker thread only): cancel keys and shutdown.
  int32_t registerSession(ClientSession* s);
  void unregisterSession(int32_t pid);
  ClientSession* findSession(int32_t pid);
  int32_t randomKey();

  // Routing (load_balance_mode): this worker's classification cache, the policy built from
  // the configuration (null if its regexes did not compile: everything goes to the
  // primary), catalog lookups and the random source for choosing nodes by weight.
  router::ClassificationCache& classCache() { return class_cache_; }
  // Built from `cfg` (rebuilt when a session brings a newer configuration after a reload).
  const router::Policy* policy(const std::shared_ptr<const config::Config>& cfg);
  CatalogCache& catalog() { return catalog_; }
  std::mt19937& rng() { return rng_; }

  // Handles a CancelRequest that arrived on any worker.
  static void routeCancel(Shared& shared, int32_t pid, int32_t key);

  // Applies a reloaded configuration's pool settings (posted to the worker; any thread).
  void applyConfig(std::shared_ptr<const config::Config> cfg);

  // Admin console snapshots (worker thread only).
  std::vector<admin::SessionRow> sessionRows() const;
  admin::WorkerRow workerRow() const;
  // Idle server connections per pool key in this worker's pool.
  std::vector<admin::PoolRow> idleRows() const;

 private:
  template <typename Acceptor>
  net::Task<void> acceptLoop(Acceptor& acceptor, bool admin);
  void startSession(net::Stream client, bool admin);
  // Starts a client session on a connected Unix-domain socket (this worker's thread).
  void startLocalSession(asio::local::stream_protocol::socket sock);
  // Where the next Unix-socket connection goes (this worker or another one's thread).
  void handOffLocal(asio::local::stream_protocol::socket sock);
  std::expected<void, std::string> listenOn(const std::vector<std::string>& addresses, int port,
                                            bool admin);
  net::Task<void> reapLoop();

  Shared& shared_;
  int index_;
  asio::io_context ctx_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::unique_ptr<net::tcp::acceptor>> acceptors_;
  std::vector<std::unique_ptr<net::tcp::acceptor>> admin_acceptors_;
  std::vector<std::unique_ptr<asio::local::stream_protocol::acceptor>> unix_acceptors_;
  std::vector<Worker*> unix_workers_;  // who gets this worker's Unix-socket connections
  size_t next_unix_worker_ = 0;
  std::unique_ptr<pool::Pool> pool_;
  std::unordered_map<int32_t, ClientSession*> sessions_;
  std::atomic<size_t> session_count_{0};
  uint32_t next_pid_ = 1;
  std::mt19937 rng_;
  std::thread thread_;
  asio::steady_timer reap_timer_;
  common::LatencyHistogram latency_;
  common::ErrorClassCounts error_classes_;
  uint64_t internal_queries_ = 0;
  std::optional<cluster::TopologyView> topology_view_;
  router::ClassificationCache class_cache_{4096};
  std::optional<router::Policy> policy_;
  std::shared_ptr<const config::Config> policy_cfg_;
  CatalogCache catalog_;
};

// pid encoding in BackendKeyData: the worker index in the high bits, so a CancelRequest
// can be sent to the right worker without any shared lookup table.
inline constexpr int kPidWorkerShift = 22;

}  // namespace pgpilot::session
