// The admin console side of ClientSession: SHOW pool_* and PGPILOT commands on the normal
// port (interleaved with relayed SQL), and whole sessions on the admin port (admin_port:
// no server connection; every statement is answered here).
#include <fmt/format.h>

#include <algorithm>

#include "protocol/codec.h"
#include "session/client_session.h"
#include "session/collect.h"

namespace pgpilot::session {

using log::Level;
namespace fe = protocol::fe;

namespace {

// Parameters a driver expects after authentication (the admin port has no server to ask).
void adminParameters(std::string& out, const std::string& user, const std::string& app) {
  const std::pair<const char*, std::string> params[] = {
      {"server_version", "15.0 (pgpilot admin console)"},
      {"server_encoding", "UTF8"},
      {"client_encoding", "UTF8"},
      {"DateStyle", "ISO, MDY"},
      {"TimeZone", "UTC"},
      {"integer_datetimes", "on"},
      {"standard_conforming_strings", "on"},
      {"is_superuser", "on"},
      {"session_authorization", user},
      {"application_name", app},
  };
  for (const auto& [k, v] : params) protocol::buildParameterStatus(out, k, v);
}

// Counts the ErrorResponses in an answer about to be written (pgpilot_errors_total).
void countErrors(common::ErrorClassCounts& counts, std::string_view out) {
  while (!out.empty()) {
    const auto r = protocol::decodeFrame(out);
    if (r.status != protocol::DecodeStatus::kOk) return;
    if (r.frame.type == protocol::be::kErrorResponse) {
      const auto f = protocol::parseErrorFields(r.frame.body);
      counts.count(f ? std::string_view(f->code) : std::string_view());
    }
    out.remove_prefix(r.frame.total_size);
  }
}

}  // namespace

admin::SessionRow ClientSession::info() const {
  std::string state = admin_              ? "admin"
                      : pending_ > 0      ? "active"
                      : tx_status_ == 'T' ? "idle in transaction"
                      : tx_status_ == 'E' ? "idle in transaction (aborted)"
                                          : "idle";
  std::vector<int> nodes;
  for (const auto& b : backends_) {
    if (b->conn) nodes.push_back(b->node);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return admin::SessionRow{.id = id_,
                           .worker = worker_.index(),
                           .pid = pid_,
                           .user = info_.user,
                           .database = info_.database,
                           .application_name = info_.application_name,
                           .client_address = std::string(clientHost()),
                           .node = server_ ? server_->node() : -1,
                           .nodes = std::move(nodes),
                           .state = std::move(state),
                           .in_transaction = tx_status_ != 'I',
                           .since = started_};
}

net::Task<bool> ClientSession::checkAdminUser() {
  const auto& users = cfg_->admin_users;
  if (std::find(users.begin(), users.end(), info_.user) != users.end()) co_return true;
  co_await sendFatal("28000",
                     fmt::format("user \"{}\" is not allowed on the admin port", info_.user),
                     "admin_users lists the users allowed on admin_port");
  co_return false;
}

// An admin-port session: after authentication, answer simple Query messages until the
// client leaves. The extended protocol is refused (until Sync) with 0A000.
net::Task<void> ClientSession::adminSession() {
  pid_ = worker_.registerSession(this);
  registered_ = true;
  key_ = worker_.randomKey();
  std::string out;
  adminParameters(out, info_.user, info_.application_name);
  protocol::buildBackendKeyData(out, pid_, key_);
  protocol::buildReadyForQuery(out, 'I');
  if (co_await writeClient(out)) co_return;
  log::logf(Level::kDebug1, logContext(), "admin console session started from {}", clientHost());
  pool::MessageReader reader(1024);
  bool skip_to_sync = false;
  for (;;) {
    auto [ec, frame] = co_await reader.next(client_, false, 1 << 20);
    if (ec) co_return;
    out.clear();
    if (frame.type == fe::kTerminate) co_return;
    if (frame.type == fe::kQuery) {
      const std::string sql(protocol::parseQuery(frame.body).value_or(std::string_view{}));
      co_await answerAdmin(sql);
      continue;
    }
    if (frame.type == fe::kSync) {
      skip_to_sync = false;
      protocol::buildReadyForQuery(out, 'I');
    } else if (!skip_to_sync) {
      skip_to_sync = true;
      protocol::buildError(out, "ERROR", "0A000",
                           "the admin console supports the simple query protocol only");
    }
    countErrors(worker_.errorClasses(), out);
    if (!out.empty() && co_await writeClient(out)) co_return;
  }
}

net::Task<void> ClientSession::answerAdmin(std::string_view sql) {
  const admin::Statement st = admin::parse(sql, admin_);
  std::string out;
  co_await runAdminStatement(st, out);
  protocol::buildReadyForQuery(out, admin_ ? 'I' : tx_status_);
  countErrors(worker_.errorClasses(), out);
  co_await writeClient(out);
}

net::Task<void> ClientSession::runAdminStatement(const admin::Statement& st, std::string& out) {
  using admin::AdminCommand;
  if (st.command != AdminCommand::kControl) {
    admin::AdminContext ctx{.topology = nullptr,
                            .state = shared_.cluster,
                            .session_node = lb_ ? lb_node_ : (server_ ? server_->node() : -1)};
    auto topo = shared_.cluster->topology();
    auto cfg = shared_.config();
    ctx.topology = topo.get();
    ctx.config = cfg.get();
    ctx.started = shared_.started;
    ctx.paused = shared_.hold_new_statements.load(std::memory_order_relaxed);
    ctx.client_sessions = shared_.client_count.load(std::memory_order_relaxed);
    std::vector<admin::SessionRow> sessions;
    std::vector<admin::WorkerRow> workers;
    std::vector<admin::PoolRow> pools;
    if (st.command == AdminCommand::kShowPoolSessions) {
      sessions = co_await collectSessionRows(shared_);
      ctx.sessions = &sessions;
    } else if (st.command == AdminCommand::kShowPoolProcesses) {
      workers = co_await collectWorkerRows(shared_);
      ctx.workers = &workers;
    } else if (st.command == AdminCommand::kShowPoolPools) {
      pools = co_await collectPoolRows(shared_);
      ctx.pools = &pools;
    }
    admin::answer(st.command, ctx, out);
    admin::answerStatement(st, nullptr, out);
    co_return;
  }
  // Operator commands: on the normal port only for superusers (what the server said about
  // this session's user), always on the admin port (admin_users).
  const bool superuser = admin_ || (server_ && server_->params().contains("is_superuser") &&
                                    server_->params().at("is_superuser") == "on");
  if (!superuser) {
    protocol::buildError(
        out, "ERROR", "42501",
        fmt::format("permission denied: {} needs a superuser or the admin port", st.tag));
    co_return;
  }
  if (!shared_.control) {
    cluster::CommandResult r{.ok = false, .message = "operator commands are not available"};
    admin::answerStatement(st, &r, out);
    co_return;
  }
  cluster::Command cmd = st.control;
  cmd.source = admin_ ? fmt::format("admin port ({}@{})", info_.user, clientHost())
                      : fmt::format("sql ({}@{})", info_.user, clientHost());
  log::logf(Level::kLog, logContext(), "admin command: {}{}", st.tag,
            cmd.node >= 0 ? fmt::format(" {}", cmd.node) : std::string());
  auto [r] = co_await cluster::asyncSubmit(*shared_.control, std::move(cmd), net::kUseAwaitable);
  admin::answerStatement(st, &r, out);
}

net::Task<bool> ClientSession::holdWhilePaused(std::string_view data) {
  if (auto f = protocol::decodeFrame(data);
      f.status == protocol::DecodeStatus::kOk && f.frame.type == fe::kQuery) {
    auto sql = protocol::parseQuery(f.frame.body).value_or(std::string_view{});
    if (admin::recognize(sql) != admin::AdminCommand::kNone) co_return true;
  }
  const auto until = std::chrono::steady_clock::now() + cfg_->failover_hold_timeout;
  log::logf(Level::kDebug1, logContext(), "statement held: pgpilot is paused");
  asio::steady_timer t(worker_.context());
  while (shared_.hold_new_statements.load(std::memory_order_relaxed)) {
    if (std::chrono::steady_clock::now() >= until) {
      log::logf(Level::kWarning, logContext(),
                "statement held longer than failover_hold_timeout ({} s): letting it through",
                cfg_->failover_hold_timeout.count() / 1000);
      break;
    }
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(net::kUseAwaitable);
    if (aborted_ || server_finished_) co_return false;
  }
  co_return true;
}

}  // namespace pgpilot::session
