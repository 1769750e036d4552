// app_name/database_redirect_preference_list and dml_adaptive_object_relationship_list:
// parsing, validation at load time (file:line), anchored regex matching.
#include "config/redirect.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "test_util.h"

namespace pgpilot::config {
namespace {

using namespace std::chrono_literals;
using Target = RedirectRule::Target;
using testing::loadError;
using testing::mustLoad;

TEST(RedirectList, ParsesTargetsAndWeights) {
  auto r = parseRedirectList("psql:primary, myapp[0-4]:1 ,myapp[5-9]:standby(0.5),x:STANDBY( 0 )");
  ASSERT_TRUE(r.has_value()) << r.error();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].pattern, "psql");
  EXPECT_EQ((*r)[0].target, Target::kPrimary);
  EXPECT_EQ((*r)[0].weight, 1.0);
  EXPECT_EQ((*r)[1].pattern, "myapp[0-4]");
  EXPECT_EQ((*r)[1].target, Target::kNode);
  EXPECT_EQ((*r)[1].node, 1);
  EXPECT_EQ((*r)[2].target, Target::kStandby);
  EXPECT_DOUBLE_EQ((*r)[2].weight, 0.5);
  EXPECT_EQ((*r)[3].target, Target::kStandby);
  EXPECT_DOUBLE_EQ((*r)[3].weight, 0.0);
  EXPECT_TRUE(parseRedirectList("")->empty());
  EXPECT_TRUE(parseRedirectList("   ")->empty());
}

TEST(RedirectList, RegexMayContainColons) {
  auto r = parseRedirectList("a:b:standby");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ((*r)[0].pattern, "a:b");
  EXPECT_NE(matchRedirect(*r, "a:b"), nullptr);
}

TEST(RedirectList, RejectsBadEntries) {
  for (const char* bad :
       {"psql", "psql:", ":primary", "psql:replica", "psql:-1", "psql:128", "psql:1x",
        "psql:primary(1.5)", "psql:primary(-0.1)", "psql:primary(x)", "psql:primary()",
        "psql:primary(0.5", "a:primary,,b:standby", "a:primary,", "(:primary", "a[:standby"}) {
    auto r = parseRedirectList(bad);
    EXPECT_FALSE(r.has_value()) << bad;
  }
  auto r = parseRedirectList("ok:primary,(unclosed:standby");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("(unclosed:standby"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("invalid regular expression"), std::string::npos) << r.error();
}

TEST(RedirectList, MatchIsAnchoredCaseSensitiveAndFirstWins) {
  auto r = parseRedirectList("myapp[0-4]:1,myapp.*:standby,psql:primary,postgres:2");
  ASSERT_TRUE(r.has_value());
  ASSERT_NE(matchRedirect(*r, "myapp3"), nullptr);
  EXPECT_EQ(matchRedirect(*r, "myapp3")->node, 1);  // first match wins
  EXPECT_EQ(matchRedirect(*r, "myapp7")->target, Target::kStandby);
  EXPECT_EQ(matchRedirect(*r, "psql")->target, Target::kPrimary);
  EXPECT_EQ(matchRedirect(*r, "xpsql"), nullptr);  // anchored at the start
  EXPECT_EQ(matchRedirect(*r, "psqlx"), nullptr);  // and at the end
  EXPECT_EQ(matchRedirect(*r, "PSQL"), nullptr);   // case-sensitive, like pgpool
  EXPECT_EQ(matchRedirect(*r, ""), nullptr);
}

TEST(ObjectRelationList, Parses) {
  auto r = parseObjectRelationList("tb_t1:tb_t2, insert_tb_f_func():tb_f ,tb_v:tb_v_view");
  ASSERT_TRUE(r.has_value()) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].object, "tb_t1");
  EXPECT_EQ((*r)[0].dependent, "tb_t2");
  EXPECT_EQ((*r)[1].object, "insert_tb_f_func()");
  EXPECT_EQ((*r)[1].dependent, "tb_f");
  EXPECT_TRUE(parseObjectRelationList("")->empty());
  for (const char* bad : {"t1", "t1:", ":t2", "t1:t2:t3", "t1:f()", "():t2", "t1:t2,,t3:t4"}) {
    EXPECT_FALSE(parseObjectRelationList(bad).has_value()) << bad;
  }
}

TEST(RoutingKeys, LoadAndShow) {
  auto cp = mustLoad(R"(
app_name_redirect_preference_list = 'psql:primary,myapp[5-9]:standby(0.5)'
database_redirect_preference_list = 'postgres:1'
allow_sql_comments = on
dml_adaptive_object_relationship_list = 't1:t2,f():t3'
delay_threshold_by_time = 1500
)");
  const Config& c = *cp;
  EXPECT_EQ(c.app_name_redirect.size(), 2u);
  EXPECT_EQ(c.app_name_redirect_preference_list, "psql:primary,myapp[5-9]:standby(0.5)");
  ASSERT_EQ(c.database_redirect.size(), 1u);
  EXPECT_EQ(c.database_redirect[0].node, 1);
  EXPECT_TRUE(c.allow_sql_comments);
  EXPECT_EQ(c.dml_adaptive_relations.size(), 2u);
  EXPECT_EQ(c.delay_threshold_by_time, 1500ms);
  EXPECT_EQ(mustLoad("delay_threshold_by_time = '2s'")->delay_threshold_by_time, 2000ms);
  auto dp = mustLoad("");
  const Config& d = *dp;
  EXPECT_FALSE(d.allow_sql_comments);  // pgpool's default
  EXPECT_EQ(d.delay_threshold_by_time, 0ms);
  EXPECT_TRUE(d.app_name_redirect.empty());
}

TEST(RoutingKeys, BadValuesAreConfigErrorsWithFileAndLine) {
  std::string e = loadError("port = 1\napp_name_redirect_preference_list = 'psql:replica'\n");
  EXPECT_EQ(e.rfind("test.conf:3: invalid value for parameter "
                    "\"app_name_redirect_preference_list\"",
                    0),
            0u)
      << e;
  EXPECT_NE(e.find("psql:replica"), std::string::npos) << e;
  e = loadError("database_redirect_preference_list = 'db[:primary'");
  EXPECT_EQ(
      e.rfind("test.conf:2: invalid value for parameter \"database_redirect_preference_list\"", 0),
      0u)
      << e;
  e = loadError("dml_adaptive_object_relationship_list = 't1'");
  EXPECT_EQ(e.rfind("test.conf:2: invalid value for parameter "
                    "\"dml_adaptive_object_relationship_list\"",
                    0),
            0u)
      << e;
  e = loadError("delay_threshold_by_time = -1");
  EXPECT_EQ(e.rfind("test.conf:2: ", 0), 0u) << e;
}

}  // namespace
}  // namespace pgpilot::config
