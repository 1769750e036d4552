#include "admin/show.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cctype>

#include "protocol/messages.h"

namespace pgpilot::admin {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == ';')) {
    s.remove_suffix(1);
  }
  return s;
}

bool iequalsWords(std::string_view s, std::string_view a, std::string_view b) {
  auto ieq = [](std::string_view x, std::string_view y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(x[i])) != y[i]) return false;
    }
    return true;
  };
  if (s.size() < a.size() || !ieq(s.substr(0, a.size()), a)) return false;
  s.remove_prefix(a.size());
  if (s.empty() || !std::isspace(static_cast<unsigned char>(s.front()))) return false;
  s = trim(s);
  return ieq(s, b);
}

std::string formatTime(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  return fmt::format("{:%Y-%m-%d %H:%M:%S}", secs);
}

void showPoolNodes(const AdminContext& ctx, std::string& out) {
  static const std::vector<std::string> kColumns = {"node_id",
                                                    "hostname",
                                                    "port",
                                                    "status",
                                                    "pg_status",
                                                    "lb_weight",
                                                    "role",
                                                    "pg_role",
                                                    "select_cnt",
                                                    "load_balance_node",
                                                    "replication_delay",
                                                    "replication_state",
                                                    "replication_sync_state",
                                                    "last_status_change"};
  protocol::buildRowDescription(out, kColumns);
  double total_weight = 0;
  for (const auto& n : ctx.topology->nodes) total_weight += n.backend.weight;
  for (const auto& n : ctx.topology->nodes) {
    const double w = total_weight > 0 ? n.backend.weight / total_weight : 0;
    const uint64_t selects =
        ctx.state ? ctx.state->counters(n.backend.id).select_cnt.load(std::memory_order_relaxed)
                  : 0;
    const bool is_primary = n.backend.id == ctx.topology->primary;
    std::string role = std::string(cluster::roleName(n.role));
    std::vector<std::optional<std::string>> row = {
        std::to_string(n.backend.id),
        n.backend.hostname,
        std::to_string(n.backend.port),
        std::string(cluster::statusName(n.status)),
        n.pg_up ? "up" : "down",
        fmt::format("{:.6f}", w),
        is_primary ? std::string("primary") : role,
        std::string(cluster::roleName(n.pg_role)),
        std::to_string(selects),
        n.backend.id == ctx.session_node ? "true" : "false",
        std::to_string(n.replication_delay),
        n.replication_state,
        n.replication_sync_state,
        formatTime(n.last_status_change)};
    protocol::buildDataRow(out, row);
  }
  protocol::buildCommandComplete(out, fmt::format("SELECT {}", ctx.topology->nodes.size()));
}

void showPoolVersion(std::string& out) {
  protocol::buildRowDescription(out, {"pool_version"});
  protocol::buildDataRow(out, {fmt::format("pgpilot {}", kVersion)});
  protocol::buildCommandComplete(out, "SELECT 1");
}

}  // namespace

AdminCommand recognize(std::string_view sql) {
  sql = trim(sql);
  // Cheap rejection first: every admin statement starts with "show" and is short.
  if (sql.size() < 8 || sql.size() > 64) return AdminCommand::kNone;
  if (std::tolower(static_cast<unsigned char>(sql[0])) != 's') return AdminCommand::kNone;
  if (iequalsWords(sql, "show", "pool_nodes")) return AdminCommand::kShowPoolNodes;
  if (iequalsWords(sql, "show", "pool_version")) return AdminCommand::kShowPoolVersion;
  return AdminCommand::kNone;
}

void answer(AdminCommand cmd, const AdminContext& ctx, std::string& out) {
  switch (cmd) {
    case AdminCommand::kShowPoolNodes:
      showPoolNodes(ctx, out);
      return;
    case AdminCommand::kShowPoolVersion:
      showPoolVersion(out);
      return;
    case AdminCommand::kNone:
      return;
  }
}

}  // namespace pgpilot::admin
