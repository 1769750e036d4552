#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"

namespace pgpilot::config {
namespace {

using namespace std::chrono_literals;
using testing::load;
using testing::loadError;
using testing::mustLoad;
using testing::TempDir;

bool containsSubstring(const std::vector<std::string>& v, std::string_view needle) {
  return std::any_of(v.begin(), v.end(),
                     [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

TEST(Config, DefaultsWithOnlyABackend) {
  auto c = mustLoad("");
  Config d;
  EXPECT_EQ(c->source_path, "test.conf");
  EXPECT_EQ(c->listen_addresses, std::vector<std::string>{"localhost"});
  EXPECT_EQ(c->port, 9999);
  EXPECT_EQ(c->listen_backlog, d.listen_backlog);
  EXPECT_EQ(c->max_client_connections, d.max_client_connections);
  EXPECT_EQ(c->worker_threads, 0);
  EXPECT_EQ(c->max_pool, d.max_pool);
  EXPECT_EQ(c->pool_wait_timeout, d.pool_wait_timeout);
  EXPECT_EQ(c->connect_timeout, 10000ms);
  EXPECT_EQ(c->authentication_timeout, 60s);
  EXPECT_EQ(c->reset_query_list, "DISCARD ALL");
  EXPECT_EQ(c->ssl_ciphers, "HIGH:MEDIUM:+3DES:!aNULL");
  EXPECT_EQ(c->backend_sslmode, ServerSslMode::kDisable);
  EXPECT_EQ(c->health_check_timeout, 20s);
  EXPECT_EQ(c->sr_check_period, 10s);
  EXPECT_EQ(c->log_min_messages, "warning");
  EXPECT_EQ(c->log_destination, "stderr");
  EXPECT_EQ(c->pid_file_name, "/tmp/pgpilot.pid");
  ASSERT_EQ(c->backends.size(), 1u);
  const BackendConfig& b = c->backends[0];
  EXPECT_EQ(b.id, 0);
  EXPECT_EQ(b.hostname, "db0");
  EXPECT_EQ(b.port, 5432);
  EXPECT_EQ(b.weight, 1.0);
  EXPECT_EQ(b.flag, BackendFlag::kAllowToFailover);
  EXPECT_TRUE(b.allow_failover);
}

TEST(Config, EveryImplementedKey) {
  auto c = mustLoad(R"(
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1, ::1'
port = 6432
listen_backlog = 4096
max_client_connections = 5000
worker_threads = 8
max_pool = 20
pool_wait_timeout = 2s
connection_life_time = 600
server_idle_timeout = 1min
client_idle_limit = 30
reset_query_list = 'ABORT; DISCARD ALL'
connect_timeout = 2500
authentication_timeout = 1min
enable_pool_hba = on
pool_hba_file = '/etc/pgpilot/pool_hba.conf'
pool_passwd = '/etc/pgpilot/pool_passwd'
allow_clear_text_frontend_auth = yes
ssl = on
ssl_cert = '/c.pem'
ssl_key = '/k.pem'
ssl_ca_cert = '/ca.pem'
ssl_ciphers = 'HIGH'
ssl_prefer_server_ciphers = true
backend_sslmode = require
sr_check_user = 'sr'
sr_check_password = 'srpw'
sr_check_database = 'srdb'
sr_check_period = 5
health_check_user = 'hc'
health_check_password = 'hcpw'
health_check_database = 'hcdb'
health_check_period = 10
health_check_timeout = 3
log_min_messages = debug1
log_destination = 'stderr'
log_file = '/var/log/pgpilot.log'
log_connections = on
log_disconnections = on
log_statement = on
log_line_prefix = '%t [%p] '
pid_file_name = '/run/pgpilot.pid'
logdir = '/var/lib/pgpilot'
smart_shutdown_timeout = 45s
)");
  EXPECT_EQ(c->listen_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(c->port, 6432);
  EXPECT_EQ(c->listen_backlog, 4096);
  EXPECT_EQ(c->max_client_connections, 5000);
  EXPECT_EQ(c->worker_threads, 8);
  EXPECT_EQ(c->max_pool, 20);
  EXPECT_EQ(c->pool_wait_timeout, 2s);
  EXPECT_EQ(c->connection_life_time, 600s);
  EXPECT_EQ(c->server_idle_timeout, 60s);
  EXPECT_EQ(c->client_idle_limit, 30s);
  EXPECT_EQ(c->reset_query_list, "ABORT; DISCARD ALL");
  EXPECT_EQ(c->connect_timeout, 2500ms);  // pgpool: milliseconds
  EXPECT_EQ(c->authentication_timeout, 60s);
  EXPECT_TRUE(c->enable_pool_hba);
  EXPECT_EQ(c->pool_hba_file, "/etc/pgpilot/pool_hba.conf");
  EXPECT_EQ(c->pool_passwd, "/etc/pgpilot/pool_passwd");
  EXPECT_TRUE(c->allow_clear_text_frontend_auth);
  EXPECT_TRUE(c->ssl);
  EXPECT_EQ(c->ssl_cert, "/c.pem");
  EXPECT_EQ(c->ssl_key, "/k.pem");
  EXPECT_EQ(c->ssl_ca_cert, "/ca.pem");
  EXPECT_EQ(c->ssl_ciphers, "HIGH");
  EXPECT_TRUE(c->ssl_prefer_server_ciphers);
  EXPECT_EQ(c->backend_sslmode, ServerSslMode::kRequire);
  EXPECT_EQ(c->sr_check_user, "sr");
  EXPECT_EQ(c->sr_check_password, "srpw");
  EXPECT_EQ(c->sr_check_database, "srdb");
  EXPECT_EQ(c->sr_check_period, 5s);
  EXPECT_EQ(c->health_check_user, "hc");
  EXPECT_EQ(c->health_check_password, "hcpw");
  EXPECT_EQ(c->health_check_database, "hcdb");
  EXPECT_EQ(c->health_check_period, 10s);
  EXPECT_EQ(c->health_check_timeout, 3s);
  EXPECT_EQ(c->log_min_messages, "debug1");
  EXPECT_EQ(c->log_destination, "stderr");
  EXPECT_EQ(c->log_file, "/var/log/pgpilot.log");
  EXPECT_TRUE(c->log_connections);
  EXPECT_TRUE(c->log_disconnections);
  EXPECT_TRUE(c->log_statement);
  EXPECT_EQ(c->log_line_prefix, "%t [%p] ");
  EXPECT_EQ(c->pid_file_name, "/run/pgpilot.pid");
  EXPECT_EQ(c->logdir, "/var/lib/pgpilot");
  EXPECT_EQ(c->smart_shutdown_timeout, 45s);
}

TEST(Config, NamesAreCaseInsensitive) {
  auto c = mustLoad("PORT = 7000\nLog_Connections = ON\nBACKEND_PORT0 = 6000\n");
  EXPECT_EQ(c->port, 7000);
  EXPECT_TRUE(c->log_connections);
  EXPECT_EQ(c->backends[0].port, 6000);
}

TEST(Config, LaterAssignmentWins) {
  auto c = mustLoad("port = 1000\nport = 2000\nbackend_hostname0 = 'other'\n");
  EXPECT_EQ(c->port, 2000);
  EXPECT_EQ(c->backends[0].hostname, "other");
}

TEST(Config, ListenAddresses) {
  EXPECT_EQ(mustLoad("listen_addresses = '*'")->listen_addresses, std::vector<std::string>{"*"});
  EXPECT_EQ(mustLoad("listen_addresses = localhost")->listen_addresses,
            std::vector<std::string>{"localhost"});
  EXPECT_EQ(mustLoad("listen_addresses = 'a,b , c'")->listen_addresses,
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(loadError("listen_addresses = 'a,,b'"),
            "test.conf:2: invalid value for parameter \"listen_addresses\": \"a,,b\" (empty list "
            "element)");
  EXPECT_EQ(loadError("listen_addresses = ''"),
            "test.conf:2: listen_addresses and unix_socket_directories are both empty: no "
            "client could connect");
  // Only a Unix socket: allowed, as in PostgreSQL.
  EXPECT_TRUE(mustLoad("listen_addresses = ''\nunix_socket_directories = '/run/pgpilot'")
                  ->listen_addresses.empty());
}

TEST(Config, UnixSockets) {
  auto none = mustLoad("");
  EXPECT_TRUE(none->unix_socket_directories.empty());  // pgpool: /tmp; ours: none unless asked
  EXPECT_EQ(none->unix_socket_permissions, 0777);
  auto c = mustLoad(
      "unix_socket_directories = '/tmp, /run/pgpilot'\nunix_socket_permissions = 0770\n"
      "unix_socket_group = 'pgpilot'\n");
  EXPECT_EQ(c->unix_socket_directories, (std::vector<std::string>{"/tmp", "/run/pgpilot"}));
  EXPECT_EQ(c->unix_socket_permissions, 0770);  // octal, as in PostgreSQL
  EXPECT_EQ(c->unix_socket_group, "pgpilot");
  EXPECT_EQ(loadError("unix_socket_directories = 'run/pgpilot'"),
            "test.conf:2: invalid value for parameter \"unix_socket_directories\": "
            "\"run/pgpilot\" (\"run/pgpilot\" is not an absolute path)");
  EXPECT_NE(loadError("unix_socket_permissions = 01777"), "");  // above 0777
}

TEST(Config, TimeUnits) {
  auto c = mustLoad(
      "health_check_period = 10s\nclient_idle_limit = 5min\nconnect_timeout = 100ms\n"
      "connection_life_time = 1h\nserver_idle_timeout = 1d\nhealth_check_user = x\n"
      "pool_wait_timeout = '0.5'\nauthentication_timeout = '1.5s'\n");
  EXPECT_EQ(c->health_check_period, 10s);
  EXPECT_EQ(c->client_idle_limit, 5min);
  EXPECT_EQ(c->connect_timeout, 100ms);
  EXPECT_EQ(c->connection_life_time, 1h);
  EXPECT_EQ(c->server_idle_timeout, 24h);
  EXPECT_EQ(c->pool_wait_timeout, 500ms);
  EXPECT_EQ(c->authentication_timeout, 1500ms);
}

TEST(Config, BareNumbersUseTheKeysDefaultUnit) {
  auto c = mustLoad(
      "health_check_period = 30\nhealth_check_user = x\nhealth_check_timeout = 20\n"
      "connect_timeout = 10000\nclient_idle_limit = 300\nconnection_life_time = 60\n"
      "authentication_timeout = 60\nsr_check_period = 10\nsmart_shutdown_timeout = 30\n");
  EXPECT_EQ(c->health_check_period, 30s);
  EXPECT_EQ(c->health_check_timeout, 20s);
  EXPECT_EQ(c->connect_timeout, 10s);  // milliseconds, as in pgpool
  EXPECT_EQ(c->client_idle_limit, 300s);
  EXPECT_EQ(c->connection_life_time, 60s);
  EXPECT_EQ(c->authentication_timeout, 60s);
  EXPECT_EQ(c->sr_check_period, 10s);
  EXPECT_EQ(c->smart_shutdown_timeout, 30s);
}

TEST(Config, Booleans) {
  for (const char* v : {"on", "true", "yes", "1", "'on'", "TRUE"}) {
    EXPECT_TRUE(mustLoad(std::string("log_statement = ") + v)->log_statement) << v;
  }
  for (const char* v : {"off", "false", "no", "0", "'off'"}) {
    EXPECT_FALSE(mustLoad(std::string("log_statement = ") + v)->log_statement) << v;
  }
}

TEST(Config, Enums) {
  EXPECT_EQ(mustLoad("backend_sslmode = prefer")->backend_sslmode, ServerSslMode::kPrefer);
  EXPECT_EQ(mustLoad("backend_sslmode = 'DISABLE'")->backend_sslmode, ServerSslMode::kDisable);
  EXPECT_EQ(mustLoad("log_min_messages = WARNING")->log_min_messages, "warning");
  for (const char* level : {"debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice",
                            "warning", "error", "log", "fatal", "panic"}) {
    EXPECT_EQ(mustLoad(std::string("log_min_messages = ") + level)->log_min_messages, level);
  }
}

TEST(Config, LogDestinationSyslogWarns) {
  auto r = load("log_destination = 'stderr,syslog'");
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->log_destination, "stderr");
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0],
            "test.conf:2: log_destination \"syslog\" is not implemented by pgpilot yet; logging "
            "to stderr (or log_file) instead");
  EXPECT_EQ(loadError("log_destination = eventlog"),
            "test.conf:2: invalid value for parameter \"log_destination\": \"eventlog\" "
            "(available values: stderr, syslog)");
}

TEST(Config, ClusteringModeOnlyStreaming) {
  EXPECT_TRUE(load("backend_clustering_mode = streaming_replication").has_value());
  EXPECT_EQ(loadError("backend_clustering_mode = native_replication"),
            "test.conf:2: backend_clustering_mode \"native_replication\" is not supported: "
            "pgpilot supports streaming_replication only");
  EXPECT_NE(loadError("backend_clustering_mode = bogus").find("invalid value"), std::string::npos);
}

// ---- backends ----

TEST(Config, BackendsSortedByIdWithGaps) {
  auto r = loadString(R"(
backend_hostname5 = 'h5'
backend_port5 = 5435
backend_weight5 = 0.5
backend_data_directory5 = '/data5'
backend_flag5 = 'DISALLOW_TO_FAILOVER'
backend_application_name5 = 'server5'
backend_hostname0 = '/var/run/postgresql'
backend_hostname127 = 'h127'
backend_flag127 = 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER'
)",
                      "b.conf");
  ASSERT_TRUE(r.has_value()) << r.error().str();
  const auto& b = r->config->backends;
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].id, 0);
  EXPECT_EQ(b[0].hostname, "/var/run/postgresql");
  EXPECT_EQ(b[1].id, 5);
  EXPECT_EQ(b[1].hostname, "h5");
  EXPECT_EQ(b[1].port, 5435);
  EXPECT_EQ(b[1].weight, 0.5);
  EXPECT_EQ(b[1].data_directory, "/data5");
  EXPECT_EQ(b[1].flag, BackendFlag::kDisallowToFailover);
  EXPECT_FALSE(b[1].allow_failover);
  EXPECT_EQ(b[1].application_name, "server5");
  EXPECT_EQ(b[2].id, 127);
  EXPECT_EQ(b[2].flag, BackendFlag::kAlwaysPrimary);
  EXPECT_FALSE(b[2].allow_failover);
}

TEST(Config, BackendFlags) {
  auto flagOf = [](const std::string& v) {
    return mustLoad("backend_flag0 = '" + v + "'")->backends[0];
  };
  EXPECT_EQ(flagOf("ALLOW_TO_FAILOVER").flag, BackendFlag::kAllowToFailover);
  EXPECT_EQ(flagOf("disallow_to_failover").flag, BackendFlag::kDisallowToFailover);
  EXPECT_EQ(flagOf("ALWAYS_PRIMARY").flag, BackendFlag::kAlwaysPrimary);
  EXPECT_TRUE(flagOf("ALWAYS_PRIMARY").allow_failover);
  EXPECT_EQ(flagOf(" ALLOW_TO_FAILOVER | ALWAYS_PRIMARY ").flag, BackendFlag::kAlwaysPrimary);
  EXPECT_EQ(loadError("backend_flag0 = 'ALLOW_TO_FAILOVER|DISALLOW_TO_FAILOVER'"),
            "test.conf:2: invalid value for parameter \"backend_flag0\": "
            "\"ALLOW_TO_FAILOVER|DISALLOW_TO_FAILOVER\" (ALLOW_TO_FAILOVER and "
            "DISALLOW_TO_FAILOVER cannot be set together)");
  EXPECT_NE(
      loadError("backend_flag0 = 'FOO'").find("invalid value for parameter \"backend_flag0\""),
      std::string::npos);
  EXPECT_EQ(loadError("backend_flag0 = ALWAYS_PRIMARY\nbackend_hostname1 = h1\n"
                      "backend_flag1 = ALWAYS_PRIMARY"),
            "test.conf:4: ALWAYS_PRIMARY is set on more than one backend");
}

TEST(Config, BackendErrors) {
  EXPECT_EQ(loadError("backend_port1 = 5433\nbackend_weight1 = 1"),
            "test.conf:2: backend 1 has backend_port1 but no backend_hostname1");
  EXPECT_EQ(loadError("backend_port128 = 5433"),
            "test.conf:2: backend number in \"backend_port128\" is out of range (0 .. 127)");
  EXPECT_EQ(loadError("backend_port99999999999 = 1"),
            "test.conf:2: backend number in \"backend_port99999999999\" is out of range (0 .. "
            "127)");
  EXPECT_EQ(loadError("backend_port0 = 70000"),
            "test.conf:2: 70000 is outside the valid range for parameter \"backend_port0\" (1 .. "
            "65535)");
  EXPECT_EQ(loadError("backend_port0 = abc"),
            "test.conf:2: invalid value for parameter \"backend_port0\": \"abc\"");
  EXPECT_EQ(loadError("backend_weight0 = -1"),
            "test.conf:2: -1 is outside the valid range for parameter \"backend_weight0\" (0 .. "
            "100000000)");
  EXPECT_EQ(loadError("backend_hostname = 'x'"),
            "test.conf:2: unrecognized configuration parameter \"backend_hostname\"");
}

TEST(Config, EmptyBackendHostnameIsTheTmpSocket) {
  // pgpool-II: '' connects to the Unix-domain socket in /tmp.
  auto c = mustLoad("backend_hostname1 = ''\nbackend_port1 = 5433\n");
  ASSERT_EQ(c->backends.size(), 2u);
  EXPECT_EQ(c->backends[1].hostname, "/tmp");
  EXPECT_EQ(c->backends[1].port, 5433);
}

TEST(Config, NoBackendIsAnError) {
  auto r = loadString("port = 9999\n", "empty.conf");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().str(), "empty.conf: no backend configured: set backend_hostname0");
  EXPECT_EQ(r.error().line, 0);
}

