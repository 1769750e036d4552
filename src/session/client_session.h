// ClientSession: one client connection, from startup packet to Terminate.
//
// Purpose: the session state machine — TLS negotiation, startup, client authentication,
// acquiring a server connection from the pool, then relaying messages both ways while
// tracking protocol state (pending ReadyForQuery count, transaction status, COPY), and
// answering pgpilot's own admin statements. With load_balance_mode on it routes every
// statement with the router (routing.cc): a session may then hold one server connection per
// node it uses, but only one of them (the active one) is ever owed a response by the client,
// so responses reach the client in order. See docs/routing.md, "Sessions".
// Owner: one worker thread; created by the worker's accept loop and destroyed when the
// coroutine returns.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "admin/show.h"
#include "auth/auth.h"
#include "common/log.h"
#include "net/stream.h"
#include "pool/pool.h"
#include "protocol/messages.h"
#include "protocol/reply_tracker.h"
#include "protocol/scanner.h"
#include "router/cache.h"
#include "router/policy.h"
#include "session/worker.h"

namespace pgpilot::session {

// Client->server: only Query bodies are needed whole (admin statements, statistics).
bool clientWantsBody(char type);

class ClientSession {
 public:
  // `admin`: accepted on the admin port (admin console: no server connection).
  ClientSession(Worker& worker, net::Stream client, bool admin = false);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Runs the whole session; `self` keeps the object alive until the coroutine ends.
  // `now_clients` is the number of clients connected, this one included (the worker
  // counts it at accept), checked against max_client_connections.
  static net::Task<void> run(std::unique_ptr<ClientSession> self, int now_clients);

  // Forwards a CancelRequest to the server running this session's query.
  void cancel(int32_t key);
  // Ends the session now (fast shutdown): closes the client socket.
  void abort();
  // A row of SHOW pool_sessions (worker thread; see admin_session.cc).
  admin::SessionRow info() const;
  // `node` was detached: a server connection to it is closed at once (the client gets an
  // error if it was waiting on it; its transaction's outcome is unknown, as on PostgreSQL).
  void dropNode(int node);

 private:
  struct StartupInfo {
    std::string user;
    std::string database;
    std::string application_name;
    std::string options;
    pool::Params extra;  // other startup parameters to apply with SET
  };

  // One server connection of this session.
  struct Backend {
    int node = -1;
    pool::PoolKey key;
    std::unique_ptr<pool::ServerConn> conn;
    size_t replayed = 0;       // session_log_ entries applied on this connection
    bool in_tx = false;        // holds part of the client's current transaction block
    bool was_primary = false;  // connected while the node was the primary
  };
  // What the routing step decided for one statement (or extended-protocol batch).
  enum class Routed { kForward, kAnswered, kFailed };
  // How the server pump ended.
  enum class PumpEnd { kStopped, kLostIdle, kClean, kBroken };
  // What the last routed statement must change once it is known to have succeeded.
  struct Settle {
    bool valid = false;
    std::vector<std::string> session_entries;  // SET/RESET/PREPARE/... to replay elsewhere
    bool in_tx = false;                        // ran inside a transaction block
    bool commit = false;                       // COMMIT/END of the block
  };
  // What routing needs of a statement's classification, copied before any suspension (the
  // per-worker cache entry may be replaced while this session waits).
  struct Facts {
    router::Classification::Kind kind = router::Classification::Kind::kOther;
    router::Target target = router::Target::kPrimary;  // after the policy
    std::string reason;
    bool begin_read_only = false;
    bool begin_serializable = false;
    bool set_tx_read_only = false;
    bool set_tx_serializable = false;
    bool default_read_only = false;
    bool default_serializable = false;
    bool session_state = false;
    bool multi = false;
    bool parse_error = false;
    std::string object_name;
    std::vector<std::string> relations;  // dml_adaptive only
    std::vector<std::string> functions;  // dml_adaptive only
  };

