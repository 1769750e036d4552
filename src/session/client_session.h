// ClientSession: one client connection, from startup packet to Terminate.
//
// Purpose: the session state machine — TLS negotiation, startup, client authentication,
// acquiring a server connection from the pool, then relaying messages both ways while
// tracking protocol state (pending ReadyForQuery count, transaction status, COPY), and
// answering pgpilot's own admin statements. It never picks nodes itself beyond asking the
// topology for the primary (routing comes from the router module later).
// Owner: one worker thread; created by the worker's accept loop and destroyed when the
// coroutine returns.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "admin/show.h"
#include "auth/auth.h"
#include "common/log.h"
#include "net/stream.h"
#include "pool/pool.h"
#include "protocol/messages.h"
#include "protocol/scanner.h"
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
  static net::Task<void> run(std::unique_ptr<ClientSession> self);

  // Forwards a CancelRequest to the server running this session's query.
  void cancel(int32_t key);
  // Ends the session now (fast shutdown): closes the client socket.
  void abort();
  // A row of SHOW pool_sessions (worker thread; see admin_session.cc).
  admin::SessionRow info() const;

 private:
  struct StartupInfo {
    std::string user;
    std::string database;
    std::string application_name;
    std::string options;
    pool::Params extra;  // other startup parameters to apply with SET
  };

  net::Task<bool> startup();
  net::Task<bool> authenticate();
  net::Task<bool> authPassword(auth::AuthMethod method, const auth::PasswordEntry* entry);
  net::Task<bool> authScram(const auth::PasswordEntry& entry);
  net::Task<bool> attachServer();
  net::Task<void> relay();
  net::Task<void> clientPump();
  net::Task<bool> serverPump();
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
  net::Task<std::error_code> writeClient(std::string_view data);
  void finish();
  log::Context logContext() const;

  Worker& worker_;
  Shared& shared_;
  std::shared_ptr<const config::Config> cfg_;
  bool admin_ = false;
  std::chrono::system_clock::time_point started_;
  net::Stream client_;
  std::string client_addr_;
  uint64_t id_ = 0;
  int32_t pid_ = 0;
  int32_t key_ = 0;
  StartupInfo info_;
  pool::Credentials creds_;
  pool::PoolKey pool_key_;
  std::unique_ptr<pool::ServerConn> server_;
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
  bool client_gone_ = false;
  bool server_finished_ = false;
  bool server_clean_ = false;
  bool aborted_ = false;
  bool registered_ = false;
};

}  // namespace pgpilot::session
