#include "cluster/failover.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/sql_quote.h"

namespace pgpilot::cluster {

using log::Level;
using Outcome = ProbeResult::Outcome;
using std::chrono::milliseconds;

struct FailoverController::NodeRuntime {
  explicit NodeRuntime(asio::io_context& ctx) : wake(ctx) {}
  asio::steady_timer wake;
  ProbeResult last;
  bool false_primary_reported = false;
  bool detached_primary_reported = false;
  bool alive_error_reported = false;
  bool held_by_flag_reported = false;  // unreachable, kept by DISALLOW_TO_FAILOVER / ALWAYS_PRIMARY
  bool recovery_reported = false;      // a DISALLOW_TO_FAILOVER primary in recovery
  Clock::time_point last_failback{};
};

namespace {

milliseconds since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
}

bool isSyncState(const std::string& s) {
  return s == "sync" || s == "quorum";
}

}  // namespace

FailoverController::FailoverController(asio::io_context& ctx, ClusterState& state,
                                       std::shared_ptr<const config::Config> cfg,
                                       std::shared_ptr<const auth::PasswordFile> passwords)
    : ctx_(ctx),
      state_(state),
      cfg_(std::move(cfg)),
      passwords_(std::move(passwords)),
      slots_(ctx.get_executor(), state, [this](int id) { return target(id); }) {
  slots_.setConfig(cfg_);
}

FailoverController::~FailoverController() = default;

// ---- configuration helpers ----

milliseconds FailoverController::probePeriod(int id) const {
  milliseconds p = config::healthCheckSettings(*cfg_, id).period;
  if (p.count() <= 0 || (cfg_->sr_check_period.count() > 0 && cfg_->sr_check_period < p)) {
    p = cfg_->sr_check_period;
  }
  if (topo()->primary < 0)
    p = std::min<milliseconds>(p.count() > 0 ? p : milliseconds(1000), milliseconds(1000));
  return p.count() > 0 ? p : milliseconds(10000);
}

milliseconds FailoverController::probeTimeout(int id) const {
  const config::HealthCheckSettings hc = config::healthCheckSettings(*cfg_, id);
  return hc.timeout.count() > 0 ? hc.timeout : hc.connect_timeout;
}

ProbeTarget FailoverController::target(int id) const {
  config::BackendConfig backend;
  if (const NodeState* n = node(id)) {
    backend = n->backend;
  } else {
    backend.id = id;
  }
  return probeTarget(*cfg_, passwords_.get(), backend);
}

const NodeState* FailoverController::node(int id) const {
  // Valid until the next call: callers read what they need at once.
  view_ = topo();
  return view_->find(id);
}

void FailoverController::setConfig(std::shared_ptr<const config::Config> cfg,
                                   std::shared_ptr<const auth::PasswordFile> passwords) {
  cfg_ = std::move(cfg);
  passwords_ = std::move(passwords);
  slots_.setConfig(cfg_);
  // Backends added by the reload get a health-check loop; the application publishes them
  // (status unused until an operator attaches them).
  for (const auto& b : cfg_->backends) {
    if (runtime_.contains(b.id)) continue;
    runtime_.emplace(b.id, std::make_unique<NodeRuntime>(ctx_));
    if (!stopped_ && started_loops_) asio::co_spawn(ctx_, healthLoop(b.id), asio::detached);
  }
}

// ---- publishing ----

template <typename F>
void FailoverController::publish(F&& change) {
  auto next = std::make_shared<Topology>(*topo());
  change(*next);
  for (auto& n : next->nodes) {
    if (n.backend.id == next->primary) {
      n.role = Role::kPrimary;
    } else if (n.pg_role != Role::kUnknown || n.role == Role::kPrimary) {
      n.role = Role::kStandby;
    }
  }
  updateReplicationView(*next);
  next->version = topo()->version + 1;
  state_.publish(std::move(next));
  saveStatusFile();
}

void FailoverController::updateReplicationView(Topology& t) const {
  const NodeState* p = t.primaryNode();
  for (auto& n : t.nodes) {
    n.replication_state.clear();
    n.replication_sync_state.clear();
    n.replication_delay = 0;
    if (!p || n.backend.id == p->backend.id || !n.pg_up) continue;
    n.replication_delay = p->lsn > n.lsn ? p->lsn - n.lsn : 0;
    const std::string& app = n.backend.application_name;
    for (const auto& row : last_replication_) {
      if (!app.empty() && row.application_name == app) {
        n.replication_state = row.state;
        n.replication_sync_state = row.sync_state;
      }
    }
  }
}

void FailoverController::setPrimary(int id) {
  publish([id](Topology& t) { t.primary = id; });
}

ProbeResult& FailoverController::lastProbe(int id) {
  return runtime_.at(id)->last;
}

void FailoverController::setStatus(int id, NodeStatus status, std::string_view why) {
  const NodeState* n = node(id);
  if (!n || n->status == status) return;
  publish([&](Topology& t) {
    for (auto& x : t.nodes) {
      if (x.backend.id != id) continue;
      x.status = status;
      x.last_status_change = std::chrono::system_clock::now();
    }
  });
  if (status != NodeStatus::kUp && node_down_hook_) node_down_hook_(id);
  if (status == NodeStatus::kUp) {
    slots_.nodeAttached(id);
  } else {
    slots_.nodeDetached(id);
  }
  state_.events().add(
      status == NodeStatus::kUp ? "attach" : "detach", id,
      fmt::format("node {} {}: {}", id, status == NodeStatus::kUp ? "attached" : "detached", why),
      status != NodeStatus::kUp);
}

