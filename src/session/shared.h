// Process-wide state shared by every worker: configuration, authentication data, TLS
// contexts, the cluster snapshot, pool limits and the worker list.
//
// Everything here is either immutable after start (shared_ptr<const T>), atomic, or has its
// own small lock that is never taken on the query path (PoolLimits: only when a server
// connection is opened or closed).
#pragma once

#include <atomic>
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
  std::shared_ptr<const config::Config> cfg;
  std::shared_ptr<const auth::PasswordFile> passwords;  // null: no password file
  std::shared_ptr<const auth::HbaRules> hba;            // null: enable_pool_hba = off
  std::shared_ptr<asio::ssl::context> client_tls;       // null: ssl = off
  std::shared_ptr<asio::ssl::context> server_tls;
  cluster::ClusterState* cluster = nullptr;
  cluster::Control* control = nullptr;  // operator commands (null in unit tests)
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
};

}  // namespace pgpilot::session