// ---- errors ----

TEST(Config, UnknownKeyReportsItsLine) {
  auto r = loadString("port = 1\n\n# comment\nfoo = bar\n", "x.conf");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().file, "x.conf");
  EXPECT_EQ(r.error().line, 4);
  EXPECT_EQ(r.error().message, "unrecognized configuration parameter \"foo\"");
  EXPECT_EQ(r.error().str(), "x.conf:4: unrecognized configuration parameter \"foo\"");
  EXPECT_EQ(loadError("Foo_Bar = 1"),
            "test.conf:2: unrecognized configuration parameter \"Foo_Bar\"");
  EXPECT_EQ(loadError("ext.custom = 1"),
            "test.conf:2: unrecognized configuration parameter \"ext.custom\"");
  EXPECT_EQ(loadError("port0 = 1"), "test.conf:2: unrecognized configuration parameter \"port0\"");
}

TEST(Config, BadValues) {
  EXPECT_EQ(loadError("port = abc"), "test.conf:2: invalid value for parameter \"port\": \"abc\"");
  EXPECT_EQ(loadError("port = 10s"), "test.conf:2: invalid value for parameter \"port\": \"10s\"");
  EXPECT_EQ(loadError("port = 0"),
            "test.conf:2: 0 is outside the valid range for parameter \"port\" (1 .. 65535)");
  EXPECT_EQ(loadError("port = 65536"),
            "test.conf:2: 65536 is outside the valid range for parameter \"port\" (1 .. 65535)");
  EXPECT_EQ(loadError("port = 99999999999999999999999"),
            "test.conf:2: invalid value for parameter \"port\": \"99999999999999999999999\"");
  EXPECT_EQ(loadError("worker_threads = 257"),
            "test.conf:2: 257 is outside the valid range for parameter \"worker_threads\" (0 .. "
            "256)");
  EXPECT_EQ(loadError("ssl = maybe"),
            "test.conf:2: invalid value for parameter \"ssl\": \"maybe\"");
  EXPECT_EQ(loadError("log_statement = 2"),
            "test.conf:2: invalid value for parameter \"log_statement\": \"2\"");
  EXPECT_EQ(loadError("backend_sslmode = verify-full"),
            "test.conf:2: invalid value for parameter \"backend_sslmode\": \"verify-full\" "
            "(available values: disable, prefer, require)");
  EXPECT_NE(loadError("log_min_messages = loud")
                .find("invalid value for parameter \"log_min_messages\": \"loud\""),
            std::string::npos);
  EXPECT_EQ(loadError("health_check_period = 10 parsecs"),
            "test.conf:2: syntax error near token \"parsecs\"");
  EXPECT_EQ(loadError("health_check_period = '10 parsecs'"),
            "test.conf:2: invalid value for parameter \"health_check_period\": \"10 parsecs\" "
            "(valid units are us, ms, s, min, h and d)");
  EXPECT_EQ(loadError("client_idle_limit = -1"),
            "test.conf:2: -1 is outside the valid range for parameter \"client_idle_limit\" "
            "(0s .. 2147483647s)");
  EXPECT_EQ(loadError("connect_timeout = 3000000000"),
            "test.conf:2: 3000000000 is outside the valid range for parameter \"connect_timeout\" "
            "(0ms .. 2147483647ms)");
}

