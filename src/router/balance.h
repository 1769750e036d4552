#pragma once
// Choice of a session's load-balance node (pure; the session supplies the nodes and the
// random numbers). pgpool-II semantics:
//   - without a redirect rule: at random by backend_weight among the nodes in rotation;
//   - a rule naming the primary or a node id: that node with probability `weight`,
//     otherwise one of the *other* nodes in rotation by backend_weight;
//   - a rule naming `standby`: one of the standbys by backend_weight with probability
//     `weight`, otherwise the primary;
//   - a rule whose node is not in rotation (down, lagging, unknown) is ignored.
// A node's backend_weight does not stop a rule from naming it explicitly (pgpool: the
// weight only matters for random choices).
//
//   std::vector<LbCandidate> c = {{0, 0.0, true}, {1, 1.0, false}, {2, 1.0, false}};
//   int node = chooseLoadBalanceNode(c, rule, u1, u2);  // u1, u2 uniform in [0, 1)
#include <span>

#include "config/redirect.h"

namespace pgpilot::router {

struct LbCandidate {
  int id = -1;
  double weight = 0;  // backend_weight; <= 0: never chosen at random
  bool primary = false;
};

// `in_rotation`: the nodes a read may use now. `rule` may be null. `u_rule` decides the
// rule's weight, `u_pick` the weighted pick. Returns -1 when no node can be chosen (every
// weight is 0 and no rule applies): the caller falls back to the primary.
int chooseLoadBalanceNode(std::span<const LbCandidate> in_rotation,
                          const config::RedirectRule* rule, double u_rule, double u_pick);

}  // namespace pgpilot::router
