// Probe: one health check of one node, and the small SQL conversations the failover
// controller has with servers (promote, repoint, switch synchronous replication).
//
// Purpose: a probe connects and authenticates exactly like a client session would
// (pool::connectServer), asks the server its role and WAL positions, and classifies what
// went wrong when it fails: a refused or reset connection is a certain failure, a timeout
// an uncertain one (the node may only be slow), and an error the server itself sent
// (too many connections, bad password) proves the node is alive.
// Owner: the control thread. Stateless functions; each call opens and closes its own
// connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "cluster/topology.h"
#include "config/config.h"
#include "net/stream.h"
#include "pool/server_conn.h"

namespace pgpilot::cluster {

// One row of the primary's pg_stat_replication.
struct ReplicationRow {
  std::string application_name;
  std::string state;       // streaming, catchup, ...
  std::string sync_state;  // async, potential, sync, quorum
  int sync_priority = 0;
};

struct ProbeResult {
  enum class Outcome {
    kOk,       // answered the role query
    kAlive,    // the server answered with an error: it is up (misconfigured or busy)
    kRefused,  // refused, reset, closed, or shutting down: certainly not serving
    kTimeout,  // no answer in time: uncertain
  };
  Outcome outcome = Outcome::kRefused;
  Role role = Role::kUnknown;
  uint64_t lsn = 0;          // current (primary) or replayed (standby) WAL position, bytes
  uint64_t receive_lsn = 0;  // standby: last WAL received
  uint64_t replay_lsn = 0;   // standby: last WAL replayed
  std::string synchronous_standby_names;
  // Standby: its WAL receiver (pg_stat_wal_receiver), empty when not running.
  std::string wal_receiver_status;
  std::string sender_host;
  int sender_port = 0;
  std::vector<ReplicationRow> replication;  // primary only
  std::string error;
  std::chrono::milliseconds duration{0};

  bool answered() const { return outcome == Outcome::kOk || outcome == Outcome::kAlive; }
};

std::string_view outcomeName(ProbeResult::Outcome o);

// Where and as whom the control thread connects.
struct ProbeTarget {
  config::BackendConfig backend;
  pool::Credentials credentials;
  std::string database;
  // Bounds the connection phase of probeNode (connect_timeout); 0 = the probe's timeout.
  std::chrono::milliseconds connect_timeout{0};
};

// The target the control thread's checks use for `backend` (the failover controller's
// health checks and the lag monitor): with the node's health-check settings (per-node
// overrides, config::healthCheckSettings), health_check_user (else sr_check_user, else
// postgres), health_check_password (else sr_check_password, else the user's pool_passwd
// entry), health_check_database, connect_timeout.
ProbeTarget probeTarget(const config::Config& cfg, const auth::PasswordFile* passwords,
                        const config::BackendConfig& backend);

net::Task<ProbeResult> probeNode(asio::any_io_executor ex, const ProbeTarget& target,
                                 std::chrono::milliseconds timeout);

// Runs statements one after another on a new connection (for promote, ALTER SYSTEM ...);
// returns the rows of the last one, or the first error.
net::Task<std::expected<pool::ServerConn::Result, pool::ServerError>> runOnNode(
    asio::any_io_executor ex, const ProbeTarget& target, const std::vector<std::string>& sql,
    std::chrono::milliseconds timeout);

}  // namespace pgpilot::cluster
