// pgpilotctl: the operator's command line for a running pgpilot.
//
// Purpose: speaks the PostgreSQL protocol (libpq) to pgpilot's admin port and turns
// subcommands into admin-console statements (SHOW pool_*, PGPILOT ..., RELOAD, ...).
// Human tables by default, --json for scripts. pgpool's pcp_* command names are accepted
// as subcommands, and as the program name (a pcp_attach_node symlink to pgpilotctl works).
// Exit codes: 0 ok, 1 the command was refused, 2 cannot connect or authenticate, 3 usage.
// Reference: docs/operations.md.
#include <libpq-fe.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace {

using Json = nlohmann::ordered_json;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitConnect = 2;
constexpr int kExitUsage = 3;

struct Options {
  std::string host = "127.0.0.1";
  int port = 9898;
  std::string user;
  int timeout = 10;
  bool json = false;
};

std::string envOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// A result table: column names and rows (NULL as nullopt).
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// What one admin statement returned.
struct Reply {
  bool ok = false;
  std::string tag;  // CommandComplete tag
  std::string sqlstate;
  std::string message;  // the error, or the NOTICEs of a command
  Table table;
};

class Admin {
 public:
  explicit Admin(const Options& o) : opts_(o) {}
  ~Admin() {
    if (conn_) PQfinish(conn_);
  }
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Connects; on failure prints why and returns false.
  bool connect() {
    const std::string port = std::to_string(opts_.port);
    const std::string timeout = std::to_string(opts_.timeout);
    const char* keys[] = {"host", "port", "user", "dbname", "connect_timeout", "application_name",
                          nullptr};
    const char* values[] = {
        opts_.host.c_str(), port.c_str(), opts_.user.c_str(), "pgpilot", timeout.c_str(),
        "pgpilotctl",       nullptr};
    conn_ = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::fprintf(stderr, "pgpilotctl: cannot connect to the admin port %s:%d: %s",
                   opts_.host.c_str(), opts_.port, PQerrorMessage(conn_));
      return false;
    }
    PQsetNoticeReceiver(conn_, &Admin::onNotice, this);
    return true;
  }

  Reply run(const std::string& sql) {
    notices_.clear();
    Reply r;
    PGresult* res = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      r.ok = true;
      r.tag = PQcmdStatus(res);
      r.message = notices_;
      for (int c = 0; c < PQnfields(res); ++c) r.table.columns.emplace_back(PQfname(res, c));
      for (int i = 0; i < PQntuples(res); ++i) {
        auto& row = r.table.rows.emplace_back();
        for (int c = 0; c < PQnfields(res); ++c) {
          if (PQgetisnull(res, i, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(PQgetvalue(res, i, c));
          }
        }
      }
    } else {
      const char* code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const char* msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
      r.sqlstate = code ? code : "";
      r.message = msg ? msg : PQerrorMessage(conn_);
      while (!r.message.empty() && r.message.back() == '\n') r.message.pop_back();
    }
    PQclear(res);
    return r;
  }

  bool lostConnection() const { return PQstatus(conn_) != CONNECTION_OK; }

 private:
  static void onNotice(void* self, const PGresult* res) {
    auto* a = static_cast<Admin*>(self);
    const char* msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg) return;
    if (!a->notices_.empty()) a->notices_ += "\n";
    a->notices_ += msg;
  }

  Options opts_;
  PGconn* conn_ = nullptr;
  std::string notices_;
};

// ---- output -----------------------------------------------------------------------------

Json rowsJson(const Table& t) {
  Json rows = Json::array();
  for (const auto& row : t.rows) {
    Json o = Json::object();
    for (size_t c = 0; c < t.columns.size(); ++c) {
      o[t.columns[c]] = row[c] ? Json(*row[c]) : Json(nullptr);
    }
    rows.push_back(std::move(o));
  }
  return rows;
}

