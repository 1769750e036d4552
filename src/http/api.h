// Api: the routes of pgpilot's HTTP endpoint.
//
// Purpose: answer GET /metrics (Prometheus text), /health and /ready (load balancers),
// /api/status, /api/nodes, /api/sessions, /api/events, /api/config (JSON), the embedded
// dashboard (/, /app.js, ...), and POST /api/nodes/N/{attach,detach,promote} and
// /api/switchover, which need `Authorization: Bearer <http_token>` and go through
// cluster::Control like every other operator command. The full list with examples is in
// docs/http.md.
// Owner: the control thread (handle() runs on its io_context). Worker figures are asked
// for by posting to each worker and collected back on the control thread, so nothing
// here reads a worker's own data from another thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "admin/show.h"
#include "cluster/control.h"
#include "cluster/topology.h"
#include "http/metrics.h"
#include "http/server.h"
#include "session/shared.h"

namespace pgpilot::http {

class Api {
 public:
  Api(session::Shared& shared, std::string version);

  net::Task<Response> handle(const Request& req);

  // How long a POST waits for its command's result before answering 504 (the command
  // goes on; its outcome shows in /api/events).
  void setCommandTimeout(std::chrono::milliseconds t) { command_timeout_ = t; }

 private:
  net::Task<Response> get(const Request& req);
  net::Task<Response> post(const Request& req);
  net::Task<Response> metrics();
  net::Task<Response> sessions();
  net::Task<Response> submit(cluster::Command cmd);
  // Asks every worker for its figures (and its session rows when `sessions`).
  net::Task<std::vector<WorkerStats>> gatherWorkers(bool sessions = false);
  Response health() const;
  Response ready() const;
  bool isReady() const;

  session::Shared& shared_;
  std::string version_;
  std::chrono::system_clock::time_point started_;
  std::chrono::milliseconds command_timeout_{60000};
};

// ---- pure pieces (unit-tested) ----

Response jsonResponse(int status, const nlohmann::json& j);

// 0 when `authorization` carries `token` ("Bearer <token>"); else the status to answer:
// 403 when no token is configured (POST is off) or the token is wrong, 401 when the
// header is missing or not a Bearer token.
int checkBearer(std::string_view authorization, std::string_view token);

nlohmann::json nodesJson(const cluster::Topology& topo, const cluster::ClusterState& state,
                         const std::vector<std::pair<pool::PoolKey, int>>& pool_connections);
nlohmann::json eventsJson(const std::vector<cluster::Event>& events);
nlohmann::json sessionsJson(const std::vector<admin::SessionRow>& rows);
// HTTP status for a command's result: 200 done; 503 not available (SQLSTATE 0A000);
// 400 bad argument (22023); 409 refused for any other reason.
int commandStatus(const cluster::CommandResult& r);
nlohmann::json configJson(const config::Config& cfg);

// The node of a POST /api/switchover body ({"node": N}); nullopt when absent or invalid.
std::optional<int> parseNodeBody(std::string_view body);
// An unsigned integer query parameter ("after=12&limit=50"); nullopt when absent/invalid.
std::optional<uint64_t> queryNumber(std::string_view query, std::string_view name);

}  // namespace pgpilot::http
