#include "http/api.h"

#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "common/log.h"
#include "http/assets.h"
#include "session/worker.h"

namespace pgpilot::http {

using json = nlohmann::json;
using log::Level;

namespace {

std::string isoTime(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", ms);
}

int64_t unixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

json healthJson(const cluster::HealthStats& h) {
  const uint64_t finished = h.success_count + h.fail_count;
  auto when = [](std::chrono::system_clock::time_point t) -> json {
    return t.time_since_epoch().count() == 0 ? json(nullptr) : json(isoTime(t));
  };
  return {{"total_count", h.total_count},
          {"success_count", h.success_count},
          {"fail_count", h.fail_count},
          {"skip_count", h.skip_count},
          {"retry_count", h.retry_count},
          {"max_retry_count", h.max_retry_count},
          {"average_duration_ms",
           finished > 0 ? h.total_duration_ms / static_cast<double>(finished) : 0.0},
          {"max_duration_ms", h.max_duration_ms},
          {"min_duration_ms", h.min_duration_ms},
          {"last_duration_ms", h.last_duration_ms},
          {"last_health_check", when(h.last_check)},
          {"last_successful_health_check", when(h.last_success)},
          {"last_failed_health_check", when(h.last_failure)}};
}

// Splits "/api/nodes/3/detach" into its segments.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    const size_t end = path.find('/', pos);
    out.push_back(path.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return out;
}

std::optional<int> parseNodeId(std::string_view s) {
  int v = -1;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0 || v >= cluster::kMaxNodes) {
    return std::nullopt;
  }
  return v;
}

Response methodNotAllowed(std::string_view allow) {
  Response r = jsonResponse(405, {{"error", "method not allowed"}});
  r.headers.push_back(fmt::format("Allow: {}", allow));
  return r;
}

// POST /api/nodes/N/{attach,detach,promote} and /api/switchover.
bool isPostRoute(const std::vector<std::string_view>& seg) {
  if (seg.size() == 4 && seg[0] == "api" && seg[1] == "nodes") {
    return seg[3] == "attach" || seg[3] == "detach" || seg[3] == "promote";
  }
  return seg.size() == 2 && seg[0] == "api" && seg[1] == "switchover";
}

Response notFound() {
  return jsonResponse(404, {{"error", "not found"}});
}

}  // namespace

Response jsonResponse(int status, const json& j) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  // Replace invalid UTF-8 (a server message, a config value) instead of throwing.
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  r.body += '\n';
  r.headers.push_back("Cache-Control: no-store");
  return r;
}

int checkBearer(std::string_view authorization, std::string_view token) {
  if (token.empty()) return 403;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return 401;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return 401;
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
  // Compare in time independent of where the first difference is.
  unsigned diff = given.size() == token.size() ? 0U : 1U;
  for (size_t i = 0; i < token.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned>(static_cast<unsigned char>(g ^ token[i]));
  }
  return diff == 0 ? 0 : 403;
}

json lagJson(std::optional<double> seconds) {
  return seconds ? json(*seconds) : json(nullptr);
}

json nodesJson(const cluster::Topology& topo, const cluster::ClusterState& state,
               const std::vector<std::pair<pool::PoolKey, int>>& pool_connections) {
  double total_weight = 0;
  for (const auto& n : topo.nodes) total_weight += n.backend.weight;
  json nodes = json::array();
  for (const auto& n : topo.nodes) {
    const int id = n.backend.id;
    const cluster::NodeTotals c = state.totals(id);
    int conns = 0;
    for (const auto& [key, count] : pool_connections) {
      if (key.node == id) conns += count;
    }
    const bool primary = id == topo.primary;
    nodes.push_back({
        {"id", id},
        {"hostname", n.backend.hostname},
        {"port", n.backend.port},
        {"status", cluster::statusName(n.status)},
        {"pg_status", n.pg_up ? "up" : "down"},
        {"role", primary ? std::string("primary") : std::string(cluster::roleName(n.role))},
        {"pg_role", cluster::roleName(n.pg_role)},
        {"weight", n.backend.weight},
        {"lb_weight", total_weight > 0 ? n.backend.weight / total_weight : 0.0},
        {"select_cnt", c.select_cnt},
        {"statements", c.statements},
        {"server_errors", c.server_errors},
        {"lsn", n.lsn},
        {"replication_delay_bytes", n.replication_delay},
        {"replication_lag_seconds", lagJson(state.replicationLagSeconds(id))},
        {"replication_state", n.replication_state},
        {"replication_sync_state", n.replication_sync_state},
        {"last_status_change", isoTime(n.last_status_change)},
        {"server_connections", conns},
        {"health", healthJson(state.health(id))},
    });
  }
  return {{"primary", topo.primary}, {"topology_version", topo.version}, {"nodes", nodes}};
}

