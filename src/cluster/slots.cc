#include "cluster/slots.h"

#include <charconv>

#include <fmt/format.h>

#include "common/log.h"
#include "common/sql_quote.h"

namespace pgpilot::cluster {

using log::Level;

namespace {
constexpr std::string_view kPrefix = "pgpilot_node_";
}  // namespace

std::string slotName(int node_id) {
  return fmt::format("{}{}", kPrefix, node_id);
}

std::optional<int> slotNode(std::string_view name) {
  if (!name.starts_with(kPrefix)) return std::nullopt;
  std::string_view digits = name.substr(kPrefix.size());
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int id = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || id < 0) return std::nullopt;
  return id;
}

bool validSlotName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;  // NAMEDATALEN - 1
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::string createSlotsSql(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) {
    if (!list.empty()) list += ", ";
    list += common::quoteLiteral(n);
  }
  return fmt::format(
      "SELECT count(pg_create_physical_replication_slot(n, true)) FROM unnest(ARRAY[{}]::name[]) "
      "AS n WHERE n NOT IN (SELECT slot_name FROM pg_replication_slots)",
      list);
}

std::string dropSlotIfInactiveSql(const std::string& name) {
  return fmt::format(
      "WITH s AS (SELECT slot_name, active FROM pg_replication_slots WHERE slot_name = {}), "
      "d AS (SELECT pg_drop_replication_slot(slot_name) FROM s WHERE NOT active) "
      "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM s WHERE active), "
      "(SELECT count(*) FROM d)",
      common::quoteLiteral(name));
}

SlotManager::SlotManager(asio::any_io_executor ex, ClusterState& state, TargetFn target)
    : ex_(std::move(ex)), state_(state), target_(std::move(target)) {}

void SlotManager::nodeAttached(int node) {
  to_drop_.erase(node);
  drop_active_reported_.erase(node);
  to_create_.insert(node);
}

void SlotManager::nodeDetached(int node) {
  to_create_.erase(node);
  if (ready_on_ != node) ready_.erase(node);
  to_drop_.insert(node);
}

net::Task<bool> SlotManager::create(int primary, const std::vector<int>& nodes,
                                    std::chrono::milliseconds timeout) {
  std::vector<std::string> names;
  for (int n : nodes) names.push_back(slotName(n));
  const std::vector<std::string> sql = {createSlotsSql(names)};
  auto res = co_await runOnNode(ex_, target_(primary), sql, timeout);
  if (!res) {
    state_.events().add("slot_failed", primary,
                        fmt::format("could not create replication slots {} on node {}: {}",
                                    fmt::join(names, ", "), primary, res.error().str()),
                        true);
    co_return false;
  }
  const std::string made = !res->rows.empty() && res->rows[0][0] ? *res->rows[0][0] : "0";
  if (made != "0") {
    state_.events().add("slot_created", primary,
                        fmt::format("replication slots on node {}: {} (created {})", primary,
                                    fmt::join(names, ", "), made));
  }
  co_return true;
}

net::Task<bool> SlotManager::pointStandby(int standby, std::chrono::milliseconds timeout) {
  const std::string name = slotName(standby);
  const std::vector<std::string> show = {"SHOW primary_slot_name"};
  auto cur = co_await runOnNode(ex_, target_(standby), show, timeout);
  if (!cur || cur->rows.empty() || !cur->rows[0][0]) co_return false;
  if (*cur->rows[0][0] == name) co_return true;
  const std::vector<std::string> sql = {
      "ALTER SYSTEM SET primary_slot_name = " + common::quoteLiteral(name),
      "SELECT pg_reload_conf()"};
  auto set = co_await runOnNode(ex_, target_(standby), sql, timeout);
  if (!set) {
    log::logf(Level::kWarning, {.node = standby}, "could not set primary_slot_name on node {}: {}",
              standby, set.error().str());
    co_return false;
  }
  state_.events().add("slot_used", standby,
                      fmt::format("node {} streams through replication slot {}", standby, name));
  co_return true;
}

