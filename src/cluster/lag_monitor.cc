#include "cluster/lag_monitor.h"

#include <cstdlib>

#include "cluster/probe.h"
#include "common/log.h"

namespace pgpilot::cluster {

namespace {

using log::Level;

// replay_lag is NULL once a caught-up standby has had nothing to replay for a while (and
// before the first measurement): 0 when its replay position has reached the primary's
// current WAL position, unknown otherwise.
constexpr std::string_view kLagQuery =
    "SELECT application_name, "
    "CASE WHEN replay_lag IS NOT NULL THEN extract(epoch FROM replay_lag)::float8 "
    "WHEN replay_lsn >= pg_current_wal_lsn() THEN 0 END "
    "FROM pg_stat_replication";

}  // namespace

std::map<int, std::optional<double>> lagByNode(const Topology& t, const std::vector<LagRow>& rows) {
  std::map<int, std::optional<double>> out;
  const NodeState* p = t.primaryNode();
  for (const auto& n : t.nodes) {
    std::optional<double>& lag = out[n.backend.id];
    if (!p) continue;
    if (n.backend.id == p->backend.id) {
      lag = 0.0;
      continue;
    }
    if (!n.pg_up || n.status != NodeStatus::kUp || n.backend.application_name.empty()) continue;
    for (const auto& r : rows) {
      if (r.application_name == n.backend.application_name) lag = r.seconds;
    }
  }
  return out;
}

ReplicationLagMonitor::ReplicationLagMonitor(asio::io_context& ctx, ClusterState& state,
                                             std::shared_ptr<const config::Config> cfg,
                                             std::shared_ptr<const auth::PasswordFile> passwords)
    : ctx_(ctx),
      state_(state),
      cfg_(std::move(cfg)),
      passwords_(std::move(passwords)),
      timer_(ctx) {}

void ReplicationLagMonitor::start() {
  asio::co_spawn(ctx_, loop(), asio::detached);
}

void ReplicationLagMonitor::stop() {
  stopped_ = true;
  timer_.cancel();
}

void ReplicationLagMonitor::setConfig(std::shared_ptr<const config::Config> cfg,
                                      std::shared_ptr<const auth::PasswordFile> passwords) {
  const bool period_changed = cfg->sr_check_period != cfg_->sr_check_period;
  cfg_ = std::move(cfg);
  passwords_ = std::move(passwords);
  if (period_changed) timer_.cancel();  // sample now and start the new period
}

void ReplicationLagMonitor::store(const std::map<int, std::optional<double>>& lags) {
  for (const auto& [id, lag] : lags) state_.setReplicationLag(id, lag);
}

net::Task<void> ReplicationLagMonitor::loop() {
  while (!stopped_) {
    const auto period = cfg_->sr_check_period;
    if (period.count() > 0) {
      co_await sample();
      timer_.expires_after(period);
    } else {
      Topology none = *state_.topology();  // disabled: nothing known
      none.primary = -1;
      store(lagByNode(none, {}));
      timer_.expires_after(std::chrono::seconds(5));
    }
    if (stopped_) break;
    co_await timer_.async_wait(net::kUseAwaitable);
  }
}

net::Task<void> ReplicationLagMonitor::sample() {
  const std::shared_ptr<const Topology> topo = state_.topology();
  const NodeState* p = topo->primaryNode();
  std::vector<LagRow> rows;
  if (p && p->pg_up) {
    const ProbeTarget target = probeTarget(*cfg_, passwords_.get(), p->backend);
    const auto timeout =
        cfg_->health_check_timeout.count() > 0 ? cfg_->health_check_timeout : cfg_->connect_timeout;
    const std::vector<std::string> sql{std::string(kLagQuery)};
    auto res = co_await runOnNode(ctx_.get_executor(), target, sql, timeout);
    if (!res) {
      if (!query_failure_reported_) {
        log::logf(Level::kWarning, {.node = p->backend.id},
                  "replication lag check on primary node {} failed: {}", p->backend.id,
                  res.error().str());
        query_failure_reported_ = true;
      }
    } else {
      query_failure_reported_ = false;
      for (const auto& row : res->rows) {
        if (row.size() < 2) continue;
        LagRow r{.application_name = row[0].value_or(""), .seconds = std::nullopt};
        if (row[1]) r.seconds = std::strtod(row[1]->c_str(), nullptr);
        rows.push_back(std::move(r));
      }
    }
  }
  // The topology may have changed while the query ran: map against the current one, but
  // only trust rows from the node that is still the primary.
  const std::shared_ptr<const Topology> now = state_.topology();
  if (!p || now->primary != p->backend.id) rows.clear();
  store(lagByNode(*now, rows));
}

}  // namespace pgpilot::cluster
