// ClusterState's per-node counters are sharded by worker; readers see the sum.
#include <gtest/gtest.h>

#include "cluster/topology.h"

namespace pgpilot::cluster {
namespace {

TEST(NodeCounters, TotalsSumEveryWorkersShard) {
  ClusterState state;
  state.counters(1, 0).count(StatementClass::kSelect);
  state.counters(1, 3).count(StatementClass::kSelect);
  state.counters(1, 3).count(StatementClass::kInsert);
  state.counters(1, 3).statements.fetch_add(5);
  state.counters(1, 7).countError("FATAL");
  state.counters(2, 0).count(StatementClass::kSelect);  // another node: not mixed in
  const NodeTotals t = state.totals(1);
  EXPECT_EQ(t.select_cnt, 2u);
  EXPECT_EQ(t.insert_cnt, 1u);
  EXPECT_EQ(t.statements, 5u);
  EXPECT_EQ(t.server_errors, 1u);
  EXPECT_EQ(t.fatal_cnt, 1u);
  EXPECT_EQ(t.error_cnt, 0u);
  EXPECT_EQ(state.totals(2).select_cnt, 1u);
  EXPECT_EQ(state.totals(0).select_cnt, 0u);
}

TEST(NodeCounters, MoreWorkersThanShardsShareShards) {
  ClusterState state;
  state.counters(0, ClusterState::kCounterShards + 1).count(StatementClass::kUpdate);
  state.counters(0, 1).count(StatementClass::kUpdate);
  EXPECT_EQ(state.totals(0).update_cnt, 2u);
}

}  // namespace
}  // namespace pgpilot::cluster
