// Planned switchover: the FailoverController's steps for making a standby the primary while
// the old primary is healthy, without failing a statement of a client that is outside a
// transaction.
//
//   1. Hold new statements (sessions outside a transaction wait before their next one) and
//      wait, bounded by switchover_drain_timeout, for open transactions to finish.
//   2. Read the old primary's WAL position; the target must replay up to it.
//   3. Repoint the other standbys to the target (they cascade from it, then follow its new
//      timeline), make the old primary a standby of the target (primary_conninfo +
//      standby.signal, built in through SQL; or switchover_command) and restart it. A clean
//      shutdown sends every WAL record, the shutdown checkpoint included, to the streaming
//      target, so the old primary can follow the target without pg_rewind.
//   4. Once the old primary is back as a standby, check that the target has received all of
//      its WAL, promote the target, publish it and release the held statements.
//   5. Confirm that the old primary and the other standbys stream from the new primary;
//      one that does not is detached, as after a failover.
//
// Failure before the old primary is touched: give up, release, nothing changed. The old
// primary did not restart: undo standby.signal and primary_conninfo, keep it. The target
// cannot be promoted or lacks WAL: promote the old primary back (it has every record).
#include <fmt/format.h>

#include "cluster/failover.h"
#include "common/log.h"
#include "common/sql_quote.h"

