// Process-wide state shared by every worker: configuration, authentication data, TLS
// contexts, the cluster snapshot, pool limits and the worker list.
//
// Everything here is either immutable after start, an atomic (the configuration, password
// file and hba rules are immutable snapshots that a reload swaps as a whole: readers take
// one with config() / passwordFile() / hbaRules() and keep it), or has its own small lock
// that is never taken on the query path (PoolLimits: only when a server connection is
// opened or closed).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "auth/auth.h"
#include "cluster/control.h"
#include "cluster/topology.h"
#include "config/config.h"
#include "net/stream.h"
#include "pool/pool.h"

namespace pgpilot::session {

class Worker;

struct Shared {
  // Swapped by a reload (control thread). A session takes one snapshot when it starts.
  std::atomic<std::shared_ptr<const config::Config>> cfg;
  std::atomic<std::shared_ptr<const auth::PasswordFile>> passwords;  // null: no password file
  std::atomic<std::shared_ptr<const auth::HbaRules>> hba;            // null: enable_pool_hba = off
  std::shared_ptr<asio::ssl::context> client_tls;                    // null: ssl = off
  std::shared_ptr<asio::ssl::context> server_tls;
  cluster::ClusterState* cluster = nullptr;
  cluster::Control* control = nullptr;  // operator commands (null in unit tests)
  // A query-path connection to a node failed: the failover controller checks it at once.
  std::function<void(int node)> report_backend_error;
  pool::PoolLimits limits;
  std::vector<Worker*> workers;  // fixed before workers start
  std::atomic<int> client_count{0};
  std::atomic<uint64_t> session_seq{0};
  std::atomic<bool> accepting{true};
  // How long a session waits for a primary when none is known (failover_hold_timeout).
  std::chrono::milliseconds primary_wait{30000};
  // PAUSE and a planned switchover set this: a session about to start a new statement
  // outside a transaction waits (polling; bounded by failover_hold_timeout) until cleared.
  std::atomic<bool> hold_new_statements{false};
  // When the process started (SHOW pool_processes).
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

  std::shared_ptr<const config::Config> config() const {
    return cfg.load(std::memory_order_acquire);
  }
  std::shared_ptr<const auth::PasswordFile> passwordFile() const {
    return passwords.load(std::memory_order_acquire);
  }
  std::shared_ptr<const auth::HbaRules> hbaRules() const {
    return hba.load(std::memory_order_acquire);
  }
};

}  // namespace pgpilot::session