// ---- start / stop ----

net::Task<void> FailoverController::start() {
  loadStatusFile();
  auto t = initialTopology(*cfg_);
  for (auto& n : t->nodes) {
    runtime_.emplace(n.backend.id, std::make_unique<NodeRuntime>(ctx_));
    if (auto it = saved_status_.find(n.backend.id); it != saved_status_.end()) {
      n.status = it->second;
      if (n.status != NodeStatus::kUp) {
        log::logf(Level::kLog, {.node = n.backend.id}, "node {} stays detached (status file {})",
                  n.backend.id, statusPath());
      }
    }
  }
  t->version = topo()->version + 1;
  state_.publish(t);
  std::vector<int> primaries;
  for (const auto& n : t->nodes) {
    auto r =
        co_await probeNode(ctx_.get_executor(), target(n.backend.id), probeTimeout(n.backend.id));
    runtime_[n.backend.id]->last = r;
    if (!r.answered()) {
      log::logf(Level::kWarning, {.node = n.backend.id}, "node {} ({}:{}) is not reachable: {}",
                n.backend.id, n.backend.hostname, n.backend.port, r.error);
    }
    if (r.outcome == Outcome::kOk && r.role == Role::kPrimary && n.status == NodeStatus::kUp) {
      primaries.push_back(n.backend.id);
    }
    publish([&](Topology& x) {
      for (auto& s : x.nodes) {
        if (s.backend.id != n.backend.id) continue;
        s.pg_up = r.answered();
        s.pg_role = r.outcome == Outcome::kOk ? r.role : Role::kUnknown;
        s.lsn = r.lsn;
      }
    });
  }
  int primary = -1;
  const int always = t->alwaysPrimaryNode();
  if (always >= 0) {
    // ALWAYS_PRIMARY: regarded as the primary without asking it (pgpool-II).
    const NodeState* a = t->find(always);
    if (a && a->status == NodeStatus::kUp) primary = always;
  } else if (primaries.size() == 1) {
    primary = primaries[0];
  } else if (primaries.size() > 1) {
    // Two primaries: trust the one the status file named, else the one standbys stream from.
    for (int p : primaries) {
      if (p == saved_primary_) primary = p;
    }
    for (int p : primaries) {
      if (primary < 0 && !runtime_[p]->last.replication.empty()) primary = p;
    }
    if (primary < 0) primary = primaries[0];
    state_.events().add("false_primary", -1,
                        fmt::format("{} nodes claim to be the primary; using node {}; the others "
                                    "get no writes",
                                    primaries.size(), primary),
                        true);
  }
  if (primary >= 0) {
    last_replication_ = runtime_[primary]->last.replication;
    rememberSync(runtime_[primary]->last);
    publish([&](Topology& x) { x.primary = primary; });
    state_.events().add("primary", primary, fmt::format("primary node is node {}", primary));
  } else {
    state_.events().add("no_primary", -1, "no primary node found: writes cannot be served", true);
  }
}

void FailoverController::run() {
  started_loops_ = true;
  for (const auto& [id, rt] : runtime_) asio::co_spawn(ctx_, healthLoop(id), asio::detached);
}

void FailoverController::stop() {
  stopped_ = true;
  for (auto& [id, rt] : runtime_) rt->wake.cancel();
}

void FailoverController::reportBackendError(int id) {
  asio::post(ctx_, [this, id] {
    if (!cfg_->failover_on_backend_error) return;
    auto it = runtime_.find(id);
    if (it != runtime_.end()) it->second->wake.cancel();
  });
}

// ---- health checks ----

net::Task<void> FailoverController::healthLoop(int id) {
  while (!stopped_) {
    auto it = runtime_.find(id);
    if (it == runtime_.end()) co_return;
    it->second->wake.expires_after(probePeriod(id));
    co_await it->second->wake.async_wait(net::kUseAwaitable);  // cancel() = check now
    if (stopped_) break;
    const NodeState* n = node(id);
    if (!n) continue;  // added by a reload, not published yet
    if (n->status != NodeStatus::kUp) {
      // Detached nodes are still watched (old primary coming back, auto_failback), once.
      auto r = co_await probeNode(ctx_.get_executor(), target(id), probeTimeout(id));
      state_.updateHealth(id, [](HealthStats& s) {
        ++s.skip_count;
        s.last_skip = std::chrono::system_clock::now();
      });
      co_await onProbe(id, r);
      continue;
    }
    if (config::healthCheckSettings(*cfg_, id).period.count() <= 0) {
      // Health checks are off for this node (health_check_period[N] = 0): only the role and
      // replication check, once per sr_check_period; not counted as a health check, and
      // a failure detaches nothing (onProbe).
      auto r = co_await probeNode(ctx_.get_executor(), target(id), probeTimeout(id));
      if (stopped_) break;
      co_await onProbe(id, r);
      continue;
    }
    auto r = co_await checkWithRetries(id);
    if (stopped_) break;
    co_await onProbe(id, r);
  }
}

