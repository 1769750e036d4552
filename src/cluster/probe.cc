#include "cluster/probe.h"

#include <cstdlib>

namespace pgpilot::cluster {

namespace {

using Outcome = ProbeResult::Outcome;

// The role, WAL positions, sync configuration and WAL receiver in one round trip.
// ('0/0'::pg_lsn arithmetic turns an LSN into a byte count.)
constexpr std::string_view kRoleQuery =
    "SELECT pg_is_in_recovery(), "
    "(CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), "
    "pg_last_wal_receive_lsn()) ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint, "
    "(pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint, "
    "(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, "
    "current_setting('synchronous_standby_names'), "
    "(SELECT status FROM pg_stat_wal_receiver), "
    "(SELECT sender_host FROM pg_stat_wal_receiver), "
    "(SELECT sender_port FROM pg_stat_wal_receiver)";

constexpr std::string_view kReplicationQuery =
    "SELECT application_name, state, sync_state, sync_priority FROM pg_stat_replication";

uint64_t toU64(const std::optional<std::string>& v) {
  return v ? std::strtoull(v->c_str(), nullptr, 10) : 0;
}

// What a failed connection or query says about the node.
Outcome classify(const pool::ServerError& e) {
  if (e.timed_out) return Outcome::kTimeout;
  if (!e.from_server) return Outcome::kRefused;
  // 57P01..57P03: admin/crash shutdown, or "cannot connect now" (starting up, shutting
  // down): the node is not serving. Anything else the server says proves it is alive.
  if (e.fields.code.starts_with("57P")) return Outcome::kRefused;
  return Outcome::kAlive;
}

pool::Params startupParams(const ProbeTarget& t) {
  return {{"user", t.credentials.user},
          {"database", t.database},
          {"application_name", "pgpilot health check"}};
}

void closeConn(pool::ServerConn& conn) {
  conn.stream().close();
}

void fill(ProbeResult& r, const pool::ServerConn::Result& res) {
  const auto& row = res.rows[0];
  r.role = row[0] && *row[0] == "t" ? Role::kStandby : Role::kPrimary;
  r.lsn = toU64(row[1]);
  r.receive_lsn = toU64(row[2]);
  r.replay_lsn = toU64(row[3]);
  r.synchronous_standby_names = row[4].value_or("");
  r.wal_receiver_status = row[5].value_or("");
  r.sender_host = row[6].value_or("");
  r.sender_port = static_cast<int>(toU64(row[7]));
}

}  // namespace

std::string_view outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kAlive:
      return "alive with error";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kTimeout:
      return "timeout";
  }
  return "unknown";
}

ProbeTarget probeTarget(const config::Config& cfg, const auth::PasswordFile* passwords,
                        const config::BackendConfig& backend) {
  ProbeTarget t;
  t.backend = backend;
  // By id from `cfg`: a reload that changes a per-node override applies at once.
  const config::HealthCheckSettings hc = config::healthCheckSettings(cfg, backend.id);
  t.connect_timeout = hc.connect_timeout;
  auto& c = t.credentials;
  c.user = !hc.user.empty()             ? hc.user
           : !cfg.sr_check_user.empty() ? cfg.sr_check_user
                                        : std::string("postgres");
  const std::string& pw = !hc.password.empty() ? hc.password : cfg.sr_check_password;
  if (!pw.empty()) {
    c.password = auth::PasswordEntry{auth::PasswordEntry::Kind::kPlain, pw};
  } else if (passwords) {
    if (const auto* e = passwords->find(c.user)) c.password = *e;
  }
  t.database = hc.database;
  return t;
}

net::Task<ProbeResult> probeNode(asio::any_io_executor ex, const ProbeTarget& target,
                                 std::chrono::milliseconds timeout) {
  ProbeResult r;
  const auto start = std::chrono::steady_clock::now();
  auto finish = [&] {
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
  };
  const auto ct = target.connect_timeout;
  const std::chrono::milliseconds connect_limit =
      ct.count() > 0 && (timeout.count() <= 0 || ct < timeout) ? ct : timeout;
  auto conn =
      co_await pool::connectServer(ex, target.backend, startupParams(target), target.credentials,
                                   connect_limit, nullptr, config::ServerSslMode::kDisable);
  if (!conn) {
    r.outcome = classify(conn.error());
    r.error = conn.error().str();
    finish();
    co_return r;
  }
  auto res = co_await (*conn)->query(kRoleQuery, timeout);
  if (!res || res->rows.empty() || res->rows[0].size() < 8 || !res->rows[0][0]) {
    r.outcome = res ? Outcome::kAlive : classify(res.error());
    r.error = res ? "unexpected answer to the role query" : res.error().str();
    closeConn(**conn);
    finish();
    co_return r;
  }
  r.outcome = Outcome::kOk;
  fill(r, *res);
  if (r.role == Role::kPrimary) {
    auto rep = co_await (*conn)->query(kReplicationQuery, timeout);
    if (rep) {
      for (const auto& row : rep->rows) {
        if (row.size() < 4) continue;
        r.replication.push_back({row[0].value_or(""), row[1].value_or(""), row[2].value_or(""),
                                 static_cast<int>(toU64(row[3]))});
      }
    }
  }
  std::string out;
  protocol::buildTerminate(out);
  co_await (*conn)->stream().writeAll(out);
  closeConn(**conn);
  finish();
  co_return r;
}

net::Task<std::expected<pool::ServerConn::Result, pool::ServerError>> runOnNode(
    asio::any_io_executor ex, const ProbeTarget& target, const std::vector<std::string>& sql,
    std::chrono::milliseconds timeout) {
  auto conn =
      co_await pool::connectServer(ex, target.backend, startupParams(target), target.credentials,
                                   timeout, nullptr, config::ServerSslMode::kDisable);
  if (!conn) co_return std::unexpected(conn.error());
  pool::ServerConn::Result last;
  for (const auto& q : sql) {
    auto res = co_await (*conn)->query(q, timeout);
    if (!res) {
      closeConn(**conn);
      co_return std::unexpected(res.error());
    }
    last = std::move(*res);
  }
  std::string out;
  protocol::buildTerminate(out);
  co_await (*conn)->stream().writeAll(out);
  closeConn(**conn);
  co_return last;
}

}  // namespace pgpilot::cluster
