#include <gtest/gtest.h>

#include "config/config.h"
#include "http/api.h"
#include "http/assets.h"
#include "http/metrics.h"

namespace pgpilot::http {
namespace {

TEST(CheckBearer, AcceptsOnlyTheConfiguredToken) {
  EXPECT_EQ(checkBearer("Bearer s3cret", "s3cret"), 0);
  EXPECT_EQ(checkBearer("bearer  s3cret ", "s3cret"), 0);
  EXPECT_EQ(checkBearer("Bearer s3cre", "s3cret"), 403);
  EXPECT_EQ(checkBearer("Bearer s3cretX", "s3cret"), 403);
  EXPECT_EQ(checkBearer("Bearer ", "s3cret"), 401);
  EXPECT_EQ(checkBearer("", "s3cret"), 401);
  EXPECT_EQ(checkBearer("Basic s3cret", "s3cret"), 401);
  // No token configured: POST is off, whatever the request carries.
  EXPECT_EQ(checkBearer("Bearer ", ""), 403);
  EXPECT_EQ(checkBearer("Bearer x", ""), 403);
  EXPECT_EQ(checkBearer("", ""), 403);
}

TEST(QueryNumber, FindsUnsignedParameters) {
  EXPECT_EQ(queryNumber("after=12&limit=5", "after"), 12U);
  EXPECT_EQ(queryNumber("after=12&limit=5", "limit"), 5U);
  EXPECT_EQ(queryNumber("xafter=1", "after"), std::nullopt);
  EXPECT_EQ(queryNumber("after=-1", "after"), std::nullopt);
  EXPECT_EQ(queryNumber("after=1x", "after"), std::nullopt);
  EXPECT_EQ(queryNumber("", "after"), std::nullopt);
}

TEST(ParseNodeBody, NeedsAnIntegerNode) {
  EXPECT_EQ(parseNodeBody(R"({"node": 2})"), 2);
  EXPECT_EQ(parseNodeBody(R"({"node": "2"})"), std::nullopt);
  EXPECT_EQ(parseNodeBody(R"({"node": -1})"), std::nullopt);
  EXPECT_EQ(parseNodeBody(R"({"node": 100000})"), std::nullopt);
  EXPECT_EQ(parseNodeBody(R"([2])"), std::nullopt);
  EXPECT_EQ(parseNodeBody("{"), std::nullopt);
  EXPECT_EQ(parseNodeBody(""), std::nullopt);
}

// A config snippet plus the one backend validation needs.
std::shared_ptr<const config::Config> load(const std::string& text, bool* ok = nullptr) {
  auto r = config::loadString(text + "backend_hostname0 = 'h'\n", "t.conf");
  if (ok != nullptr) *ok = r.has_value();
  return r ? r->config : nullptr;
}

TEST(ConfigJson, MasksSecrets) {
  auto cfg = load("http_token = 'tok-123'\nhealth_check_password = 'pw-456'\nhttp_port = 8080\n");
  ASSERT_TRUE(cfg);
  const auto j = configJson(*cfg);
  const std::string text = j.dump();
  EXPECT_EQ(text.find("tok-123"), std::string::npos);
  EXPECT_EQ(text.find("pw-456"), std::string::npos);
  bool saw_token = false;
  for (const auto& s : j) {
    if (s["name"] == "http_token") {
      saw_token = true;
      EXPECT_EQ(s["value"], "********");
      EXPECT_TRUE(s["needs_restart"]);
    }
    if (s["name"] == "http_port") {
      EXPECT_EQ(s["value"], "8080");
    }
  }
  EXPECT_TRUE(saw_token);
}

TEST(HttpConfig, DefaultsAreOffAndLoopback) {
  auto cfg = load("");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->http_port, 0);
  EXPECT_EQ(cfg->http_listen_addresses, std::vector<std::string>{"127.0.0.1"});
  EXPECT_TRUE(cfg->http_token.empty());
  bool ok = true;
  load("http_port = 70000\n", &ok);
  EXPECT_FALSE(ok);
  auto list = load("http_listen_addresses = '127.0.0.1, ::1'\n");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->http_listen_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
}

TEST(JsonResponse, ReplacesInvalidUtf8) {
  const Response r = jsonResponse(200, {{"message", std::string("bad \xff byte")}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_NE(r.body.find("bad"), std::string::npos);
}

TEST(Assets, DashboardIsEmbedded) {
  const EmbeddedFile* index = findEmbedded("/");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->path, "/index.html");
  EXPECT_NE(index->data.find("pgpilot"), std::string_view::npos);
  EXPECT_EQ(findEmbedded("/../etc/passwd"), nullptr);
  EXPECT_EQ(contentTypeFor("/app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentTypeFor("/x.css"), "text/css; charset=utf-8");
}

cluster::Topology twoNodes() {
  cluster::Topology t;
  t.version = 3;
  t.primary = 0;
  for (int i = 0; i < 2; ++i) {
    cluster::NodeState n;
    n.backend.id = i;
    n.backend.hostname = i == 0 ? "db\"0" : "db1";
    n.backend.port = 5432 + i;
    n.role = i == 0 ? cluster::Role::kPrimary : cluster::Role::kStandby;
    n.pg_role = n.role;
    n.pg_up = true;
    n.replication_delay = i == 0 ? 0 : 4096;
    t.nodes.push_back(n);
  }
  return t;
}

TEST(Metrics, RendersNodesCountersAndHistogram) {
  cluster::ClusterState state;
  state.counters(1, 0).select_cnt = 7;
  state.counters(1, 0).statements = 9;
  state.updateHealth(1, [](cluster::HealthStats& h) {
    h.total_count = 4;
    h.fail_count = 1;
    h.last_duration_ms = 12.5;
  });
  state.failovers_total = 2;
  state.last_failover_ms = 1500;
  MetricsInput in;
  in.topology = std::make_shared<const cluster::Topology>(twoNodes());
  in.state = &state;
  in.client_sessions = 5;
  in.ready = true;
  in.version = "0.1.0";
  WorkerStats w;
  w.index = 0;
  w.sessions = 5;
  common::LatencyHistogram hist;
  hist.observe(std::chrono::microseconds(50));
  hist.observe(std::chrono::milliseconds(30));
  hist.observe(std::chrono::seconds(20));
  w.latency = hist.snapshot();
  in.workers.push_back(w);
  pool::PoolKey key{.node = 1, .user = "app", .database = "shop", .options = ""};
  in.pool_connections.push_back({key, 3});
  const std::string m = renderMetrics(in);
  auto has = [&m](std::string_view line) {
    return m.find(std::string(line) + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has("pgpilot_client_sessions 5")) << m;
  EXPECT_TRUE(has("pgpilot_ready 1"));
  EXPECT_TRUE(has("pgpilot_primary_node 0"));
  EXPECT_TRUE(has("pgpilot_node_selects_total{node=\"1\"} 7"));
  EXPECT_TRUE(has("pgpilot_node_statements_total{node=\"1\"} 9"));
  EXPECT_TRUE(has("pgpilot_node_replication_delay_bytes{node=\"1\"} 4096"));
  EXPECT_TRUE(has("pgpilot_node_health_checks_total{node=\"1\"} 4"));
  EXPECT_TRUE(has("pgpilot_node_health_check_failures_total{node=\"1\"} 1"));
  EXPECT_TRUE(has("pgpilot_node_health_check_last_duration_seconds{node=\"1\"} 0.0125"));
  EXPECT_TRUE(has("pgpilot_failovers_total 2"));
  EXPECT_TRUE(has("pgpilot_last_failover_duration_seconds 1.5"));
  EXPECT_TRUE(has("pgpilot_pool_server_connections{node=\"1\",user=\"app\",database=\"shop\"} 3"));
  EXPECT_NE(m.find("hostname=\"db\\\"0\""), std::string::npos) << "label not escaped";
  EXPECT_TRUE(has("pgpilot_query_duration_seconds_bucket{le=\"0.0001\"} 1"));
  EXPECT_TRUE(has("pgpilot_query_duration_seconds_bucket{le=\"0.05\"} 2"));
  EXPECT_TRUE(has("pgpilot_query_duration_seconds_bucket{le=\"10\"} 2"));
  EXPECT_TRUE(has("pgpilot_query_duration_seconds_bucket{le=\"+Inf\"} 3"));
  EXPECT_TRUE(has("pgpilot_query_duration_seconds_count 3"));
  // Every family has HELP and TYPE before its samples.
  EXPECT_NE(m.find("# TYPE pgpilot_node_up gauge\npgpilot_node_up{node=\"0\"} 1\n"),
            std::string::npos);
}

TEST(Metrics, ReplicationLagSecondsOnlyWhenKnown) {
  cluster::ClusterState state;
  state.setReplicationLag(0, 0.0);
  MetricsInput in;
  in.topology = std::make_shared<const cluster::Topology>(twoNodes());
  in.state = &state;
  std::string m = renderMetrics(in);
  EXPECT_NE(m.find("\npgpilot_node_replication_lag_seconds{node=\"0\"} 0\n"), std::string::npos)
      << m;
  EXPECT_EQ(m.find("pgpilot_node_replication_lag_seconds{node=\"1\"}"), std::string::npos);
  state.setReplicationLag(1, 2.25);
  m = renderMetrics(in);
  EXPECT_NE(m.find("\npgpilot_node_replication_lag_seconds{node=\"1\"} 2.25\n"), std::string::npos);
}

TEST(Metrics, ErrorsByClassSumTheWorkers) {
  cluster::ClusterState state;
  MetricsInput in;
  in.topology = std::make_shared<const cluster::Topology>(twoNodes());
  in.state = &state;
  WorkerStats a;
  a.index = 0;
  a.errors_by_class = {{"23", 2}, {"42", 1}};
  WorkerStats b;
  b.index = 1;
  b.errors_by_class = {{"42", 3}, {"57", 1}};
  in.workers = {a, b};
  const std::string m = renderMetrics(in);
  EXPECT_NE(m.find("# TYPE pgpilot_errors_total counter\n"
                   "pgpilot_errors_total{class=\"23\"} 2\n"
                   "pgpilot_errors_total{class=\"42\"} 4\n"
                   "pgpilot_errors_total{class=\"57\"} 1\n"),
            std::string::npos)
      << m;
}

TEST(Metrics, NoFailoverYetMeansNoDurationSample) {
  cluster::ClusterState state;
  MetricsInput in;
  in.topology = std::make_shared<const cluster::Topology>(twoNodes());
  in.state = &state;
  const std::string m = renderMetrics(in);
  EXPECT_NE(m.find("# TYPE pgpilot_last_failover_duration_seconds gauge\n# HELP"),
            std::string::npos);
  EXPECT_EQ(m.find("\npgpilot_last_failover_duration_seconds "), std::string::npos);
}

TEST(EscapeLabel, QuotesBackslashesNewlines) {
  EXPECT_EQ(escapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace pgpilot::http
