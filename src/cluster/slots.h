// SlotManager: physical replication slots for the standbys (replication_slots = on).
//
// Purpose: like Patroni, one physical slot per standby, named from the node
// (pgpilot_node_<id>), kept on the primary, with primary_slot_name set on the standby, so a
// standby that falls behind or restarts never finds the WAL it needs removed. After a
// failover the followers' slots are created on the candidate before they are repointed to
// it; a detached standby's slot is dropped on the primary once it is not active
// (drop_slots_of_detached_nodes), so the primary does not keep WAL for a node that is gone.
// Only slots named pgpilot_node_<id> are ever created or dropped; other slots are left
// alone. Turning replication_slots off leaves slots and primary_slot_name as they are.
//
// Owner: the failover controller, on the control thread. Work that cannot be done at once
// (a node attached or detached, a creation that failed) is remembered and done at the next
// health check of the primary (reconcile()), which costs nothing while nothing is pending.
//
//   slots.nodeDetached(2);                       // status change
//   slots.reconcile(primary, topo, timeout);     // on each probe of the primary
//   co_await slots.createFor(candidate, {2, 3});  // failover, before repointing 2 and 3
//   sql.push_back(slots.primarySlotNameSql(2, candidate));
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/probe.h"
#include "cluster/topology.h"
#include "config/config.h"
#include "net/stream.h"

namespace pgpilot::cluster {

// The slot of node `id`: "pgpilot_node_<id>" (lower case, [a-z0-9_], at most 63 bytes, as
// PostgreSQL requires).
std::string slotName(int node_id);
// The node a pgpilot slot belongs to, or nullopt for any other slot name.
std::optional<int> slotNode(std::string_view slot_name);
// PostgreSQL's rule for replication slot names (ReplicationSlotValidateName).
bool validSlotName(std::string_view name);

// The statement that creates, in one round trip, those of `names` that do not exist yet
// (pg_create_physical_replication_slot(name, true): WAL is reserved at once).
std::string createSlotsSql(const std::vector<std::string>& names);
// The statement that drops `name` when it exists and is not active; it returns one row:
// (slots with that name, of them active, dropped).
std::string dropSlotIfInactiveSql(const std::string& name);

class SlotManager {
 public:
  using TargetFn = std::function<ProbeTarget(int)>;
  SlotManager(asio::any_io_executor ex, ClusterState& state, TargetFn target);

  void setConfig(std::shared_ptr<const config::Config> cfg) { cfg_ = std::move(cfg); }
  bool enabled() const { return cfg_ && cfg_->replication_slots; }

  // Status changes of standbys.
  void nodeAttached(int node);
  void nodeDetached(int node);

  // Failover, before `followers` are repointed to `primary` (the candidate, still in
  // recovery: physical slots can be created on a standby and survive its promotion).
  net::Task<void> createFor(int primary, const std::vector<int>& followers,
                            std::chrono::milliseconds timeout);
  // What the built-in repoint of `standby` to `primary` adds to its ALTER SYSTEM
  // statements: primary_slot_name = its slot when createFor made it there, else '' (it
  // streams without a slot until reconcile() has made one). Empty when slots are off.
  std::string primarySlotNameSql(int standby, int primary) const;

  // On each successful probe of the primary: carries out what is pending, in the
  // background (never delays the health check; one run at a time).
  void reconcile(int primary, std::shared_ptr<const Topology> t, std::chrono::milliseconds timeout);

 private:
  net::Task<void> reconcileNow(int primary, std::shared_ptr<const Topology> t,
                               std::chrono::milliseconds timeout);
  net::Task<bool> create(int primary, const std::vector<int>& nodes,
                         std::chrono::milliseconds timeout);
  net::Task<bool> pointStandby(int standby, std::chrono::milliseconds timeout);

  asio::any_io_executor ex_;
  ClusterState& state_;
  TargetFn target_;
  std::shared_ptr<const config::Config> cfg_;
  bool was_enabled_ = false;  // replication_slots at the last reconcile (off -> on: all)
  std::set<int> to_create_;   // attached standbys whose slot (and primary_slot_name) to check
  std::set<int> to_drop_;     // detached standbys whose slot to drop
  std::set<int> drop_active_reported_;
  // A reconcile is in progress. Shared with the reconcile coroutine: at shutdown its frame
  // can be destroyed (with the io_context) after this SlotManager is gone.
  std::shared_ptr<bool> running_ = std::make_shared<bool>(false);
  int ready_on_ = -1;    // the node createFor made slots on ...
  std::set<int> ready_;  // ... for these standbys
};

}  // namespace pgpilot::cluster
