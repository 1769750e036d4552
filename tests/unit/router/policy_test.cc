#include "router/policy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace pgpilot::router {
namespace {

class Catalog : public CatalogView {
 public:
  std::map<std::string, char, std::less<>> volatility{{"f_v", 'v'}, {"f_s", 's'}, {"f_i", 'i'}};
  std::optional<char> functionVolatility(std::string_view name) const override {
    auto it = volatility.find(name);
    if (it == volatility.end()) return std::nullopt;
    return it->second;
  }
  std::optional<bool> isTempTable(std::string_view rel) const override {
    if (rel == "unknown_rel") return std::nullopt;
    return rel == "tmp";
  }
  std::optional<bool> isUnloggedTable(std::string_view rel) const override {
    if (rel == "unknown_rel") return std::nullopt;
    return rel == "unl";
  }
};

Route route(const PolicyConfig& cfg, std::string_view sql, const CatalogView& cat = Catalog()) {
  auto policy = Policy::create(cfg);
  EXPECT_TRUE(policy.has_value());
  return policy->decide(classify(sql), false, sql, cat);
}

TEST(Policy, CatalogDecidesWhenBothListsAreEmpty) {
  PolicyConfig cfg;
  EXPECT_EQ(route(cfg, "SELECT f_v()").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT f_s()").target, Target::kAny);
  EXPECT_EQ(route(cfg, "SELECT f_i()").target, Target::kAny);
  Route unknown = route(cfg, "SELECT f_unknown()");
  EXPECT_EQ(unknown.target, Target::kPrimary);
  EXPECT_TRUE(unknown.needs_catalog);
  EXPECT_FALSE(route(cfg, "SELECT f_v()").needs_catalog);
  EXPECT_EQ(route(cfg, "SELECT f_v()").reason, "calls write function f_v");
}

TEST(Policy, WriteFunctionListOnlyMatchesAreWrites) {
  PolicyConfig cfg;
  cfg.write_function_list = {"f_w.*", "audit_.*"};
  EXPECT_EQ(route(cfg, "SELECT f_write()").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT audit_log(1)").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT app.audit_log(1)").target, Target::kPrimary);  // unqualified
  // Not in the list: a read even if volatile or unknown to the catalog.
  EXPECT_EQ(route(cfg, "SELECT f_v()").target, Target::kAny);
  Route other = route(cfg, "SELECT whatever()");
  EXPECT_EQ(other.target, Target::kAny);
  EXPECT_FALSE(other.needs_catalog);
  // Anchored: "xf_w" does not match "f_w.*".
  EXPECT_EQ(route(cfg, "SELECT xf_w()").target, Target::kAny);
  // Built-in rules still win: nextval is never a read.
  EXPECT_EQ(route(cfg, "SELECT nextval('s')").target, Target::kPrimary);
}

TEST(Policy, ReadOnlyFunctionListEverythingElseIsAWrite) {
  PolicyConfig cfg;
  cfg.read_only_function_list = {"f_.*", "lower"};
  EXPECT_EQ(route(cfg, "SELECT f_v()").target, Target::kAny);  // the list overrides pg_proc
  EXPECT_EQ(route(cfg, "SELECT lower('A')").target, Target::kAny);
  EXPECT_EQ(route(cfg, "SELECT upper('A')").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT random()").target, Target::kPrimary);  // explicit config wins
  EXPECT_EQ(route(cfg, "SELECT 1").target, Target::kAny);
}

TEST(Policy, WriteListTakesPrecedenceOverReadOnlyList) {
  PolicyConfig cfg;
  cfg.write_function_list = {"f_v"};
  cfg.read_only_function_list = {"nothing"};
  EXPECT_EQ(route(cfg, "SELECT f_v()").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT f_s()").target, Target::kAny);
}

TEST(Policy, FunctionIsWriteByConfig) {
  PolicyConfig cfg;
  auto p = Policy::create(cfg);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->functionIsWriteByConfig("x").has_value());
  cfg.write_function_list = {"x"};
  auto q = Policy::create(cfg);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->functionIsWriteByConfig("x"), true);
  EXPECT_EQ(q->functionIsWriteByConfig("s.x"), true);
  EXPECT_EQ(q->functionIsWriteByConfig("y"), false);
}

TEST(Policy, PrimaryRoutingQueryPatternList) {
  PolicyConfig cfg;
  cfg.primary_routing_query_pattern_list =
      splitPatternList("SELECT \\* FROM table_name1\\;;.*table_name3.*;select 42");
  ASSERT_EQ(cfg.primary_routing_query_pattern_list.size(), 3u);
  EXPECT_EQ(cfg.primary_routing_query_pattern_list[0], "SELECT \\* FROM table_name1;");
  EXPECT_EQ(route(cfg, "SELECT * FROM table_name1;").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "  select * from TABLE_NAME1;\n").target, Target::kPrimary);  // icase
  EXPECT_EQ(route(cfg, "SELECT * FROM table_name1 WHERE a = 1;").target, Target::kAny);
  EXPECT_EQ(route(cfg, "SELECT a FROM\ntable_name3 WHERE b = 2").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT 42").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT 43").target, Target::kAny);
  EXPECT_EQ(route(cfg, "SELECT 42").reason, "matches primary_routing_query_pattern_list");
}

