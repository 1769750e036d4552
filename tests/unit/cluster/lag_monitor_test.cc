#include "cluster/lag_monitor.h"

#include <gtest/gtest.h>

namespace pgpilot::cluster {
namespace {

Topology threeNodes() {
  Topology t;
  t.primary = 0;
  for (int i = 0; i < 3; ++i) {
    NodeState n;
    n.backend.id = i;
    n.backend.application_name = "standby" + std::to_string(i);
    n.pg_up = true;
    t.nodes.push_back(n);
  }
  return t;
}

TEST(LagByNode, PrimaryZeroStandbysFromTheirRow) {
  const auto lags = lagByNode(threeNodes(), {{"standby2", 1.5}, {"standby1", 0.25}});
  EXPECT_EQ(lags.at(0), 0.0);
  EXPECT_EQ(lags.at(1), 0.25);
  EXPECT_EQ(lags.at(2), 1.5);
}

TEST(LagByNode, UnknownWithoutRowNameOrPrimary) {
  Topology t = threeNodes();
  t.nodes[2].backend.application_name.clear();
  auto lags = lagByNode(t, {{"standby2", 1.5}, {"standby1", std::nullopt}});
  EXPECT_EQ(lags.at(0), 0.0);
  EXPECT_EQ(lags.at(1), std::nullopt) << "NULL lag in the row";
  EXPECT_EQ(lags.at(2), std::nullopt) << "no backend_application_name: no match";
  t.primary = -1;
  lags = lagByNode(t, {{"standby1", 1.0}});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(lags.at(i), std::nullopt);
}

TEST(LagByNode, DownOrUnreachableStandbyIsUnknown) {
  Topology t = threeNodes();
  t.nodes[1].status = NodeStatus::kDown;
  t.nodes[2].pg_up = false;
  const auto lags = lagByNode(t, {{"standby1", 1.0}, {"standby2", 2.0}});
  EXPECT_EQ(lags.at(1), std::nullopt);
  EXPECT_EQ(lags.at(2), std::nullopt);
}

TEST(ClusterState, ReplicationLagStartsUnknownAndRoundTrips) {
  ClusterState s;
  EXPECT_EQ(s.replicationLagSeconds(1), std::nullopt);
  s.setReplicationLag(1, 2.5);
  EXPECT_EQ(s.replicationLagSeconds(1), 2.5);
  s.setReplicationLag(1, 0.0);
  EXPECT_EQ(s.replicationLagSeconds(1), 0.0);
  s.setReplicationLag(1, std::nullopt);
  EXPECT_EQ(s.replicationLagSeconds(1), std::nullopt);
}

}  // namespace
}  // namespace pgpilot::cluster