json eventsJson(const std::vector<cluster::Event>& events) {
  json out = json::array();
  for (const auto& e : events) {
    out.push_back({{"id", e.id},
                   {"time", isoTime(e.time)},
                   {"unix_ms", unixMs(e.time)},
                   {"kind", e.kind},
                   {"node", e.node},
                   {"message", e.message},
                   {"failure", e.failure}});
  }
  return out;
}

json sessionsJson(const std::vector<admin::SessionRow>& rows) {
  json out = json::array();
  for (const auto& r : rows) {
    out.push_back({{"id", r.id},
                   {"worker", r.worker},
                   {"pid", r.pid},
                   {"user", r.user},
                   {"database", r.database},
                   {"application_name", r.application_name},
                   {"client_address", r.client_address},
                   {"node", r.node},
                   {"nodes", r.nodes},
                   {"state", r.state},
                   {"in_transaction", r.in_transaction},
                   {"since", isoTime(r.since)}});
  }
  return out;
}

int commandStatus(const cluster::CommandResult& r) {
  if (r.ok) return 200;
  if (r.sqlstate == "0A000") return 503;
  if (r.sqlstate == "22023") return 400;
  return 409;
}

json configJson(const config::Config& cfg) {
  json out = json::array();
  // describeSettings masks secrets (passwords, http_token) as "********".
  for (const auto& s : config::describeSettings(cfg)) {
    out.push_back({{"name", s.name},
                   {"value", s.value},
                   {"description", s.description},
                   {"needs_restart", s.needs_restart}});
  }
  return out;
}

std::optional<int> parseNodeBody(std::string_view body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("node");
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  const auto v = it->get<int64_t>();
  if (v < 0 || v >= cluster::kMaxNodes) return std::nullopt;
  return static_cast<int>(v);
}

