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
  state.counters(1).select_cnt = 7;
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

}  // namespace
}  // namespace pgpilot::admin