TEST(Config, SyntaxErrorCarriesFileAndLine) {
  EXPECT_EQ(loadError("port = 1\nport 'x' 'y'\n"), "test.conf:3: syntax error near token \"'y'\"");
}

TEST(Config, SslNeedsCertAndKey) {
  EXPECT_EQ(loadError("ssl = on"), "test.conf:2: ssl is on but ssl_cert is not set");
  EXPECT_EQ(loadError("ssl = on\nssl_cert = '/c'"),
            "test.conf:2: ssl is on but ssl_key is not set");
  EXPECT_TRUE(load("ssl = on\nssl_cert = '/c'\nssl_key = '/k'").has_value());
  EXPECT_TRUE(load("ssl = off").has_value());
}

TEST(Config, HealthCheckNeedsUser) {
  EXPECT_EQ(loadError("health_check_period = 5"),
            "test.conf:2: health_check_period is set but health_check_user is empty");
  EXPECT_TRUE(load("health_check_period = 5\nhealth_check_user = 'pgpool'").has_value());
}

TEST(ConfigError, Str) {
  EXPECT_EQ((ConfigError{"a.conf", 3, "boom"}).str(), "a.conf:3: boom");
  EXPECT_EQ((ConfigError{"a.conf", 0, "boom"}).str(), "a.conf: boom");
  EXPECT_EQ((ConfigError{"", 0, "boom"}).str(), "boom");
}

