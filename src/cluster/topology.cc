#include "cluster/topology.h"

namespace pgpilot::cluster {

std::string_view statusName(NodeStatus s) {
  switch (s) {
    case NodeStatus::kUp:
      return "up";
    case NodeStatus::kDown:
      return "down";
    case NodeStatus::kUnused:
      return "unused";
  }
  return "unknown";
}

std::string_view roleName(Role r) {
  switch (r) {
    case Role::kPrimary:
      return "primary";
    case Role::kStandby:
      return "standby";
    case Role::kUnknown:
      return "unknown";
  }
  return "unknown";
}

const NodeState* Topology::find(int id) const {
  for (const auto& n : nodes) {
    if (n.backend.id == id) return &n;
  }
  return nullptr;
}

std::shared_ptr<Topology> initialTopology(const config::Config& cfg) {
  auto t = std::make_shared<Topology>();
  for (const auto& b : cfg.backends) {
    NodeState n;
    n.backend = b;
    t->nodes.push_back(std::move(n));
  }
  return t;
}

}  // namespace pgpilot::cluster