namespace pgpilot::cluster {

using Outcome = ProbeResult::Outcome;
using std::chrono::milliseconds;

namespace {

uint64_t toLsn(const std::optional<std::string>& v) {
  return v ? std::strtoull(v->c_str(), nullptr, 10) : 0;
}

}  // namespace

net::Task<CommandResult> FailoverController::switchover(int id) {
  const auto t = topo();
  const int old = t->primary;
  const NodeState* n = t->find(id);
  if (old < 0) {
    co_return CommandResult{false, fmt::format("there is no primary to switch over from: use "
                                               "PGPILOT PROMOTE {}",
                                               id)};
  }
  if (old == id) co_return CommandResult{true, fmt::format("node {} is already the primary", id)};
  if (failover_running_ || switchover_running_) {
    co_return CommandResult{false, "a failover or switchover is already running"};
  }
  if (n->status != NodeStatus::kUp) {
    co_return CommandResult{false, fmt::format("node {} is not attached", id)};
  }
  if (!n->backend.allow_failover) {
    co_return CommandResult{false,
                            fmt::format("node {} has backend_flag DISALLOW_TO_FAILOVER", id)};
  }
  // The primary's own flags: something else manages it, or it is the primary by definition.
  if (const int always = t->alwaysPrimaryNode(); always >= 0) {
    co_return CommandResult{false, fmt::format("node {} has backend_flag ALWAYS_PRIMARY: it is "
                                               "the primary by configuration",
                                               always)};
  }
  if (const NodeState* p = t->find(old); p && p->heldByFlag()) {
    co_return CommandResult{false,
                            fmt::format("primary node {} has backend_flag {}", old, p->flagName())};
  }
  const ProbeResult& last = lastProbe(id);
  if (last.outcome != Outcome::kOk || last.role != Role::kStandby) {
    co_return CommandResult{false,
                            fmt::format("node {} is not a standby answering health checks", id)};
  }
  if (last.wal_receiver_status != "streaming") {
    co_return CommandResult{
        false, fmt::format("node {} is not streaming from the primary (its WAL receiver is '{}')",
                           id, last.wal_receiver_status)};
  }
  failover_running_ = true;  // health checks neither fail over nor adopt a primary meanwhile
  switchover_running_ = true;
  switchover_from_ = old;
  const auto t0 = Clock::now();
  auto result = co_await switchoverSteps(old, id, t0);
  switchover_from_ = -1;
  switchover_running_ = false;
  failover_running_ = false;
  if (hold_hook_) hold_hook_(false);
  if (!result.ok) state_.events().add("switchover_failed", id, result.message, true);
  co_return result;
}

net::Task<CommandResult> FailoverController::switchoverSteps(int old, int id,
                                                             Clock::time_point t0) {
  const auto deadline = t0 + cfg_->switchover_timeout;
  state_.events().add("switchover", id,
                      fmt::format("planned switchover from primary node {} to node {}: new "
                                  "statements are held",
                                  old, id));
  if (hold_hook_) hold_hook_(true);

  // 1. Let open transactions finish.
  if (const int busy = co_await drainSessions(cfg_->switchover_drain_timeout); busy > 0) {
    state_.events().add("switchover", id,
                        fmt::format("{} session(s) still inside a transaction after {} ms "
                                    "(switchover_drain_timeout); they get an error when node {} "
                                    "restarts",
                                    busy, cfg_->switchover_drain_timeout.count(), old),
                        true);
  }

  // 2. The target replays everything the old primary has written so far.
  const std::vector<std::string> where = {
      "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, "
      "current_setting('data_directory'), "
      "(SELECT setting FROM pg_config WHERE name = 'BINDIR'), "
      "current_setting('primary_conninfo')"};
  auto pos = co_await runOnNode(ctx_.get_executor(), target(old), where, probeTimeout());
  if (!pos || pos->rows.empty()) {
    co_return CommandResult{false, fmt::format("switchover to node {} abandoned: cannot read the "
                                               "primary's WAL position: {}",
                                               id, pos ? "no row" : pos.error().str())};
  }
  const auto& row = pos->rows[0];
  const uint64_t lsn0 = toLsn(row[0]);
  const std::string datadir = row[1].value_or("");
  const std::string bindir = row[2].value_or("");
  const std::string old_conninfo = row[3].value_or("");
  if (!co_await waitReplayed(id, lsn0, deadline)) {
    co_return CommandResult{false,
                            fmt::format("switchover to node {} abandoned: it did not replay up to "
                                        "the primary's position within switchover_timeout",
                                        id)};
  }

  // 3. The old primary's connection string to the target: the target's own, repointed and
  // under the old primary's application_name (synchronous_standby_names refers to it).
  const std::vector<std::string> show = {"SHOW primary_conninfo"};
  auto ci = co_await runOnNode(ctx_.get_executor(), target(id), show, probeTimeout());
  if (!ci || ci->rows.empty() || !ci->rows[0][0]) {
    co_return CommandResult{false, fmt::format("switchover to node {} abandoned: cannot read its "
                                               "primary_conninfo",
                                               id)};
  }
  config::BackendConfig tb;
  config::BackendConfig ob;
  if (const NodeState* tn = node(id)) tb = tn->backend;
  if (const NodeState* on = node(old)) ob = on->backend;
  const std::string old_app = ob.application_name;
  auto follow_ci = repointConninfo(*ci->rows[0][0], tb.hostname, tb.port, old_app);
  if (!follow_ci) {
    co_return CommandResult{
        false, "switchover abandoned: cannot parse primary_conninfo: " + follow_ci.error()};
  }
  // The other standbys cascade from the target from now on.
  std::map<int, std::string> repoint_error;
  {
    const auto snapshot = topo();
    std::vector<int> followers = {old};  // replication_slots: theirs made on the target first
    for (const auto& s : snapshot->nodes) {
      if (s.backend.id != id && s.backend.id != old && s.status == NodeStatus::kUp)
        followers.push_back(s.backend.id);
    }
    co_await slots_.createFor(id, followers, probeTimeout());
    for (const auto& s : snapshot->nodes) {
      const int sid = s.backend.id;
      if (sid == id || sid == old || s.status != NodeStatus::kUp) continue;
      std::string error;
      if (cfg_->follow_primary_command.empty()) error = co_await repointStandby(sid, id);
      repoint_error[sid] = std::move(error);
    }
  }
  const bool builtin = cfg_->switchover_command.empty();
  const std::string signal_file = datadir + "/standby.signal";
  if (builtin) {
    std::vector<std::string> prepare = {
        "ALTER SYSTEM SET primary_conninfo = " + common::quoteLiteral(*follow_ci),
        "COPY (SELECT 1 WHERE false) TO " + common::quoteLiteral(signal_file)};
    // Its slot on the target, or none (a primary_slot_name left from when it was a standby
    // would name a slot the target does not have).
    if (auto slot = slots_.primarySlotNameSql(old, id); !slot.empty())
      prepare.insert(prepare.begin() + 1, std::move(slot));
    auto prep = co_await runOnNode(ctx_.get_executor(), target(old), prepare, probeTimeout());
    if (!prep) {
      co_return co_await switchoverRollback(
          old, id, "cannot make it a standby: " + prep.error().str(), old_conninfo);
    }
  }
  // No primary from here until the target is promoted: sessions' connections to the old
  // primary are closed (they reconnect, after the hold, to whichever node is primary then).
  setPrimary(-1);
  if (node_down_hook_) node_down_hook_(old);
  state_.events().add("switchover", old,
                      fmt::format("restarting node {} as a standby of node {}", old, id));
  if (builtin) {
    const std::vector<std::string> restart = {
        "COPY (SELECT 1 WHERE false) TO PROGRAM " +
        common::quoteLiteral(restartAsStandbyCommand(bindir, datadir))};
    auto r = co_await runOnNode(ctx_.get_executor(), target(old), restart, probeTimeout());
    if (!r) {
      co_return co_await switchoverRollback(old, id, "cannot restart it: " + r.error().str(),
                                            old_conninfo);
    }
  } else {
    const std::string cmd =
        expandPlaceholders(cfg_->switchover_command, placeholders(old, id, old));
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (const int rc = co_await runCommand(cmd, std::max(left, milliseconds(1000))); rc != 0) {
      co_return co_await switchoverRollback(
          old, id, fmt::format("switchover_command failed (exit {}): {}", rc, cmd), "");
    }
  }

  // 4. The old primary comes back as a standby; the target must have all of its WAL.
  const auto back = co_await waitBackAsStandby(old, deadline);
  if (back) {
    const uint64_t end = std::max(back->receive_lsn, back->replay_lsn);
    if (!co_await waitReplayed(id, end, deadline)) {
      co_return co_await switchoverRollback(
          old, id, fmt::format("node {} did not receive the old primary's last WAL", id), "");
    }
  } else {
    auto r = co_await probeNode(ctx_.get_executor(), target(old), probeTimeout());
    if (r.outcome == Outcome::kOk && r.role == Role::kPrimary) {
      co_return co_await switchoverRollback(old, id, "it did not restart", old_conninfo);
    }
    // Down and not back: the target has everything written before the hold; go on without
    // the old primary (it is detached below, as after a failover).
  }
  bool ok = co_await promote(id, old);
  if (ok) ok = co_await waitForPrimary(id, cfg_->search_primary_node_timeout);
  if (!ok) {
    co_return co_await switchoverRollback(old, id, fmt::format("node {} was not promoted", id), "");
  }
  if (!back) {
    setStatus(old, NodeStatus::kDown,
              fmt::format("switchover: it did not come back as a standby of node {} within "
                          "switchover_timeout",
                          id));
  }
  last_replication_.clear();
  setPrimary(id);
  co_await configureSyncOnNewPrimary(id);
  if (hold_hook_) hold_hook_(false);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  state_.events().add("switchover_done", id,
                      fmt::format("switchover done: new primary node {} (was node {}), {} ms", id,
                                  old, took.count()));

  // 5. Everybody follows the new primary, or is detached.
  failover_running_ = false;
  switchover_from_ = -1;
  if (back) repoint_error[old] = "";
  for (const auto& [sid, error] : repoint_error) {
    const NodeState* s = node(sid);
    if (!s || s->status != NodeStatus::kUp || topo()->primary != id) continue;
    co_await followNewPrimary(sid, id, old, error);
  }
  co_return CommandResult{true, fmt::format("switchover done: node {} is the primary, node {} a "
                                            "standby ({} ms)",
                                            id, old, took.count())};
}

net::Task<int> FailoverController::drainSessions(milliseconds timeout) {
  if (!busy_hook_) co_return 0;
  const auto until = Clock::now() + timeout;
  asio::steady_timer t(ctx_);
  for (;;) {
    const int busy = co_await busy_hook_();
    if (busy == 0 || Clock::now() >= until || stopped_) co_return busy;
    t.expires_after(milliseconds(50));
    co_await t.async_wait(net::kUseAwaitable);
  }
}

net::Task<bool> FailoverController::waitReplayed(int id, uint64_t lsn, Clock::time_point deadline) {
  asio::steady_timer t(ctx_);
  while (!stopped_) {
    auto r = co_await probeNode(ctx_.get_executor(), target(id), probeTimeout());
    if (r.outcome == Outcome::kOk) {
      lastProbe(id) = r;
      if (r.replay_lsn >= lsn || (r.role == Role::kPrimary && r.lsn >= lsn)) co_return true;
    }
    if (Clock::now() >= deadline) break;
    t.expires_after(milliseconds(50));
    co_await t.async_wait(net::kUseAwaitable);
  }
  co_return false;
}

net::Task<std::optional<ProbeResult>> FailoverController::waitBackAsStandby(
    int id, Clock::time_point deadline) {
  asio::steady_timer t(ctx_);
  while (!stopped_ && Clock::now() < deadline) {
    auto r = co_await probeNode(ctx_.get_executor(), target(id), milliseconds(2000));
    lastProbe(id) = r;
    if (r.outcome == Outcome::kOk && r.role == Role::kStandby) co_return r;
    t.expires_after(milliseconds(100));
    co_await t.async_wait(net::kUseAwaitable);
  }
  co_return std::nullopt;
}

// Puts the old primary back in charge. `undo_conninfo` set: it was not restarted, so its
// standby.signal is removed and primary_conninfo restored; otherwise it is a standby now
// (it has every WAL record) and is promoted back.
net::Task<CommandResult> FailoverController::switchoverRollback(int old, int id, std::string why,
                                                                std::string undo_conninfo) {
  std::string outcome;
  auto r = co_await probeNode(ctx_.get_executor(), target(old), probeTimeout());
  bool primary_again = r.outcome == Outcome::kOk && r.role == Role::kPrimary;
  if (primary_again && cfg_->switchover_command.empty()) {
    const std::vector<std::string> dir = {"SELECT current_setting('data_directory')"};
    auto d = co_await runOnNode(ctx_.get_executor(), target(old), dir, probeTimeout());
    if (d && !d->rows.empty() && d->rows[0][0]) {
      const std::string rm = "rm -f " + shellQuote(*d->rows[0][0] + "/standby.signal");
      const std::vector<std::string> undo = {
          "ALTER SYSTEM SET primary_conninfo = " + common::quoteLiteral(undo_conninfo),
          "COPY (SELECT 1 WHERE false) TO PROGRAM " + common::quoteLiteral(rm)};
      auto f = co_await runOnNode(ctx_.get_executor(), target(old), undo, probeTimeout());
      outcome = f ? "its standby.signal and primary_conninfo were undone"
                  : "undoing its standby.signal failed: " + f.error().str();
    }
  } else if (r.outcome == Outcome::kOk && r.role == Role::kStandby) {
    // (No co_await inside && or ?: — GCC 12 miscompiles it.)
    primary_again = co_await promote(old, id);
    if (primary_again) {
      primary_again = co_await waitForPrimary(old, cfg_->search_primary_node_timeout);
    }
    outcome = primary_again ? "it was promoted back" : "promoting it back failed";
  } else {
    outcome = fmt::format("it does not answer ({})", r.error);
  }
  if (primary_again) {
    setPrimary(old);
    state_.events().add("primary", old, fmt::format("primary node is node {}", old));
  }
  co_return CommandResult{
      false, fmt::format("switchover to node {} failed: node {} {}; {}; primary: {}", id, old, why,
                         outcome,
                         primary_again ? fmt::format("node {}", old)
                                       : std::string("none (see SHOW pool_events)"))};
}

}  // namespace pgpilot::cluster