// ---- pgpool compatibility ----

TEST(Config, NumInitChildrenIsIgnoredWithNotice) {
  auto r = load("num_init_children = 32");
  ASSERT_TRUE(r.has_value()) << r.error().str();
  ASSERT_EQ(r->notices.size(), 1u);
  EXPECT_EQ(r->notices[0],
            "test.conf:2: num_init_children is ignored: pgpilot uses worker_threads and "
            "max_client_connections");
  EXPECT_TRUE(r->warnings.empty());
}

TEST(Config, ListenBacklogMultiplierIsIgnoredWithNotice) {
  auto r = load("listen_backlog_multiplier = 2");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->notices.size(), 1u);
  EXPECT_NE(r->notices[0].find("listen_backlog_multiplier is ignored"), std::string::npos);
  EXPECT_EQ(r->config->listen_backlog, Config{}.listen_backlog);
}

TEST(Config, UnimplementedPgpoolKeysWarnOncePerKey) {
  auto r = load(
      "replicate_select = on\nfailback_command = '/bin/failback.sh %d'\n"
      "health_check_test = on\nreplicate_select = off\nother_wd_port1 = 9000\n"
      "wd_port0 = 9000\nhostname0 = 'pgpool0'\nUSE_WATCHDOG = on\n");
  ASSERT_TRUE(r.has_value()) << r.error().str();
  ASSERT_EQ(r->warnings.size(), 7u);
  EXPECT_EQ(r->warnings[0],
            "test.conf:2: pgpool-II setting \"replicate_select\" is not implemented by pgpilot "
            "yet and is ignored");
  EXPECT_EQ(r->warnings[1],
            "test.conf:3: pgpool-II setting \"failback_command\" is not implemented by pgpilot "
            "yet and is ignored");
  EXPECT_TRUE(containsSubstring(r->warnings,
                                "test.conf:4: pgpool-II setting "
                                "\"health_check_test\""));
  EXPECT_TRUE(containsSubstring(r->warnings,
                                "test.conf:6: pgpool-II setting "
                                "\"other_wd_port1\""));
  EXPECT_TRUE(containsSubstring(r->warnings, "\"wd_port0\""));
  EXPECT_TRUE(containsSubstring(r->warnings, "\"hostname0\""));
  EXPECT_TRUE(containsSubstring(r->warnings, "test.conf:9: pgpool-II setting \"use_watchdog\""));
}

