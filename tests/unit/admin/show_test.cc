#include "admin/show.h"

#include <gtest/gtest.h>

#include "protocol/codec.h"
#include "protocol/messages.h"

namespace pgpilot::admin {
namespace {

TEST(AdminRecognize, AcceptsPgpoolSpellings) {
  EXPECT_EQ(recognize("SHOW pool_nodes"), AdminCommand::kShowPoolNodes);
  EXPECT_EQ(recognize("  show   POOL_NODES ;  "), AdminCommand::kShowPoolNodes);
  EXPECT_EQ(recognize("show pool_version;"), AdminCommand::kShowPoolVersion);
}

TEST(AdminRecognize, LeavesEverythingElseToTheServer) {
  EXPECT_EQ(recognize("SHOW work_mem"), AdminCommand::kNone);
  EXPECT_EQ(recognize("SHOW pool_nodesx"), AdminCommand::kNone);
  EXPECT_EQ(recognize("SELECT 'show pool_nodes'"), AdminCommand::kNone);
  EXPECT_EQ(recognize("showpool_nodes"), AdminCommand::kNone);
  EXPECT_EQ(recognize(""), AdminCommand::kNone);
}

TEST(AdminAnswer, PoolNodesHasOneRowPerNodeWithPgpoolColumns) {
  cluster::Topology t;
  for (int i = 0; i < 3; ++i) {
    cluster::NodeState n;
    n.backend.id = i;
    n.backend.hostname = "127.0.0.1";
    n.backend.port = 5432 + i;
    n.backend.weight = i == 0 ? 2 : 1;
    n.role = i == 0 ? cluster::Role::kPrimary : cluster::Role::kStandby;
    n.pg_role = n.role;
    n.pg_up = i != 2;
    t.nodes.push_back(n);
  }
  t.primary = 0;
  cluster::ClusterState state;
  state.counters(1, 0).select_cnt = 7;
  std::string out;
  answer(AdminCommand::kShowPoolNodes, {.topology = &t, .state = &state, .session_node = 0}, out);

  std::vector<std::vector<std::string>> rows;
  size_t columns = 0;
  std::string_view rest(out);
  while (!rest.empty()) {
    auto f = protocol::decodeFrame(rest);
    ASSERT_EQ(f.status, protocol::DecodeStatus::kOk);
    protocol::Reader r(f.frame.body);
    if (f.frame.type == 'T') columns = static_cast<size_t>(r.int16());
    if (f.frame.type == 'D') {
      auto& row = rows.emplace_back();
      const int n = r.int16();
      for (int i = 0; i < n; ++i) {
        const int len = r.int32();
        row.emplace_back(r.bytes(static_cast<size_t>(len)));
      }
    }
    if (f.frame.type == 'C') {
      EXPECT_EQ(f.frame.body, std::string_view("SELECT 3\0", 9));
    }
    rest.remove_prefix(f.frame.total_size);
  }
  EXPECT_EQ(columns, 14u);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][3], "up");
  EXPECT_EQ(rows[0][5], "0.500000");  // weight 2 of 4
  EXPECT_EQ(rows[0][6], "primary");
  EXPECT_EQ(rows[1][6], "standby");
  EXPECT_EQ(rows[1][8], "7");
  EXPECT_EQ(rows[0][9], "true");
  EXPECT_EQ(rows[1][9], "false");
  EXPECT_EQ(rows[2][4], "down");  // pg_status follows the last probe
}

TEST(AdminParse, ViewsOnBothPorts) {
  EXPECT_EQ(recognize("SHOW pool_status"), AdminCommand::kShowPoolStatus);
  EXPECT_EQ(recognize("show pool_sessions;"), AdminCommand::kShowPoolSessions);
  EXPECT_EQ(recognize("SHOW pool_backend_stats"), AdminCommand::kShowPoolBackendStats);
  EXPECT_EQ(recognize("SHOW pool_health_check_stats"), AdminCommand::kShowPoolHealthCheckStats);
  EXPECT_EQ(recognize("SHOW pool_events"), AdminCommand::kShowPoolEvents);
  // Any blank PostgreSQL accepts, around and between the words.
  EXPECT_EQ(recognize("\t\r\nShOw\vpool_nodes\f ;"), AdminCommand::kShowPoolNodes);
  EXPECT_EQ(recognize("showpool_nodes"), AdminCommand::kNone);
  // Unknown SHOW: the server's on the normal port, an error on the admin port.
  EXPECT_EQ(recognize("SHOW pool_nope"), AdminCommand::kNone);
  EXPECT_EQ(parse("SHOW pool_nope", true).command, AdminCommand::kInvalid);
}

TEST(AdminParse, CommandsNeedThePrefixOnTheNormalPort) {
  EXPECT_EQ(recognize("RELOAD"), AdminCommand::kNone);
  EXPECT_EQ(recognize("PAUSE"), AdminCommand::kNone);
  EXPECT_EQ(recognize("pgpilotx reload"), AdminCommand::kNone);
  EXPECT_EQ(recognize("SELECT pgpilot"), AdminCommand::kNone);
  Statement st = parse("PGPILOT RELOAD;", false);
  EXPECT_EQ(st.command, AdminCommand::kControl);
  EXPECT_EQ(st.control.kind, cluster::CommandKind::kReload);
  EXPECT_EQ(st.tag, "RELOAD");
  st = parse("reload", true);
  EXPECT_EQ(st.control.kind, cluster::CommandKind::kReload);
}

