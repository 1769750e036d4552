#include "router/balance.h"

namespace pgpilot::router {
namespace {

// Weighted pick among the candidates `accept` lets through; -1 if their weights sum to 0.
template <typename Accept>
int weightedPick(std::span<const LbCandidate> nodes, double u, Accept accept) {
  double total = 0;
  for (const LbCandidate& n : nodes) {
    if (n.weight > 0 && accept(n)) total += n.weight;
  }
  if (total <= 0) return -1;
  double x = u * total;
  int last = -1;
  for (const LbCandidate& n : nodes) {
    if (!(n.weight > 0 && accept(n))) continue;
    last = n.id;
    if (x < n.weight) return n.id;
    x -= n.weight;
  }
  return last;  // rounding: the last candidate
}

}  // namespace

int chooseLoadBalanceNode(std::span<const LbCandidate> in_rotation,
                          const config::RedirectRule* rule, double u_rule, double u_pick) {
  auto any = [](const LbCandidate&) { return true; };
  if (rule == nullptr) return weightedPick(in_rotation, u_pick, any);
  const bool use_target = u_rule < rule->weight;
  const LbCandidate* primary = nullptr;
  for (const LbCandidate& n : in_rotation) {
    if (n.primary) primary = &n;
  }
  using Target = config::RedirectRule::Target;
  if (rule->target == Target::kStandby) {
    auto standby = [](const LbCandidate& n) { return !n.primary; };
    if (!use_target && primary) return primary->id;
    bool has_standby = false;
    for (const LbCandidate& n : in_rotation) has_standby = has_standby || !n.primary;
    if (!has_standby) return weightedPick(in_rotation, u_pick, any);  // rule ignored
    const int node = weightedPick(in_rotation, u_pick, standby);
    if (node >= 0) return node;
    // Every standby has weight 0: the rule still names them; take the first.
    for (const LbCandidate& n : in_rotation) {
      if (!n.primary) return n.id;
    }
    return -1;
  }
  const LbCandidate* suggested = nullptr;
  for (const LbCandidate& n : in_rotation) {
    if (rule->target == Target::kPrimary ? n.primary : n.id == rule->node) suggested = &n;
  }
  if (suggested == nullptr) return weightedPick(in_rotation, u_pick, any);  // rule ignored
  if (use_target) return suggested->id;
  const int other =
      weightedPick(in_rotation, u_pick, [&](const LbCandidate& n) { return &n != suggested; });
  return other >= 0 ? other : suggested->id;
}

}  // namespace pgpilot::router
