#include "cluster/topology.h"

#include "common/ascii.h"

namespace pgpilot::cluster {

std::string_view statusName(NodeStatus s) {
  switch (s) {
    case NodeStatus::kUp:
      return "up";
    case NodeStatus::kDown:
      return "down";
    case NodeStatus::kUnused:
      return "unused";
  }
  return "unknown";
}

std::string_view roleName(Role r) {
  switch (r) {
    case Role::kPrimary:
      return "primary";
    case Role::kStandby:
      return "standby";
    case Role::kUnknown:
      return "unknown";
  }
  return "unknown";
}

const NodeState* Topology::find(int id) const {
  for (const auto& n : nodes) {
    if (n.backend.id == id) return &n;
  }
  return nullptr;
}

namespace {

bool ieq(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (ascii::toLower(word[i]) != lower[i]) return false;
  }
  return true;
}

// Skips blanks, -- comments and /* */ comments (not nested; good enough for counting).
std::string_view skipBlanks(std::string_view s) {
  for (;;) {
    while (!s.empty() && ascii::isBlank(s.front())) s.remove_prefix(1);
    if (s.starts_with("--")) {
      const size_t nl = s.find('\n');
      s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
    } else if (s.starts_with("/*")) {
      const size_t end = s.find("*/", 2);
      s.remove_prefix(end == std::string_view::npos ? s.size() : end + 2);
    } else {
      return s;
    }
  }
}

}  // namespace

int Topology::alwaysPrimaryNode() const {
  for (const auto& n : nodes) {
    if (n.alwaysPrimary()) return n.backend.id;
  }
  return -1;
}

StatementClass firstKeywordClass(std::string_view sql) {
  sql = skipBlanks(sql);
  while (sql.starts_with("(")) sql = skipBlanks(sql.substr(1));  // (SELECT ...) UNION ...
  size_t n = 0;
  while (n < sql.size() && ascii::isLetter(sql[n])) ++n;
  const std::string_view w = sql.substr(0, n);
  if (ieq(w, "select") || ieq(w, "values") || ieq(w, "table")) return StatementClass::kSelect;
  if (ieq(w, "insert")) return StatementClass::kInsert;
  if (ieq(w, "update")) return StatementClass::kUpdate;
  if (ieq(w, "delete")) return StatementClass::kDelete;
  if (ieq(w, "create") || ieq(w, "alter") || ieq(w, "drop") || ieq(w, "truncate") ||
      ieq(w, "comment") || ieq(w, "grant") || ieq(w, "revoke")) {
    return StatementClass::kDdl;
  }
  return StatementClass::kOther;
}

void NodeCounters::count(StatementClass c) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  switch (c) {
    case StatementClass::kSelect:
      select_cnt.fetch_add(1, kRelaxed);
      return;
    case StatementClass::kInsert:
      insert_cnt.fetch_add(1, kRelaxed);
      return;
    case StatementClass::kUpdate:
      update_cnt.fetch_add(1, kRelaxed);
      return;
    case StatementClass::kDelete:
      delete_cnt.fetch_add(1, kRelaxed);
      return;
    case StatementClass::kDdl:
      ddl_cnt.fetch_add(1, kRelaxed);
      return;
    case StatementClass::kOther:
      other_cnt.fetch_add(1, kRelaxed);
      return;
  }
}

void NodeCounters::countError(std::string_view severity) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  server_errors.fetch_add(1, kRelaxed);
  if (severity == "PANIC") {
    panic_cnt.fetch_add(1, kRelaxed);
  } else if (severity == "FATAL") {
    fatal_cnt.fetch_add(1, kRelaxed);
  } else if (severity == "ERROR") {
    error_cnt.fetch_add(1, kRelaxed);
  }
}

NodeTotals ClusterState::totals(int node) const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  NodeTotals t;
  for (const CounterShard& shard : shards_) {
    const NodeCounters& c = shard.nodes[static_cast<size_t>(node) % kMaxNodes];
    t.select_cnt += c.select_cnt.load(kRelaxed);
    t.statements += c.statements.load(kRelaxed);
    t.server_errors += c.server_errors.load(kRelaxed);
    t.insert_cnt += c.insert_cnt.load(kRelaxed);
    t.update_cnt += c.update_cnt.load(kRelaxed);
    t.delete_cnt += c.delete_cnt.load(kRelaxed);
    t.ddl_cnt += c.ddl_cnt.load(kRelaxed);
    t.other_cnt += c.other_cnt.load(kRelaxed);
    t.error_cnt += c.error_cnt.load(kRelaxed);
    t.fatal_cnt += c.fatal_cnt.load(kRelaxed);
    t.panic_cnt += c.panic_cnt.load(kRelaxed);
  }
  return t;
}

std::shared_ptr<Topology> initialTopology(const config::Config& cfg) {
  auto t = std::make_shared<Topology>();
  for (const auto& b : cfg.backends) {
    NodeState n;
    n.backend = b;
    t->nodes.push_back(std::move(n));
  }
  return t;
}

}  // namespace pgpilot::cluster
