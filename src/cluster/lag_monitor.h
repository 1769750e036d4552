// ReplicationLagMonitor: replication lag in seconds per standby.
//
// Purpose: every sr_check_period, ask the current primary how far behind each standby's
// replay is in time (pg_stat_replication.replay_lag) and store it in ClusterState
// (replicationLagSeconds), where /metrics, SHOW pool_nodes and /api/nodes read it. The byte
// distance (replication_delay) comes from the failover controller's probes; this adds the
// time dimension.
//
// Why replay_lag on the primary and not now() - pg_last_xact_replay_timestamp() on the
// standby: the standby-side figure is the age of the last replayed commit, so it grows
// without bound while the primary is idle although the standby is fully caught up (and it
// compares two hosts' clocks). replay_lag is measured by the primary's WAL sender from its
// own clock: the time between the primary flushing WAL and the standby reporting it
// replayed; while a standby's replay is stuck (paused, conflicting) and the primary writes,
// it keeps growing. When the standby has caught up and the primary is idle, PostgreSQL
// shows NULL: reported as 0 when the standby's replay_lsn has reached the primary's
// current WAL position, unknown otherwise.
//
// Rows are matched to nodes by backend_application_nameN (the standby's application_name
// in primary_conninfo), as for replication_state; a standby without one, not streaming,
// or down has no value (no sample in /metrics). The primary's own lag is 0. The query
// needs a superuser or pg_monitor / pg_read_all_stats member (health_check_user).
//
// Owner: the control thread (one coroutine; one short connection to the primary per
// period).
//
//   ReplicationLagMonitor lag(ctx, state, cfg, passwords);
//   lag.start();  // after the first topology is published
//   lag.stop();
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "cluster/topology.h"
#include "config/config.h"
#include "net/stream.h"

namespace pgpilot::cluster {

// One row of the primary's pg_stat_replication as the monitor reads it.
struct LagRow {
  std::string application_name;
  std::optional<double> seconds;  // null: unknown
};

// What each node's lag is, given the primary's rows: 0 for the primary, the matching row's
// seconds for a standby that is up and answered its last probe, nullopt otherwise (every
// node nullopt without a primary).
std::map<int, std::optional<double>> lagByNode(const Topology& t, const std::vector<LagRow>& rows);

class ReplicationLagMonitor {
 public:
  ReplicationLagMonitor(asio::io_context& ctx, ClusterState& state,
                        std::shared_ptr<const config::Config> cfg,
                        std::shared_ptr<const auth::PasswordFile> passwords);

  void start();
  void stop();
  // A reloaded configuration (control thread): period, credentials.
  void setConfig(std::shared_ptr<const config::Config> cfg,
                 std::shared_ptr<const auth::PasswordFile> passwords);

 private:
  net::Task<void> loop();
  net::Task<void> sample();
  void store(const std::map<int, std::optional<double>>& lags);

  asio::io_context& ctx_;
  ClusterState& state_;
  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const auth::PasswordFile> passwords_;
  asio::steady_timer timer_;
  bool stopped_ = false;
  bool query_failure_reported_ = false;
};

}  // namespace pgpilot::cluster
