#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"
#include "test_util.h"

namespace pgpilot::config {
namespace {

using namespace std::chrono_literals;
using testing::mustLoad;

TEST(NeedsRestart, PerKey) {
  EXPECT_TRUE(needsRestart("port"));
  EXPECT_TRUE(needsRestart("listen_addresses"));
  EXPECT_TRUE(needsRestart("worker_threads"));
  EXPECT_TRUE(needsRestart("ssl_cert"));
  EXPECT_TRUE(needsRestart("pid_file_name"));
  EXPECT_FALSE(needsRestart("log_min_messages"));
  EXPECT_FALSE(needsRestart("health_check_period"));
  EXPECT_FALSE(needsRestart("client_idle_limit"));
  EXPECT_FALSE(needsRestart("max_client_connections"));
  EXPECT_TRUE(needsRestart("PORT"));  // case-insensitive
  EXPECT_TRUE(needsRestart("backend_hostname3"));
  EXPECT_TRUE(needsRestart("backend_port0"));
  EXPECT_FALSE(needsRestart("backend_weight1"));
  EXPECT_FALSE(needsRestart("backend_flag1"));
  EXPECT_FALSE(needsRestart("no_such_key"));
  EXPECT_FALSE(needsRestart("load_balance_mode"));
}

TEST(DiffKeys, IdenticalConfigsHaveNoDiff) {
  auto a = mustLoad("port = 1234");
  auto b = mustLoad("port = 1234");
  EXPECT_TRUE(diffKeys(*a, *b).empty());
  EXPECT_TRUE(restartRequiredKeys(*a, *b).empty());
}

TEST(DiffKeys, ReportsChangedKeysInTableOrder) {
  auto a = mustLoad("port = 1\nlog_min_messages = info\nclient_idle_limit = 5");
  auto b = mustLoad("port = 2\nlog_min_messages = debug1\nclient_idle_limit = 5s");
  EXPECT_EQ(diffKeys(*a, *b), (std::vector<std::string>{"port", "log_min_messages"}));
  EXPECT_EQ(restartRequiredKeys(*a, *b), std::vector<std::string>{"port"});
}

TEST(DiffKeys, Backends) {
  auto a = mustLoad("backend_hostname1 = h1\nbackend_weight1 = 1\nbackend_hostname2 = h2");
  auto b = mustLoad(
      "backend_hostname1 = h1\nbackend_weight1 = 3\nbackend_port1 = 6000\n"
      "backend_hostname4 = h4");
  EXPECT_EQ(diffKeys(*a, *b), (std::vector<std::string>{
                                  "backend_port1", "backend_weight1", "backend_hostname2",
                                  "backend_port2", "backend_weight2", "backend_data_directory2",
                                  "backend_flag2", "backend_application_name2", "backend_hostname4",
                                  "backend_port4", "backend_weight4", "backend_data_directory4",
                                  "backend_flag4", "backend_application_name4"}));
  // Changing backend 1's port or removing backend 2 needs a restart; adding backend 4 not.
  EXPECT_EQ(restartRequiredKeys(*a, *b),
            (std::vector<std::string>{"backend_port1", "backend_hostname2", "backend_port2",
                                      "backend_data_directory2"}));
}

TEST(DescribeSettings, CoversEveryKeyWithValuesAndSecretsMasked) {
  auto c = mustLoad(
      "health_check_password = 'secret'\nconnect_timeout = 1500\nlisten_addresses = 'a,b'\n"
      "backend_hostname3 = h3\nbackend_flag3 = 'ALWAYS_PRIMARY'\nbackend_weight3 = 0.25\n");
  auto rows = describeSettings(*c);
  auto find = [&](std::string_view name) -> const SettingInfo* {
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const SettingInfo& s) { return s.name == name; });
    return it == rows.end() ? nullptr : &*it;
  };
  ASSERT_NE(find("port"), nullptr);
  EXPECT_EQ(find("port")->value, "9999");
  EXPECT_TRUE(find("port")->needs_restart);
  EXPECT_FALSE(find("port")->description.empty());
  EXPECT_EQ(find("health_check_password")->value, "********");
  EXPECT_EQ(find("sr_check_password")->value, "");  // unset secrets stay visibly empty
  EXPECT_EQ(find("connect_timeout")->value, "1500ms");
  EXPECT_EQ(find("authentication_timeout")->value, "1min");
  EXPECT_EQ(find("client_idle_limit")->value, "0");
  EXPECT_EQ(find("listen_addresses")->value, "a,b");
  EXPECT_EQ(find("unix_socket_permissions")->value, "0777");  // octal, loads back as such
  EXPECT_EQ(find("unix_socket_directories")->value, "");
  EXPECT_EQ(find("ssl")->value, "off");
  EXPECT_EQ(find("backend_sslmode")->value, "disable");
  EXPECT_EQ(find("backend_hostname3")->value, "h3");
  EXPECT_EQ(find("backend_port3")->value, "5432");
  EXPECT_EQ(find("backend_weight3")->value, "0.25");
  EXPECT_EQ(find("backend_flag3")->value, "ALWAYS_PRIMARY|ALLOW_TO_FAILOVER");
  EXPECT_EQ(find("backend_flag0")->value, "ALLOW_TO_FAILOVER");
  for (const SettingInfo& s : rows) {
    EXPECT_FALSE(s.description.empty()) << s.name;
    EXPECT_EQ(s.needs_restart, needsRestart(s.name)) << s.name;
  }
}