net::Task<ProbeResult> FailoverController::checkWithRetries(int id) {
  int retries = 0;
  asio::steady_timer delay(ctx_);
  for (;;) {
    const config::HealthCheckSettings hc = config::healthCheckSettings(*cfg_, id);
    auto r = co_await probeNode(ctx_.get_executor(), target(id), probeTimeout(id));
    // A timeout is uncertain (the node may only be busy): retried at least once, so one
    // slow answer never detaches a node. A refused connection is certain.
    const int allowed =
        r.outcome == Outcome::kTimeout ? std::max(hc.max_retries, 1) : hc.max_retries;
    if (r.answered() || retries >= allowed || stopped_) {
      recordStats(id, r, retries);
      co_return r;
    }
    ++retries;
    log::logf(Level::kWarning, {.node = id}, "health check of node {} failed ({}): {}; retry {}/{}",
              id, outcomeName(r.outcome), r.error, retries, allowed);
    if (r.outcome != Outcome::kTimeout) {
      delay.expires_after(hc.retry_delay);
      co_await delay.async_wait(net::kUseAwaitable);
    }
  }
}

void FailoverController::recordStats(int id, const ProbeResult& r, int retries) {
  state_.updateHealth(id, [&](HealthStats& s) {
    const auto now = std::chrono::system_clock::now();
    const double ms = static_cast<double>(r.duration.count());
    ++s.total_count;
    s.retry_count += static_cast<uint64_t>(retries);
    s.max_retry_count = std::max<uint64_t>(s.max_retry_count, static_cast<uint64_t>(retries));
    if (r.answered()) {
      ++s.success_count;
      s.last_success = now;
    } else {
      ++s.fail_count;
      s.last_failure = now;
    }
    s.min_duration_ms = s.total_count == 1 ? ms : std::min(s.min_duration_ms, ms);
    s.max_duration_ms = std::max(s.max_duration_ms, ms);
    s.total_duration_ms += ms;
    s.last_duration_ms = ms;
    s.last_check = now;
  });
}

void FailoverController::rememberSync(const ProbeResult& primary_probe) {
  last_sync_names_ = primary_probe.synchronous_standby_names;
  last_sync_standbys_.clear();
  for (const auto& row : primary_probe.replication) {
    if (isSyncState(row.sync_state)) last_sync_standbys_.push_back(row.application_name);
  }
}

net::Task<void> FailoverController::onProbe(int id, const ProbeResult& r) {
  // A planned switchover is restarting this node: its own steps watch it.
  if (switchover_running_ && id == switchover_from_) co_return;
  auto& rt = *runtime_[id];
  rt.last = r;
  const auto t = topo();
  const NodeState* n = t->find(id);
  if (!n) co_return;
  const bool detecting = config::healthCheckSettings(*cfg_, id).period.count() > 0;
  if (!r.answered()) {
    if (n->pg_up) {
      publish([&](Topology& x) {
        for (auto& s : x.nodes) {
          if (s.backend.id == id) s.pg_up = false;
        }
      });
    }
    if (n->status != NodeStatus::kUp || !detecting) co_return;
    const std::string why =
        fmt::format("health check failed ({}): {}", outcomeName(r.outcome), r.error);
    if (n->heldByFlag()) {
      if (!rt.held_by_flag_reported) {
        state_.events().add(
            "node_unreachable", id,
            fmt::format("node {} {}; not detached ({}): statements that need it fail until it "
                        "answers again",
                        id, why, n->flagName()),
            true);
        rt.held_by_flag_reported = true;
      }
      co_return;
    }
    if (id == t->primary && !switchover_running_) {
      co_await failover(id, why, std::nullopt, false);
    } else if (id != t->primary) {
      setStatus(id, NodeStatus::kDown, why);
      co_await manageSyncReplication();
    }
    co_return;
  }
  if (r.outcome == Outcome::kAlive) {
    if (!rt.alive_error_reported) {
      log::logf(Level::kWarning, {.node = id},
                "node {} answers health checks with an error (it is up): {}", id, r.error);
      rt.alive_error_reported = true;
    }
    co_return;
  }
  rt.alive_error_reported = false;
  if (rt.held_by_flag_reported) {
    state_.events().add("node_back", id, fmt::format("node {} answers again", id));
    rt.held_by_flag_reported = false;
  }
  publish([&](Topology& x) {
    for (auto& s : x.nodes) {
      if (s.backend.id != id) continue;
      s.pg_up = true;
      s.pg_role = r.role;
      s.lsn = r.lsn;
    }
  });
  if (id == t->primary && r.role == Role::kPrimary) {
    last_replication_ = r.replication;
    rememberSync(r);
    publish([](Topology&) {});
    co_await manageSyncReplication();
    slots_.reconcile(id, topo(), probeTimeout(id));
  }
  co_await checkRole(id, r);
}

