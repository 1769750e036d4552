// chooseLoadBalanceNode: weighted choice and pgpool's redirect-rule semantics, checked on
// exact random inputs and on the distribution over a grid of inputs.
#include "router/balance.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace pgpilot::router {
namespace {

using config::parseRedirectList;
using config::RedirectRule;

// Primary 0 (weight 0), standbys 1 and 2 (weight 1 and 3).
const std::vector<LbCandidate> kNodes = {{0, 0.0, true}, {1, 1.0, false}, {2, 3.0, false}};

RedirectRule rule(const char* text) {
  auto r = parseRedirectList(text);
  EXPECT_TRUE(r.has_value() && r->size() == 1) << text;
  return r->front();
}

// Share of choices per node over an n x n grid of (u_rule, u_pick).
std::map<int, double> shares(const std::vector<LbCandidate>& nodes, const RedirectRule* r,
                             int n = 200) {
  std::map<int, double> out;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      out[chooseLoadBalanceNode(nodes, r, (i + 0.5) / n, (j + 0.5) / n)] += 1.0 / (n * n);
    }
  }
  return out;
}

TEST(Balance, WeightedWithoutRule) {
  auto s = shares(kNodes, nullptr);
  EXPECT_EQ(s.count(0), 0u);  // weight 0: never chosen at random
  EXPECT_NEAR(s[1], 0.25, 0.01);
  EXPECT_NEAR(s[2], 0.75, 0.01);
  EXPECT_EQ(chooseLoadBalanceNode({}, nullptr, 0.5, 0.5), -1);
  std::vector<LbCandidate> zero = {{0, 0.0, true}};
  EXPECT_EQ(chooseLoadBalanceNode(zero, nullptr, 0.5, 0.5), -1);  // caller: the primary
}

TEST(Balance, PrimaryRuleNamesEvenAZeroWeightPrimary) {
  RedirectRule r = rule("psql:primary");
  auto s = shares(kNodes, &r);
  EXPECT_NEAR(s[0], 1.0, 1e-9);
}

TEST(Balance, NodeRuleWithWeightSendsTheRestElsewhere) {
  RedirectRule r = rule("app:1(0.3)");
  auto s = shares(kNodes, &r);
  EXPECT_NEAR(s[1], 0.3, 0.01);  // the rule's share
  EXPECT_NEAR(s[2], 0.7, 0.01);  // the others by weight (node 0 has weight 0)
  EXPECT_EQ(s.count(0), 0u);
}

TEST(Balance, StandbyRuleWithWeightSendsTheRestToThePrimary) {
  RedirectRule r = rule("app:standby(0.5)");
  auto s = shares(kNodes, &r);
  EXPECT_NEAR(s[0], 0.5, 0.01);
  EXPECT_NEAR(s[1], 0.125, 0.01);  // standbys share their half by backend_weight
  EXPECT_NEAR(s[2], 0.375, 0.01);
  RedirectRule all = rule("app:standby");
  s = shares(kNodes, &all);
  EXPECT_EQ(s.count(0), 0u);
}

TEST(Balance, RuleForANodeNotInRotationIsIgnored) {
  RedirectRule r = rule("app:5");
  auto s = shares(kNodes, &r);
  EXPECT_NEAR(s[1], 0.25, 0.01);
  EXPECT_NEAR(s[2], 0.75, 0.01);
  std::vector<LbCandidate> no_standby = {{0, 1.0, true}};
  RedirectRule sb = rule("app:standby");
  EXPECT_EQ(chooseLoadBalanceNode(no_standby, &sb, 0.1, 0.1), 0);
  std::vector<LbCandidate> no_primary = {{1, 1.0, false}, {2, 1.0, false}};
  RedirectRule p = rule("app:primary");
  EXPECT_NE(chooseLoadBalanceNode(no_primary, &p, 0.1, 0.1), -1);
}

TEST(Balance, NodeRuleFallsBackToTheNodeWhenNoOtherHasWeight) {
  std::vector<LbCandidate> nodes = {{0, 0.0, true}, {1, 1.0, false}};
  RedirectRule r = rule("app:1(0.1)");
  EXPECT_EQ(chooseLoadBalanceNode(nodes, &r, 0.9, 0.5), 1);
  RedirectRule z = rule("app:standby");
  std::vector<LbCandidate> zero_standbys = {{0, 1.0, true}, {1, 0.0, false}};
  EXPECT_EQ(chooseLoadBalanceNode(zero_standbys, &z, 0.5, 0.5), 1);
}

}  // namespace
}  // namespace pgpilot::router
