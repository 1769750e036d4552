// cluster::TopologyView: a worker's cached copy of the published snapshot follows every
// publish() and is not re-read (no shared_ptr copy) while nothing is published.
#include <gtest/gtest.h>

#include <memory>

#include "cluster/topology.h"

namespace pgpilot::cluster {
namespace {

std::shared_ptr<const Topology> snapshot(uint64_t version, int primary) {
  auto t = std::make_shared<Topology>();
  t->version = version;
  t->primary = primary;
  return t;
}

TEST(TopologyView, FollowsEveryPublish) {
  ClusterState state;
  TopologyView view(state);
  state.publish(snapshot(1, 0));
  EXPECT_EQ(view.get().version, 1u);
  EXPECT_EQ(view.get().primary, 0);
  state.publish(snapshot(2, 1));
  EXPECT_EQ(view.get().version, 2u);
  EXPECT_EQ(view.get().primary, 1);
  // Publishing a snapshot with the same version still counts: the view follows publish(),
  // not the version field.
  state.publish(snapshot(2, 2));
  EXPECT_EQ(view.get().primary, 2);
}

TEST(TopologyView, KeepsItsCopyWhileNothingIsPublished) {
  ClusterState state;
  state.publish(snapshot(7, 0));
  TopologyView view(state);
  const Topology* first = &view.get();
  const uint64_t g = state.generation();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(&view.get(), first);
  EXPECT_EQ(state.generation(), g);
  // The view holds a reference of its own: the snapshot outlives the state's switch to
  // another one until the view refreshes.
  std::weak_ptr<const Topology> old = state.topology();
  state.publish(snapshot(8, 0));
  EXPECT_FALSE(old.expired());
  EXPECT_EQ(view.get().version, 8u);
  EXPECT_TRUE(old.expired());
}

TEST(TopologyView, InitialSnapshotBeforeAnyPublish) {
  ClusterState state;
  TopologyView view(state);
  EXPECT_EQ(view.get().version, state.topology()->version);
}

}  // namespace
}  // namespace pgpilot::cluster