net::Task<void> FailoverController::checkRole(int id, const ProbeResult& r) {
  auto& rt = *runtime_[id];
  const auto t = topo();
  const NodeState* n = t->find(id);
  if (!n) co_return;
  const int always = t->alwaysPrimaryNode();
  if (n->status == NodeStatus::kUp && id == always) {
    // Regarded as the primary whatever it answers; nothing to check (pgpool-II).
    if (t->primary != id && !failover_running_) {
      publish([&](Topology& x) { x.primary = id; });
      state_.events().add("primary", id,
                          fmt::format("primary node is node {} (ALWAYS_PRIMARY)", id));
    }
    co_return;
  }
  if (n->status == NodeStatus::kUp) {
    if (r.role == Role::kPrimary && t->primary < 0 && always < 0 && !failover_running_) {
      publish([&](Topology& x) { x.primary = id; });
      last_replication_ = r.replication;
      rememberSync(r);
      state_.events().add("primary", id, fmt::format("primary node is node {}", id));
    } else if (r.role == Role::kPrimary && t->primary != id && t->primary >= 0) {
      if (!rt.false_primary_reported) {
        state_.events().add(
            "false_primary", id,
            fmt::format("node {} claims to be a primary while node {} is the primary (promoted "
                        "by hand?); it gets no writes{}",
                        id, t->primary,
                        cfg_->detach_false_primary ? "; detaching it (detach_false_primary)" : ""),
            true);
        rt.false_primary_reported = true;
      }
      if (cfg_->detach_false_primary) setStatus(id, NodeStatus::kDown, "false primary");
    } else if (r.role == Role::kStandby && id == t->primary && !switchover_running_ &&
               !failover_running_) {
      if (n->heldByFlag()) {  // DISALLOW_TO_FAILOVER (ALWAYS_PRIMARY returned above)
        if (!rt.recovery_reported) {
          state_.events().add("primary_in_recovery", id,
                              fmt::format("primary node {} is in recovery now; no failover "
                                          "({}): writes fail until a primary answers",
                                          id, n->flagName()),
                              true);
          rt.recovery_reported = true;
        }
        co_return;
      }
      state_.events().add("primary_in_recovery", id,
                          fmt::format("primary node {} is in recovery now (demoted outside "
                                      "pgpilot?)",
                                      id),
                          true);
      co_await failover(id, "the primary went into recovery", std::nullopt, false);
    } else {
      rt.false_primary_reported = false;
      rt.recovery_reported = false;
    }
    co_return;
  }
  // Detached node.
  if (r.role == Role::kPrimary && id != t->primary) {
    if (!rt.detached_primary_reported) {
      state_.events().add("detached_primary", id,
                          fmt::format("detached node {} is running as a primary (an old primary "
                                      "restarted?); it gets no traffic until attached",
                                      id),
                          true);
      rt.detached_primary_reported = true;
    }
    co_return;
  }
  rt.detached_primary_reported = false;
  const NodeState* p = t->primaryNode();
  if (cfg_->auto_failback && r.role == Role::kStandby && p &&
      r.wal_receiver_status == "streaming" && r.sender_port == p->backend.port &&
      Clock::now() - rt.last_failback >= cfg_->auto_failback_interval) {
    rt.last_failback = Clock::now();
    setStatus(id, NodeStatus::kUp,
              fmt::format("auto_failback: it streams from primary node {} again", p->backend.id));
  }
}

// ---- failover ----

