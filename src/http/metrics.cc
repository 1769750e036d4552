#include "http/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

namespace pgpilot::http {

namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

std::string formatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// Appends families and samples; keeps the HELP/TYPE header next to its samples.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view name, const Labels& labels, double v) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, val] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += fmt::format("{}=\"{}\"", k, escapeLabel(val));
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += formatValue(v);
    out_ += '\n';
  }
  void sample(std::string_view name, const Labels& labels, uint64_t v) {
    sample(name, labels, static_cast<double>(v));
  }
  // One family whose samples are one per node.
  template <typename F>
  void perNode(const MetricsInput& in, std::string_view name, std::string_view type,
               std::string_view help, F&& value) {
    family(name, type, help);
    for (const auto& n : in.topology->nodes) {
      sample(name, {{"node", std::to_string(n.backend.id)}}, value(n));
    }
  }

 private:
  std::string& out_;
};

void writeProcess(Writer& w, const MetricsInput& in) {
  w.family("pgpilot_info", "gauge", "pgpilot build information (always 1).");
  w.sample("pgpilot_info", {{"version", in.version}}, 1.0);
  w.family("pgpilot_start_time_seconds", "gauge", "Start time of the process, unix seconds.");
  w.sample("pgpilot_start_time_seconds", {}, in.start_time_seconds);
  w.family("pgpilot_ready", "gauge", "1 when pgpilot accepts clients and knows the topology.");
  w.sample("pgpilot_ready", {}, in.ready ? 1.0 : 0.0);
  w.family("pgpilot_primary_node", "gauge", "Node id of the current primary, -1 when none.");
  w.sample("pgpilot_primary_node", {}, static_cast<double>(in.topology->primary));
  w.family("pgpilot_topology_version", "gauge", "Number of topology snapshots published.");
  w.sample("pgpilot_topology_version", {}, in.topology->version);
  w.family("pgpilot_client_sessions", "gauge", "Client sessions connected to pgpilot.");
  w.sample("pgpilot_client_sessions", {}, static_cast<double>(in.client_sessions));
  w.family("pgpilot_worker_sessions", "gauge", "Client sessions per worker thread.");
  for (const auto& ws : in.workers) {
    w.sample("pgpilot_worker_sessions", {{"worker", std::to_string(ws.index)}},
             static_cast<double>(ws.sessions));
  }
}

void writeNodes(Writer& w, const MetricsInput& in) {
  w.family("pgpilot_node_info", "gauge",
           "One series per node with its address, status and roles as labels (value 1).");
  for (const auto& n : in.topology->nodes) {
    const bool primary = n.backend.id == in.topology->primary;
    w.sample("pgpilot_node_info",
             {{"node", std::to_string(n.backend.id)},
              {"hostname", n.backend.hostname},
              {"port", std::to_string(n.backend.port)},
              {"status", std::string(cluster::statusName(n.status))},
              {"role", primary ? std::string("primary") : std::string(cluster::roleName(n.role))},
              {"pg_role", std::string(cluster::roleName(n.pg_role))}},
             1.0);
  }
  w.perNode(
      in, "pgpilot_node_up", "gauge", "1 when the node is in use (status up).",
      [](const cluster::NodeState& n) { return n.status == cluster::NodeStatus::kUp ? 1.0 : 0.0; });
  w.perNode(in, "pgpilot_node_pg_up", "gauge", "1 when the server answered the last probe.",
            [](const cluster::NodeState& n) { return n.pg_up ? 1.0 : 0.0; });
  w.perNode(in, "pgpilot_node_primary", "gauge", "1 for the node pgpilot uses as primary.",
            [&in](const cluster::NodeState& n) {
              return n.backend.id == in.topology->primary ? 1.0 : 0.0;
            });
  w.perNode(in, "pgpilot_node_weight", "gauge", "Configured load-balance weight.",
            [](const cluster::NodeState& n) { return n.backend.weight; });
  w.perNode(in, "pgpilot_node_replication_delay_bytes", "gauge",
            "Bytes of WAL the node is behind the primary (0 on the primary).",
            [](const cluster::NodeState& n) { return static_cast<double>(n.replication_delay); });
  w.family("pgpilot_node_replication_lag_seconds", "gauge",
           "How far the node's replay is behind the primary in time (the primary's "
           "pg_stat_replication.replay_lag; 0 on the primary; no sample when unknown).");
  for (const auto& n : in.topology->nodes) {
    if (auto lag = in.state->replicationLagSeconds(n.backend.id)) {
      w.sample("pgpilot_node_replication_lag_seconds", {{"node", std::to_string(n.backend.id)}},
               *lag);
    }
  }
  w.perNode(in, "pgpilot_node_lsn_bytes", "gauge",
            "WAL position of the node (current on the primary, replayed on a standby).",
            [](const cluster::NodeState& n) { return static_cast<double>(n.lsn); });
  w.perNode(in, "pgpilot_node_last_status_change_seconds", "gauge",
            "When the node's status last changed, unix seconds.", [](const cluster::NodeState& n) {
              return std::chrono::duration<double>(n.last_status_change.time_since_epoch()).count();
            });
}

