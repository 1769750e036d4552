#include "admin/show.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/ascii.h"
#include "protocol/messages.h"

namespace pgpilot::admin {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && ascii::isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && (ascii::isBlank(s.back()) || s.back() == ';')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string formatTime(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  return fmt::format("{:%Y-%m-%d %H:%M:%S}", secs);
}

void showPoolNodes(const AdminContext& ctx, std::string& out) {
  static const std::vector<std::string> kColumns = {"node_id",
                                                    "hostname",
                                                    "port",
                                                    "status",
                                                    "pg_status",
                                                    "lb_weight",
                                                    "role",
                                                    "pg_role",
                                                    "select_cnt",
                                                    "load_balance_node",
                                                    "replication_delay",
                                                    "replication_state",
                                                    "replication_sync_state",
                                                    "last_status_change"};
  protocol::buildRowDescription(out, kColumns);
  double total_weight = 0;
  for (const auto& n : ctx.topology->nodes) total_weight += n.backend.weight;
  for (const auto& n : ctx.topology->nodes) {
    const double w = total_weight > 0 ? n.backend.weight / total_weight : 0;
    const uint64_t selects = ctx.state ? ctx.state->totals(n.backend.id).select_cnt : 0;
    const bool is_primary = n.backend.id == ctx.topology->primary;
    std::string role = std::string(cluster::roleName(n.role));
    // pgpool 4.4+: with delay_threshold_by_time the delay is shown in seconds (the
    // primary's replay_lag, cluster/lag_monitor.h; 0 when unknown).
    const bool by_time = ctx.config && ctx.config->delay_threshold_by_time.count() > 0;
    std::string delay =
        by_time
            ? fmt::format(
                  "{:.6f}",
                  ctx.state ? ctx.state->replicationLagSeconds(n.backend.id).value_or(0.0) : 0.0)
            : std::to_string(n.replication_delay);
    std::vector<std::optional<std::string>> row = {
        std::to_string(n.backend.id),
        n.backend.hostname,
        std::to_string(n.backend.port),
        std::string(cluster::statusName(n.status)),
        n.pg_up ? "up" : "down",
        fmt::format("{:.6f}", w),
        is_primary ? std::string("primary") : role,
        std::string(cluster::roleName(n.pg_role)),
        std::to_string(selects),
        n.backend.id == ctx.session_node ? "true" : "false",
        std::move(delay),
        n.replication_state,
        n.replication_sync_state,
        formatTime(n.last_status_change)};
    protocol::buildDataRow(out, row);
  }
  protocol::buildCommandComplete(out, fmt::format("SELECT {}", ctx.topology->nodes.size()));
}

void showPoolVersion(std::string& out) {
  protocol::buildRowDescription(out, {"pool_version"});
  protocol::buildDataRow(out, {fmt::format("pgpilot {}", kVersion)});
  protocol::buildCommandComplete(out, "SELECT 1");
}

std::string num(uint64_t v) {
  return std::to_string(v);
}

std::string ms(double v) {
  return fmt::format("{:.3f}", v);
}

std::string timeOrEmpty(std::chrono::system_clock::time_point t) {
  return t.time_since_epoch().count() == 0 ? std::string() : formatTime(t);
}

void complete(std::string& out, size_t rows) {
  protocol::buildCommandComplete(out, fmt::format("SELECT {}", rows));
}

void showPoolStatus(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(out, {"item", "value", "description"});
  if (!ctx.config) return complete(out, 0);
  const auto settings = config::describeSettings(*ctx.config);
  for (const auto& s : settings) protocol::buildDataRow(out, {s.name, s.value, s.description});
  complete(out, settings.size());
}

void showPoolSessions(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(
      out, {"session_id", "worker", "pid", "username", "database", "application_name",
            "client_address", "node_id", "nodes", "state", "in_transaction", "since"});
  size_t n = 0;
  if (ctx.sessions) {
    for (const auto& s : *ctx.sessions) {
      std::string nodes;
      for (int id : s.nodes) nodes += (nodes.empty() ? "" : ",") + std::to_string(id);
      protocol::buildDataRow(
          out, {num(s.id), std::to_string(s.worker), std::to_string(s.pid), s.user, s.database,
                s.application_name, s.client_address,
                s.node < 0 ? std::optional<std::string>() : std::to_string(s.node), nodes, s.state,
                s.in_transaction ? "true" : "false", formatTime(s.since)});
      ++n;
    }
  }
  complete(out, n);
}

void showPoolPools(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(
      out, {"node_id", "username", "database", "connections", "idle", "in_use", "max_pool"});
  size_t n = 0;
  const int max_pool = ctx.config ? ctx.config->max_pool : 0;
  if (ctx.pools) {
    for (const auto& p : *ctx.pools) {
      protocol::buildDataRow(
          out, {std::to_string(p.node), p.user, p.database, std::to_string(p.connections),
                std::to_string(p.idle), std::to_string(std::max(0, p.connections - p.idle)),
                std::to_string(max_pool)});
      ++n;
    }
  }
  complete(out, n);
}

void showPoolProcesses(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(
      out, {"worker", "start_time", "client_sessions", "idle_server_connections",
            "server_connections_opened", "server_connections_closed", "server_connections_reused",
            "pool_waits", "pool_wait_timeouts", "reset_failures", "internal_queries"});
  size_t n = 0;
  if (ctx.workers) {
    for (const auto& w : *ctx.workers) {
      protocol::buildDataRow(
          out,
          {std::to_string(w.worker), timeOrEmpty(ctx.started), num(w.client_sessions),
           num(w.idle_server_connections), num(w.opened), num(w.closed), num(w.reused),
           num(w.waits), num(w.wait_timeouts), num(w.reset_failures), num(w.internal_queries)});
      ++n;
    }
  }
  complete(out, n);
}

std::string nodeRole(const AdminContext& ctx, const cluster::NodeState& n) {
  return n.backend.id == ctx.topology->primary ? std::string("primary")
                                               : std::string(cluster::roleName(n.role));
}

// pgpool's SHOW pool_health_check_stats columns and units (durations in ms).
void showHealthCheckStats(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(out, {"node_id",
                                      "hostname",
                                      "port",
                                      "status",
                                      "role",
                                      "last_status_change",
                                      "total_count",
                                      "success_count",
                                      "fail_count",
                                      "skip_count",
                                      "retry_count",
                                      "average_retry_count",
                                      "max_retry_count",
                                      "max_duration",
                                      "min_duration",
                                      "average_duration",
                                      "last_health_check",
                                      "last_successful_health_check",
                                      "last_skip_health_check",
                                      "last_failed_health_check"});
  for (const auto& n : ctx.topology->nodes) {
    const cluster::HealthStats h =
        ctx.state ? ctx.state->health(n.backend.id) : cluster::HealthStats{};
    const uint64_t ended = h.success_count + h.fail_count;
    const double avg_retry =
        h.total_count > 0 ? static_cast<double>(h.retry_count) / static_cast<double>(h.total_count)
                          : 0;
    const double avg_ms = ended > 0 ? h.total_duration_ms / static_cast<double>(ended) : 0;
    protocol::buildDataRow(out, {std::to_string(n.backend.id),
                                 n.backend.hostname,
                                 std::to_string(n.backend.port),
                                 std::string(cluster::statusName(n.status)),
                                 nodeRole(ctx, n),
                                 formatTime(n.last_status_change),
                                 num(h.total_count),
                                 num(h.success_count),
                                 num(h.fail_count),
                                 num(h.skip_count),
                                 num(h.retry_count),
                                 fmt::format("{:.6f}", avg_retry),
                                 num(h.max_retry_count),
                                 ms(h.max_duration_ms),
                                 ms(h.min_duration_ms),
                                 ms(avg_ms),
                                 timeOrEmpty(h.last_check),
                                 timeOrEmpty(h.last_success),
                                 timeOrEmpty(h.last_skip),
                                 timeOrEmpty(h.last_failure)});
  }
  complete(out, ctx.topology->nodes.size());
}

// pgpool's SHOW pool_backend_stats columns.
void showBackendStats(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(out, {"node_id", "hostname", "port", "status", "role", "select_cnt",
                                      "insert_cnt", "update_cnt", "delete_cnt", "ddl_cnt",
                                      "other_cnt", "panic_cnt", "fatal_cnt", "error_cnt"});
  for (const auto& n : ctx.topology->nodes) {
    std::vector<std::optional<std::string>> row = {
        std::to_string(n.backend.id), n.backend.hostname, std::to_string(n.backend.port),
        std::string(cluster::statusName(n.status)), nodeRole(ctx, n)};
    if (ctx.state) {
      const cluster::NodeTotals c = ctx.state->totals(n.backend.id);
      for (const uint64_t v : {c.select_cnt, c.insert_cnt, c.update_cnt, c.delete_cnt, c.ddl_cnt,
                               c.other_cnt, c.panic_cnt, c.fatal_cnt, c.error_cnt}) {
        row.emplace_back(num(v));
      }
    } else {
      row.resize(14, "0");
    }
    protocol::buildDataRow(out, row);
  }
  complete(out, ctx.topology->nodes.size());
}

void showPoolEvents(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(out, {"id", "time", "kind", "node_id", "failure", "message"});
  size_t n = 0;
  if (ctx.state) {
    for (const auto& e : ctx.state->events().snapshot()) {
      protocol::buildDataRow(
          out, {num(e.id),
                fmt::format("{:%Y-%m-%d %H:%M:%S}",
                            std::chrono::floor<std::chrono::milliseconds>(e.time)),
                e.kind, e.node < 0 ? std::optional<std::string>() : std::to_string(e.node),
                e.failure ? "true" : "false", e.message});
      ++n;
    }
  }
  complete(out, n);
}

// One row per fact about the running process (pgbouncer's SHOW STATE, more of it).
void showPoolState(const AdminContext& ctx, std::string& out) {
  protocol::buildRowDescription(out, {"item", "value"});
  const int primary = ctx.topology ? ctx.topology->primary : -1;
  const std::pair<const char*, std::string> rows[] = {
      {"version", fmt::format("pgpilot {}", kVersion)},
      {"started", timeOrEmpty(ctx.started)},
      {"paused", ctx.paused ? "true" : "false"},
      {"primary_node_id", primary < 0 ? std::string() : std::to_string(primary)},
      {"nodes", std::to_string(ctx.topology ? ctx.topology->nodes.size() : 0)},
      {"client_sessions", std::to_string(ctx.client_sessions)},
      {"config_file", ctx.config ? ctx.config->source_path : std::string()},
      {"last_event_id", num(ctx.state ? ctx.state->events().lastId() : 0)},
  };
  for (const auto& [item, value] : rows) protocol::buildDataRow(out, {item, value});
  complete(out, std::size(rows));
}

// ---- parsing ----------------------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii::toLower(c);
  return out;
}