void printTable(const Table& t) {
  std::vector<size_t> width(t.columns.size());
  for (size_t c = 0; c < t.columns.size(); ++c) width[c] = t.columns[c].size();
  for (const auto& row : t.rows) {
    for (size_t c = 0; c < row.size(); ++c)
      width[c] = std::max(width[c], row[c].value_or("").size());
  }
  auto line = [&](auto cell) {
    std::string out;
    for (size_t c = 0; c < t.columns.size(); ++c) {
      std::string v = cell(c);
      if (c + 1 < t.columns.size()) v.resize(width[c], ' ');
      out += (c ? "  " : "") + v;
    }
    std::printf("%s\n", out.c_str());
  };
  line([&](size_t c) { return t.columns[c]; });
  line([&](size_t c) { return std::string(width[c], '-'); });
  for (const auto& row : t.rows) line([&](size_t c) { return row[c].value_or(""); });
}

// Prints a refused command and returns kExitRefused.
int refused(const Options& o, const Reply& r) {
  if (o.json) {
    std::printf(
        "%s\n",
        Json{{"ok", false}, {"sqlstate", r.sqlstate}, {"message", r.message}}.dump().c_str());
  } else {
    std::fprintf(stderr, "pgpilotctl: %s (SQLSTATE %s)\n", r.message.c_str(), r.sqlstate.c_str());
  }
  return kExitRefused;
}

// Runs one statement on a fresh connection and prints its answer.
int runStatement(const Options& o, const std::string& sql,
                 const std::optional<std::string>& filter_node = std::nullopt) {
  Admin a(o);
  if (!a.connect()) return kExitConnect;
  Reply r = a.run(sql);
  if (!r.ok) return a.lostConnection() && r.sqlstate.empty() ? kExitConnect : refused(o, r);
  if (filter_node) {
    std::erase_if(r.table.rows, [&](const auto& row) { return row[0] != *filter_node; });
    if (r.table.rows.empty()) {
      return refused(o, Reply{.sqlstate = "22023", .message = "no node " + *filter_node});
    }
  }
  if (r.table.columns.empty()) {
    if (o.json) {
      std::printf("%s\n",
                  Json{{"ok", true}, {"command", r.tag}, {"message", r.message}}.dump().c_str());
    } else {
      std::printf("%s\n", r.message.empty() ? r.tag.c_str() : r.message.c_str());
    }
  } else if (o.json) {
    std::printf("%s\n", rowsJson(r.table).dump(2).c_str());
  } else {
    printTable(r.table);
  }
  return kExitOk;
}

int nodeCount(const Options& o) {
  Admin a(o);
  if (!a.connect()) return kExitConnect;
  Reply r = a.run("SHOW pool_nodes");
  if (!r.ok) return refused(o, r);
  if (o.json) {
    std::printf("%s\n", Json{{"node_count", r.table.rows.size()}}.dump().c_str());
  } else {
    std::printf("%zu\n", r.table.rows.size());
  }
  return kExitOk;
}

// status: version, pause state, nodes, sessions and the last events in one document.
int status(const Options& o) {
  Admin a(o);
  if (!a.connect()) return kExitConnect;
  const Reply state = a.run("SHOW pool_state");
  const Reply nodes = a.run("SHOW pool_nodes");
  const Reply sessions = a.run("SHOW pool_sessions");
  const Reply events = a.run("SHOW pool_events");
  for (const Reply* r : {&state, &nodes, &sessions, &events}) {
    if (!r->ok) return refused(o, *r);
  }
  std::map<std::string, std::string> facts;
  for (const auto& row : state.table.rows) facts[row[0].value_or("")] = row[1].value_or("");
  Json nodes_json = rowsJson(nodes.table);
  Json primary = nullptr;
  for (const auto& n : nodes_json) {
    if (n["role"] == "primary") primary = std::stoi(n["node_id"].get<std::string>());
  }
  Json ev = rowsJson(events.table);
  while (ev.size() > 20) ev.erase(ev.begin());
  const bool paused = facts["paused"] == "true";
  if (o.json) {
    Json doc = {{"version", facts["version"]},
                {"started", facts["started"]},
                {"config_file", facts["config_file"]},
                {"paused", paused},
                {"primary_node_id", primary},
                {"nodes", nodes_json},
                {"client_sessions", sessions.table.rows.size()},
                {"recent_events", ev}};
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s, primary node: %s, %zu client sessions%s\n\n", facts["version"].c_str(),
              primary.is_null() ? "none" : primary.dump().c_str(), sessions.table.rows.size(),
              paused ? ", PAUSED (new statements are held until resume)" : "");
  printTable(nodes.table);
  return kExitOk;
}