TEST(AdminParse, NodeCommands) {
  Statement st = parse("pgpilot promote force 2", false);
  ASSERT_EQ(st.command, AdminCommand::kControl);
  EXPECT_EQ(st.control.kind, cluster::CommandKind::kPromote);
  EXPECT_EQ(st.control.node, 2);
  EXPECT_TRUE(st.control.force);
  EXPECT_EQ(st.tag, "PGPILOT PROMOTE");
  st = parse("SWITCHOVER TO 1", true);
  EXPECT_EQ(st.control.kind, cluster::CommandKind::kSwitchover);
  EXPECT_EQ(st.control.node, 1);
  st = parse("PGPILOT DETACH 0", false);
  EXPECT_EQ(st.control.kind, cluster::CommandKind::kDetach);
  EXPECT_EQ(st.control.node, 0);
  EXPECT_EQ(parse("PGPILOT ATTACH", false).command, AdminCommand::kInvalid);
  EXPECT_EQ(parse("PGPILOT ATTACH 128", false).command, AdminCommand::kInvalid);
  EXPECT_EQ(parse("PGPILOT ATTACH -1", false).command, AdminCommand::kInvalid);
  EXPECT_EQ(parse("PGPILOT ATTACH 1 2", false).command, AdminCommand::kInvalid);
}

TEST(AdminParse, Shutdown) {
  Statement st = parse("PGPILOT SHUTDOWN", false);
  EXPECT_EQ(st.control.kind, cluster::CommandKind::kShutdown);
  EXPECT_EQ(st.control.mode, "smart");
  EXPECT_EQ(parse("shutdown fast", true).control.mode, "fast");
  EXPECT_EQ(parse("PGPILOT SHUTDOWN slow", false).command, AdminCommand::kInvalid);
}

TEST(AdminParse, AdminPortAcceptsDriverStatements) {
  EXPECT_EQ(parse("BEGIN", true).command, AdminCommand::kTransaction);
  EXPECT_EQ(parse("BEGIN", true).tag, "BEGIN");
  EXPECT_EQ(parse("SET datestyle = ISO", true).tag, "SET");
  EXPECT_EQ(parse("  ;", true).command, AdminCommand::kEmpty);
  EXPECT_EQ(parse("SELECT 1", true).command, AdminCommand::kInvalid);
  EXPECT_EQ(parse("BEGIN", false).command, AdminCommand::kNone);
}

TEST(AdminAnswer, CommandResultBecomesNoticeAndTagOrError) {
  Statement st = parse("PGPILOT PAUSE", false);
  std::string out;
  cluster::CommandResult ok{.ok = true, .message = "paused"};
  answerStatement(st, &ok, out);
  EXPECT_EQ(out[0], 'N');
  EXPECT_NE(out.find("paused"), std::string::npos);
  EXPECT_NE(out.find("PAUSE"), std::string::npos);
  out.clear();
  cluster::CommandResult bad{.ok = false, .message = "no", .sqlstate = "0A000"};
  answerStatement(st, &bad, out);
  EXPECT_EQ(out[0], 'E');
  EXPECT_NE(out.find("0A000"), std::string::npos);
  out.clear();
  bad.sqlstate.clear();
  answerStatement(st, &bad, out);
  EXPECT_NE(out.find("55000"), std::string::npos);
}

TEST(StatementClass, FirstKeyword) {
  using cluster::StatementClass;
  EXPECT_EQ(cluster::firstKeywordClass("  select 1"), StatementClass::kSelect);
  EXPECT_EQ(cluster::firstKeywordClass("/* c */ -- x\n INSERT INTO t"), StatementClass::kInsert);
  EXPECT_EQ(cluster::firstKeywordClass("(SELECT 1) UNION (SELECT 2)"), StatementClass::kSelect);
  EXPECT_EQ(cluster::firstKeywordClass("Update t"), StatementClass::kUpdate);
  EXPECT_EQ(cluster::firstKeywordClass("DELETE FROM t"), StatementClass::kDelete);
  EXPECT_EQ(cluster::firstKeywordClass("create table t()"), StatementClass::kDdl);
  EXPECT_EQ(cluster::firstKeywordClass("BEGIN"), StatementClass::kOther);
  EXPECT_EQ(cluster::firstKeywordClass(""), StatementClass::kOther);
  // Every blank PostgreSQL accepts, any letter case; a keyword only as a whole word.
  EXPECT_EQ(cluster::firstKeywordClass("\t\n\v\f\r VaLuEs (1)"), StatementClass::kSelect);
  EXPECT_EQ(cluster::firstKeywordClass("TRUNCATE t"), StatementClass::kDdl);
  EXPECT_EQ(cluster::firstKeywordClass("selected"), StatementClass::kOther);
  EXPECT_EQ(cluster::firstKeywordClass("insert@"), StatementClass::kInsert);
  EXPECT_EQ(cluster::firstKeywordClass("[select"), StatementClass::kOther);
  EXPECT_EQ(cluster::firstKeywordClass("\xc3\xa9select"), StatementClass::kOther);
  cluster::NodeCounters c;
  c.countStatement("select 1");
  c.countError("ERROR");
  c.countError("FATAL");
  EXPECT_EQ(c.select_cnt.load(), 1u);
  EXPECT_EQ(c.error_cnt.load(), 1u);
  EXPECT_EQ(c.fatal_cnt.load(), 1u);
  EXPECT_EQ(c.server_errors.load(), 2u);
}

}  // namespace
}  // namespace pgpilot::admin