  // A protocol-level prepared statement and the nodes that have it.
  struct Stmt {
    std::string parse_msg;  // the whole Parse message, to re-send
    std::string text;
    Facts facts;
    std::vector<int> nodes;
  };
  net::Task<bool> startup();
  net::Task<bool> authenticate();
  net::Task<bool> authPassword(auth::AuthMethod method, const auth::PasswordEntry* entry);
  net::Task<bool> authScram(const auth::PasswordEntry& entry);
  net::Task<bool> attachServer();
  net::Task<void> relay();
  net::Task<void> clientPump();
  net::Task<PumpEnd> serverPump(pool::ServerConn& conn);
  // Admin console (admin_session.cc).
  net::Task<void> answerAdmin(std::string_view sql);
  net::Task<bool> checkAdminUser();
  net::Task<void> adminSession();
  net::Task<void> runAdminStatement(const admin::Statement& st, std::string& out);
  // Waits while Shared::hold_new_statements is set (bounded by failover_hold_timeout)
  // unless `data` (what the client just sent) starts with an admin statement (RESUME must
  // get through); false when the session ended meanwhile.
  net::Task<bool> holdWhilePaused(std::string_view data);
  net::Task<void> sendFatal(std::string_view sqlstate, std::string_view message,
                            std::string_view detail = {});
  net::Task<void> sendError(std::string_view sqlstate, std::string_view message,
                            std::string_view detail = {});
  net::Task<std::error_code> writeClient(std::string_view data);
  // writeClient's fast path, not a coroutine: sends what the client socket takes now if no
  // other write holds it, and drops the sent bytes from `data`. True when the write is over
  // (all sent, or `ec` set); false: co_await writeClient(data) for the rest.
  bool tryWriteClient(std::string_view& data, std::error_code& ec);
  void finish();
  log::Context logContext() const;

  // ---- backends and the pump (routing.cc) ----
  void startPump();
  net::Task<void> stopPump();
  net::Task<bool> waitIdle();
  // Opens (or reuses) this session's connection to `node`, with startup parameters and the
  // session log applied. Null on failure (the error is in last_error_).
  net::Task<Backend*> backendFor(int node);
  net::Task<bool> makeActive(Backend& b);
  net::Task<bool> replaySession(Backend& b);
  void dropBackend(Backend& b, bool clean);
  net::Task<std::expected<pool::ServerConn::Result, pool::ServerError>> internalQuery(
      Backend& b, std::string_view sql);
  net::Task<bool> internalExchange(Backend& b, std::string_view msgs);
  Backend* findBackend(int node);

  // ---- routing (routing.cc) ----
  net::Task<Routed> beforeStatement();
  bool routingCheckDue() const;
  void trackSessionState(std::string_view sql);
  net::Task<Routed> routeQuery(std::string_view sql);
  // routeQuery without a coroutine, for the common case: a plain read, write or SHOW whose
  // classification needs no catalog lookup, going to the node the session is already on
  // (outside a block, or inside one that already runs there or starts there: the primary),
  // the COMMIT/ROLLBACK of a block on that node alone, and a plain BEGIN (kAnswerBegin: the
  // caller answers it, deferred). kNotDecided: take routeQuery.
  enum class Fast { kNotDecided, kForward, kAnswerBegin };
  Fast routeFast(std::string_view sql);
  net::Task<Routed> routeBatch(std::string_view data);
  net::Task<Routed> routeFunctionCall();
  net::Task<std::optional<Facts>> classifyStatement(std::string_view sql);
  net::Task<Routed> routeDecided(const Facts& f, std::string_view sql, bool extended);
  net::Task<Routed> sendTo(int node, bool join_tx);
  net::Task<Routed> cannotRoute(std::string_view why);
  net::Task<int> primaryOrWait();
  int chooseLbNode(const cluster::Topology& topo);
  bool eligible(const cluster::NodeState& n) const;
  bool inRotation(const cluster::NodeState& n) const;
  bool lagging(const cluster::NodeState& n) const;
  double lagOf(const cluster::NodeState& n) const;
  const config::RedirectRule* redirectRule();
  void markWritten(const Facts& f);
  bool forcePrimaryForReads() const;
  void settle();
  // A block begun by the client's `begin` (BEGIN, START TRANSACTION): what pgpilot follows.
  void openBlock(std::string_view begin, bool read_only, bool serializable);
  void endTx(bool committed);
  net::Task<bool> answerLocally(std::string_view tag, char status);
  net::Task<bool> lookupCatalog(const std::vector<std::string>& functions,
                                const std::vector<std::string>& relations);
  int readNode();
  net::Task<int> readNodeCausal();
  // readNodeCausal's answer for `node` when it needs no round trip; nullopt if it does.
  std::optional<int> causalNodeNow(int node);
  bool forcePrimaryInTx(const Facts& f) const;
  void updateCatalogCtx();

