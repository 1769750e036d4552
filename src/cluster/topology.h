// Cluster model: the nodes, their status and roles, published as immutable snapshots.
//
// Purpose: the control thread owns cluster state and publishes a new Topology whenever
// anything changes; worker threads read the current snapshot at each routing decision
// (an atomic shared_ptr load, no lock on the query path) and never modify it.
// NodeCounters are the only mutable shared data: relaxed atomic counters bumped by workers.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/events.h"
#include "config/config.h"

namespace pgpilot::cluster {

// pgpool's node status words: "up" (in use), "down" (detached), "waiting" (attached, no
// session has used it yet — we report up), "unused" (configured, never attached).
enum class NodeStatus { kUp, kDown, kUnused };
enum class Role { kPrimary, kStandby, kUnknown };

std::string_view statusName(NodeStatus s);
std::string_view roleName(Role r);

struct NodeState {
  config::BackendConfig backend;
  NodeStatus status = NodeStatus::kUp;
  Role role = Role::kUnknown;     // the role pgpilot uses the node for
  Role pg_role = Role::kUnknown;  // what the server itself said last time it was asked
  bool pg_up = false;             // the server answered the last probe
  // Replication, from the last probe (sr_check): the node's WAL position (current on the
  // primary, replayed on a standby), its distance behind the primary in bytes, and the
  // primary's pg_stat_replication view of it (matched by backend_application_name).
  uint64_t lsn = 0;
  uint64_t replication_delay = 0;
  std::string replication_state;
  std::string replication_sync_state;
  std::chrono::system_clock::time_point last_status_change = std::chrono::system_clock::now();

  // pgpool's backend_flag. ALWAYS_PRIMARY: an address that always leads to the primary
  // (e.g. Aurora's cluster endpoint), the primary by definition. heldByFlag(): pgpilot
  // never detaches or fails this node over (DISALLOW_TO_FAILOVER: something else, e.g.
  // Pacemaker, manages it; ALWAYS_PRIMARY: promoting another node would make a second
  // primary). flagName(): the flag that holds it, for messages.
  bool alwaysPrimary() const { return backend.flag == config::BackendFlag::kAlwaysPrimary; }
  bool heldByFlag() const { return !backend.allow_failover || alwaysPrimary(); }
  const char* flagName() const {
    return alwaysPrimary() ? "ALWAYS_PRIMARY" : "DISALLOW_TO_FAILOVER";
  }
};

struct Topology {
  uint64_t version = 0;
  std::vector<NodeState> nodes;
  int primary = -1;  // node id of the primary, -1 when none is known

  const NodeState* find(int id) const;
  const NodeState* primaryNode() const { return primary < 0 ? nullptr : find(primary); }
  // The node configured with ALWAYS_PRIMARY, or -1.
  int alwaysPrimaryNode() const;
};

inline constexpr int kMaxNodes = 128;

// Statement classes counted per node (pgpool's SHOW pool_backend_stats columns).
enum class StatementClass { kSelect, kInsert, kUpdate, kDelete, kDdl, kOther };

// What the first keyword of `sql` says (comments and leading blanks skipped; WITH and
// anything unknown is kOther). Cheap: no parse. The router may count with its own
// classification through NodeCounters::count() instead.
StatementClass firstKeywordClass(std::string_view sql);

// Per-node statistics bumped by workers (relaxed atomics; read by SHOW and /metrics).
struct NodeCounters {
  std::atomic<uint64_t> select_cnt{0};
  std::atomic<uint64_t> statements{0};
  std::atomic<uint64_t> server_errors{0};  // ErrorResponse of any severity from the server
  // SHOW pool_backend_stats: statements sent to the node by class, and the server's
  // ErrorResponses by severity.
  std::atomic<uint64_t> insert_cnt{0};
  std::atomic<uint64_t> update_cnt{0};
  std::atomic<uint64_t> delete_cnt{0};
  std::atomic<uint64_t> ddl_cnt{0};
  std::atomic<uint64_t> other_cnt{0};
  std::atomic<uint64_t> error_cnt{0};
  std::atomic<uint64_t> fatal_cnt{0};
  std::atomic<uint64_t> panic_cnt{0};

  // Bump helpers for the query path (one relaxed add each).
  void count(StatementClass c);
  void countStatement(std::string_view sql) { count(firstKeywordClass(sql)); }
  // `severity`: the ErrorResponse's (V) severity: ERROR, FATAL or PANIC.
  void countError(std::string_view severity);
};

// One node's NodeCounters summed over the workers' shards (ClusterState::totals).
struct NodeTotals {
  uint64_t select_cnt = 0;
  uint64_t statements = 0;
  uint64_t server_errors = 0;
  uint64_t insert_cnt = 0;
  uint64_t update_cnt = 0;
  uint64_t delete_cnt = 0;
  uint64_t ddl_cnt = 0;
  uint64_t other_cnt = 0;
  uint64_t error_cnt = 0;
  uint64_t fatal_cnt = 0;
  uint64_t panic_cnt = 0;
};

// Health-check statistics of one node (pgpool's SHOW pool_health_check_stats).
struct HealthStats {
  uint64_t total_count = 0;    // checks started
  uint64_t success_count = 0;  // checks that ended with a good answer
  uint64_t fail_count = 0;     // checks that ended in failure after all retries
  uint64_t skip_count = 0;     // checks skipped (node detached / unused)
  uint64_t retry_count = 0;    // retries over all checks
  uint64_t max_retry_count = 0;
  double max_duration_ms = 0;
  double min_duration_ms = 0;
  double total_duration_ms = 0;  // average = total / (success + fail)
  double last_duration_ms = 0;
  std::chrono::system_clock::time_point last_check{};
  std::chrono::system_clock::time_point last_success{};
  std::chrono::system_clock::time_point last_skip{};
  std::chrono::system_clock::time_point last_failure{};
};

// The shared cluster state: the current snapshot plus counters, health statistics and
// the event log.
class ClusterState {
 public:
  ClusterState() {
    for (auto& l : lag_us_) l.store(-1, std::memory_order_relaxed);
  }