std::vector<Candidate> FailoverController::candidates(int failed) const {
  std::vector<Candidate> out;
  const auto t = topo();
  for (const auto& n : t->nodes) {
    if (n.backend.id == failed || n.status != NodeStatus::kUp) continue;
    const auto& r = runtime_.at(n.backend.id)->last;
    if (r.outcome != Outcome::kOk) continue;
    Candidate c;
    c.id = n.backend.id;
    c.receive_lsn = std::max(r.receive_lsn, r.replay_lsn);
    c.replay_lsn = r.replay_lsn;
    c.application_name = n.backend.application_name;
    c.allow_failover = n.backend.allow_failover;
    for (const auto& row : last_replication_) {
      if (!c.application_name.empty() && row.application_name == c.application_name) {
        c.sync_priority = row.sync_priority;
        c.was_sync = isSyncState(row.sync_state);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

PlaceholderValues FailoverController::placeholders(int failed, int new_primary,
                                                   int old_primary) const {
  PlaceholderValues v;
  const auto t = topo();
  if (const NodeState* f = t->find(failed)) {
    v.failed_id = failed;
    v.failed_host = f->backend.hostname;
    v.failed_port = f->backend.port;
    v.failed_dir = f->backend.data_directory;
  }
  if (const NodeState* m = t->find(new_primary)) {
    v.new_id = new_primary;
    v.new_host = m->backend.hostname;
    v.new_port = m->backend.port;
    v.new_dir = m->backend.data_directory;
  }
  v.old_main_id = old_primary;
  v.old_primary_id = old_primary;
  if (const NodeState* o = t->find(old_primary)) {
    v.old_primary_host = o->backend.hostname;
    v.old_primary_port = o->backend.port;
  }
  return v;
}

net::Task<void> FailoverController::failover(int failed, std::string reason,
                                             std::optional<int> forced, bool force) {
  if (failover_running_) co_return;
  failover_running_ = true;
  const auto t0 = Clock::now();
  const int old_primary = failed;
  publish([&](Topology& x) {
    x.primary = -1;
    for (auto& s : x.nodes) {
      if (s.backend.id == failed && s.status == NodeStatus::kUp) {
        s.status = NodeStatus::kDown;
        s.last_status_change = std::chrono::system_clock::now();
      }
    }
  });
  if (failed >= 0 && node_down_hook_) node_down_hook_(failed);
  state_.events().add("failover", failed,
                      failed >= 0 ? fmt::format("primary node {} lost ({}): starting failover; "
                                                "no primary, writes are held",
                                                failed, reason)
                                  : fmt::format("starting failover ({})", reason),
                      true);
  const int chosen = co_await pickCandidate(failed, forced, force);
  if (chosen < 0) {
    failover_running_ = false;
    co_return;
  }
  // Built-in follow: repoint the other standbys to the candidate before promoting it, so
  // none keeps receiving WAL from an old primary that wakes up (a hung one resumed) and
  // diverges; they cascade from the candidate and cross to its new timeline. A
  // follow_primary_command runs after the promotion, as in pgpool-II.
  std::map<int, std::string> repoint_error;
  {
    const auto snapshot = topo();  // keeps the nodes alive while publishing
    std::vector<int> followers;    // replication_slots: theirs are created on the candidate
    for (const auto& n : snapshot->nodes) {
      if (n.backend.id != chosen && n.status == NodeStatus::kUp) followers.push_back(n.backend.id);
    }
    co_await slots_.createFor(chosen, followers, probeTimeout());
    for (const auto& n : snapshot->nodes) {
      if (n.backend.id == chosen || n.status != NodeStatus::kUp) continue;
      // (No co_await inside ?: — GCC 12 miscompiles it.)
      std::string error;
      if (cfg_->follow_primary_command.empty()) {
        error = co_await repointStandby(n.backend.id, chosen);
      }
      repoint_error[n.backend.id] = std::move(error);
    }
  }
  bool ok = runtime_[chosen]->last.role == Role::kPrimary;  // already promoted (by hand)
  if (!ok) ok = co_await promote(chosen, failed);
  if (ok) ok = co_await waitForPrimary(chosen, cfg_->search_primary_node_timeout);
  if (!ok) {
    state_.events().add("failover_failed", chosen,
                        fmt::format("failover failed: node {} did not become the primary; no "
                                    "primary — writes fail after failover_hold_timeout; the "
                                    "health checks keep looking for a primary",
                                    chosen),
                        true);
    failover_running_ = false;
    co_return;
  }
  last_replication_.clear();
  publish([&](Topology& x) { x.primary = chosen; });
  const auto took = since(t0);
  state_.failovers_total.fetch_add(1, std::memory_order_relaxed);
  state_.last_failover_ms.store(took.count(), std::memory_order_relaxed);
  state_.events().add("failover_done", chosen,
                      fmt::format("failover done: new primary node {} (was node {}), {} ms", chosen,
                                  old_primary, took.count()));
  co_await configureSyncOnNewPrimary(chosen);
  failover_running_ = false;  // from here on, health checks may act again
  for (const auto& [id, error] : repoint_error) {
    const NodeState* n = node(id);
    if (!n || n->status != NodeStatus::kUp || topo()->primary != chosen) continue;
    co_await followNewPrimary(id, chosen, old_primary, error);
  }
}

net::Task<int> FailoverController::pickCandidate(int failed, std::optional<int> forced,
                                                 bool force) {
  // Fresh positions: the last health check may be a period old.
  const auto snapshot = topo();  // keeps the nodes alive while publishing
  for (const auto& n : snapshot->nodes) {
    if (n.backend.id == failed || n.status != NodeStatus::kUp) continue;
    auto r =
        co_await probeNode(ctx_.get_executor(), target(n.backend.id), probeTimeout(n.backend.id));
    runtime_[n.backend.id]->last = r;
    if (!r.answered()) {
      setStatus(n.backend.id, NodeStatus::kDown,
                fmt::format("not reachable during failover: {}", r.error));
    }
  }
  auto cands = candidates(failed);
  std::vector<std::string> alive;
  for (const auto& c : cands) alive.push_back(c.application_name);
  if (!force && !promotionIsSafe(parseSyncNames(last_sync_names_), last_sync_standbys_, alive)) {
    state_.events().add(
        "failover_blocked", failed,
        fmt::format("not promoting: every synchronous standby of the lost primary ({}) is gone, "
                    "so no live standby is known to have all acknowledged commits. An operator "
                    "can accept possible loss with: PGPILOT PROMOTE <node> FORCE",
                    fmt::join(last_sync_standbys_, ", ")),
        true);
    co_return -1;
  }
  std::optional<int> chosen;
  if (forced) {
    if (std::any_of(cands.begin(), cands.end(), [&](const auto& c) { return c.id == *forced; })) {
      chosen = forced;
    }
  } else {
    chosen = chooseCandidate(cfg_->failover_candidate_policy, cands);
  }
  if (!chosen) {
    state_.events().add("failover_failed", failed,
                        forced ? fmt::format("node {} cannot be promoted: it is not an attached, "
                                             "reachable node",
                                             *forced)
                               : std::string("no failover candidate: no primary node; writes "
                                             "fail after failover_hold_timeout"),
                        true);
    co_return -1;
  }
  const auto& r = runtime_[*chosen]->last;
  state_.events().add("promote", *chosen,
                      fmt::format("promoting node {} (policy {}, received LSN {}, replayed {})",
                                  *chosen, forced ? "operator" : cfg_->failover_candidate_policy,
                                  r.receive_lsn, r.replay_lsn));
  co_return *chosen;
}

net::Task<bool> FailoverController::promote(int candidate, int failed) {
  if (!cfg_->failover_command.empty()) {
    const std::string cmd =
        expandPlaceholders(cfg_->failover_command, placeholders(failed, candidate, failed));
    const int rc = co_await runCommand(cmd, cfg_->failover_command_timeout);
    if (rc != 0) {
      state_.events().add("failover_command", candidate,
                          rc == -1 ? fmt::format("failover_command timed out after {} s: {}",
                                                 cfg_->failover_command_timeout.count() / 1000, cmd)
                                   : fmt::format("failover_command failed (exit {}): {}", rc, cmd),
                          true);
      co_return false;
    }
    co_return true;
  }
  const auto wait_s = std::max<int64_t>(1, cfg_->failover_command_timeout.count() / 1000);
  const std::vector<std::string> sql = {fmt::format("SELECT pg_promote(true, {})", wait_s)};
  auto res = co_await runOnNode(ctx_.get_executor(), target(candidate), sql,
                                cfg_->failover_command_timeout + milliseconds(5000));
  if (!res || res->rows.empty() || !res->rows[0][0] || *res->rows[0][0] != "t") {
    state_.events().add("promote_failed", candidate,
                        fmt::format("pg_promote() on node {} failed: {}", candidate,
                                    res ? "it returned false" : res.error().str()),
                        true);
    co_return false;
  }
  co_return true;
}

net::Task<bool> FailoverController::waitForPrimary(int candidate, milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  asio::steady_timer t(ctx_);
  while (!stopped_) {
    auto r = co_await probeNode(ctx_.get_executor(), target(candidate), probeTimeout());
    runtime_[candidate]->last = r;
    if (r.outcome == Outcome::kOk && r.role == Role::kPrimary) co_return true;
    if (Clock::now() >= until) break;
    t.expires_after(milliseconds(100));
    co_await t.async_wait(net::kUseAwaitable);
  }
  co_return false;
}

net::Task<std::string> FailoverController::repointStandby(int standby, int primary) {
  const NodeState* p = node(primary);
  if (!p) co_return "the new primary is gone";
  const config::BackendConfig pb = p->backend;
  const std::vector<std::string> show = {"SHOW primary_conninfo"};
  auto ci = co_await runOnNode(ctx_.get_executor(), target(standby), show, probeTimeout());
  if (!ci || ci->rows.empty() || !ci->rows[0][0]) {
    co_return "could not read primary_conninfo: " +
        (ci ? std::string("no value") : ci.error().str());
  }
  auto next = repointConninfo(*ci->rows[0][0], pb.hostname, pb.port);
  if (!next) co_return "could not parse primary_conninfo: " + next.error();
  std::vector<std::string> sql = {"ALTER SYSTEM SET primary_conninfo = " +
                                  common::quoteLiteral(*next)};
  if (auto slot = slots_.primarySlotNameSql(standby, primary); !slot.empty())
    sql.push_back(std::move(slot));
  sql.push_back("SELECT pg_reload_conf()");
  auto set = co_await runOnNode(ctx_.get_executor(), target(standby), sql, probeTimeout());
  if (!set) co_return "could not set primary_conninfo: " + set.error().str();
  co_return std::string();
}

net::Task<void> FailoverController::followNewPrimary(int standby, int primary, int old_primary,
                                                     std::string how) {
  if (how.empty() && !cfg_->follow_primary_command.empty()) {
    const std::string cmd = expandPlaceholders(cfg_->follow_primary_command,
                                               placeholders(standby, primary, old_primary));
    const int rc = co_await runCommand(cmd, cfg_->failover_command_timeout);
    how = rc == 0 ? "" : fmt::format("follow_primary_command failed (exit {}): {}", rc, cmd);
  }
  if (how.empty() && co_await waitStreamingFrom(standby, primary, cfg_->follow_primary_timeout)) {
    state_.events().add("follow", standby,
                        fmt::format("node {} follows the new primary node {}", standby, primary));
    co_await manageSyncReplication();
    co_return;
  }
  if (how.empty()) {
    how = fmt::format("it did not stream from node {} within {} s (timeline diverged?)", primary,
                      cfg_->follow_primary_timeout.count() / 1000);
  }
  setStatus(standby, NodeStatus::kDown,
            fmt::format("cannot follow the new primary: {}; it needs recovery (pg_rewind or a "
                        "new base backup), then attach",
                        how));
}

net::Task<bool> FailoverController::waitStreamingFrom(int standby, int primary,
                                                      milliseconds timeout) {
  const NodeState* p = node(primary);
  if (!p) co_return false;
  const int port = p->backend.port;
  const auto until = Clock::now() + timeout;
  asio::steady_timer t(ctx_);
  while (!stopped_ && Clock::now() < until) {
    auto r = co_await probeNode(ctx_.get_executor(), target(standby), probeTimeout());
    if (r.outcome == Outcome::kOk && r.role == Role::kStandby &&
        r.wal_receiver_status == "streaming" && r.sender_port == port) {
      runtime_[standby]->last = r;
      co_return true;
    }
    t.expires_after(milliseconds(200));
    co_await t.async_wait(net::kUseAwaitable);
  }
  co_return false;
}

// ---- synchronous replication ----

net::Task<bool> FailoverController::setSyncNames(int primary, const std::string& value) {
  const std::vector<std::string> sql = {
      "ALTER SYSTEM SET synchronous_standby_names = " + common::quoteLiteral(value),
      "SELECT pg_reload_conf()"};
  auto res = co_await runOnNode(ctx_.get_executor(), target(primary), sql, probeTimeout());
  if (!res) {
    state_.events().add("sync_config_failed", primary,
                        fmt::format("could not set synchronous_standby_names on node {}: {}",
                                    primary, res.error().str()),
                        true);
    co_return false;
  }
  co_return true;
}

net::Task<void> FailoverController::configureSyncOnNewPrimary(int primary) {
  SyncNames names =
      parseSyncNames(saved_sync_names_.empty() ? last_sync_names_ : saved_sync_names_);
  if (names.empty()) co_return;
  std::vector<std::string> remaining;
  const auto snapshot = topo();  // keeps the nodes alive while publishing
  for (const auto& n : snapshot->nodes) {
    if (n.backend.id == primary || n.status != NodeStatus::kUp) continue;
    if (!n.backend.application_name.empty()) remaining.push_back(n.backend.application_name);
  }
  const SyncNames original = names;
  std::string value;
  if (!remaining.empty()) names.names = remaining;
  if (cfg_->sync_replication_policy == "availability") {
    // Asynchronous until enough of the followers stream from the new primary (then
    // manageSyncReplication restores it): a standby that cannot follow must not stall
    // every commit until it is detached.
    saved_sync_names_ = formatSyncNames(names);
  } else {
    value = formatSyncNames(names);  // durability: commits wait for the standbys
  }
  if (co_await setSyncNames(primary, value)) {
    last_sync_names_ = value;
    state_.events().add(
        "sync_config", primary,
        value.empty() && !saved_sync_names_.empty()
            ? fmt::format("new primary node {}: asynchronous until its standbys stream, then "
                          "synchronous_standby_names = '{}'",
                          primary, saved_sync_names_)
            : fmt::format("new primary node {}: synchronous_standby_names = '{}'", primary, value));
  }
  saveStatusFile();
}

net::Task<void> FailoverController::manageSyncReplication() {
  if (cfg_->sync_replication_policy != "availability") co_return;
  const auto t = topo();
  if (t->primary < 0 || failover_running_) co_return;
  const int p = t->primary;
  const bool switched = !saved_sync_names_.empty();
  const SyncNames names = parseSyncNames(switched ? saved_sync_names_ : last_sync_names_);
  if (names.empty()) co_return;
  int streaming = 0;
  for (const auto& row : last_replication_) {
    if (row.state == "streaming" && syncNamesInclude(names, row.application_name)) ++streaming;
  }
  if (!switched && streaming < names.num_sync) {
    // Commits would wait for a standby that is gone: switch the primary to asynchronous.
    const std::string original = last_sync_names_;
    if (co_await setSyncNames(p, "")) {
      saved_sync_names_ = original;
      last_sync_names_.clear();
      last_sync_standbys_.clear();
      state_.events().add(
          "sync_to_async", p,
          fmt::format("synchronous standbys lost ({} of {} streaming): primary node {} switched "
                      "to asynchronous replication (sync_replication_policy = availability); "
                      "was '{}'",
                      streaming, names.num_sync, p, original),
          true);
      saveStatusFile();
    }
  } else if (switched && streaming >= names.num_sync) {
    const std::string original = saved_sync_names_;
    if (co_await setSyncNames(p, original)) {
      saved_sync_names_.clear();
      last_sync_names_ = original;
      state_.events().add("async_to_sync", p,
                          fmt::format("a synchronous standby streams again: primary node {} "
                                      "back to synchronous_standby_names = '{}'",
                                      p, original));
      saveStatusFile();
    }
  }
}

// ---- external commands ----

net::Task<int> FailoverController::runCommand(const std::string& command, milliseconds timeout) {
  log::logf(Level::kLog, "running command: {}", command);
  const pid_t pid = ::fork();
  if (pid < 0) co_return -2;
  if (pid == 0) {
    ::setsid();
    ::close_range(3, ~0U, 0);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto until = Clock::now() + timeout;
  asio::steady_timer t(ctx_);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) co_return -2;
    if (Clock::now() >= until || stopped_) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      co_return -1;
    }
    t.expires_after(milliseconds(50));
    co_await t.async_wait(net::kUseAwaitable);
  }
}

// ---- operator commands ----

void FailoverController::submit(Command cmd, CommandCallback done) {
  asio::post(ctx_, [this, cmd = std::move(cmd), done = std::move(done)]() mutable {
    asio::co_spawn(
        ctx_,
        [this, cmd = std::move(cmd), done = std::move(done)]() -> net::Task<void> {
          auto r = co_await execute(cmd);
          if (done) done(std::move(r));
        },
        asio::detached);
  });
}

net::Task<CommandResult> FailoverController::execute(Command cmd) {
  if (!node(cmd.node)) {
    co_return CommandResult{false, fmt::format("node {} does not exist", cmd.node)};
  }
  switch (cmd.kind) {
    case CommandKind::kAttach:
      co_return co_await attach(cmd.node);
    case CommandKind::kDetach:
      co_return co_await detach(cmd.node);
    case CommandKind::kPromote:
      co_return co_await promoteCommand(cmd.node, cmd.force);
    case CommandKind::kSwitchover:
      co_return co_await switchover(cmd.node);
    default:
      co_return CommandResult{false,
                              fmt::format("{} is not a node command", commandName(cmd.kind))};
  }
}

net::Task<CommandResult> FailoverController::attach(int id) {
  const NodeState* n = node(id);
  if (n->status == NodeStatus::kUp)
    co_return CommandResult{true, fmt::format("node {} is already up", id)};
  auto r = co_await probeNode(ctx_.get_executor(), target(id), probeTimeout());
  runtime_[id]->last = r;
  if (r.outcome != Outcome::kOk) {
    co_return CommandResult{false, fmt::format("node {} is not reachable: {}", id, r.error)};
  }
  const int primary = topo()->primary;
  if (r.role == Role::kPrimary && primary >= 0 && primary != id) {
    co_return CommandResult{
        false, fmt::format("node {} is running as a primary while node {} is the primary; "
                           "refusing to attach a second primary",
                           id, primary)};
  }
  setStatus(id, NodeStatus::kUp, "attached by an operator");
  co_await onProbe(id, r);
  co_return CommandResult{true, fmt::format("node {} attached", id)};
}

net::Task<CommandResult> FailoverController::detach(int id) {
  const NodeState* n = node(id);
  if (n->status != NodeStatus::kUp)
    co_return CommandResult{true, fmt::format("node {} is already down", id)};
  if (n->heldByFlag()) {
    co_return CommandResult{false, fmt::format("node {} has backend_flag {}: pgpilot does not "
                                               "detach it",
                                               id, n->flagName())};
  }
  if (id == topo()->primary) {
    if (failover_running_) co_return CommandResult{false, "a failover is already running"};
    co_await failover(id, "detached by an operator", std::nullopt, false);
    const int p = topo()->primary;
    co_return CommandResult{p >= 0,
                            p >= 0 ? fmt::format("node {} detached; new primary node {}", id, p)
                                   : fmt::format("node {} detached; no primary", id)};
  }
  setStatus(id, NodeStatus::kDown, "detached by an operator");
  co_await manageSyncReplication();
  co_return CommandResult{true, fmt::format("node {} detached", id)};
}

net::Task<CommandResult> FailoverController::promoteCommand(int id, bool force) {
  const auto t = topo();
  if (const int always = t->alwaysPrimaryNode(); always >= 0 && always != id) {
    co_return CommandResult{false, fmt::format("node {} has backend_flag ALWAYS_PRIMARY: it is "
                                               "the primary by configuration",
                                               always)};
  }
  if (t->primary == id)
    co_return CommandResult{true, fmt::format("node {} is already the primary", id)};
  if (t->primary >= 0) {
    co_return CommandResult{false, fmt::format("node {} is the primary and up: use switchover to "
                                               "make node {} the primary",
                                               t->primary, id)};
  }
  if (failover_running_) co_return CommandResult{false, "a failover is already running"};
  co_await failover(-1, fmt::format("operator promotes node {}{}", id, force ? " (force)" : ""), id,
                    force);
  const bool ok = topo()->primary == id;
  co_return CommandResult{ok,
                          ok ? fmt::format("node {} is the new primary", id)
                             : fmt::format("node {} was not promoted; see SHOW pool_events", id)};
}

// ---- status file ----

std::string FailoverController::statusPath() const {
  if (!cfg_->status_file.empty()) return cfg_->status_file;
  return (std::filesystem::path(cfg_->logdir) / "pgpilot_status").string();
}

void FailoverController::loadStatusFile() {
  std::ifstream in(statusPath());
  if (!in) return;
  try {
    const auto j = nlohmann::json::parse(in);
    for (const auto& [key, value] : j.at("nodes").items()) {
      const std::string s = value.get<std::string>();
      saved_status_[std::stoi(key)] = s == "up"       ? NodeStatus::kUp
                                      : s == "unused" ? NodeStatus::kUnused
                                                      : NodeStatus::kDown;
    }
    saved_primary_ = j.value("primary", -1);
    saved_sync_names_ = j.value("saved_synchronous_standby_names", std::string());
  } catch (const std::exception& e) {
    log::logf(Level::kWarning, "ignoring unreadable status file {}: {}", statusPath(), e.what());
    saved_status_.clear();
  }
}

void FailoverController::saveStatusFile() const {
  nlohmann::json j;
  j["version"] = 1;
  const auto t = topo();
  j["primary"] = t->primary;
  j["saved_synchronous_standby_names"] = saved_sync_names_;
  auto& nodes = j["nodes"];
  nodes = nlohmann::json::object();
  for (const auto& n : t->nodes)
    nodes[std::to_string(n.backend.id)] = std::string(statusName(n.status));
  const std::string path = statusPath();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) {
      log::logf(Level::kWarning, "cannot write status file {}", tmp);
      return;
    }
    out << j.dump(2) << '\n';
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) log::logf(Level::kWarning, "cannot write status file {}: {}", path, ec.message());
}

}  // namespace pgpilot::cluster