void writeCounters(Writer& w, const MetricsInput& in) {
  auto counter = [&](std::string_view name, std::string_view help, auto field) {
    w.perNode(in, name, "counter", help, [&](const cluster::NodeState& n) {
      return static_cast<double>(in.state->totals(n.backend.id).*field);
    });
  };
  counter("pgpilot_node_statements_total",
          "Statements (Query and Parse messages) sent to the node through pgpilot.",
          &cluster::NodeTotals::statements);
  counter("pgpilot_node_selects_total", "SELECT statements sent to the node (select_cnt).",
          &cluster::NodeTotals::select_cnt);
  counter("pgpilot_node_server_errors_total", "Errors the node returned to clients.",
          &cluster::NodeTotals::server_errors);
  // The same figures as SHOW pool_backend_stats, as labelled series.
  using C = cluster::NodeTotals;
  using Field = uint64_t C::*;
  auto labelled = [&](std::string_view name, std::string_view label, std::string_view help,
                      std::initializer_list<std::pair<std::string_view, Field>> fields) {
    w.family(name, "counter", help);
    for (const auto& n : in.topology->nodes) {
      const C c = in.state->totals(n.backend.id);
      for (const auto& [value, field] : fields) {
        w.sample(name, {{"node", std::to_string(n.backend.id)}, {label, std::string(value)}},
                 c.*field);
      }
    }
  };
  labelled("pgpilot_node_statements_by_class_total", "class",
           "Statements sent to the node by class (SHOW pool_backend_stats).",
           {{"select", &C::select_cnt},
            {"insert", &C::insert_cnt},
            {"update", &C::update_cnt},
            {"delete", &C::delete_cnt},
            {"ddl", &C::ddl_cnt},
            {"other", &C::other_cnt}});
  labelled("pgpilot_node_server_errors_by_severity_total", "severity",
           "ErrorResponses from the node by severity (SHOW pool_backend_stats).",
           {{"error", &C::error_cnt}, {"fatal", &C::fatal_cnt}, {"panic", &C::panic_cnt}});
}

void writeHealth(Writer& w, const MetricsInput& in) {
  std::map<int, cluster::HealthStats> h;
  for (const auto& n : in.topology->nodes) h[n.backend.id] = in.state->health(n.backend.id);
  auto per = [&](std::string_view name, std::string_view type, std::string_view help, auto f) {
    w.perNode(in, name, type, help,
              [&](const cluster::NodeState& n) { return f(h[n.backend.id]); });
  };
  using HS = cluster::HealthStats;
  per("pgpilot_node_health_checks_total", "counter", "Health checks started.",
      [](const HS& s) { return static_cast<double>(s.total_count); });
  per("pgpilot_node_health_check_successes_total", "counter", "Health checks that succeeded.",
      [](const HS& s) { return static_cast<double>(s.success_count); });
  per("pgpilot_node_health_check_failures_total", "counter",
      "Health checks that failed after all retries.",
      [](const HS& s) { return static_cast<double>(s.fail_count); });
  per("pgpilot_node_health_check_retries_total", "counter", "Health-check retries.",
      [](const HS& s) { return static_cast<double>(s.retry_count); });
  per("pgpilot_node_health_check_skips_total", "counter",
      "Health checks skipped (node detached or unused).",
      [](const HS& s) { return static_cast<double>(s.skip_count); });
  per("pgpilot_node_health_check_duration_seconds_total", "counter",
      "Time spent in health checks (divide by successes + failures for the average).",
      [](const HS& s) { return s.total_duration_ms / 1000.0; });
  per("pgpilot_node_health_check_last_duration_seconds", "gauge",
      "Duration of the last health check.",
      [](const HS& s) { return s.last_duration_ms / 1000.0; });
  per("pgpilot_node_health_check_max_duration_seconds", "gauge", "Longest health check so far.",
      [](const HS& s) { return s.max_duration_ms / 1000.0; });
}

