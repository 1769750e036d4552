// /metrics: pgpilot's state in the Prometheus text exposition format (version 0.0.4).
//
// Purpose: turn one snapshot of the cluster (Topology, per-node counters and health
// statistics, failover figures, event count), the workers (sessions, pool statistics,
// query latency histogram) and the process-wide pool limits into the text a Prometheus
// server scrapes. Pure: the caller gathers a MetricsInput (on the control thread, asking
// each worker for its own figures), renderMetrics() only formats it, so unit tests can
// feed it hand-made input. The metric names are listed in docs/http.md.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "admin/show.h"
#include "cluster/topology.h"
#include "common/histogram.h"
#include "pool/pool.h"

namespace pgpilot::http {

// What one worker reports about itself (read on its own thread).
struct WorkerStats {
  int index = 0;
  size_t sessions = 0;
  size_t idle_server_connections = 0;
  size_t pool_waiting = 0;
  pool::PoolStats pool;
  common::LatencyHistogram::Snapshot latency;
  // ErrorResponses sent to this worker's clients, by SQLSTATE class ("23", 17).
  std::vector<std::pair<std::string, uint64_t>> errors_by_class;
  uint64_t internal_queries = 0;                // Worker::internalQueries
  std::vector<admin::SessionRow> session_rows;  // only when asked for (/api/sessions)
};

struct MetricsInput {
  std::shared_ptr<const cluster::Topology> topology;
  const cluster::ClusterState* state = nullptr;
  int client_sessions = 0;
  bool ready = false;
  std::vector<WorkerStats> workers;
  std::vector<std::pair<pool::PoolKey, int>> pool_connections;  // process-wide, by key
  double start_time_seconds = 0;                                // unix time
  std::string version;
};

std::string renderMetrics(const MetricsInput& in);

// Escapes a label value: backslash, double quote and newline (exposition format rules).
std::string escapeLabel(std::string_view v);

}  // namespace pgpilot::http
