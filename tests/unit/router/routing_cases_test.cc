// Data-driven routing test: every case of tests/data/router/routing_cases.txt goes through
// the lexer, the classifier and the policy (default configuration, the mock catalog
// declared in the file), directly and through one shared ClassificationCache. Every
// mismatch is reported with its line number.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "router/cache.h"
#include "router/classifier.h"
#include "router/lexer.h"
#include "router/policy.h"

namespace pgpilot::router {
namespace {

struct Case {
  int line = 0;
  Target expected = Target::kAny;
  std::string sql;
  std::string why;
  bool allow_sql_comments = false;  // the policy setting in force for this case
};

class MockCatalog : public CatalogView {
 public:
  std::map<std::string, char, std::less<>> functions;
  std::set<std::string, std::less<>> temp;
  std::set<std::string, std::less<>> unlogged;

  std::optional<char> functionVolatility(std::string_view name) const override {
    auto it = functions.find(name);
    if (it == functions.end()) return std::nullopt;
    return it->second;
  }
  // Every relation not declared temp/unlogged is a known ordinary table.
  std::optional<bool> isTempTable(std::string_view rel) const override {
    return temp.find(rel) != temp.end();
  }
  std::optional<bool> isUnloggedTable(std::string_view rel) const override {
    return unlogged.find(rel) != unlogged.end();
  }
};

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(line);
  while (std::getline(in, cur, '\t')) out.push_back(cur);
  if (!line.empty() && line.back() == '\t') out.emplace_back();
  return out;
}

// Parses the file; ADD_FAILUREs on malformed lines.
std::vector<Case> loadCases(const std::string& path, MockCatalog& catalog) {
  bool allow_sql_comments = false;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<Case> cases;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.rfind("#!", 0) == 0) {
      std::istringstream decl(line.substr(2));
      std::string what, name, vol;
      decl >> what >> name >> vol;
      if (what == "function" && vol.size() == 1) {
        catalog.functions[name] = vol[0];
      } else if (what == "temp") {
        catalog.temp.insert(name);
      } else if (what == "unlogged") {
        catalog.unlogged.insert(name);
      } else if (what == "allow_sql_comments" && (name == "on" || name == "off")) {
        allow_sql_comments = name == "on";
      } else {
        ADD_FAILURE() << path << ":" << n << ": bad declaration: " << line;
      }
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = splitTabs(line);
    if (f[0] == "+" && f.size() >= 2 && !cases.empty()) {
      cases.back().sql += "\n" + f[1];
      continue;
    }
    if (f.size() < 2 || (f[0] != "any" && f[0] != "primary")) {
      ADD_FAILURE() << path << ":" << n << ": malformed case: " << line;
      continue;
    }
    Case c;
    c.line = n;
    c.expected = f[0] == "any" ? Target::kAny : Target::kPrimary;
    c.sql = f[1];
    c.why = f.size() > 2 ? f[2] : "";
    c.allow_sql_comments = allow_sql_comments;
    if (c.why.empty()) ADD_FAILURE() << path << ":" << n << ": case without '# why'";
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(RoutingCases, EveryCaseRoutesAsExpected) {
  const std::string path = std::string(PGPILOT_TEST_DATA) + "/router/routing_cases.txt";
  MockCatalog catalog;
  std::vector<Case> cases = loadCases(path, catalog);
  EXPECT_GE(cases.size(), 150u);

  auto policy_off = Policy::create(PolicyConfig{});
  ASSERT_TRUE(policy_off.has_value()) << policy_off.error();
  PolicyConfig with_comments;
  with_comments.allow_sql_comments = true;
  auto policy_on = Policy::create(with_comments);
  ASSERT_TRUE(policy_on.has_value()) << policy_on.error();
  int with_comments_cases = 0;
  ClassificationCache cache(64);  // small: exercises eviction too

  int failures = 0;
  for (const Case& c : cases) {
    const Policy* policy = c.allow_sql_comments ? &*policy_on : &*policy_off;
    with_comments_cases += c.allow_sql_comments;
    Shape shape = lexShape(c.sql);
    Classification direct = classify(c.sql);
    Route route = policy->decide(direct, shape, c.sql, catalog);
    if (route.target != c.expected) {
      ++failures;
      ADD_FAILURE() << path << ":" << c.line << ": expected " << targetName(c.expected) << ", got "
                    << targetName(route.target) << " (" << route.reason << ")\n  SQL: " << c.sql
                    << "\n  why: " << c.why;
    }
    // The cached path must agree with the direct one, including for cases that share a
    // shape with an earlier case.
    for (int pass = 0; pass < 2; ++pass) {
      ClassificationCache::Result r = cache.classify(c.sql);
      Route cached = policy->decide(*r.classification, r.shape, c.sql, catalog);
      if (cached.target != route.target) {
        ++failures;
        ADD_FAILURE() << path << ":" << c.line << ": cached route " << targetName(cached.target)
                      << " differs from direct route " << targetName(route.target)
                      << "\n  SQL: " << c.sql;
      }
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(with_comments_cases, 0);  // both allow_sql_comments settings are covered
  std::printf("routing cases: %zu, cache hits %llu, misses %llu\n", cases.size(),
              static_cast<unsigned long long>(cache.hits()),
              static_cast<unsigned long long>(cache.misses()));
}

}  // namespace
}  // namespace pgpilot::router