// ---- command line -----------------------------------------------------------------------

struct Args {
  int node = -1;
  int node_flag = -1;  // pcp's -n N
  bool force = false;
  bool switchover = false;
  std::string mode = "smart";
  std::string view;
};

int nodeOf(const Args& a) {
  return a.node >= 0 ? a.node : a.node_flag;
}

void addNode(CLI::App* sub, Args& a, bool required = true) {
  auto* pos = sub->add_option("node", a.node, "node id")->check(CLI::Range(0, 127));
  auto* flag =
      sub->add_option("-n,--node", a.node_flag, "node id (pcp style)")->check(CLI::Range(0, 127));
  if (required) {
    pos->excludes(flag);
    sub->callback([sub, &a] {
      if (nodeOf(a) < 0) throw CLI::RequiredError(sub->get_name() + ": a node id");
    });
  }
}

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

std::vector<Command> addCommands(CLI::App& cli, Options& o, Args& a) {
  std::vector<Command> cmds;
  auto show = [&o](const std::string& sql) { return [&o, sql] { return runStatement(o, sql); }; };
  auto nodeStmt = [&o, &a](std::string verb) {
    return [&o, &a, verb] {
      return runStatement(o, "PGPILOT " + verb + " " + std::to_string(nodeOf(a)));
    };
  };
  auto promote = [&o, &a] {
    std::string sql = a.switchover ? "PGPILOT SWITCHOVER "
                      : a.force    ? "PGPILOT PROMOTE FORCE "
                                   : "PGPILOT PROMOTE ";
    return runStatement(o, sql + std::to_string(nodeOf(a)));
  };
  auto nodeInfo = [&o, &a] {
    return runStatement(o, "SHOW pool_nodes", std::to_string(nodeOf(a)));
  };
  auto stop = [&o, &a] { return runStatement(o, "PGPILOT SHUTDOWN " + a.mode); };

  cmds.push_back(
      {cli.add_subcommand("nodes", "list the nodes (SHOW pool_nodes)"), show("SHOW pool_nodes")});
  auto* node = cli.add_subcommand("node", "one node");
  node->require_subcommand(1);
  auto* info = node->add_subcommand("info", "one node's SHOW pool_nodes row");
  addNode(info, a);
  cmds.push_back({info, nodeInfo});
  for (const char* alias : {"pcp_node_info"}) {
    auto* s = cli.add_subcommand(alias, "alias of node info");
    addNode(s, a);
    cmds.push_back({s, nodeInfo});
  }
  for (auto [name, alias, verb] : {std::tuple{"attach", "pcp_attach_node", "ATTACH"},
                                   std::tuple{"detach", "pcp_detach_node", "DETACH"}}) {
    for (const char* n : {name, alias}) {
      auto* s = cli.add_subcommand(n, std::string(verb) + " a node");
      addNode(s, a);
      cmds.push_back({s, nodeStmt(verb)});
    }
  }
  for (const char* n : {"promote", "pcp_promote_node"}) {
    auto* s = cli.add_subcommand(n, "make a node the primary");
    addNode(s, a);
    s->add_flag("-s,--switchover", a.switchover, "planned switchover (old primary follows)");
    s->add_flag("--force", a.force, "even if it may lack acknowledged synchronous commits");
    cmds.push_back({s, promote});
  }
  auto* sw = cli.add_subcommand("switchover", "planned switchover to a standby");
  sw->add_option("--to", a.node, "the standby to promote")->required()->check(CLI::Range(0, 127));
  cmds.push_back({sw, nodeStmt("SWITCHOVER")});
  cmds.push_back(
      {cli.add_subcommand("node_count", "number of nodes"), [&o] { return nodeCount(o); }});
  cmds.push_back(
      {cli.add_subcommand("pcp_node_count", "alias of node_count"), [&o] { return nodeCount(o); }});
  cmds.push_back({cli.add_subcommand("sessions", "client sessions (SHOW pool_sessions)"),
                  show("SHOW pool_sessions")});
  cmds.push_back({cli.add_subcommand("events", "cluster events (SHOW pool_events)"),
                  show("SHOW pool_events")});
  auto* sh = cli.add_subcommand("show", "any admin view: SHOW pool_<view>");
  sh->add_option("view", a.view, "pool_nodes, pool_status, pool_pools, ...")->required();
  cmds.push_back({sh, [&o, &a] { return runStatement(o, "SHOW " + a.view); }});
  // pgpool's other read-only pcp tools, answered by the matching SHOW view.
  cmds.push_back({cli.add_subcommand("pcp_pool_status", "alias of show pool_status"),
                  show("SHOW pool_status")});
  cmds.push_back({cli.add_subcommand("pcp_proc_info", "alias of show pool_processes"),
                  show("SHOW pool_processes")});
  auto* hc =
      cli.add_subcommand("pcp_health_check_stats", "one node's SHOW pool_health_check_stats");
  addNode(hc, a);
  cmds.push_back({hc, [&o, &a] {
                    return runStatement(o, "SHOW pool_health_check_stats",
                                        std::to_string(nodeOf(a)));
                  }});
  for (const char* n : {"reload", "pcp_reload_config"}) {
    cmds.push_back(
        {cli.add_subcommand(n, "re-read the configuration file"), show("PGPILOT RELOAD")});
  }
  cmds.push_back({cli.add_subcommand("pause", "hold new statements"), show("PGPILOT PAUSE")});
  cmds.push_back({cli.add_subcommand("resume", "release held statements"), show("PGPILOT RESUME")});
  for (const char* n : {"stop", "pcp_stop_pgpool"}) {
    auto* s = cli.add_subcommand(n, "shut pgpilot down");
    s->add_option("-m,--mode", a.mode, "smart (wait for clients) or fast")
        ->check(CLI::IsMember({"smart", "fast"}));
    cmds.push_back({s, stop});
  }
  cmds.push_back({cli.add_subcommand("status",
                                     "version, nodes, sessions (with --json: one "
                                     "document for scripts)"),
                  [&o] { return status(o); }});
  return cmds;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"pgpilotctl: operate a running pgpilot through its admin port"};
  cli.name("pgpilotctl");
  cli.set_help_flag("--help", "print this help and exit");
  cli.footer(
      "Exit codes: 0 ok, 1 command refused, 2 cannot connect or authenticate, 3 usage error.\n"
      "pcp_* names work as commands and as the program name. See docs/operations.md.");
  cli.require_subcommand(1);
  Options o;
  o.host = envOr("PGPILOT_HOST", o.host);
  o.port = std::atoi(envOr("PGPILOT_ADMIN_PORT", "9898").c_str());
  o.user = envOr("PGPILOT_USER", envOr("PGUSER", envOr("USER", "postgres")));
  cli.add_option("-h,--host", o.host, "admin host (PGPILOT_HOST, default 127.0.0.1)");
  cli.add_option("-p,--port", o.port, "admin_port (PGPILOT_ADMIN_PORT, default 9898)");
  cli.add_option("-U,--username", o.user,
                 "admin user (PGPILOT_USER; password: PGPASSWORD or "
                 "~/.pgpass)");
  cli.add_option("-t,--timeout", o.timeout, "connect timeout in seconds");
  cli.add_flag("-j,--json", o.json, "JSON output");
  cli.fallthrough();
  Args a;
  auto cmds = addCommands(cli, o, a);

  // Called as pcp_attach_node & co (a symlink): the program name is the subcommand.
  std::vector<std::string> args;
  const std::string prog = std::filesystem::path(argv[0]).filename().string();
  if (prog.starts_with("pcp_")) args.push_back(prog);
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    cli.parse(args);
  } catch (const CLI::Success& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return kExitUsage;
  }
  for (const auto& c : cmds) {
    if (c.app->parsed()) return c.run();
  }
  std::fprintf(stderr, "pgpilotctl: no command given (see --help)\n");
  return kExitUsage;
}