TEST(Config, UnimplementedListIsSortedAndDisjointFromImplemented) {
  auto keys = unimplementedPgpoolKeys();
  EXPECT_GT(keys.size(), 100u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_TRUE(std::adjacent_find(keys.begin(), keys.end()) == keys.end());
  for (std::string_view k : keys) {
    auto r = load(std::string(k) + " = 1");
    ASSERT_TRUE(r.has_value()) << k << ": " << r.error().str();
    EXPECT_EQ(r->warnings.size(), 1u) << k;
  }
  for (const SettingInfo& s : describeSettings(Config{})) {
    EXPECT_FALSE(std::binary_search(keys.begin(), keys.end(), s.name)) << s.name;
  }
}

TEST(Config, RealPgpoolSampleLoads) {
  // The head of pgpool-II 4.3's pgpool.conf.sample with its defaults uncommented.
  auto r = loadString(R"(
backend_clustering_mode = 'streaming_replication'
listen_addresses = 'localhost'
port = 9999
unix_socket_directories = '/tmp'
pcp_listen_addresses = 'localhost'
pcp_port = 9898
pcp_socket_dir = '/tmp'
listen_backlog_multiplier = 2
serialize_accept = off
reserved_connections = 0
backend_hostname0 = 'host1'
backend_port0 = 5432
backend_weight0 = 1
backend_data_directory0 = '/data'
backend_flag0 = 'ALLOW_TO_FAILOVER'
backend_application_name0 = 'server0'
enable_pool_hba = off
pool_passwd = 'pool_passwd'
authentication_timeout = 1min
allow_clear_text_frontend_auth = off
ssl = off
ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'
ssl_prefer_server_ciphers = off
ssl_ecdh_curve = 'prime256v1'
ssl_dh_params_file = ''
num_init_children = 32
max_pool = 4
child_life_time = 5min
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
log_destination = 'stderr'
log_line_prefix = '%m: %a pid %p: '
log_connections = off
log_disconnections = off
log_hostname = off
log_statement = off
log_per_node_statement = off
log_client_messages = off
log_standby_delay = 'if_over_threshold'
syslog_facility = 'LOCAL0'
syslog_ident = 'pgpool'
log_min_messages = warning
logging_collector = off
log_directory = '/tmp/pgpool_log'
log_filename = 'pgpool-%Y-%m-%d_%H%M%S.log'
log_file_mode = 0600
log_truncate_on_rotation = off
log_rotation_age = 1d
log_rotation_size = 10MB
pid_file_name = '/var/run/pgpool/pgpool.pid'
logdir = '/tmp'
connection_cache = on
reset_query_list = 'ABORT; DISCARD ALL'
load_balance_mode = on
sr_check_period = 10
sr_check_user = 'nobody'
sr_check_password = ''
sr_check_database = 'postgres'
delay_threshold = 0
health_check_period = 0
health_check_timeout = 20
health_check_user = 'nobody'
health_check_password = ''
health_check_database = ''
health_check_max_retries = 0
health_check_retry_delay = 1
connect_timeout = 10000
failover_command = ''
failover_on_backend_error = on
use_watchdog = off
hostname0 = ''
wd_port0 = 9000
pgpool_port0 = 9999
heartbeat_hostname0 = ''
heartbeat_port0 = 9694
heartbeat_device0 = ''
memory_cache_enabled = off
memqcache_total_size = 64MB
)",
                      "/etc/pgpool-II/pgpool.conf");
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->pool_passwd, "/etc/pgpool-II/pool_passwd");  // relative to the file
  EXPECT_EQ(r->config->authentication_timeout, 60s);
  EXPECT_EQ(r->config->max_pool, 4);
  EXPECT_EQ(r->config->reset_query_list, "ABORT; DISCARD ALL");
  EXPECT_EQ(r->config->unix_socket_directories, std::vector<std::string>{"/tmp"});
  EXPECT_EQ(r->notices.size(), 2u);  // num_init_children, listen_backlog_multiplier
  EXPECT_GT(r->warnings.size(), 30u);
}

