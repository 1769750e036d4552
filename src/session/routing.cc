// ClientSession, part 2: server connections of a session and read/write routing
// (load_balance_mode). docs/routing.md, "Sessions", describes the rules implemented here.
//
// Invariant: only the active backend is ever owed a response by the client; a statement is
// routed only when the active backend owes nothing (pending_ == 0), so switching nodes never
// reorders responses. Work pgpilot does on its own (session replay, joining a node to a
// transaction, re-sending a Parse, catalog lookups) runs on connections no pump is reading.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/sql_quote.h"
#include "protocol/extended.h"
#include "router/balance.h"
#include "session/client_session.h"

namespace pgpilot::session {

using log::Level;
using Kind = router::Classification::Kind;
using router::Target;
namespace fe = protocol::fe;
namespace be = protocol::be;

using common::quoteIdent;
using common::quoteLiteral;

namespace {

uint32_t be32(std::string_view d, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(d[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(d[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(d[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(d[at + 3]));
}

// The first NUL-terminated string of `body` at `at` (may be cut short by the buffer).
std::optional<std::string_view> cstringAt(std::string_view body, size_t at) {
  if (at > body.size()) return std::nullopt;
  size_t end = body.find('\0', at);
  if (end == std::string_view::npos) return std::nullopt;
  return body.substr(at, end - at);
}

bool sessionKind(Kind k) {
  return k == Kind::kSet || k == Kind::kReset || k == Kind::kDiscard || k == Kind::kPrepare ||
         k == Kind::kDeallocate;
}

bool txControlKind(Kind k) {
  return k == Kind::kSavepoint || k == Kind::kReleaseSavepoint || k == Kind::kRollbackTo ||
         k == Kind::kSet || k == Kind::kReset;
}

std::chrono::milliseconds internalTimeout(const config::Config& cfg) {
  return std::max(cfg.connect_timeout, std::chrono::milliseconds(10000));
}

}  // namespace

// ---- backends and the pump ---------------------------------------------------------------

void ClientSession::startPump() {
  pump_running_ = true;
  asio::co_spawn(worker_.context(), serverPump(*server_),
                 [this](std::exception_ptr e, PumpEnd end) {
                   pump_running_ = false;
                   if (e) end = PumpEnd::kBroken;
                   switch (end) {
                     case PumpEnd::kStopped:
                       break;
                     case PumpEnd::kLostIdle:
                       active_lost_ = true;
                       break;
                     case PumpEnd::kClean:
                     case PumpEnd::kBroken:
                       server_finished_ = true;
                       server_clean_ = end == PumpEnd::kClean;
                       break;
                   }
                   server_done_.notify();
                   server_idle_.notify();
                 });
}

net::Task<void> ClientSession::stopPump() {
  if (!pump_running_) co_return;
  pump_stop_ = true;
  server_->stream().cancel();
  while (pump_running_) co_await server_done_.wait(std::chrono::seconds(1));
  pump_stop_ = false;
}

net::Task<bool> ClientSession::waitIdle() {
  // Also done when the server is in copy-in: it owes nothing more until the client's next
  // message, which the caller forwards to it whatever it is.
  while (pending_ > 0 && pump_running_ && !copy_in_) {
    co_await server_idle_.wait(std::chrono::seconds(1));
  }
  co_return !server_finished_;
}

ClientSession::Backend* ClientSession::findBackend(int node) {
  for (auto& b : backends_) {
    if (b->node == node) return b.get();
  }
  return nullptr;
}

void ClientSession::dropBackend(Backend& b, bool clean) {
  if (&b == active_) {
    active_ = nullptr;
    server_ = nullptr;
    active_lost_ = false;
  }
  auto it = std::find_if(backends_.begin(), backends_.end(),
                         [&](const auto& p) { return p.get() == &b; });
  if (it == backends_.end()) return;
  std::unique_ptr<Backend> owned = std::move(*it);
  backends_.erase(it);
  if (clean) {
    worker_.pool().release(std::move(owned->conn), owned->key, true);
  } else {
    worker_.pool().discard(std::move(owned->conn), owned->key);
  }
}

net::Task<std::expected<pool::ServerConn::Result, pool::ServerError>> ClientSession::internalQuery(
    Backend& b, std::string_view sql) {
  worker_.countInternalQuery();
  auto r = co_await b.conn->query(sql, internalTimeout(*cfg_));
  if (!r && r.error().connection_failed) b.conn->stream().close();
  co_return r;
}

net::Task<bool> ClientSession::internalExchange(Backend& b, std::string_view msgs) {
  worker_.countInternalQuery();
  if (co_await b.conn->stream().writeAll(msgs)) co_return false;
  net::Deadline deadline(worker_.context().get_executor(), internalTimeout(*cfg_),
                         b.conn->stream());
  pool::MessageReader reader(1024);
  for (;;) {
    auto [ec, frame] = co_await reader.next(b.conn->stream());
    if (ec) co_return false;
    if (frame.type == be::kReadyForQuery) {
      b.conn->setTxStatus(protocol::parseReadyForQuery(frame.body).value_or('I'));
      co_return !reader.hasBuffered();
    }
  }
}

net::Task<bool> ClientSession::replaySession(Backend& b) {
  // Each entry on its own: one that fails here (DEALLOCATE of a statement this node never
  // had) must not keep the others from being applied.
  for (; b.replayed < session_log_.size(); ++b.replayed) {
    auto r = co_await internalQuery(b, session_log_[b.replayed]);
    if (!r && r.error().connection_failed) {
      last_error_ = r.error();
      co_return false;
    }
  }
  co_return true;
}

net::Task<ClientSession::Backend*> ClientSession::backendFor(int node) {
  Backend* b = findBackend(node);
  if (b && b != active_ &&
      (!b->conn->stream().isOpen() || b->conn->stream().peerClosedOrReadable() ||
       !b->conn->pending().empty())) {
    dropBackend(*b, false);  // died or spoke while idle: never reused
    b = nullptr;
  }
  if (b && b != active_ && !b->in_tx && b->conn->txStatus() != 'I') {
    // Left over from an earlier transaction block that this node only read in.
    auto r = co_await internalQuery(*b, "ROLLBACK");
    if (!r) {
      dropBackend(*b, false);
      b = nullptr;
    }
  }
  if (!b) {
    auto topo = shared_.cluster->topology();
    const cluster::NodeState* n = topo->find(node);
    if (!n || n->status != cluster::NodeStatus::kUp) {
      last_error_ = pool::makeError("08006", fmt::format("node {} is not available", node), true);
      co_return nullptr;
    }
    pool::PoolKey key{node, info_.user, info_.database, info_.options};
    pool::Params startup = {{"user", info_.user}, {"database", info_.database}};
    if (!info_.options.empty()) startup.emplace_back("options", info_.options);
    auto conn = co_await worker_.pool().acquire(key, n->backend, startup, creds_);
    if (!conn) {
      last_error_ = conn.error();
      if (last_error_.connection_failed) {
        log::logf(Level::kWarning, logContext(), "cannot get a server connection to node {}: {}",
                  node, last_error_.str());
        // failover_on_backend_error: the controller checks the node now.
        if (!last_error_.from_server && shared_.report_backend_error) {
          shared_.report_backend_error(node);
        }
      }
      co_return nullptr;
    }
    // Apply the client's own startup parameters (the pooled connection was opened without
    // them, or for another client). Reported parameters already equal are skipped.
    std::string set_sql;
    for (const auto& [k, v] : info_.extra) {
      auto it = (*conn)->params().find(k);
      if (it != (*conn)->params().end() && it->second == v) continue;
      set_sql += fmt::format("SET {} = {};", quoteIdent(k), quoteLiteral(v));
    }
    if (!set_sql.empty()) {
      auto r = co_await (*conn)->query(set_sql, cfg_->connect_timeout);
      if (!r) {
        last_error_ = r.error();
        worker_.pool().release(std::move(*conn), key, !r.error().connection_failed);
        co_return nullptr;
      }
    }
    auto nb = std::make_unique<Backend>();
    nb->node = node;
    nb->key = std::move(key);
    nb->conn = std::move(*conn);
    nb->was_primary = topo->primary == node;
    b = nb.get();
    backends_.push_back(std::move(nb));
  }
  if (b->replayed < session_log_.size()) {
    if (b == active_) co_await stopPump();
    if (!co_await replaySession(*b)) {
      dropBackend(*b, false);
      co_return nullptr;
    }
  }
  co_return b;
}

net::Task<bool> ClientSession::makeActive(Backend& b) {
  if (&b == active_ && pump_running_) co_return true;
  if (&b != active_) co_await stopPump();
  active_ = &b;
  server_ = b.conn.get();
  if (!tx_open_) tx_status_ = server_->txStatus();
  startPump();
  co_return true;
}

// Primary-only sessions do not classify statements, but a connection that is replaced after
// it died must get the session's settings back: statements that start with SET, RESET,
// DISCARD, PREPARE or DEALLOCATE (cheap first-keyword test) are classified and logged.
void ClientSession::trackSessionState(std::string_view sql) {
  settle();
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\n' || sql[i] == '\t' || sql[i] == '\r')) {
    ++i;
  }
  // The first word decides, without lexing the statement (this runs for every statement
  // of every primary-only session): only a leading comment needs the lexer to find it.
  if (i < sql.size() && sql[i] != '/' && sql[i] != '-') {
    size_t e = i;
    while (e < sql.size() && std::isalpha(static_cast<unsigned char>(sql[e]))) ++e;
    const std::string_view w = sql.substr(i, e - i);
    if (!(router::keywordEquals(w, "set") || router::keywordEquals(w, "reset") ||
          router::keywordEquals(w, "discard") || router::keywordEquals(w, "prepare") ||
          router::keywordEquals(w, "deallocate"))) {
      return;
    }
  }
  const router::Shape shape = router::lexShape(sql);
  const std::string_view k = shape.first_keyword;
  if (k.empty() || !(router::keywordEquals(k, "set") || router::keywordEquals(k, "reset") ||
                     router::keywordEquals(k, "discard") || router::keywordEquals(k, "prepare") ||
                     router::keywordEquals(k, "deallocate"))) {
    return;
  }
  const router::Classification c = router::classify(sql);
  if (c.session_state && sessionKind(c.kind) && c.statement_count == 1) {
    settle_.valid = true;
    settle_.in_tx = tx_status_ != 'I';
    settle_.session_entries.assign(1, std::string(sql));
  }
}

bool ClientSession::routingCheckDue() const {
  return worker_.topology().version != topo_version_;
}

// Runs before a statement when a check is due: topology changes (nodes gone, a new
// primary), a connection that died while idle. (PAUSE is handled in clientPump.)
net::Task<ClientSession::Routed> ClientSession::beforeStatement() {
  auto topo = shared_.cluster->topology();
  if (topo->version != topo_version_) {
    topo_version_ = topo->version;
    bad_nodes_.clear();
    std::vector<Backend*> gone;
    for (auto& b : backends_) {
      const cluster::NodeState* n = topo->find(b->node);
      const bool down = !n || n->status != cluster::NodeStatus::kUp;
      const bool demoted = b->was_primary && topo->primary != b->node;
      const bool busy = b.get() == active_ ? tx_status_ != 'I' : b->in_tx;
      if ((down || demoted) && !busy) gone.push_back(b.get());
    }
    for (Backend* b : gone) {
      log::logf(
          Level::kLog, logContext(), "dropping the connection to node {}: {}", b->node,
          b->was_primary && topo->primary != b->node ? "no longer the primary" : "node is down");
      if (b == active_) co_await stopPump();
      dropBackend(*b, true);
    }
    if (lb_node_ >= 0) {
      const cluster::NodeState* n = topo->find(lb_node_);
      if (!n || !inRotation(*n)) lb_node_ = -1;
    }
  }
  if (active_lost_ && active_) {
    if (tx_status_ != 'I') co_return Routed::kFailed;
    dropBackend(*active_, false);
  }
  if (!lb_ && !server_) {
    // Primary-only sessions reconnect here (possibly to a new primary).
    const int node = co_await primaryOrWait();
    if (node < 0) co_return co_await cannotRoute("no primary node");
    Backend* b = co_await backendFor(node);
    if (!b) co_return co_await cannotRoute(fmt::format("node {} unreachable", node));
    co_await makeActive(*b);
  }
  co_return Routed::kForward;
}

// The statement cannot run anywhere: an ERROR the client can handle outside a transaction,
// FATAL inside one (its server side is gone).
net::Task<ClientSession::Routed> ClientSession::cannotRoute(std::string_view why) {
  if (tx_status_ != 'I' || tx_open_) {
    co_await sendFatal("08006", "the transaction's server connection was lost",
                       fmt::format("{}", why));
    co_return Routed::kFailed;
  }
  co_await sendError("08006",
                     fmt::format("no server available for this statement: {} (waited up to "
                                 "failover_hold_timeout, {} s)",
                                 why, shared_.primary_wait.count() / 1000),
                     last_error_.fields.message);
  co_return Routed::kAnswered;
}

namespace {
// The primary's node id if it is up, else -1.
int upPrimary(const cluster::Topology& t) {
  const cluster::NodeState* p = t.primaryNode();
  return p && p->status == cluster::NodeStatus::kUp ? p->backend.id : -1;
}
}  // namespace

net::Task<int> ClientSession::primaryOrWait() {
  auto topo = shared_.cluster->topology();
  const auto wait_until = pool::Clock::now() + shared_.primary_wait;
  while (upPrimary(*topo) < 0 && pool::Clock::now() < wait_until && !aborted_) {
    asio::steady_timer t(worker_.context());
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(net::kUseAwaitable);
    topo = shared_.cluster->topology();
  }
  co_return upPrimary(*topo);
}

// delay_threshold_by_time (when > 0, pgpool 4.4+) or delay_threshold: a standby replaying
// too far behind leaves the rotation until it catches up. The monitors refresh both every
// sr_check_period: replication_delay (bytes) in the topology, the replay_lag in seconds in
// ClusterState (cluster/lag_monitor.h; unknown counts as not lagging, as in pgpool).
double ClientSession::lagOf(const cluster::NodeState& n) const {
  if (cfg_->delay_threshold_by_time.count() > 0) {
    return shared_.cluster->replicationLagSeconds(n.backend.id).value_or(0.0);
  }
  return static_cast<double>(n.replication_delay);
}

bool ClientSession::lagging(const cluster::NodeState& n) const {
  if (n.role != cluster::Role::kStandby) return false;
  if (cfg_->delay_threshold_by_time.count() > 0) {
    return lagOf(n) * 1000.0 > static_cast<double>(cfg_->delay_threshold_by_time.count());
  }
  return cfg_->delay_threshold > 0 &&
         n.replication_delay > static_cast<uint64_t>(cfg_->delay_threshold);
}

// Up, role known, not lagging, reachable: a read may go there (a redirect rule may name it
// even with backend_weight 0).
bool ClientSession::inRotation(const cluster::NodeState& n) const {
  if (n.status != cluster::NodeStatus::kUp) return false;
  if (std::find(bad_nodes_.begin(), bad_nodes_.end(), n.backend.id) != bad_nodes_.end()) {
    return false;
  }
  if (n.role == cluster::Role::kStandby) return !lagging(n);
  return n.role == cluster::Role::kPrimary;
}

bool ClientSession::eligible(const cluster::NodeState& n) const {
  return n.backend.weight > 0 && inRotation(n);
}

// The session's app_name / database redirect rule (pgpool: the application_name of the
// startup packet only; app_name_redirect_preference_list wins).
const config::RedirectRule* ClientSession::redirectRule() {
  if (!redirect_known_) {
    redirect_known_ = true;
    if (!info_.application_name.empty()) {
      redirect_ = config::matchRedirect(cfg_->app_name_redirect, info_.application_name);
    }
    if (!redirect_) redirect_ = config::matchRedirect(cfg_->database_redirect, info_.database);
  }
  return redirect_;
}

int ClientSession::chooseLbNode(const cluster::Topology& topo) {
  std::vector<router::LbCandidate> nodes;
  nodes.reserve(topo.nodes.size());
  for (const auto& n : topo.nodes) {
    if (inRotation(n)) {
      nodes.push_back({n.backend.id, n.backend.weight, n.backend.id == topo.primary});
    }
  }
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  const double u_rule = dist(worker_.rng());
  const double u_pick = dist(worker_.rng());
  const int node = router::chooseLoadBalanceNode(nodes, redirectRule(), u_rule, u_pick);
  if (node >= 0) return node;
  const cluster::NodeState* p = topo.primaryNode();
  return p && p->status == cluster::NodeStatus::kUp ? p->backend.id : -1;
}

int ClientSession::readNode() {
  const cluster::Topology& topo = worker_.topology();
  if (cfg_->statement_level_load_balance) {
    lb_node_ = chooseLbNode(topo);
    return lb_node_;
  }
  if (lb_node_ >= 0) {
    const cluster::NodeState* n = topo.find(lb_node_);
    if (n && inRotation(*n)) return lb_node_;
    if (n && lb_node_ != topo.primary && cfg_->prefer_lower_delay_standby) {
      // Out of rotation: the least-lagging standby still in rotation.
      const cluster::NodeState* best = nullptr;
      for (const auto& c : topo.nodes) {
        if (c.role == cluster::Role::kStandby && eligible(c) &&
            (!best || lagOf(c) < lagOf(*best))) {
          best = &c;
        }
      }
      if (best) return lb_node_ = best->backend.id;
    }
  }
  lb_node_ = chooseLbNode(topo);
  return lb_node_;
}

std::optional<int> ClientSession::causalNodeNow(int node) {
  if (!cfg_->causal_reads || node < 0) return node;
  const cluster::Topology& topo = worker_.topology();
  if (node == topo.primary) return node;
  if (causal_pending_) return std::nullopt;  // the primary's WAL position must be asked
  if (causal_lsn_ == 0) return node;
  if (auto it = replayed_lsn_.find(node); it != replayed_lsn_.end() && it->second >= causal_lsn_) {
    return node;
  }
  if (const cluster::NodeState* n = topo.find(node); n && n->lsn >= causal_lsn_) {
    replayed_lsn_[node] = n->lsn;
    return node;
  }
  return std::nullopt;  // the standby itself must be asked
}

// causal_reads: the load-balance node if it has replayed the session's last write, else the
// primary. The primary's WAL position is asked once after each write (one round trip,
// only when a read follows); a standby's replay position comes from the monitor or, if that
// is older, from the standby itself (one round trip), and is remembered.
net::Task<int> ClientSession::readNodeCausal() {
  int node = readNode();
  if (auto now = causalNodeNow(node)) co_return *now;
  auto topo = shared_.cluster->topology();
  const int primary = topo->primary;
  auto lsnOf = [](const std::expected<pool::ServerConn::Result, pool::ServerError>& r)
      -> std::optional<uint64_t> {
    if (!r || r->rows.empty() || r->rows[0].empty() || !r->rows[0][0]) return std::nullopt;
    return std::strtoull(r->rows[0][0]->c_str(), nullptr, 10);
  };
  if (causal_pending_) {
    Backend* p = nullptr;
    if (primary >= 0) p = co_await backendFor(primary);
    if (!p) co_return node;  // no primary (failover): nothing newer can be read anywhere
    if (p == active_) co_await stopPump();
    auto lsn =
        lsnOf(co_await internalQuery(*p, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"));
    if (!lsn) co_return primary;
    causal_lsn_ = *lsn;
    causal_pending_ = false;
    if (auto now = causalNodeNow(node)) co_return *now;
  }
  Backend* b = co_await backendFor(node);
  if (b) {
    if (b == active_) co_await stopPump();
    auto lsn = lsnOf(co_await internalQuery(
        *b, "SELECT (coalesce(pg_last_wal_replay_lsn(), '0/0') - '0/0'::pg_lsn)::bigint"));
    if (lsn) {
      replayed_lsn_[node] = *lsn;
      if (*lsn >= causal_lsn_) co_return node;
    }
  }
  co_return primary >= 0 ? primary : node;
}

// ---- classification ------------------------------------------------------------------------

void ClientSession::updateCatalogCtx() {
  std::string search_path;
  for (const std::string& e : session_log_) {
    if (e.find("search_path") != std::string::npos) search_path += e + ';';
  }
  catalog_ctx_ = info_.database + '\0' + info_.user + '\0' + search_path;
}

net::Task<bool> ClientSession::lookupCatalog(const std::vector<std::string>& functions,
                                             const std::vector<std::string>& relations) {
  if (catalog_ctx_.empty()) updateCatalogCtx();
  const std::string sql = worker_.catalog().lookupQuery(catalog_ctx_, functions, relations);
  if (sql.empty()) co_return true;
  auto topo = shared_.cluster->topology();
  const cluster::NodeState* p = topo->primaryNode();
  if (!p || p->status != cluster::NodeStatus::kUp) co_return false;
  Backend* b = co_await backendFor(p->backend.id);
  if (!b) co_return false;
  if (b == active_) co_await stopPump();
  auto r = co_await internalQuery(*b, sql);
  if (r) {
    worker_.catalog().store(catalog_ctx_, *r);
    co_return true;
  }
  log::logf(Level::kWarning, logContext(), "catalog lookup failed: {}", r.error().str());
  if (r.error().connection_failed) {
    dropBackend(*b, false);
    co_return false;
  }
  co_return true;
}

net::Task<std::optional<ClientSession::Facts>> ClientSession::classifyStatement(
    std::string_view sql) {
  if (catalog_ctx_.empty()) updateCatalogCtx();
  const router::Policy& policy = *worker_.policy(cfg_);
  auto res = worker_.classCache().classify(sql);
  const router::Classification* c = res.classification;
  SessionCatalog view(worker_.catalog(), catalog_ctx_);
  router::Route route = policy.decide(*c, res.shape, sql, view);
  std::optional<router::Classification> copy;
  if (route.needs_catalog) {
    // Look the names up on the primary; the cache entry may change meanwhile: keep a copy.
    copy = *c;
    const bool looked_up = co_await lookupCatalog(copy->functions, copy->relations);
    c = &*copy;
    if (looked_up) {
      route = policy.decide(*c, res.shape, sql, view);
    } else {
      // No primary to ask (failover): decide as if the names were plain read-only ones. A
      // standby can only refuse such a statement (read-only transaction, unlogged table
      // during recovery); it cannot run a write.
      route = policy.decide(*c, res.shape, sql, router::PermissiveCatalog{});
    }
  }
  Facts f;
  f.kind = c->kind;
  f.target = route.target;
  if (cfg_->log_statement) f.reason = route.reason;
  f.begin_read_only = c->begin_read_only;
  f.begin_serializable = c->begin_serializable;
  f.set_tx_read_only = c->set_transaction_read_only;
  f.set_tx_serializable = c->set_transaction_serializable;
  f.default_read_only = c->session_default_read_only;
  f.default_serializable = c->session_default_serializable;
  f.session_state = c->session_state;
  f.multi = c->statement_count > 1;
  f.parse_error = c->parse_error;
  if (!c->object_name.empty()) f.object_name = c->object_name;
  if (cfg_->disable_load_balance_on_write == "dml_adaptive") {
    f.relations = c->relations;
    f.functions = c->functions;
  }
  co_return f;
}

// ---- routing -----------------------------------------------------------------------------

// Applies what the previous routed statement changed, now that its outcome is known.
void ClientSession::settle() {
  if (settle_.valid) {
    if (!stmt_error_) {
      for (std::string& e : settle_.session_entries) {
        if (settle_.in_tx) {
          tx_session_log_.push_back(std::move(e));
        } else {
          session_log_.push_back(std::move(e));
          if (active_) active_->replayed = session_log_.size();
          catalog_ctx_.clear();
        }
      }
    }
    const bool commit = settle_.commit && !stmt_error_;
    settle_ = Settle{};
    if (tx_open_ && !tx_deferred_ && tx_status_ == 'I') endTx(commit);
  } else if (tx_open_ && !tx_deferred_ && tx_status_ == 'I') {
    endTx(false);
  }
  if (!tx_open_ && tx_status_ != 'I' && active_) {
    // A block begun in a way pgpilot did not follow (inside a multi-statement string, a
    // function): it stays where it is until it ends.
    tx_open_ = true;
    tx_joinable_ = false;
    tx_home_ = active_->node;
    active_->in_tx = true;
  }
}

void ClientSession::openBlock(std::string_view begin, bool read_only, bool serializable) {
  tx_open_ = true;
  tx_joinable_ = true;
  tx_log_.assign(1, std::string(begin));
  tx_read_only_ = read_only || default_read_only_;
  tx_primary_only_ = serializable;
}

void ClientSession::endTx(bool committed) {
  if (tx_wrote_) causal_pending_ = true;
  if (committed && !tx_session_log_.empty()) {
    for (std::string& e : tx_session_log_) session_log_.push_back(std::move(e));
    for (auto& b : backends_) {
      if (b->in_tx) b->replayed = session_log_.size();
    }
    catalog_ctx_.clear();
  }
  tx_session_log_.clear();
  tx_open_ = false;
  tx_deferred_ = false;
  tx_joinable_ = true;
  tx_wrote_ = false;
  tx_read_only_ = false;
  tx_primary_only_ = false;
  tx_home_ = -1;
  tx_log_.clear();
  tx_written_.clear();
  for (auto& b : backends_) b->in_tx = false;
}

net::Task<bool> ClientSession::answerLocally(std::string_view tag, char status) {
  std::string out;
  protocol::buildCommandComplete(out, tag);
  protocol::buildReadyForQuery(out, status);
  tx_status_ = status;
  co_return !(co_await writeClient(out));
}

bool ClientSession::forcePrimaryInTx(const Facts& f) const {
  if (tx_primary_only_ || pin_primary_ || default_serializable_) return true;
  const std::string& mode = cfg_->disable_load_balance_on_write;
  if (mode == "always" && wrote_session_) return true;
  if (mode == "trans_transaction" && wrote_in_tx_once_) return true;
  if ((mode == "transaction" || mode == "trans_transaction") && tx_wrote_) return true;
  if (mode == "dml_adaptive") {
    for (const std::string& r : f.relations) {
      if (tx_written_.contains(r)) return true;
      // A dependent configured unqualified matches a qualified use.
      const size_t dot = r.rfind('.');
      if (dot != std::string::npos && tx_written_.contains(r.substr(dot + 1))) return true;
    }
  }
  return false;
}

bool ClientSession::forcePrimaryForReads() const {
  return pin_primary_ || default_serializable_ ||
         (cfg_->disable_load_balance_on_write == "always" && wrote_session_);
}

// dml_adaptive: the relations a write names, and what dml_adaptive_object_relationship_list
// says depends on them or on the functions it calls ("func()"), count as written for the
// rest of the block. Names match as written or unqualified.
void ClientSession::markWritten(const Facts& f) {
  auto unqualified = [](std::string_view name) {
    size_t dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
  };
  auto same = [&](std::string_view configured, std::string_view used) {
    return configured == used || configured == unqualified(used);
  };
  for (const std::string& r : f.relations) {
    tx_written_.insert(r);
    for (const config::ObjectRelation& rel : cfg_->dml_adaptive_relations) {
      if (same(rel.object, r)) tx_written_.insert(rel.dependent);
    }
  }
  for (const std::string& fn : f.functions) {
    for (const config::ObjectRelation& rel : cfg_->dml_adaptive_relations) {
      if (rel.object.size() > 2 && rel.object.ends_with("()") &&
          same(std::string_view(rel.object).substr(0, rel.object.size() - 2), fn)) {
        tx_written_.insert(rel.dependent);
      }
    }
  }
}

net::Task<ClientSession::Routed> ClientSession::routeQuery(std::string_view sql) {
  settle();
  auto f = co_await classifyStatement(sql);
  if (!f) co_return Routed::kFailed;
  co_return co_await routeDecided(*f, sql, false);
}

ClientSession::Fast ClientSession::routeFast(std::string_view sql) {
  if (!active_ || !pump_running_ || cfg_->log_statement) return Fast::kNotDecided;
  settle();  // as routeQuery does first; it may note a block pgpilot did not follow
  const bool in_tx = tx_status_ != 'I';
  // Inside a block: only a block pgpilot follows, in a mode that needs no per-statement
  // relation tracking (dml_adaptive).
  if (in_tx ? !tx_open_ || !tx_joinable_ || cfg_->disable_load_balance_on_write == "dml_adaptive"
            : tx_open_) {
    return Fast::kNotDecided;
  }
  if (catalog_ctx_.empty()) updateCatalogCtx();
  auto res = worker_.classCache().classify(sql);
  const router::Classification& c = *res.classification;
  if (c.statement_count != 1 || c.parse_error || c.session_state) return Fast::kNotDecided;
  if (c.kind == Kind::kBegin) {
    // routeDecided's BEGIN outside a block, deferred to the block's first statement.
    if (in_tx) return Fast::kNotDecided;
    openBlock(sql, c.begin_read_only, c.begin_serializable);
    tx_deferred_ = true;
    return Fast::kAnswerBegin;
  }
  if (c.kind == Kind::kCommit || c.kind == Kind::kRollback) {
    // routeDecided's end of a block that runs on the active node alone.
    if (!in_tx || tx_deferred_ || !active_->in_tx) return Fast::kNotDecided;
    for (const auto& b : backends_) {
      if (b.get() != active_ && b->in_tx) return Fast::kNotDecided;
    }
    if (c.kind == Kind::kCommit) {
      settle_.valid = true;
      settle_.commit = true;
    }
    stmt_node_ = active_->node;
    return Fast::kForward;
  }
  if ((c.kind != Kind::kRead && c.kind != Kind::kWrite && c.kind != Kind::kShow) ||
      (in_tx && tx_status_ != 'T')) {
    return Fast::kNotDecided;
  }
  // The deferred block's first statement: no node has the block yet (sendTo's join).
  const bool opens_block = in_tx && tx_deferred_;
  if (opens_block) {
    if (tx_log_.size() != 1) return Fast::kNotDecided;  // SET TRANSACTION ... to replay too
  } else if (in_tx && !active_->in_tx) {
    return Fast::kNotDecided;
  }
  SessionCatalog view(worker_.catalog(), catalog_ctx_);
  const router::Route route = worker_.policy(cfg_)->decide(c, res.shape, sql, view);
  if (route.needs_catalog) return Fast::kNotDecided;
  const bool write = route.target == Target::kPrimary;
  static const Facts kPlain;  // forcePrimaryInTx reads only dml_adaptive's relations
  int node = -1;
  bool to_primary = false;
  if (!in_tx) {
    if (write || forcePrimaryForReads()) {
      to_primary = true;
      node = upPrimary(worker_.topology());  // primaryOrWait without the wait
    } else {
      // Statement-level balancing draws a node per statement; the coroutine path must not
      // draw a second time when this one is not the active node (it would skew the weights).
      if (cfg_->statement_level_load_balance) return Fast::kNotDecided;
      node = causalNodeNow(readNode()).value_or(-1);
    }
  } else if (opens_block) {
    // Only on the primary: a standby may refuse the BEGIN (BEGIN READ WRITE), and the
    // coroutine path then moves the block to the primary instead of failing.
    if (!write && !forcePrimaryInTx(kPlain)) return Fast::kNotDecided;
    to_primary = true;
    node = upPrimary(worker_.topology());
  } else {
    // routeDecided's rules for a plain statement inside a block that has a node.
    if (tx_read_only_) {
      node = active_->node;
    } else if (write || forcePrimaryInTx(kPlain)) {
      to_primary = true;
      node = upPrimary(worker_.topology());  // primaryOrWait without the wait
    } else if (const Backend* home = tx_home_ >= 0 ? findBackend(tx_home_) : nullptr;
               home && home->in_tx) {
      node = tx_home_;
    }
  }
  // Another node means a pump switch (perhaps a new connection, a replay, joining the
  // block): the coroutine path does that. backendFor's idle checks do not apply to the
  // active backend.
  if (node < 0 || node != active_->node || active_->replayed < session_log_.size())
    return Fast::kNotDecided;
  if (opens_block) {
    active_->in_tx = true;
    tx_deferred_ = false;
    if (tx_home_ < 0) tx_home_ = node;
    begin_pipelined_ = true;
  }
  if (write && to_primary) {
    wrote_session_ = true;
    if (in_tx) {
      tx_wrote_ = true;
      wrote_in_tx_once_ = true;
    } else {
      causal_pending_ = true;
    }
  }
  stmt_node_ = node;
  return Fast::kForward;
}

net::Task<ClientSession::Routed> ClientSession::routeFunctionCall() {
  settle();
  Facts f;
  f.kind = Kind::kOther;
  f.target = Target::kPrimary;
  co_return co_await routeDecided(f, {}, true);
}

// Decides the node for one statement (or extended-protocol batch, `extended`) and makes it
// the active backend. kAnswered: pgpilot answered the client itself.
net::Task<ClientSession::Routed> ClientSession::routeDecided(const Facts& f, std::string_view sql,
                                                             bool extended) {
  auto topo = shared_.cluster->topology();
  const bool write = f.target == Target::kPrimary;
  const bool in_tx = tx_status_ != 'I';
  int node = -1;

  if (!in_tx) {
    if (f.kind == Kind::kBegin && !f.multi && !f.parse_error) {
      openBlock(sql, f.begin_read_only, f.begin_serializable);
      if (!extended) {
        // Deferred: the block starts on the node of its first statement, so a transaction
        // that writes never touches a standby and one that only reads never the primary.
        tx_deferred_ = true;
        const bool answered = co_await answerLocally("BEGIN", 'T');
        co_return answered ? Routed::kAnswered : Routed::kFailed;
      }
      if (tx_primary_only_ || forcePrimaryForReads()) {
        node = co_await primaryOrWait();
      } else {
        node = co_await readNodeCausal();
      }
    } else if (f.session_state && (!sessionKind(f.kind) || f.multi)) {
      // LISTEN, temporary tables, advisory locks, LOAD, WITH HOLD cursors, set_config():
      // state that cannot be replayed elsewhere. The session stays on the primary.
      if (!pin_primary_) {
        log::logf(Level::kDebug1, logContext(), "session pinned to the primary ({})",
                  kindName(f.kind));
      }
      pin_primary_ = true;
      node = co_await primaryOrWait();
    } else if (sessionKind(f.kind)) {
      settle_.valid = true;
      settle_.session_entries.assign(1, std::string(sql));
      if (f.default_serializable) default_serializable_ = true;
      if (f.default_read_only) default_read_only_ = true;
      if (f.kind == Kind::kPrepare) sql_prepared_[f.object_name] = f.target;
      if (f.kind == Kind::kDeallocate || f.kind == Kind::kDiscard) {
        if (f.object_name.empty()) {
          sql_prepared_.clear();
          stmts_.clear();
        } else {
          sql_prepared_.erase(f.object_name);
          stmts_.erase(f.object_name);
        }
      }
      if (write || forcePrimaryForReads()) {
        node = co_await primaryOrWait();
      } else {
        node = active_ ? active_->node : readNode();
      }
    } else if (f.kind == Kind::kExecute) {
      auto it = sql_prepared_.find(f.object_name);
      const bool read = it != sql_prepared_.end() && it->second == Target::kAny;
      if (read && !forcePrimaryForReads()) {
        node = co_await readNodeCausal();
      } else {
        node = co_await primaryOrWait();
      }
      if (!read) {
        wrote_session_ = true;
        causal_pending_ = true;
      }
    } else if (f.kind == Kind::kFetch || f.kind == Kind::kClose) {
      auto it = cursor_node_.find(f.object_name);
      node = it != cursor_node_.end() ? it->second : (active_ ? active_->node : -1);
    } else if (write || forcePrimaryForReads()) {
      if (write && f.kind != Kind::kCommit && f.kind != Kind::kRollback) {
        wrote_session_ = true;
        causal_pending_ = true;
      }
      node = co_await primaryOrWait();
    } else {
      node = co_await readNodeCausal();
    }
    if (f.kind == Kind::kDeclareCursor && node >= 0) cursor_node_[f.object_name] = node;
    if (node < 0) co_return co_await cannotRoute(write ? "no primary node" : "no node is up");
    co_return co_await sendTo(node, false);
  }

  // ---- inside a transaction block ----
  const bool has_node =
      std::any_of(backends_.begin(), backends_.end(), [](const auto& b) { return b->in_tx; });
  if (f.kind == Kind::kCommit || f.kind == Kind::kRollback ||
      (f.kind == Kind::kBegin && !f.multi)) {
    if (f.kind != Kind::kBegin && !has_node && tx_deferred_) {
      // Nothing ran: nothing to end anywhere.
      const bool ok = co_await answerLocally(f.kind == Kind::kCommit ? "COMMIT" : "ROLLBACK", 'I');
      endTx(true);
      co_return ok ? Routed::kAnswered : Routed::kFailed;
    }
    // The client's COMMIT goes where the writes are (or, in a failed block, where it
    // failed); the other nodes of the block are rolled back first: they only read, or
    // (failed block) must not commit.
    Backend* main = nullptr;
    if (tx_status_ == 'E' && active_ && active_->in_tx) main = active_;
    for (auto& b : backends_) {
      if (!main && b->in_tx && b->node == topo->primary) main = b.get();
    }
    for (auto& b : backends_) {
      if (!main && b->in_tx) main = b.get();
    }
    if (f.kind != Kind::kBegin) {
      std::vector<Backend*> others;
      for (auto& b : backends_) {
        if (b->in_tx && b.get() != main) others.push_back(b.get());
      }
      for (Backend* b : others) {
        if (b == active_) co_await stopPump();
        auto r = co_await internalQuery(*b, "ROLLBACK");
        b->in_tx = false;
        if (!r) dropBackend(*b, false);
      }
    }
    node = main ? main->node : (active_ ? active_->node : -1);
    if (f.kind == Kind::kCommit) {
      settle_.valid = true;
      settle_.commit = true;
    }
    if (node < 0) co_return co_await cannotRoute("the transaction's node is gone");
    co_return co_await sendTo(node, false);
  }
  if (txControlKind(f.kind) && !f.multi && (has_node || tx_joinable_)) {
    // SAVEPOINT, RELEASE, ROLLBACK TO, SET [LOCAL|TRANSACTION]: every node of the block,
    // and recorded for nodes that join later.
    if (f.set_tx_serializable) tx_primary_only_ = true;
    if (f.set_tx_read_only) tx_read_only_ = true;
    if (f.session_state && sessionKind(f.kind)) {
      settle_.valid = true;
      settle_.in_tx = true;
      settle_.session_entries.assign(1, std::string(sql));
    }
    if (has_node) {
      node = active_ && active_->in_tx ? active_->node : tx_home_;
      std::vector<Backend*> others;
      for (auto& b : backends_) {
        if (b->in_tx && b->node != node) others.push_back(b.get());
      }
      for (Backend* b : others) {
        if (b == active_) co_await stopPump();
        auto r = co_await internalQuery(*b, sql);
        if (!r && r.error().connection_failed) {
          co_return co_await cannotRoute(fmt::format("node {} was lost", b->node));
        }
      }
      if (tx_joinable_) tx_log_.emplace_back(sql);
      co_return co_await sendTo(node, false);
    }
    if (tx_primary_only_ || forcePrimaryInTx(f)) {
      node = co_await primaryOrWait();
    } else {
      node = co_await readNodeCausal();
    }
    if (node < 0) co_return co_await cannotRoute("no node is up");
    Routed r = co_await sendTo(node, true);
    tx_log_.emplace_back(sql);
    co_return r;
  }
  if (tx_status_ == 'E' || !tx_joinable_) {
    // A failed block only accepts ROLLBACK where it is; an untracked block stays put.
    if (write) tx_wrote_ = true;
    node = active_ ? active_->node : -1;
    if (node < 0) co_return co_await cannotRoute("the transaction's node is gone");
    co_return co_await sendTo(node, false);
  }
  if (f.kind == Kind::kFetch || f.kind == Kind::kClose) {
    auto it = cursor_node_.find(f.object_name);
    node = it != cursor_node_.end() ? it->second : (active_ ? active_->node : -1);
    if (node < 0) co_return co_await cannotRoute("the cursor's node is gone");
    co_return co_await sendTo(node, false);
  }
  if (f.session_state && (!sessionKind(f.kind) || f.multi)) pin_primary_ = true;
  bool to_primary = write || forcePrimaryInTx(f);
  if (f.kind == Kind::kExecute) {
    auto it = sql_prepared_.find(f.object_name);
    to_primary = to_primary &&
                 !(it != sql_prepared_.end() && it->second == Target::kAny && !forcePrimaryInTx(f));
  }
  if (tx_read_only_ && has_node) {
    // BEGIN READ ONLY: stays where it is; a write fails there exactly as PostgreSQL says.
    node = active_ && active_->in_tx ? active_->node : tx_home_;
  } else if (to_primary) {
    node = co_await primaryOrWait();
    if (write) {
      tx_wrote_ = true;
      wrote_in_tx_once_ = true;
      wrote_session_ = true;
      markWritten(f);
    }
  } else if (has_node && tx_home_ >= 0 && findBackend(tx_home_) && findBackend(tx_home_)->in_tx) {
    node = tx_home_;
  } else {
    node = co_await readNodeCausal();
  }
  if (f.kind == Kind::kDeclareCursor && node >= 0) cursor_node_[f.object_name] = node;
  if (node < 0) co_return co_await cannotRoute(write ? "no primary node" : "no node is up");
  co_return co_await sendTo(node, true);
}

// Makes `node` the active backend; with `join_tx`, first replays the open transaction
// block's BEGIN and transaction-level statements there if it is not part of it yet.
net::Task<ClientSession::Routed> ClientSession::sendTo(int node, bool join_tx) {
  Backend* b = co_await backendFor(node);
  while (!b && lb_ && node == lb_node_ && !settle_.commit) {
    // The load-balance node cannot be reached (the monitor may not know yet): read
    // elsewhere.
    const bool in_block =
        std::any_of(backends_.begin(), backends_.end(), [](const auto& x) { return x->in_tx; });
    if (in_block || node == shared_.cluster->topology()->primary) break;
    log::logf(Level::kLog, logContext(), "node {} unreachable, reading elsewhere: {}", node,
              last_error_.str());
    bad_nodes_.push_back(node);
    lb_node_ = -1;
    node = readNode();
    if (node < 0) break;
    b = co_await backendFor(node);
  }
  if (!b) co_return co_await cannotRoute(fmt::format("node {} unreachable", node));
  if (tx_open_ && !b->in_tx && join_tx && tx_joinable_) {
    if (b == active_) co_await stopPump();
    for (size_t i = 0; i < tx_log_.size(); ++i) {
      auto r = co_await internalQuery(*b, tx_log_[i]);
      if (!r && (r.error().connection_failed || i == 0)) {
        if (!r.error().connection_failed && i == 0) {
          // BEGIN refused here (BEGIN READ WRITE on a standby): the block goes to the
          // primary instead.
          auto topo = shared_.cluster->topology();
          if (node != topo->primary && topo->primary >= 0) {
            tx_primary_only_ = true;
            co_return co_await sendTo(topo->primary, true);
          }
        }
        last_error_ = r.error();
        co_return co_await cannotRoute(fmt::format("node {} refused the transaction", node));
      }
    }
    b->in_tx = true;
    tx_deferred_ = false;
    if (tx_home_ < 0) tx_home_ = node;
  } else if (tx_open_ && !join_tx && !b->in_tx) {
    // The client's own statement opens the block here (extended-protocol BEGIN).
    b->in_tx = true;
    tx_deferred_ = false;
    if (tx_home_ < 0) tx_home_ = node;
  }
  co_await makeActive(*b);
  stmt_node_ = node;
  co_return Routed::kForward;
}

// ---- extended protocol ---------------------------------------------------------------------

// Routes the extended-protocol batch starting at `data` (up to its Sync, as far as it is in
// the buffer) as one unit: every Parse is classified by its text, a Bind of a statement
// parsed earlier uses that statement's routing; a statement the chosen node has not seen
// is parsed there first, transparently.
net::Task<ClientSession::Routed> ClientSession::routeBatch(std::string_view data) {
  settle();
  struct ParseSeen {
    std::string name;
    std::string text;
    std::string msg;
  };
  std::vector<ParseSeen> parses;
  std::vector<std::string> binds;   // statements bound, not parsed in this batch
  std::vector<std::string> closes;  // statements closed
  bool complete = false;
  bool unknown = false;     // part of the batch is not in the buffer yet
  bool old_portal = false;  // uses a portal bound before this batch
  std::vector<std::string> portals;
  int executes = 0;
  size_t p = 0;
  while (p + 5 <= data.size() && !complete) {
    const char type = data[p];
    const uint32_t len = be32(data, p + 1);
    if (len < 4) break;
    const bool whole = p + 1 + len <= data.size();
    std::string_view body = data.substr(p + 5, std::min<size_t>(len - 4, data.size() - p - 5));
    switch (type) {
      case fe::kParse: {
        auto m = whole ? protocol::parseParse(body) : std::nullopt;
        if (!m) {
          unknown = true;
          break;
        }
        parses.push_back({std::string(m->statement), std::string(m->query),
                          std::string(data.substr(p, 1 + len))});
        break;
      }
      case fe::kBind: {
        auto portal = cstringAt(body, 0);
        auto stmt = portal ? cstringAt(body, portal->size() + 1) : std::nullopt;
        if (!stmt) {
          unknown = true;
          break;
        }
        portals.emplace_back(*portal);
        if (std::none_of(parses.begin(), parses.end(),
                         [&](const ParseSeen& s) { return s.name == *stmt; })) {
          binds.emplace_back(*stmt);
        }
        break;
      }
      case fe::kDescribe:
      case fe::kClose: {
        auto kind = whole && !body.empty() ? body[0] : '\0';
        auto name = cstringAt(body, 1);
        if (!name) {
          unknown = true;
          break;
        }
        if (kind == 'P' && std::find(portals.begin(), portals.end(), *name) == portals.end()) {
          old_portal = true;
        }
        if (kind == 'S' && type == fe::kClose) closes.emplace_back(*name);
        if (kind == 'S' && type == fe::kDescribe &&
            std::none_of(parses.begin(), parses.end(),
                         [&](const ParseSeen& s) { return s.name == *name; })) {
          binds.emplace_back(*name);
        }
        break;
      }
      case fe::kExecute: {
        ++executes;
        auto portal = cstringAt(body, 0);
        if (!portal) {
          unknown = true;
        } else if (std::find(portals.begin(), portals.end(), *portal) == portals.end()) {
          old_portal = true;
        }
        break;
      }
      case fe::kSync:
        complete = true;
        break;
      case fe::kFlush:
        break;
      default:
        unknown = true;
        complete = true;
        break;
    }
    p += 1 + len;
  }
  if (!complete) unknown = true;

  // One Facts for the batch: the first statement's kind; primary if any part needs it.
  std::optional<Facts> facts;
  bool any_primary = unknown;
  std::vector<Facts> parsed_facts;
  for (const ParseSeen& ps : parses) {
    auto f = co_await classifyStatement(ps.text);
    if (!f) co_return Routed::kFailed;
    if (f->target == Target::kPrimary) any_primary = true;
    if (!facts) facts = *f;
    parsed_facts.push_back(std::move(*f));
  }
  bool stay = old_portal;
  for (const std::string& name : binds) {
    auto it = stmts_.find(name);
    if (it == stmts_.end()) {
      stay = true;  // not known to pgpilot (e.g. SQL PREPARE): where the session is
      continue;
    }
    if (it->second.facts.target == Target::kPrimary) any_primary = true;
    if (!facts) facts = it->second.facts;
  }
  Facts f = facts.value_or(Facts{});
  if (!facts) f.kind = Kind::kRead;
  f.target = any_primary ? Target::kPrimary : Target::kAny;
  std::string begin_text;
  if (f.kind == Kind::kBegin) {
    begin_text = !parses.empty() ? parses.front().text : stmts_[binds.front()].text;
  }

  Routed r;
  if (stay && active_) {
    r = co_await sendTo(active_->node, true);
  } else {
    r = co_await routeDecided(f, begin_text, true);
  }
  if (r != Routed::kForward || !active_) co_return r;
  Backend& b = *active_;
  const int node = b.node;
  if (f.kind == Kind::kRead && executes > 0) {
    shared_.cluster->counters(node, worker_.index())
        .select_cnt.fetch_add(static_cast<uint64_t>(executes), std::memory_order_relaxed);
  }

  // Close statements this node still has under a name the client has since reused.
  auto& pending_close = to_close_[node];
  std::string internal;
  for (const std::string& name : pending_close) {
    protocol::buildClose(internal, protocol::Target{protocol::TargetKind::kStatement, name});
  }
  pending_close.clear();
  // Re-send the Parse of every statement bound here that this node has not seen.
  for (const std::string& name : binds) {
    auto it = stmts_.find(name);
    if (it == stmts_.end()) continue;
    auto& nodes = it->second.nodes;
    if (std::find(nodes.begin(), nodes.end(), node) != nodes.end()) continue;
    internal += it->second.parse_msg;
    nodes.push_back(node);
  }
  if (!internal.empty()) {
    co_await stopPump();
    protocol::Writer(internal).begin(fe::kSync).finish();
    if (!co_await internalExchange(b, internal)) {
      co_return co_await cannotRoute(fmt::format("node {} was lost", node));
    }
    co_await makeActive(b);
  }
  // Session-level statements run through the extended protocol are replayed like simple
  // ones.
  for (size_t i = 0; i < parsed_facts.size(); ++i) {
    const Facts& pf = parsed_facts[i];
    if (pf.session_state && sessionKind(pf.kind) && !pf.multi) {
      settle_.valid = true;
      settle_.in_tx = tx_open_ && f.kind != Kind::kBegin;
      settle_.session_entries.push_back(parses[i].text);
    }
  }
  // Remember the statements parsed (and forget those closed) in this batch.
  for (size_t i = 0; i < parses.size(); ++i) {
    ParseSeen& ps = parses[i];
    auto it = stmts_.find(ps.name);
    if (it != stmts_.end() && !ps.name.empty()) {
      for (int other : it->second.nodes) {
        if (other != node) to_close_[other].push_back(ps.name);
      }
    }
    Stmt st{std::move(ps.msg), std::move(ps.text), parsed_facts[i], {node}};
    stmts_[ps.name] = std::move(st);
  }
  for (const std::string& name : closes) {
    auto it = stmts_.find(name);
    if (it == stmts_.end()) continue;
    for (int other : it->second.nodes) {
      if (other != node) to_close_[other].push_back(name);
    }
    stmts_.erase(it);
  }
  co_return Routed::kForward;
}

}  // namespace pgpilot::session