void writeFailover(Writer& w, const MetricsInput& in) {
  w.family("pgpilot_failovers_total", "counter", "Primary changes made by pgpilot.");
  w.sample("pgpilot_failovers_total", {},
           in.state->failovers_total.load(std::memory_order_relaxed));
  w.family("pgpilot_last_failover_duration_seconds", "gauge",
           "Duration of the last failover, from decision to new primary published (absent "
           "before the first).");
  const int64_t ms = in.state->last_failover_ms.load(std::memory_order_relaxed);
  if (ms >= 0) {
    w.sample("pgpilot_last_failover_duration_seconds", {}, static_cast<double>(ms) / 1000.0);
  }
  w.family("pgpilot_events_total", "counter", "Cluster events recorded (see /api/events).");
  w.sample("pgpilot_events_total", {}, in.state->events().lastId());
}

void writePool(Writer& w, const MetricsInput& in) {
  w.family("pgpilot_pool_server_connections", "gauge",
           "Server connections open (in use or idle) per node, user and database.");
  for (const auto& [key, n] : in.pool_connections) {
    w.sample("pgpilot_pool_server_connections",
             {{"node", std::to_string(key.node)}, {"user", key.user}, {"database", key.database}},
             static_cast<double>(n));
  }
  auto perWorker = [&](std::string_view name, std::string_view type, std::string_view help,
                       auto f) {
    w.family(name, type, help);
    for (const auto& ws : in.workers) {
      w.sample(name, {{"worker", std::to_string(ws.index)}}, static_cast<double>(f(ws)));
    }
  };
  perWorker("pgpilot_pool_idle_server_connections", "gauge", "Idle pooled server connections.",
            [](const WorkerStats& s) { return s.idle_server_connections; });
  perWorker("pgpilot_pool_waiting_clients", "gauge",
            "Sessions waiting for a server connection because max_pool is reached.",
            [](const WorkerStats& s) { return s.pool_waiting; });
  perWorker("pgpilot_pool_server_connections_opened_total", "counter", "Server connections opened.",
            [](const WorkerStats& s) { return s.pool.opened; });
  perWorker("pgpilot_pool_server_connections_reused_total", "counter",
            "Pooled server connections handed out again.",
            [](const WorkerStats& s) { return s.pool.reused; });
  perWorker("pgpilot_pool_waits_total", "counter", "Acquires that had to wait for max_pool.",
            [](const WorkerStats& s) { return s.pool.waits; });
  perWorker("pgpilot_pool_wait_timeouts_total", "counter",
            "Acquires that gave up after pool_wait_timeout (SQLSTATE 53300).",
            [](const WorkerStats& s) { return s.pool.wait_timeouts; });
  perWorker("pgpilot_pool_reset_failures_total", "counter",
            "Server connections closed because their reset failed.",
            [](const WorkerStats& s) { return s.pool.reset_failures; });
  perWorker("pgpilot_routing_internal_queries_total", "counter",
            "Statements run on a server for a session besides the client's own (session "
            "state replayed on another node, a block joining a node, causal_reads checks).",
            [](const WorkerStats& s) { return s.internal_queries; });
}

void writeErrors(Writer& w, const MetricsInput& in) {
  std::map<std::string, uint64_t> total;
  for (const auto& ws : in.workers) {
    for (const auto& [cls, n] : ws.errors_by_class) total[cls] += n;
  }
  w.family("pgpilot_errors_total", "counter",
           "ErrorResponses sent to clients by SQLSTATE class (first two characters), from the "
           "servers or from pgpilot itself (absent until the first error of a class).");
  for (const auto& [cls, n] : total) w.sample("pgpilot_errors_total", {{"class", cls}}, n);
}

void writeLatency(Writer& w, const MetricsInput& in) {
  common::LatencyHistogram::Snapshot all;
  for (const auto& ws : in.workers) all.add(ws.latency);
  constexpr std::string_view kName = "pgpilot_query_duration_seconds";
  w.family(kName, "histogram",
           "Time from a client's statement to the server's ReadyForQuery, through pgpilot.");
  uint64_t cumulative = 0;
  const auto& bounds = common::LatencyHistogram::kBoundsSeconds;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += all.buckets[i];
    w.sample("pgpilot_query_duration_seconds_bucket", {{"le", formatValue(bounds[i])}}, cumulative);
  }
  w.sample("pgpilot_query_duration_seconds_bucket", {{"le", "+Inf"}}, all.count);
  w.sample("pgpilot_query_duration_seconds_sum", {}, all.sum_seconds);
  w.sample("pgpilot_query_duration_seconds_count", {}, all.count);
}

}  // namespace

std::string escapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string renderMetrics(const MetricsInput& in) {
  std::string out;
  out.reserve(16 * 1024);
  Writer w(out);
  writeProcess(w, in);
  writeNodes(w, in);
  writeCounters(w, in);
  writeHealth(w, in);
  writeFailover(w, in);
  writePool(w, in);
  writeErrors(w, in);
  writeLatency(w, in);
  return out;
}

}  // namespace pgpilot::http