// ---- paths and includes ----

TEST(Config, RelativePathsResolveAgainstTheConfigFile) {
  TempDir dir;
  std::string main = dir.write("etc/pgpilot.conf",
                               "backend_hostname0 = db\npool_passwd = 'pool_passwd'\n"
                               "pool_hba_file = 'hba/pool_hba.conf'\nssl_cert = '/abs/c.pem'\n"
                               "log_file = ''\npid_file_name = '../run/p.pid'\n");
  auto r = loadFile(main);
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->source_path, main);
  EXPECT_EQ(r->config->pool_passwd, (dir.path() / "etc/pool_passwd").string());
  EXPECT_EQ(r->config->pool_hba_file, (dir.path() / "etc/hba/pool_hba.conf").string());
  EXPECT_EQ(r->config->ssl_cert, "/abs/c.pem");
  EXPECT_EQ(r->config->log_file, "");
  EXPECT_EQ(r->config->pid_file_name, (dir.path() / "run/p.pid").string());
}

TEST(Config, IncludeRelativeToIncludingFile) {
  TempDir dir;
  dir.write("conf.d/sub/backends.conf", "backend_hostname1 = 'h1'\nport = 7777\n");
  dir.write("conf.d/more.conf", "include 'sub/backends.conf'\nmax_pool = 7\n");
  std::string main =
      dir.write("main.conf", "port = 1111\ninclude 'conf.d/more.conf'\nbackend_hostname0 = h0\n");
  auto r = loadFile(main);
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->port, 7777);  // set after port = 1111, so it wins
  EXPECT_EQ(r->config->max_pool, 7);
  ASSERT_EQ(r->config->backends.size(), 2u);
  EXPECT_EQ(r->config->backends[1].hostname, "h1");
}