// `t` starts with the keyword `w` (lower case) followed by a blank.
bool startsWithWord(std::string_view t, std::string_view w) {
  if (t.size() <= w.size() || !ascii::isBlank(t[w.size()])) return false;
  for (size_t i = 0; i < w.size(); ++i) {
    if (ascii::toLower(t[i]) != w[i]) return false;
  }
  return true;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && ascii::isBlank(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !ascii::isBlank(s[j])) ++j;
    if (j > i) out.push_back(lower(s.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::optional<int> nodeId(const std::string& w) {
  if (w.empty() || w.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : w) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v >= cluster::kMaxNodes) return std::nullopt;
  return v;
}

AdminCommand showCommand(const std::string& what) {
  static const std::pair<std::string_view, AdminCommand> kShows[] = {
      {"pool_nodes", AdminCommand::kShowPoolNodes},
      {"pool_version", AdminCommand::kShowPoolVersion},
      {"pool_status", AdminCommand::kShowPoolStatus},
      {"pool_sessions", AdminCommand::kShowPoolSessions},
      {"pool_pools", AdminCommand::kShowPoolPools},
      {"pool_processes", AdminCommand::kShowPoolProcesses},
      {"pool_health_check_stats", AdminCommand::kShowPoolHealthCheckStats},
      {"pool_backend_stats", AdminCommand::kShowPoolBackendStats},
      {"pool_events", AdminCommand::kShowPoolEvents},
      {"pool_state", AdminCommand::kShowPoolState},
  };
  for (const auto& [name, cmd] : kShows) {
    if (what == name) return cmd;
  }
  return AdminCommand::kNone;
}

Statement invalid(std::string error) {
  Statement st;
  st.command = AdminCommand::kInvalid;
  st.error = std::move(error);
  return st;
}

Statement control(cluster::CommandKind kind, std::string tag) {
  Statement st;
  st.command = AdminCommand::kControl;
  st.control.kind = kind;
  st.tag = std::move(tag);
  return st;
}

constexpr std::string_view kUsage =
    "expected PGPILOT ATTACH|DETACH <node>, PGPILOT PROMOTE [FORCE] <node>, PGPILOT SWITCHOVER "
    "<node>, PGPILOT RELOAD|PAUSE|RESUME, PGPILOT SHUTDOWN [SMART|FAST]";

// `w`: the words after the optional PGPILOT prefix.
Statement parseCommand(const std::vector<std::string>& w) {
  using cluster::CommandKind;
  const std::string& verb = w[0];
  if (verb == "attach" || verb == "detach" || verb == "promote" || verb == "switchover") {
    const CommandKind kind = verb == "attach"    ? CommandKind::kAttach
                             : verb == "detach"  ? CommandKind::kDetach
                             : verb == "promote" ? CommandKind::kPromote
                                                 : CommandKind::kSwitchover;
    size_t i = 1;
    bool force = false;
    if (kind == CommandKind::kPromote && i < w.size() && w[i] == "force") {
      force = true;
      ++i;
    }
    if (kind == CommandKind::kSwitchover && i < w.size() && w[i] == "to") ++i;
    if (i + 1 != w.size() || !nodeId(w[i])) {
      return invalid(fmt::format("PGPILOT {}: expected a node id (0 .. {})", lower(verb),
                                 cluster::kMaxNodes - 1));
    }
    Statement st = control(kind, fmt::format("PGPILOT {}", w[0]));
    for (char& c : st.tag) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    st.control.node = *nodeId(w[i]);
    st.control.force = force;
    return st;
  }
  if (w.size() == 1 && verb == "reload") return control(CommandKind::kReload, "RELOAD");
  if (w.size() == 1 && verb == "pause") return control(CommandKind::kPause, "PAUSE");
  if (w.size() == 1 && verb == "resume") return control(CommandKind::kResume, "RESUME");
  if (verb == "shutdown" && w.size() <= 2) {
    const std::string mode = w.size() == 2 ? w[1] : "smart";
    if (mode != "smart" && mode != "fast") {
      return invalid("PGPILOT SHUTDOWN: the mode is SMART or FAST");
    }
    Statement st = control(CommandKind::kShutdown, "SHUTDOWN");
    st.control.mode = mode;
    return st;
  }
  return invalid(std::string(kUsage));
}

}  // namespace

Statement parse(std::string_view sql, bool admin_port) {
  // Cheap rejection first (every statement of the normal port passes here): our statements
  // start with "show" or "pgpilot".
  std::string_view t = trim(sql);
  if (!admin_port) {
    if (t.size() < 8 || t.size() > 200) return {};
    const char c = ascii::toLower(t[0]);
    if (c != 's' && c != 'p') return {};
    if (!startsWithWord(t, "show") && !startsWithWord(t, "pgpilot")) return {};
  }
  const std::vector<std::string> w = words(t);
  Statement st;
  if (w.empty()) {
    st.command = admin_port ? AdminCommand::kEmpty : AdminCommand::kNone;
    return st;
  }
  if (w[0] == "show" && w.size() == 2) {
    st.command = showCommand(w[1]);
    if (st.command != AdminCommand::kNone || !admin_port) return st;
    return invalid(fmt::format("unrecognized SHOW command \"{}\"", w[1]));
  }
  if (w[0] == "pgpilot") {
    if (w.size() < 2) return invalid(std::string(kUsage));
    return parseCommand(std::vector<std::string>(w.begin() + 1, w.end()));
  }
  if (!admin_port) return st;
  // The admin port: bare commands, and the statements drivers send on their own.
  static const std::string_view kTransactionWords[] = {"begin", "commit", "rollback", "end",
                                                       "start", "set",    "reset",    "abort"};
  for (std::string_view tw : kTransactionWords) {
    if (w[0] == tw) {
      st.command = AdminCommand::kTransaction;
      st.tag = w[0] == "start" ? "START TRANSACTION" : w[0] == "end" ? "COMMIT" : w[0];
      for (char& c : st.tag) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return st;
    }
  }
  Statement cmd = parseCommand(w);
  if (cmd.command == AdminCommand::kInvalid && w[0] != "attach" && w[0] != "detach" &&
      w[0] != "promote" && w[0] != "switchover" && w[0] != "shutdown") {
    return invalid(
        fmt::format("unrecognized admin command \"{}\": the admin console answers "
                    "SHOW pool_* and PGPILOT commands (see docs/operations.md)",
                    w[0]));
  }
  return cmd;
}

AdminCommand recognize(std::string_view sql) {
  return parse(sql, false).command;
}

void answer(AdminCommand cmd, const AdminContext& ctx, std::string& out) {
  switch (cmd) {
    case AdminCommand::kShowPoolNodes:
      return showPoolNodes(ctx, out);
    case AdminCommand::kShowPoolVersion:
      return showPoolVersion(out);
    case AdminCommand::kShowPoolStatus:
      return showPoolStatus(ctx, out);
    case AdminCommand::kShowPoolSessions:
      return showPoolSessions(ctx, out);
    case AdminCommand::kShowPoolPools:
      return showPoolPools(ctx, out);
    case AdminCommand::kShowPoolProcesses:
      return showPoolProcesses(ctx, out);
    case AdminCommand::kShowPoolHealthCheckStats:
      return showHealthCheckStats(ctx, out);
    case AdminCommand::kShowPoolBackendStats:
      return showBackendStats(ctx, out);
    case AdminCommand::kShowPoolEvents:
      return showPoolEvents(ctx, out);
    case AdminCommand::kShowPoolState:
      return showPoolState(ctx, out);
    default:
      return;
  }
}

void answerStatement(const Statement& st, const cluster::CommandResult* result, std::string& out) {
  switch (st.command) {
    case AdminCommand::kInvalid:
      protocol::buildError(out, "ERROR", "42601", st.error);
      return;
    case AdminCommand::kEmpty:
      protocol::buildEmptyQueryResponse(out);
      return;
    case AdminCommand::kTransaction:
      protocol::buildCommandComplete(out, st.tag);
      return;
    case AdminCommand::kControl:
      if (result == nullptr || !result->ok) {
        const std::string code =
            result && !result->sqlstate.empty() ? result->sqlstate : std::string("55000");
        protocol::buildError(out, "ERROR", code,
                             result ? result->message : std::string("command not run"));
        return;
      }
      if (!result->message.empty()) {
        protocol::ErrorFields f;
        f.severity = "NOTICE";
        f.code = "00000";
        f.message = result->message;
        protocol::buildError(out, f, protocol::be::kNoticeResponse);
      }
      protocol::buildCommandComplete(out, st.tag);
      return;
    default:
      return;
  }
}

}  // namespace pgpilot::admin