TEST(Policy, SplitPatternList) {
  EXPECT_TRUE(splitPatternList("").empty());
  EXPECT_TRUE(splitPatternList(" ; ;").empty());
  auto v = splitPatternList("a;b\\;c; d ");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "a");
  EXPECT_EQ(v[1], "b;c");
  EXPECT_EQ(v[2], "d");
}

TEST(Policy, InvalidRegexIsAConfigError) {
  PolicyConfig cfg;
  cfg.write_function_list = {"f(("};
  auto p = Policy::create(cfg);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().find("write_function_list"), std::string::npos);
  EXPECT_NE(p.error().find("f(("), std::string::npos);
}

TEST(Policy, TempAndUnloggedTables) {
  PolicyConfig cfg;
  EXPECT_EQ(route(cfg, "SELECT * FROM tmp").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT * FROM unl").target, Target::kPrimary);
  EXPECT_EQ(route(cfg, "SELECT * FROM plain").target, Target::kAny);
  Route unknown = route(cfg, "SELECT * FROM unknown_rel");
  EXPECT_EQ(unknown.target, Target::kPrimary);
  EXPECT_TRUE(unknown.needs_catalog);

  cfg.check_temp_table = false;
  EXPECT_EQ(route(cfg, "SELECT * FROM tmp").target, Target::kAny);
  EXPECT_EQ(route(cfg, "SELECT * FROM unl").target, Target::kPrimary);
  cfg.check_unlogged_table = false;
  EXPECT_EQ(route(cfg, "SELECT * FROM unl").target, Target::kAny);
  Route no_checks = route(cfg, "SELECT * FROM unknown_rel");
  EXPECT_EQ(no_checks.target, Target::kAny);
  EXPECT_FALSE(no_checks.needs_catalog);
}

TEST(Policy, HintAndClassificationComeFirst) {
  auto p = Policy::create(PolicyConfig{});
  ASSERT_TRUE(p);
  Catalog cat;
  EXPECT_EQ(p->decide(classify("SELECT 1"), true, "SELECT 1", cat).target, Target::kPrimary);
  EXPECT_EQ(p->decide(classify("SELECT 1"), true, "SELECT 1", cat).reason,
            "/*NO LOAD BALANCE*/ hint");
  EXPECT_EQ(p->decide(classify("INSERT INTO t VALUES (1)"), false, "", cat).reason, "INSERT");
}

// allow_sql_comments (pgpool): off, a read starting with a comment is not load balanced;
// on, comments are ignored and only the hint counts. Writes are primary either way.
TEST(Policy, AllowSqlComments) {
  Catalog cat;
  auto decide = [&](bool allow, std::string_view sql) {
    PolicyConfig cfg;
    cfg.allow_sql_comments = allow;
    auto p = Policy::create(cfg);
    EXPECT_TRUE(p.has_value());
    return p->decide(classify(sql), lexShape(sql), sql, cat);
  };
  EXPECT_FALSE(PolicyConfig{}.allow_sql_comments);  // pgpool's default
  Route r = decide(false, "/* app=web */ SELECT 1");
  EXPECT_EQ(r.target, Target::kPrimary);
  EXPECT_EQ(r.reason, "read starts with a comment (allow_sql_comments = off)");
  EXPECT_EQ(decide(false, "-- tag\nSELECT 1").target, Target::kPrimary);
  EXPECT_EQ(decide(false, "SELECT 1 /* trailing */").target, Target::kAny);
  EXPECT_EQ(decide(false, "SELECT /* inside */ 1").target, Target::kAny);
  EXPECT_EQ(decide(true, "/* app=web */ SELECT 1").target, Target::kAny);
  EXPECT_EQ(decide(true, "-- tag\nSELECT 1").target, Target::kAny);
  r = decide(true, "/*NO LOAD BALANCE*/ SELECT 1");
  EXPECT_EQ(r.target, Target::kPrimary);
  EXPECT_EQ(r.reason, "/*NO LOAD BALANCE*/ hint");
  EXPECT_EQ(decide(false, "/*NO LOAD BALANCE*/ SELECT 1").reason, "/*NO LOAD BALANCE*/ hint");
  // Only reads are affected: transaction control and SET keep their routing.
  EXPECT_EQ(decide(false, "/* c */ BEGIN").target, Target::kAny);
  EXPECT_EQ(decide(false, "/* c */ SET search_path = a").target, Target::kAny);
  EXPECT_EQ(decide(true, "/* c */ INSERT INTO t VALUES (1)").target, Target::kPrimary);
}

TEST(Policy, EmptyCatalogIsConservative) {
  EmptyCatalog empty;
  auto p = Policy::create(PolicyConfig{});
  ASSERT_TRUE(p);
  Route r = p->decide(classify("SELECT a FROM t"), false, "SELECT a FROM t", empty);
  EXPECT_EQ(r.target, Target::kPrimary);
  EXPECT_TRUE(r.needs_catalog);
  EXPECT_EQ(p->decide(classify("SELECT 1"), false, "SELECT 1", empty).target, Target::kAny);
}

}  // namespace
}  // namespace pgpilot::router