TEST(DescribeSettings, ShownValuesLoadBackToTheSameConfig) {
  // Every value SHOW prints is valid input: a round trip through the text changes nothing.
  auto c = mustLoad(
      "port = 7000\nconnect_timeout = 1500\nclient_idle_limit = 90\nreset_query_list = "
      "'ABORT; DISCARD ALL'\nbackend_hostname2 = 'h2'\nbackend_flag2 = "
      "'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER'\nbackend_weight2 = 0.5\nlog_min_messages = log\n");
  std::string text;
  for (const SettingInfo& s : describeSettings(*c)) {
    std::string quoted;
    for (char ch : s.value) {
      if (ch == '\'') quoted += '\'';
      quoted += ch;
    }
    text += s.name + " = '" + quoted + "'\n";
  }
  auto again = loadString(text, "test.conf");
  ASSERT_TRUE(again.has_value()) << again.error().str() << "\n" << text;
  EXPECT_TRUE(diffKeys(*c, *again->config).empty());
}

TEST(KeepRestartValues, RestartKeysKeepOldValuesReloadKeysTakeNew) {
  auto a = mustLoad(
      "port = 1\nlisten_addresses = 'a,b'\nclient_idle_limit = 5\n"
      "backend_hostname1 = h1\nbackend_weight1 = 1\nbackend_hostname2 = h2\n"
      "admin_users = 'x'");
  auto b = mustLoad(
      "port = 2\nlisten_addresses = 'c'\nclient_idle_limit = 7\n"
      "backend_hostname1 = other\nbackend_weight1 = 3\nbackend_hostname4 = h4\n"
      "admin_users = 'x,y'");
  std::vector<std::string> kept;
  Config c = keepRestartValues(*a, *b, &kept);
  EXPECT_EQ(c.port, 1);
  EXPECT_EQ(c.listen_addresses, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.client_idle_limit, 7s);
  EXPECT_EQ(c.admin_users, (std::vector<std::string>{"x", "y"}));
  ASSERT_EQ(c.backends.size(), 4u);  // test_util adds backend 0 to both
  EXPECT_EQ(c.backends[1].id, 1);
  EXPECT_EQ(c.backends[1].hostname, "h1");
  EXPECT_EQ(c.backends[1].weight, 3);
  EXPECT_EQ(c.backends[2].id, 2);  // removal needs a restart: kept
  EXPECT_EQ(c.backends[3].id, 4);  // added on reload
  EXPECT_EQ(kept, (std::vector<std::string>{"listen_addresses", "port", "backend_hostname1",
                                            "backend_hostname2"}));
  EXPECT_TRUE(restartRequiredKeys(*a, c).empty());
}

TEST(AdminKeys, ParseAndValidate) {
  auto c = mustLoad("admin_port = 9898\nadmin_users = 'ops, root'");
  EXPECT_EQ(c->admin_port, 9898);
  EXPECT_EQ(c->admin_users, (std::vector<std::string>{"ops", "root"}));
  EXPECT_EQ(c->admin_listen_addresses, std::vector<std::string>{"localhost"});
  EXPECT_TRUE(needsRestart("admin_port"));
  EXPECT_FALSE(needsRestart("admin_users"));
  auto bad = loadString("backend_hostname0 = h\nport = 7000\nadmin_port = 7000", "t.conf");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("admin_port must differ from port"), std::string::npos);
}

}  // namespace
}  // namespace pgpilot::config
