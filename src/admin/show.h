// Admin statements answered by pgpilot itself: the SHOW pool_* views and the operator
// commands (PGPILOT ATTACH/DETACH/PROMOTE/SWITCHOVER, RELOAD, PAUSE, RESUME, SHUTDOWN).
//
// Purpose: recognise admin statements in a client's simple Query — on the normal port
// (SHOW pool_* and PGPILOT ..., the rest goes to a server) and on the admin port (every
// statement is ours; the PGPILOT prefix is optional there) — and build the complete answer
// (RowDescription, DataRows, CommandComplete or ErrorResponse; the caller adds
// ReadyForQuery). Pure with respect to I/O: the caller (session/) collects the snapshots
// (topology, config, sessions, pools, workers) and runs commands through cluster::Control.
// Syntax and columns: docs/operations.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/control.h"
#include "cluster/topology.h"
#include "config/config.h"

namespace pgpilot::admin {

enum class AdminCommand {
  kNone,  // not ours: goes to a server (normal port only)
  kShowPoolNodes,
  kShowPoolVersion,
  kShowPoolStatus,
  kShowPoolSessions,
  kShowPoolPools,
  kShowPoolProcesses,
  kShowPoolHealthCheckStats,
  kShowPoolBackendStats,
  kShowPoolEvents,
  kShowPoolState,
  kControl,      // an operator command: Statement::control
  kTransaction,  // admin port: BEGIN/COMMIT/ROLLBACK/SET/RESET accepted with no effect
  kEmpty,        // admin port: empty query
  kInvalid,      // PGPILOT ... that does not parse, or an unknown statement on the admin port
};

struct Statement {
  AdminCommand command = AdminCommand::kNone;
  cluster::Command control;  // kControl
  std::string tag;           // CommandComplete tag for kControl and kTransaction
  std::string error;         // kInvalid: what is wrong (SQLSTATE 42601)
};

// Parses one statement: case-insensitive, surrounding whitespace and one trailing semicolon
// allowed. `admin_port`: the admin console owns every statement and accepts commands without
// the PGPILOT prefix. Cheap for ordinary SQL on the normal port (first-letter rejection).
Statement parse(std::string_view sql, bool admin_port = false);
// parse(sql, false).command.
AdminCommand recognize(std::string_view sql);

// One client session (SHOW pool_sessions), collected on the session's worker thread.
struct SessionRow {
  uint64_t id = 0;  // pgpilot's session id (the "s:" of log lines)
  int worker = 0;
  int32_t pid = 0;  // the process id pgpilot handed to the client (BackendKeyData)
  std::string user;
  std::string database;
  std::string application_name;
  std::string client_address;
  int node = -1;  // node of the server connection, -1 for none
  // Every node the session holds a server connection to, ascending (with load balancing a
  // session may use the primary and a read node; pool_sessions.nodes "0,2").
  std::vector<int> nodes;
  std::string state;  // idle, active, idle in transaction, idle in transaction (aborted), admin
  bool in_transaction = false;
  std::chrono::system_clock::time_point since;  // when the client connected
};

// One pool key (SHOW pool_pools): server connections to `node` for (user, database).
struct PoolRow {
  int node = 0;
  std::string user;
  std::string database;
  int connections = 0;  // open, whole process (what max_pool limits)
  int idle = 0;         // of which idle in a worker's pool
};

// One worker thread (SHOW pool_processes: pgpilot's equivalent of pgpool's child processes).
struct WorkerRow {
  int worker = 0;
  size_t client_sessions = 0;
  size_t idle_server_connections = 0;
  uint64_t opened = 0;
  uint64_t closed = 0;
  uint64_t reused = 0;
  uint64_t waits = 0;
  uint64_t wait_timeouts = 0;
  uint64_t reset_failures = 0;
  uint64_t internal_queries = 0;
};

struct AdminContext {
  const cluster::Topology* topology = nullptr;
  cluster::ClusterState* state = nullptr;
  int session_node = -1;                   // the node this session reads from (load_balance_node)
  const config::Config* config = nullptr;  // pool_status, pool_pools (max_pool)
  const std::vector<SessionRow>* sessions = nullptr;  // pool_sessions
  const std::vector<PoolRow>* pools = nullptr;        // pool_pools
  const std::vector<WorkerRow>* workers = nullptr;    // pool_processes
  std::chrono::system_clock::time_point started{};    // pool_processes: process start
  bool paused = false;                                // pool_state: PAUSE in force
  int client_sessions = 0;                            // pool_state
};

// Appends the answer for a SHOW command to `out` (nothing for other commands).
void answer(AdminCommand cmd, const AdminContext& ctx, std::string& out);

// Appends the answer to a kControl / kTransaction / kEmpty / kInvalid statement: for a
// command, a NoticeResponse carrying the result's words and CommandComplete, or an
// ErrorResponse (the result's SQLSTATE, else 55000).
void answerStatement(const Statement& st, const cluster::CommandResult* result, std::string& out);

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace pgpilot::admin