  Worker& worker_;
  Shared& shared_;
  std::shared_ptr<const config::Config> cfg_;
  bool admin_ = false;
  std::chrono::system_clock::time_point started_;
  net::Stream client_;
  std::string client_addr_;  // empty for a Unix-socket client
  // The client's address for messages: its IP, or "[local]" as PostgreSQL writes it.
  std::string_view clientHost() const {
    return client_addr_.empty() ? std::string_view("[local]") : client_addr_;
  }
  uint64_t id_ = 0;
  int32_t pid_ = 0;
  int32_t key_ = 0;
  StartupInfo info_;
  pool::Credentials creds_;
  std::vector<std::unique_ptr<Backend>> backends_;
  Backend* active_ = nullptr;           // the backend the pump reads and the client talks to
  pool::ServerConn* server_ = nullptr;  // active_->conn, or null
  // Walks the client's bytes; kept as a member so the end of the session knows whether
  // the client stopped in the middle of a message.
  protocol::StreamScanner client_scanner_{&clientWantsBody};
  net::WriteLock client_write_;
  net::Event server_idle_;
  net::Event server_done_;
  int pending_ = 0;  // ReadyForQuery messages the server still owes the client
  // When the server last became busy (pending_ 0 -> 1): the query latency histogram.
  std::chrono::steady_clock::time_point busy_since_{};
  char tx_status_ = 'I';
  bool copy_in_ = false;   // server is waiting for CopyData from the client
  bool unsynced_ = false;  // extended-protocol messages sent since the last Sync
  // What the server owes for the messages forwarded to it: the ReadyForQuery messages it
  // will not send after all (pending_ is reduced by those).
  protocol::ReplyTracker replies_;
  bool client_gone_ = false;
  bool server_finished_ = false;  // the pump ended for good: the session is over
  bool server_clean_ = false;
  bool aborted_ = false;
  bool registered_ = false;
  bool pump_running_ = false;
  bool pump_stop_ = false;
  bool active_lost_ = false;  // the active connection died while idle outside a transaction
  bool stmt_error_ = false;   // an ErrorResponse since the last routed statement was sent
  std::string scratch_;       // clientPump: a write to the server assembled from pieces
  pool::ServerError last_error_;
  std::string catalog_ctx_;  // database, user and search_path for catalog lookups
  uint64_t topo_version_ = 0;
  std::vector<int> bad_nodes_;  // could not connect since the last topology change

  // ---- routing state (load_balance_mode) ----
  bool lb_ = false;  // routing on: load_balance_mode with more than one node
  int lb_node_ = -1;
  const config::RedirectRule* redirect_ = nullptr;  // into *cfg_
  bool redirect_known_ = false;
  int stmt_node_ = -1;        // node of the last routed statement (select_cnt)
  bool tx_open_ = false;      // a transaction block the session knows how it began
  bool tx_deferred_ = false;  // BEGIN answered by pgpilot, not yet sent to any node
  // routeFast: the statement being routed opens the deferred block on the primary; the
  // block's BEGIN (tx_log_[0]) is written to the server just ahead of it.
  bool begin_pipelined_ = false;
  // Server pump: the reply to such a BEGIN is still to come, up to its ReadyForQuery. It is
  // not forwarded, except an error (the client then sees why the block failed).
  bool absorb_begin_ = false;
  bool tx_joinable_ = true;  // other nodes may join (tx_log_ is complete)
  bool tx_wrote_ = false;
  bool tx_read_only_ = false;
  bool tx_primary_only_ = false;                // SERIALIZABLE
  int tx_home_ = -1;                            // node of the first statement of the block
  std::vector<std::string> tx_log_;             // BEGIN and transaction-level statements, in order
  std::vector<std::string> tx_session_log_;     // session-level SETs inside the block
  std::unordered_set<std::string> tx_written_;  // dml_adaptive: relations written
  std::vector<std::string> session_log_;        // replayed on every other node used
  bool pin_primary_ = false;       // LISTEN, temp tables, advisory locks, ...: all to the primary
  bool wrote_session_ = false;     // always: a write happened in this session
  bool wrote_in_tx_once_ = false;  // trans_transaction: a write happened in a block
  bool default_serializable_ = false;
  bool default_read_only_ = false;
  Settle settle_;
  // causal_reads: the session wrote since its primary WAL position was last asked
  // (causal_pending_); the position to wait for; the replay positions seen per node.
  bool causal_pending_ = false;
  uint64_t causal_lsn_ = 0;
  std::unordered_map<int, uint64_t> replayed_lsn_;
  std::unordered_map<std::string, router::Target> sql_prepared_;
  std::unordered_map<std::string, int> cursor_node_;
  std::unordered_map<std::string, Stmt> stmts_;
  std::unordered_map<int, std::vector<std::string>> to_close_;  // statements to Close per node
};

}  // namespace pgpilot::session