net::Task<void> SlotManager::createFor(int primary, const std::vector<int>& followers,
                                       std::chrono::milliseconds timeout) {
  ready_on_ = -1;
  ready_.clear();
  if (!enabled() || followers.empty()) co_return;
  if (co_await create(primary, followers, timeout)) {
    ready_on_ = primary;
    ready_.insert(followers.begin(), followers.end());
  }
  // The next reconcile checks each follower's primary_slot_name (a follow_primary_command
  // may not have set it) and retries a failed creation.
  for (int f : followers) nodeAttached(f);
  to_create_.erase(primary);
}

std::string SlotManager::primarySlotNameSql(int standby, int primary) const {
  if (!enabled()) return {};
  const bool ready = ready_on_ == primary && ready_.contains(standby);
  return "ALTER SYSTEM SET primary_slot_name = " +
         common::quoteLiteral(ready ? slotName(standby) : std::string());
}

void SlotManager::reconcile(int primary, std::shared_ptr<const Topology> t,
                            std::chrono::milliseconds timeout) {
  if (!enabled()) {
    was_enabled_ = false;
    return;
  }
  if (!was_enabled_) {  // just turned on (start, or a reload): every attached standby
    was_enabled_ = true;
    for (const auto& n : t->nodes) {
      if (n.backend.id != primary && n.status == NodeStatus::kUp) to_create_.insert(n.backend.id);
    }
  }
  if (!cfg_->drop_slots_of_detached_nodes) to_drop_.clear();
  if (*running_ || (to_create_.empty() && to_drop_.empty())) return;
  *running_ = true;
  asio::co_spawn(ex_, reconcileNow(primary, std::move(t), timeout), asio::detached);
}

net::Task<void> SlotManager::reconcileNow(int primary, std::shared_ptr<const Topology> t,
                                          std::chrono::milliseconds timeout) {
  struct Done {
    std::shared_ptr<bool> flag;
    ~Done() { *flag = false; }
  } done{running_};
  const NodeState* p = t->find(primary);
  if (!p) co_return;
  const int primary_port = p->backend.port;
  // Slots for attached standbys, then primary_slot_name on those streaming from the primary.
  std::vector<int> want;
  for (int id : std::set<int>(to_create_)) {
    const NodeState* n = t->find(id);
    if (!n || n->status != NodeStatus::kUp || id == primary) {
      to_create_.erase(id);
      continue;
    }
    want.push_back(id);
  }
  if (!want.empty() && co_await create(primary, want, timeout)) {
    for (int id : want) {
      // A standby that streams from another node (cascading) keeps its settings; one that
      // does not stream yet is tried again at the next reconcile.
      auto r = co_await probeNode(ex_, target_(id), timeout);
      if (r.outcome != ProbeResult::Outcome::kOk || r.role != Role::kStandby) continue;
      if (r.wal_receiver_status.empty()) continue;
      if (r.sender_port != primary_port) {
        to_create_.erase(id);
        continue;
      }
      if (co_await pointStandby(id, timeout)) to_create_.erase(id);
    }
  }
  // Slots of detached standbys, once no walsender uses them.
  for (int id : std::set<int>(to_drop_)) {
    const NodeState* n = t->find(id);
    if (id == primary || (n && n->status == NodeStatus::kUp)) {
      to_drop_.erase(id);
      continue;
    }
    const std::string name = slotName(id);
    const std::vector<std::string> sql = {dropSlotIfInactiveSql(name)};
    auto res = co_await runOnNode(ex_, target_(primary), sql, timeout);
    if (!res || res->rows.empty() || res->rows[0].size() < 3) {
      log::logf(Level::kWarning, {.node = primary},
                "could not drop replication slot {} on node {}: {}", name, primary,
                res ? std::string("unexpected answer") : res.error().str());
      continue;  // tried again at the next reconcile
    }
    const auto& row = res->rows[0];
    const bool active = row[1].value_or("0") != "0";
    if (active) {
      if (drop_active_reported_.insert(id).second) {
        state_.events().add("slot_kept", primary,
                            fmt::format("replication slot {} of detached node {} is still in use "
                                        "on node {}; it is dropped once inactive",
                                        name, id, primary));
      }
      continue;
    }
    to_drop_.erase(id);
    drop_active_reported_.erase(id);
    if (row[2].value_or("0") != "0") {
      state_.events().add("slot_dropped", primary,
                          fmt::format("replication slot {} of detached node {} dropped on node {} "
                                      "(drop_slots_of_detached_nodes)",
                                      name, id, primary));
    }
  }
}

}  // namespace pgpilot::cluster