  std::shared_ptr<const Topology> topology() const {
    return topology_.load(std::memory_order_acquire);
  }
  // Control thread only.
  void publish(std::shared_ptr<const Topology> t) {
    topology_.store(std::move(t), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  // Counts publish() calls: a thread that read it can tell, with one plain atomic load,
  // whether its copy of the snapshot is still current (TopologyView).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Per-node statistics, sharded by worker: each worker bumps its own shard (`shard` =
  // its index), so no counter's cache line is written by two threads on the query path;
  // readers (SHOW, /metrics, the API) sum the shards with totals().
  static constexpr int kCounterShards = 16;
  NodeCounters& counters(int node, int shard) {
    return shards_[static_cast<size_t>(shard) % kCounterShards]
        .nodes[static_cast<size_t>(node) % kMaxNodes];
  }
  NodeTotals totals(int node) const;

  // Health statistics: written by the control thread, read by SHOW / metrics.
  HealthStats health(int node) const {
    std::lock_guard lock(health_mu_);
    return health_[static_cast<size_t>(node) % kMaxNodes];
  }
  template <typename F>
  void updateHealth(int node, F&& f) {
    std::lock_guard lock(health_mu_);
    f(health_[static_cast<size_t>(node) % kMaxNodes]);
  }

  // Replication lag in seconds per node (ReplicationLagMonitor, every sr_check_period):
  // the primary's pg_stat_replication.replay_lag for a standby, 0 for the primary,
  // nullopt when unknown (no primary, node not streaming, no backend_application_name).
  // Written by the control thread, read by any thread (SHOW, /metrics, routing): relaxed
  // atomics, no lock.
  std::optional<double> replicationLagSeconds(int node) const {
    const int64_t us =
        lag_us_[static_cast<size_t>(node) % kMaxNodes].load(std::memory_order_relaxed);
    if (us < 0) return std::nullopt;
    return static_cast<double>(us) / 1e6;
  }
  void setReplicationLag(int node, std::optional<double> seconds) {
    const int64_t us = seconds && *seconds >= 0 ? static_cast<int64_t>(*seconds * 1e6 + 0.5) : -1;
    lag_us_[static_cast<size_t>(node) % kMaxNodes].store(us, std::memory_order_relaxed);
  }

  EventLog& events() { return events_; }
  const EventLog& events() const { return events_; }

  // Failovers (primary changes made by pgpilot) and how long the last one took, from the
  // decision to the new primary being published (-1: none yet).
  std::atomic<uint64_t> failovers_total{0};
  std::atomic<int64_t> last_failover_ms{-1};

 private:
  std::atomic<std::shared_ptr<const Topology>> topology_{std::make_shared<const Topology>()};
  std::atomic<uint64_t> generation_{0};
  struct alignas(64) CounterShard {
    std::array<NodeCounters, kMaxNodes> nodes;
  };
  std::array<CounterShard, kCounterShards> shards_;
  std::array<std::atomic<int64_t>, kMaxNodes> lag_us_;  // microseconds, -1 = unknown
  mutable std::mutex health_mu_;
  std::array<HealthStats, kMaxNodes> health_{};
  EventLog events_;
};

// One thread's copy of the current snapshot, refreshed only when a new one has been
// published. Reading ClusterState::topology() copies a shared_ptr out of an atomic: a lock
// and a reference count that every worker writes, on every statement, bouncing their cache
// line between cores. get() costs one atomic load of the generation instead. The reference
// it returns is valid until the next get() on the same view; never hold it across a
// co_await (take ClusterState::topology() there).
class TopologyView {
 public:
  explicit TopologyView(const ClusterState& state) : state_(state) {}
  const Topology& get() {
    const uint64_t g = state_.generation();
    if (g != generation_ || !snapshot_) {
      snapshot_ = state_.topology();
      generation_ = g;
    }
    return *snapshot_;
  }

 private:
  const ClusterState& state_;
  std::shared_ptr<const Topology> snapshot_;
  uint64_t generation_ = 0;
};

// The initial topology from the configuration: every node up, roles unknown.
std::shared_ptr<Topology> initialTopology(const config::Config& cfg);

}  // namespace pgpilot::cluster
