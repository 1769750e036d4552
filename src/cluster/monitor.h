// Monitor: finds each node's role and reachability and publishes the Topology.
//
// Purpose: at start, probe every node (connect, authenticate, SELECT pg_is_in_recovery())
// and publish which one is the primary; afterwards re-probe every health_check_period
// (or every second while no primary is known). This monitor only observes; the
// failover controller (issue 4) will act on what it sees.
// Owner: the control thread's io_context.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "auth/auth.h"
#include "cluster/topology.h"
#include "config/config.h"
#include "net/stream.h"
#include "pool/server_conn.h"

namespace pgpilot::cluster {

struct ProbeResult {
  int node = 0;
  bool reachable = false;
  Role role = Role::kUnknown;
  uint64_t lsn = 0;
  // Primary only: pg_stat_replication rows (application_name -> state, sync_state).
  std::vector<std::array<std::string, 3>> replication;
  std::string error;
};

class Monitor {
 public:
  Monitor(asio::io_context& ctx, ClusterState& state, std::shared_ptr<const config::Config> cfg,
          std::shared_ptr<const auth::PasswordFile> passwords);

  // Probes every node once and publishes the result.
  net::Task<void> probeAll();
  // Runs until stop(): periodic probes.
  net::Task<void> run();
  void stop();
  // A reload's configuration and password file (health-check settings and credentials;
  // control thread). Nodes come from the published Topology.
  void setConfig(std::shared_ptr<const config::Config> cfg,
                 std::shared_ptr<const auth::PasswordFile> passwords);

 private:
  net::Task<ProbeResult> probe(const config::BackendConfig& b);
  pool::Credentials credentials() const;

  asio::io_context& ctx_;
  ClusterState& state_;
  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const auth::PasswordFile> passwords_;
  asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace pgpilot::cluster