TEST(Config, IncludeForms) {
  TempDir dir;
  dir.write("inc.conf", "max_pool = 3\n");
  std::string main = dir.write(
      "main.conf", "backend_hostname0 = h\nINCLUDE = inc.conf\ninclude_if_exists 'nope.conf'\n");
  auto r = loadFile(main);
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->max_pool, 3);
  ASSERT_EQ(r->notices.size(), 1u);
  EXPECT_EQ(r->notices[0], main + ":3: skipping missing configuration file \"" +
                               (dir.path() / "nope.conf").string() + "\"");
}

TEST(Config, IncludeIfExistsReadsExistingFile) {
  TempDir dir;
  dir.write("opt.conf", "max_pool = 9\n");
  std::string main =
      dir.write("main.conf", "backend_hostname0 = h\ninclude_if_exists 'opt.conf'\n");
  auto r = loadFile(main);
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->max_pool, 9);
  EXPECT_TRUE(r->notices.empty());
}

TEST(Config, IncludeDirReadsConfFilesInNameOrder) {
  TempDir dir;
  dir.write("conf.d/20-b.conf", "max_pool = 20\n");
  dir.write("conf.d/10-a.conf", "max_pool = 10\nport = 1010\n");
  dir.write("conf.d/.hidden.conf", "max_pool = 99\n");
  dir.write("conf.d/notes.txt", "this is not a config file\n");
  dir.write("conf.d/30-c.conf.bak", "max_pool = 30\n");
  std::filesystem::create_directories(dir.path() / "conf.d/40-dir.conf");
  std::string main = dir.write("main.conf", "backend_hostname0 = h\ninclude_dir 'conf.d'\n");
  auto r = loadFile(main);
  ASSERT_TRUE(r.has_value()) << r.error().str();
  EXPECT_EQ(r->config->max_pool, 20);
  EXPECT_EQ(r->config->port, 1010);
}

