#include "cluster/monitor.h"

#include <algorithm>
#include <cstdlib>

#include "common/log.h"

namespace pgpilot::cluster {

using log::Level;

Monitor::Monitor(asio::io_context& ctx, ClusterState& state,
                 std::shared_ptr<const config::Config> cfg,
                 std::shared_ptr<const auth::PasswordFile> passwords)
    : ctx_(ctx),
      state_(state),
      cfg_(std::move(cfg)),
      passwords_(std::move(passwords)),
      timer_(ctx) {}

pool::Credentials Monitor::credentials() const {
  pool::Credentials c;
  c.user = !cfg_->health_check_user.empty() ? cfg_->health_check_user
           : !cfg_->sr_check_user.empty()   ? cfg_->sr_check_user
                                            : std::string("postgres");
  const std::string& pw =
      !cfg_->health_check_password.empty() ? cfg_->health_check_password : cfg_->sr_check_password;
  if (!pw.empty()) {
    c.password = auth::PasswordEntry{auth::PasswordEntry::Kind::kPlain, pw};
  } else if (passwords_) {
    if (const auto* e = passwords_->find(c.user)) c.password = *e;
  }
  return c;
}

net::Task<ProbeResult> Monitor::probe(const config::BackendConfig& b) {
  ProbeResult r;
  r.node = b.id;
  const auto creds = credentials();
  pool::Params params = {{"user", creds.user},
                         {"database", cfg_->health_check_database},
                         {"application_name", "pgpilot health check"}};
  const auto timeout =
      cfg_->health_check_timeout.count() > 0 ? cfg_->health_check_timeout : cfg_->connect_timeout;
  auto conn = co_await pool::connectServer(ctx_.get_executor(), b, params, creds, timeout, nullptr,
                                           config::ServerSslMode::kDisable);
  if (!conn) {
    r.error = conn.error().str();
    co_return r;
  }
  // One round trip: role and WAL position ('0/0'::pg_lsn arithmetic gives bytes).
  auto res = co_await (*conn)->query(
      "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() THEN "
      "coalesce(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn()) ELSE pg_current_wal_lsn() "
      "END - '0/0'::pg_lsn)::bigint",
      timeout);
  if (!res || res->rows.empty() || res->rows[0].size() < 2 || !res->rows[0][0]) {
    r.error = res ? "unexpected answer to pg_is_in_recovery()" : res.error().str();
    (*conn)->stream().close();
    co_return r;
  }
  r.reachable = true;
  r.role = *res->rows[0][0] == "t" ? Role::kStandby : Role::kPrimary;
  if (res->rows[0][1]) r.lsn = std::strtoull(res->rows[0][1]->c_str(), nullptr, 10);
  if (r.role == Role::kPrimary) {
    auto rep = co_await (*conn)->query(
        "SELECT application_name, state, sync_state FROM pg_stat_replication", timeout);
    if (rep) {
      for (const auto& row : rep->rows) {
        if (row.size() < 3) continue;
        r.replication.push_back({row[0].value_or(""), row[1].value_or(""), row[2].value_or("")});
      }
    }
  }
  std::string out;
  protocol::buildTerminate(out);
  co_await (*conn)->stream().writeAll(out);
  (*conn)->stream().close();
  co_return r;
}

void Monitor::setConfig(std::shared_ptr<const config::Config> cfg,
                        std::shared_ptr<const auth::PasswordFile> passwords) {
  cfg_ = std::move(cfg);
  passwords_ = std::move(passwords);
}

net::Task<void> Monitor::probeAll() {
  // Probe the nodes of the current snapshot, then apply the results to the snapshot that is
  // current once they are in: a reload may publish one meanwhile (nodes it added are probed
  // next round), and its changes must not be overwritten by a stale copy.
  std::vector<config::BackendConfig> backends;
  {
    auto t = state_.topology();
    if (t->nodes.empty()) t = initialTopology(*cfg_);
    for (const auto& n : t->nodes) backends.push_back(n.backend);
  }
  std::vector<ProbeResult> results;
  for (const auto& b : backends) results.push_back(co_await probe(b));

  auto current = state_.topology();
  auto next = std::make_shared<Topology>(*current);
  if (next->nodes.empty()) next = initialTopology(*cfg_);
  bool changed = current->nodes.empty();
  int primary = -1;
  std::vector<std::array<std::string, 3>> replication;
  for (auto& n : next->nodes) {
    auto it = std::find_if(results.begin(), results.end(),
                           [&](const ProbeResult& pr) { return pr.node == n.backend.id; });
    if (it == results.end()) continue;
    const ProbeResult& r = *it;
    const Role pg_role = r.reachable ? r.role : Role::kUnknown;
    if (n.pg_up != r.reachable || n.pg_role != pg_role) changed = true;
    if (!r.reachable && n.pg_up) {
      log::logf(Level::kWarning, {.node = n.backend.id}, "node {} ({}:{}) is not reachable: {}",
                n.backend.id, n.backend.hostname, n.backend.port, r.error);
    } else if (!r.reachable && current->nodes.empty()) {
      log::logf(Level::kWarning, {.node = n.backend.id}, "node {} ({}:{}) is not reachable: {}",
                n.backend.id, n.backend.hostname, n.backend.port, r.error);
    }
    n.pg_up = r.reachable;
    n.pg_role = pg_role;
    n.lsn = r.reachable ? r.lsn : 0;
    if (r.reachable && r.role == Role::kPrimary) replication = r.replication;
    if (r.reachable) n.role = r.role;
    if (r.reachable && r.role == Role::kPrimary && primary < 0) primary = n.backend.id;
  }
  if (primary != next->primary) {
    changed = true;
    if (primary >= 0) {
      log::logf(Level::kLog, {.node = primary}, "primary node is node {}", primary);
    } else {
      log::logf(Level::kWarning, "no primary node found: writes cannot be served");
    }
  }
  next->primary = primary;
  // Replication view of each standby, relative to the primary (pgpool's sr_check).
  const NodeState* p = next->primaryNode();
  for (auto& n : next->nodes) {
    const std::string rs = n.replication_state;
    const std::string ss = n.replication_sync_state;
    const uint64_t delay = n.replication_delay;
    n.replication_state.clear();
    n.replication_sync_state.clear();
    n.replication_delay = 0;
    if (p && n.backend.id != p->backend.id && n.pg_up) {
      n.replication_delay = p->lsn > n.lsn ? p->lsn - n.lsn : 0;
      const std::string& app = n.backend.application_name;
      for (const auto& row : replication) {
        if (!app.empty() && row[0] == app) {
          n.replication_state = row[1];
          n.replication_sync_state = row[2];
        }
      }
    }
    if (rs != n.replication_state || ss != n.replication_sync_state ||
        delay != n.replication_delay) {
      changed = true;
    }
  }
  if (changed) {
    next->version = current->version + 1;
    state_.publish(std::move(next));
  }
}

net::Task<void> Monitor::run() {
  while (!stopped_) {
    const auto t = state_.topology();
    std::chrono::milliseconds period = cfg_->health_check_period;
    if (period.count() <= 0 ||
        (cfg_->sr_check_period.count() > 0 && cfg_->sr_check_period < period)) {
      period = cfg_->sr_check_period;
    }
    if (t->primary < 0) period = std::chrono::seconds(1);  // keep searching for a primary
    if (period.count() <= 0) period = std::chrono::seconds(10);
    timer_.expires_after(period);
    co_await timer_.async_wait(net::kUseAwaitable);
    if (stopped_) break;
    co_await probeAll();
  }
}

void Monitor::stop() {
  stopped_ = true;
  timer_.cancel();
}

}  // namespace pgpilot::cluster
