// Per-node health-check overrides (health_check_period0, connect_timeout1, ...): parsing,
// validation with file:line, resolution against the global keys, SHOW and reload.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"
#include "test_util.h"

namespace pgpilot::config {
namespace {

using namespace std::chrono_literals;
using testing::load;
using testing::loadError;
using testing::mustLoad;

constexpr const char* kThree =
    "backend_hostname1 = 'db1'\nbackend_hostname2 = 'db2'\n"
    "health_check_user = 'hc'\nhealth_check_password = 'pw'\nhealth_check_database = 'postgres'\n"
    "health_check_period = 5\nhealth_check_timeout = 3\nhealth_check_max_retries = 2\n"
    "health_check_retry_delay = 4\nconnect_timeout = 2500\n";

TEST(HealthOverrides, UnsetNodesUseTheGlobalKeys) {
  auto c = mustLoad(kThree);
  for (int id : {0, 1, 2}) {
    const HealthCheckSettings hc = healthCheckSettings(*c, id);
    EXPECT_EQ(hc.period, 5s) << id;
    EXPECT_EQ(hc.timeout, 3s) << id;
    EXPECT_EQ(hc.max_retries, 2) << id;
    EXPECT_EQ(hc.retry_delay, 4s) << id;
    EXPECT_EQ(hc.connect_timeout, 2500ms) << id;
    EXPECT_EQ(hc.user, "hc") << id;
    EXPECT_EQ(hc.password, "pw") << id;
    EXPECT_EQ(hc.database, "postgres") << id;
  }
  // A backend id the config does not have: the global values.
  EXPECT_EQ(healthCheckSettings(*c, 7).period, 5s);
}

TEST(HealthOverrides, EachKeyOverridesOnlyItsNode) {
  auto c = mustLoad(std::string(kThree) +
                    "health_check_period1 = 0\nhealth_check_timeout1 = 500ms\n"
                    "health_check_max_retries1 = 7\nhealth_check_retry_delay1 = 1min\n"
                    "connect_timeout1 = 100\nhealth_check_user1 = 'u1'\n"
                    "health_check_password1 = 'p1'\nhealth_check_database1 = 'd1'\n"
                    "HEALTH_CHECK_PERIOD2 = 2\n");
  const HealthCheckSettings n1 = healthCheckSettings(*c, 1);
  EXPECT_EQ(n1.period, 0s);  // disabled for node 1 only
  EXPECT_EQ(n1.timeout, 500ms);
  EXPECT_EQ(n1.max_retries, 7);
  EXPECT_EQ(n1.retry_delay, 60s);
  EXPECT_EQ(n1.connect_timeout, 100ms);  // bare numbers in the global key's unit (ms)
  EXPECT_EQ(n1.user, "u1");
  EXPECT_EQ(n1.password, "p1");
  EXPECT_EQ(n1.database, "d1");
  const HealthCheckSettings n2 = healthCheckSettings(*c, 2);
  EXPECT_EQ(n2.period, 2s);  // seconds, like health_check_period; names are case-insensitive
  EXPECT_EQ(n2.timeout, 3s);
  EXPECT_EQ(n2.user, "hc");
  const HealthCheckSettings n0 = healthCheckSettings(*c, 0);
  EXPECT_EQ(n0.period, 5s);
  EXPECT_EQ(n0.timeout, 3s);
  EXPECT_EQ(n0.user, "hc");
  EXPECT_EQ(c->health_check_period, 5s);  // the global key itself is untouched
}

TEST(HealthOverrides, EmptyValueMeansNotSet) {
  auto c = mustLoad(std::string(kThree) +
                    "health_check_period1 = 1\nhealth_check_period1 = ''\n"
                    "health_check_user1 = ''\n");
  EXPECT_FALSE(c->backends[1].health_check.period.has_value());
  EXPECT_EQ(healthCheckSettings(*c, 1).period, 5s);
  EXPECT_EQ(healthCheckSettings(*c, 1).user, "hc");
}

TEST(HealthOverrides, BadValuesNameTheSuffixedKeyAndLine) {
  EXPECT_EQ(loadError("health_check_timeout0 = 'soon'"),
            "test.conf:2: invalid value for parameter \"health_check_timeout0\": \"soon\" (valid "
            "units are us, ms, s, min, h and d)");
  EXPECT_EQ(loadError("health_check_max_retries0 = 5000"),
            "test.conf:2: 5000 is outside the valid range for parameter "
            "\"health_check_max_retries0\" (0 .. 1000)");
  EXPECT_EQ(loadError("health_check_period0 = -1"),
            "test.conf:2: -1 is outside the valid range for parameter \"health_check_period0\" "
            "(0s .. 2147483647s)");
}

TEST(HealthOverrides, NodeMustExist) {
  EXPECT_EQ(loadError("health_check_user = 'hc'\nhealth_check_period3 = 1"),
            "test.conf:3: backend 3 has health_check_period3 but no backend_hostname3");
  EXPECT_EQ(loadError("health_check_period200 = 1"),
            "test.conf:2: backend number in \"health_check_period200\" is out of range (0 .. 127)");
}

TEST(HealthOverrides, EnabledChecksNeedAUser) {
  // The global check, as before.
  EXPECT_EQ(loadError("health_check_period = 5"),
            "test.conf:2: health_check_period is set but health_check_user is empty");
  // Only node 0 checked, without any user.
  EXPECT_EQ(loadError("\nhealth_check_period0 = 5"),
            "test.conf:3: health_check_period0 is set but neither health_check_user0 nor "
            "health_check_user is set");
  // Its own user is enough; so is the global one.
  EXPECT_TRUE(load("health_check_period0 = 5\nhealth_check_user0 = 'u'").has_value());
  EXPECT_TRUE(load("health_check_period0 = 5\nhealth_check_user = 'u'").has_value());
  // Checks disabled on the only node: no user needed even with a global period.
  EXPECT_TRUE(load("health_check_period = 5\nhealth_check_period0 = 0").has_value());
}

TEST(HealthOverrides, NoLongerUnimplementedWarnings) {
  auto r = load("health_check_user = 'hc'\nhealth_check_period0 = 3\nconnect_timeout0 = 100\n");
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_TRUE(r->warnings.empty());
}

TEST(HealthOverrides, ShowMasksThePasswordAndUnsetIsEmpty) {
  auto c = mustLoad(std::string(kThree) +
                    "health_check_password1 = 'secret'\nhealth_check_timeout1 = 1500ms\n");
  auto rows = describeSettings(*c);
  auto value = [&](std::string_view name) {
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const SettingInfo& s) { return s.name == name; });
    return it == rows.end() ? std::string("<missing>") : it->value;
  };
  EXPECT_EQ(value("health_check_password1"), "********");
  EXPECT_EQ(value("health_check_timeout1"), "1500ms");
  EXPECT_EQ(value("health_check_timeout0"), "");
  EXPECT_EQ(value("connect_timeout2"), "");
}

TEST(HealthOverrides, ReloadableAndDiffed) {
  EXPECT_FALSE(needsRestart("health_check_period1"));
  EXPECT_FALSE(needsRestart("connect_timeout0"));
  auto a = mustLoad(kThree);
  auto b = mustLoad(std::string(kThree) + "health_check_period1 = 0\n");
  EXPECT_EQ(diffKeys(*a, *b), std::vector<std::string>{"health_check_period1"});
  EXPECT_TRUE(restartRequiredKeys(*a, *b).empty());
  std::vector<std::string> kept;
  Config applied = keepRestartValues(*a, *b, &kept);
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(healthCheckSettings(applied, 1).period, 0s);
}

}  // namespace
}  // namespace pgpilot::config
