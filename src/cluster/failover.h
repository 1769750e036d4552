// FailoverController: health checks, replication monitoring and automatic failover.
//
// Purpose: the control thread's owner of cluster state. One health-check loop per node
// probes it (connect, authenticate, role + WAL positions); its verdicts move nodes
// between up and down, and losing the primary starts a failover: choose the candidate
// (failover_candidate_policy), refuse if it could lack synchronously acknowledged commits,
// promote it (built-in pg_promote() or failover_command), wait until it leaves recovery,
// publish the new Topology, repoint the other standbys (built-in primary_conninfo update
// or follow_primary_command) and fix synchronous_standby_names. Node status survives
// restarts in the status file, so a detached node (e.g. an old primary) is never used
// again until an operator attaches it.
//
// Failure semantics (ARCHITECTURE.md, FAULTS.md 3-5): a refused/reset connection is a
// certain failure and counts at once; a timeout is uncertain: it is always retried at
// least once, so one slow answer under load never detaches a node.
//
// Owner: the control thread's io_context. submit() and reportBackendError() may be called
// from any thread (they post). Everything else runs on the control thread.
//
//   FailoverController fc(ctx, state, cfg, passwords);
//   co_await fc.start();   // status file, first probe, primary
//   fc.run();              // health-check loops
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "cluster/control.h"
#include "cluster/failover_policy.h"
#include "cluster/probe.h"
#include "cluster/slots.h"
#include "cluster/topology.h"
#include "config/config.h"
#include "net/stream.h"

namespace pgpilot::cluster {

class FailoverController : public Control {
 public:
  FailoverController(asio::io_context& ctx, ClusterState& state,
                     std::shared_ptr<const config::Config> cfg,
                     std::shared_ptr<const auth::PasswordFile> passwords);
  ~FailoverController() override;

  // Loads the status file, probes every node once and publishes the first Topology.
  net::Task<void> start();
  // Starts one health-check loop per node; they run until stop().
  void run();
  void stop();

  // Control: attach, detach, promote, switchover (other kinds are refused).
  void submit(Command cmd, CommandCallback done) override;
  // A session saw an I/O error on a query connection to `node`: check it now.
  void reportBackendError(int node);
  // Holds (true) or releases (false) new statements; set by the application (switchover).
  void setHoldHook(std::function<void(bool)> hook) { hold_hook_ = std::move(hook); }
  // Counts client sessions inside a transaction or running a statement (switchover drain).
  void setBusyHook(std::function<net::Task<int>()> hook) { busy_hook_ = std::move(hook); }
  // A reloaded configuration and password file (control thread): health-check settings,
  // credentials, failover settings; new backends get a health-check loop.
  void setConfig(std::shared_ptr<const config::Config> cfg,
                 std::shared_ptr<const auth::PasswordFile> passwords);
  // Called (control thread) when a node is detached, so workers drop connections to it.
  void setNodeDownHook(std::function<void(int)> hook) { node_down_hook_ = std::move(hook); }

 private:
  struct NodeRuntime;
  using Clock = std::chrono::steady_clock;

  // Health checking.
  net::Task<void> healthLoop(int node);
  net::Task<ProbeResult> checkWithRetries(int node);
  net::Task<void> onProbe(int node, const ProbeResult& r);
  net::Task<void> checkRole(int node, const ProbeResult& r);
  void rememberSync(const ProbeResult& primary_probe);
  std::chrono::milliseconds probePeriod(int node) const;
  // A probe's timeout: `node`'s health-check settings (per-node overrides), or the global
  // ones for node -1.
  std::chrono::milliseconds probeTimeout(int node = -1) const;
  ProbeTarget target(int node) const;
  void recordStats(int node, const ProbeResult& r, int retries);

  // State changes (each publishes a new Topology and saves the status file).
  template <typename F>
  void publish(F&& change);
  void setStatus(int node, NodeStatus status, std::string_view why);
  void setPrimary(int node);  // -1: no primary
  ProbeResult& lastProbe(int node);
  void updateReplicationView(Topology& t) const;

  // Failover and its steps.
  net::Task<void> failover(int failed, std::string reason, std::optional<int> forced, bool force);
  net::Task<int> pickCandidate(int failed, std::optional<int> forced, bool force);
  net::Task<bool> promote(int candidate, int failed);
  net::Task<bool> waitForPrimary(int candidate, std::chrono::milliseconds timeout);
  net::Task<std::string> repointStandby(int standby, int primary);  // '' or the error
  net::Task<void> followNewPrimary(int standby, int primary, int old_primary, std::string how);
  net::Task<bool> waitStreamingFrom(int standby, int primary, std::chrono::milliseconds timeout);
  net::Task<void> configureSyncOnNewPrimary(int primary);
  net::Task<void> manageSyncReplication();
  net::Task<bool> setSyncNames(int primary, const std::string& value);
  net::Task<int> runCommand(const std::string& command, std::chrono::milliseconds timeout);
  std::vector<Candidate> candidates(int failed) const;
  PlaceholderValues placeholders(int failed, int new_primary, int old_primary) const;

  // Operator commands.
  net::Task<CommandResult> execute(Command cmd);
  net::Task<CommandResult> attach(int node);
  net::Task<CommandResult> detach(int node);
  net::Task<CommandResult> promoteCommand(int node, bool force);
  net::Task<CommandResult> switchover(int node);

  // Planned switchover and its steps (switchover.cc).
  net::Task<CommandResult> switchoverSteps(int old_primary, int target, Clock::time_point t0);
  net::Task<int> drainSessions(std::chrono::milliseconds timeout);
  net::Task<bool> waitReplayed(int node, uint64_t lsn, Clock::time_point deadline);
  net::Task<std::optional<ProbeResult>> waitBackAsStandby(int node, Clock::time_point deadline);
  net::Task<CommandResult> switchoverRollback(int old_primary, int target, std::string why,
                                              std::string undo);

  // Status file (pgpool_status semantics, JSON).
  std::string statusPath() const;
  void loadStatusFile();
  void saveStatusFile() const;

  const NodeState* node(int id) const;
  std::shared_ptr<const Topology> topo() const { return state_.topology(); }

  asio::io_context& ctx_;
  ClusterState& state_;
  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const auth::PasswordFile> passwords_;
  mutable std::shared_ptr<const Topology> view_;  // keeps node()'s answer alive
  std::map<int, std::unique_ptr<NodeRuntime>> runtime_;
  std::map<int, NodeStatus> saved_status_;  // from the status file
  std::function<void(bool)> hold_hook_;
  std::function<net::Task<int>()> busy_hook_;
  std::function<void(int)> node_down_hook_;
  bool stopped_ = false;
  bool started_loops_ = false;
  int saved_primary_ = -1;
  std::vector<ReplicationRow> last_replication_;  // the primary's pg_stat_replication
  bool failover_running_ = false;
  bool switchover_running_ = false;
  int switchover_from_ = -1;  // the old primary while a switchover restarts it
  // synchronous_standby_names as configured before pgpilot switched the primary to
  // asynchronous (sync_replication_policy = availability); '' while not switched.
  std::string saved_sync_names_;
  // The primary's synchronous standbys (application names) and s_s_n when last seen: what a
  // failover must not lose.
  std::vector<std::string> last_sync_standbys_;
  std::string last_sync_names_;
  SlotManager slots_;  // replication_slots (cluster/slots.h)
};

}  // namespace pgpilot::cluster