std::optional<uint64_t> queryNumber(std::string_view query, std::string_view name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view item = query.substr(pos, end - pos);
    if (item.size() > name.size() && item.substr(0, name.size()) == name &&
        item[name.size()] == '=') {
      std::string_view v = item.substr(name.size() + 1);
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
      return n;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

Api::Api(session::Shared& shared, std::string version)
    : shared_(shared), version_(std::move(version)), started_(std::chrono::system_clock::now()) {}

net::Task<Response> Api::handle(const Request& req) {
  if (req.method == "GET") co_return co_await get(req);
  if (req.method == "POST") co_return co_await post(req);
  co_return methodNotAllowed(isPostRoute(segments(req.path)) ? "POST" : "GET, HEAD");
}

net::Task<Response> Api::get(const Request& req) {
  const std::string& p = req.path;
  if (p == "/metrics") co_return co_await metrics();
  if (p == "/health") co_return health();
  if (p == "/ready") co_return ready();
  if (p == "/api/sessions") co_return co_await sessions();
  const auto topo = shared_.cluster->topology();
  if (p == "/api/nodes") {
    co_return jsonResponse(200, nodesJson(*topo, *shared_.cluster, shared_.limits.snapshot()));
  }
  if (p == "/api/events") {
    auto events = shared_.cluster->events().snapshot(queryNumber(req.query, "after").value_or(0));
    const uint64_t limit = std::min<uint64_t>(queryNumber(req.query, "limit").value_or(200), 1000);
    if (events.size() > limit) events.erase(events.begin(), events.end() - limit);
    co_return jsonResponse(
        200, {{"last_id", shared_.cluster->events().lastId()}, {"events", eventsJson(events)}});
  }
  if (p == "/api/config")
    co_return jsonResponse(200, {{"settings", configJson(*shared_.config())}});
  if (p == "/api/status") {
    const int64_t last_ms = shared_.cluster->last_failover_ms.load(std::memory_order_relaxed);
    co_return jsonResponse(
        200, {{"version", version_},
              {"pid", ::getpid()},
              {"started", isoTime(started_)},
              {"ready", isReady()},
              {"primary", topo->primary},
              {"topology_version", topo->version},
              {"client_sessions", shared_.client_count.load(std::memory_order_relaxed)},
              {"failovers_total", shared_.cluster->failovers_total.load()},
              {"last_failover_ms", last_ms < 0 ? json(nullptr) : json(last_ms)},
              {"events_last_id", shared_.cluster->events().lastId()},
              {"commands_available", shared_.control != nullptr},
              {"post_enabled", !shared_.config()->http_token.empty()}});
  }
  if (isPostRoute(segments(p))) co_return methodNotAllowed("POST");
  if (p.starts_with("/api/")) co_return notFound();
  if (const EmbeddedFile* f = findEmbedded(p)) {
    Response r;
    r.content_type = std::string(contentTypeFor(f->path));
    r.body = std::string(f->data);
    r.headers.push_back("Cache-Control: no-cache");
    // The dashboard loads nothing from elsewhere; forbid it so an injected string cannot.
    r.headers.push_back(
        "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'");
    co_return r;
  }
  co_return notFound();
}

net::Task<Response> Api::post(const Request& req) {
  const auto seg = segments(req.path);
  cluster::Command cmd;
  cmd.source = "http";
  if (!isPostRoute(seg)) {
    co_return req.path.starts_with("/api/") ? notFound() : methodNotAllowed("GET, HEAD");
  }
  if (seg.size() == 4) {
    cmd.kind = seg[3] == "attach"   ? cluster::CommandKind::kAttach
               : seg[3] == "detach" ? cluster::CommandKind::kDetach
                                    : cluster::CommandKind::kPromote;
  } else {
    cmd.kind = cluster::CommandKind::kSwitchover;
  }
  if (const int status = checkBearer(req.authorization, shared_.config()->http_token);
      status != 0) {
    log::logf(Level::kWarning, "HTTP POST {} from {} refused: {}", req.path, req.peer,
              shared_.config()->http_token.empty() ? "http_token is not set"
              : status == 401                      ? "no bearer token"
                                                   : "wrong token");
    Response r = jsonResponse(
        status, {{"error", shared_.config()->http_token.empty()
                               ? "POST endpoints are disabled: set http_token in the config"
                           : status == 401 ? "missing bearer token"
                                           : "wrong token"}});
    if (status == 401) r.headers.push_back("WWW-Authenticate: Bearer realm=\"pgpilot\"");
    co_return r;
  }
  std::optional<int> node = seg.size() == 4 ? parseNodeId(seg[2]) : parseNodeBody(req.body);
  if (!node) co_return jsonResponse(400, {{"error", "a node id is needed"}});
  if (shared_.cluster->topology()->find(*node) == nullptr) {
    co_return jsonResponse(404, {{"error", fmt::format("node {} does not exist", *node)}});
  }
  cmd.node = *node;
  if (cmd.kind == cluster::CommandKind::kPromote && !req.body.empty()) {
    const json j = json::parse(req.body, nullptr, false);
    if (j.is_object() && j.value("force", false) == true) cmd.force = true;
  }
  log::logf(Level::kLog, "HTTP POST {} from {}: {} node {}", req.path, req.peer,
            cluster::commandName(cmd.kind), cmd.node);
  co_return co_await submit(std::move(cmd));
}

net::Task<Response> Api::submit(cluster::Command cmd) {
  if (shared_.control == nullptr) {
    co_return jsonResponse(
        503, {{"ok", false}, {"message", "node commands are not available in this build"}});
  }
  // control.submit may answer on any thread: hand the result back to this io_context and
  // wake the waiting coroutine. The timer bounds the wait; the command itself goes on.
  struct Wait {
    explicit Wait(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<cluster::CommandResult> result;
  };
  auto ex = co_await asio::this_coro::executor;
  auto w = std::make_shared<Wait>(ex);
  w->timer.expires_after(command_timeout_);
  shared_.control->submit(std::move(cmd), [w, ex](cluster::CommandResult r) {
    asio::post(ex, [w, r = std::move(r)]() mutable {
      w->result = std::move(r);
      w->timer.cancel();
    });
  });
  co_await w->timer.async_wait(net::kUseAwaitable);
  if (!w->result) {
    co_return jsonResponse(
        504, {{"ok", false}, {"message", "the command is still running; see /api/events"}});
  }
  json j = {{"ok", w->result->ok}, {"message", w->result->message}};
  if (!w->result->sqlstate.empty()) j["sqlstate"] = w->result->sqlstate;
  co_return jsonResponse(commandStatus(*w->result), j);
}

bool Api::isReady() const {
  return shared_.accepting.load(std::memory_order_relaxed) && !shared_.workers.empty() &&
         shared_.cluster->topology()->version > 0;
}

Response Api::health() const {
  const int primary = shared_.cluster->topology()->primary;
  if (primary < 0) return textResponse(503, "no primary node is known");
  return textResponse(200, fmt::format("ok: primary node {}", primary));
}

Response Api::ready() const {
  if (!shared_.accepting.load(std::memory_order_relaxed) || shared_.workers.empty()) {
    return textResponse(503, "not accepting clients");
  }
  if (shared_.cluster->topology()->version == 0) {
    return textResponse(503, "cluster topology not known yet");
  }
  return textResponse(200, "ready");
}

net::Task<std::vector<WorkerStats>> Api::gatherWorkers(bool sessions) {
  struct Gather {
    explicit Gather(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    std::vector<WorkerStats> stats;
    size_t left = 0;
  };
  auto ex = co_await asio::this_coro::executor;
  auto g = std::make_shared<Gather>(ex);
  g->left = shared_.workers.size();
  if (g->left == 0) co_return std::vector<WorkerStats>{};
  // A worker that is shutting down may never run the post: the timer bounds the wait.
  g->timer.expires_after(std::chrono::seconds(2));
  for (session::Worker* worker : shared_.workers) {
    asio::post(worker->context(), [g, ex, worker, sessions] {
      WorkerStats s;
      s.index = worker->index();
      s.sessions = worker->sessionCount();
      s.idle_server_connections = worker->pool().idleCount();
      s.pool_waiting = worker->pool().waiting();
      s.pool = worker->pool().stats();
      s.latency = worker->latency().snapshot();
      s.errors_by_class = worker->errorClasses().nonZero();
      s.internal_queries = worker->internalQueries();
      if (sessions) s.session_rows = worker->sessionRows();
      asio::post(ex, [g, s = std::move(s)]() mutable {
        g->stats.push_back(std::move(s));
        if (--g->left == 0) g->timer.cancel();
      });
    });
  }
  co_await g->timer.async_wait(net::kUseAwaitable);
  auto out = g->stats;
  std::sort(out.begin(), out.end(),
            [](const WorkerStats& a, const WorkerStats& b) { return a.index < b.index; });
  co_return out;
}

net::Task<Response> Api::metrics() {
  MetricsInput in;
  // The global count first: a session leaves its worker's count before the global one,
  // so the workers' sum read afterwards is never above it for sessions that have ended.
  in.client_sessions = shared_.client_count.load();
  in.workers = co_await gatherWorkers();
  in.topology = shared_.cluster->topology();
  in.state = shared_.cluster;
  in.ready = isReady();
  in.pool_connections = shared_.limits.snapshot();
  in.start_time_seconds = std::chrono::duration<double>(started_.time_since_epoch()).count();
  in.version = version_;
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = renderMetrics(in);
  co_return r;
}

net::Task<Response> Api::sessions() {
  const auto workers = co_await gatherWorkers(true);
  json per = json::array();
  std::vector<admin::SessionRow> rows;
  for (const auto& w : workers) {
    per.push_back({{"worker", w.index}, {"sessions", w.sessions}});
    rows.insert(rows.end(), w.session_rows.begin(), w.session_rows.end());
  }
  std::sort(rows.begin(), rows.end(),
            [](const admin::SessionRow& a, const admin::SessionRow& b) { return a.id < b.id; });
  co_return jsonResponse(200, {{"client_sessions", shared_.client_count.load()},
                               {"workers", per},
                               {"sessions", sessionsJson(rows)}});
}

}  // namespace pgpilot::http