TEST(Config, IncludeErrors) {
  TempDir dir;
  std::string missing = dir.write("a.conf", "backend_hostname0 = h\n\ninclude 'missing.conf'\n");
  auto r = loadFile(missing);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().file, missing);
  EXPECT_EQ(r.error().line, 3);
  EXPECT_EQ(r.error().message, "could not open configuration file \"" +
                                   (dir.path() / "missing.conf").string() +
                                   "\": No such file or directory");

  std::string no_dir = dir.write("b.conf", "include_dir 'nodir'\n");
  r = loadFile(no_dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().line, 1);
  EXPECT_NE(r.error().message.find("could not open configuration directory"), std::string::npos);

  std::string empty = dir.write("c.conf", "include ''\n");
  r = loadFile(empty);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().str(), empty + ":1: empty file name in include");
}

TEST(Config, ErrorInsideIncludedFileNamesThatFile) {
  TempDir dir;
  std::string inc = dir.write("inc.conf", "port = 1\nbogus = 2\n");
  std::string main = dir.write("main.conf", "backend_hostname0 = h\ninclude 'inc.conf'\n");
  auto r = loadFile(main);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().str(), inc + ":2: unrecognized configuration parameter \"bogus\"");
}

TEST(Config, IncludeCycleIsDetected) {
  TempDir dir;
  dir.write("b.conf", "include 'a.conf'\n");
  std::string a = dir.write("a.conf", "backend_hostname0 = h\ninclude 'b.conf'\n");
  auto r = loadFile(a);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().file, (dir.path() / "b.conf").string());
  EXPECT_EQ(r.error().line, 1);
  EXPECT_NE(r.error().message.find("include cycle"), std::string::npos) << r.error().str();

  std::string self = dir.write("self.conf", "include 'self.conf'\n");
  r = loadFile(self);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("include cycle"), std::string::npos);
}

TEST(Config, IncludeDepthIsLimited) {
  TempDir dir;
  for (int i = 0; i < 12; ++i) {
    dir.write("d" + std::to_string(i) + ".conf", "include 'd" + std::to_string(i + 1) + ".conf'\n");
  }
  dir.write("d12.conf", "backend_hostname0 = h\n");
  auto r = loadFile((dir.path() / "d0.conf").string());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("maximum nesting depth exceeded"), std::string::npos);

  // Ten levels are fine.
  auto ok = loadFile((dir.path() / "d2.conf").string());
  EXPECT_TRUE(ok.has_value()) << (ok ? "" : ok.error().str());
}

TEST(Config, IncludesCanBeDisabled) {
  auto r = loadString("backend_hostname0 = h\ninclude '/dev/stdin'\n", "f.conf",
                      LoadOptions{.follow_includes = false});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().str(), "f.conf:2: include is disabled here");
}

TEST(Config, LoadFileErrors) {
  auto r = loadFile("/nonexistent/pgpilot.conf");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().str(),
            "/nonexistent/pgpilot.conf: could not open configuration file "
            "\"/nonexistent/pgpilot.conf\": No such file or directory");
  TempDir dir;
  r = loadFile(dir.path().string());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("Is a directory"), std::string::npos);
}

}  // namespace
}  // namespace pgpilot::config
