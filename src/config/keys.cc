#include "config/keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <type_traits>

#include "common/log.h"

namespace pgpilot::config {
namespace {

using Result = std::expected<void, std::string>;

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::unexpected<std::string> invalid(std::string_view key, std::string_view value,
                                     std::string_view hint = {}) {
  std::string msg = fmt::format("invalid value for parameter \"{}\": \"{}\"", key, value);
  if (!hint.empty()) msg += fmt::format(" ({})", hint);
  return std::unexpected(std::move(msg));
}

std::unexpected<std::string> outOfRange(std::string_view key, std::string_view value,
                                        std::string_view lo, std::string_view hi) {
  return std::unexpected(fmt::format(
      "{} is outside the valid range for parameter \"{}\" ({} .. {})", trim(value), key, lo, hi));
}

// Relative file names are taken relative to the directory of the file that set them, like
// pgpool does for pool_passwd and pid_file_name.
std::string resolvePath(std::string_view value, std::string_view base_dir) {
  if (value.empty() || value.front() == '/' || base_dir.empty()) return std::string(value);
  return (std::filesystem::path(base_dir) / std::filesystem::path(value)).lexically_normal();
}

double unitMs(Unit u) {
  switch (u) {
    case Unit::kSeconds:
      return 1000.0;
    case Unit::kMinutes:
      return 60000.0;
    default:
      return 1.0;
  }
}

Result parseIntIn(const KeyDef& def, std::string_view key, std::string_view v, int64_t* out) {
  std::optional<int64_t> n = parseInteger(v, Unit::kNone);
  if (!n) return invalid(key, v);
  if (*n < def.min || *n > def.max) {
    return outOfRange(key, v, std::to_string(def.min), std::to_string(def.max));
  }
  *out = *n;
  return {};
}

// ---- generic setters and show functions over Config members ----

template <auto M>
Result setString(Config& c, const KeyDef&, std::string_view v, const SetContext&) {
  c.*M = std::string(v);
  return {};
}
template <auto M>
Result setPath(Config& c, const KeyDef&, std::string_view v, const SetContext& ctx) {
  c.*M = resolvePath(v, ctx.base_dir);
  return {};
}
template <auto M>
std::string showString(const Config& c) {
  return c.*M;
}

template <auto M>
Result setBool(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::optional<bool> b = parseBool(v);
  if (!b) return invalid(def.name, v);
  c.*M = *b;
  return {};
}
template <auto M>
std::string showBool(const Config& c) {
  return c.*M ? "on" : "off";
}

template <auto M>
Result setInt(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  int64_t n = 0;
  if (auto r = parseIntIn(def, def.name, v, &n); !r) return r;
  c.*M = static_cast<int>(n);
  return {};
}
template <auto M>
std::string showInt(const Config& c) {
  return std::to_string(c.*M);
}

template <auto M>
Result setDuration(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::optional<double> q = parseQuantity(v, def.unit);  // bare numbers are in def.unit
  if (!q) return invalid(def.name, v, "valid units are us, ms, s, min, h and d");
  double ms = std::rint(*q * unitMs(def.unit));
  double lo = static_cast<double>(def.min) * unitMs(def.unit);
  double hi = static_cast<double>(def.max) * unitMs(def.unit);
  if (!(ms >= lo && ms <= hi)) {
    std::string u(unitName(def.unit));
    return outOfRange(def.name, v, std::to_string(def.min) + u, std::to_string(def.max) + u);
  }
  c.*M = std::chrono::milliseconds(static_cast<int64_t>(ms));
  return {};
}
template <auto M>
std::string showDuration(const Config& c) {
  return formatMilliseconds((c.*M).count());
}

// ---- keys with their own rules ----

// A comma-separated list of addresses (listen_addresses, http_listen_addresses).
template <auto M>
Result setAddressList(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::vector<std::string> out;
  std::string_view rest = trim(v);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    if (item.empty()) return invalid(def.name, v, "empty list element");
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (trim(rest).empty()) return invalid(def.name, v, "empty list element");
  }
  c.*M = std::move(out);
  return {};
}
template <auto M>
std::string showAddressList(const Config& c) {
  std::string out;
  for (const std::string& a : c.*M) {
    if (!out.empty()) out += ',';
    out += a;
  }
  return out;
}

// A comma-separated list of names into a vector member (admin_users, ...). `allow_empty`:
// '' is an empty list.
template <auto M, bool kAllowEmpty>
Result setNameList(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::vector<std::string> out;
  std::string_view rest = trim(v);
  if (rest.empty() && !kAllowEmpty) return invalid(def.name, v, "empty list");
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    if (item.empty()) return invalid(def.name, v, "empty list element");
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (trim(rest).empty()) return invalid(def.name, v, "empty list element");
  }
  c.*M = std::move(out);
  return {};
}
template <auto M>
std::string showNameList(const Config& c) {
  std::string out;
  for (const std::string& a : c.*M) {
    if (!out.empty()) out += ',';
    out += a;
  }
  return out;
}

// unix_socket_directories: a list of absolute paths ('' = none).
Result setSocketDirectories(Config& c, const KeyDef& def, std::string_view v,
                            const SetContext& ctx) {
  if (auto r = setNameList<&Config::unix_socket_directories, true>(c, def, v, ctx); !r) return r;
  for (const std::string& dir : c.unix_socket_directories) {
    if (!dir.starts_with('/'))
      return invalid(def.name, v, "\"" + dir + "\" is not an absolute path");
  }
  return {};
}

template <auto M>
std::string showOctal(const Config& c) {
  return fmt::format("{:04o}", c.*M);
}

constexpr std::array<std::string_view, 3> kSslModes = {"disable", "prefer", "require"};
Result setBackendSslmode(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::string s = lower(trim(v));
  if (s == "disable") {
    c.backend_sslmode = ServerSslMode::kDisable;
  } else if (s == "prefer") {
    c.backend_sslmode = ServerSslMode::kPrefer;
  } else if (s == "require") {
    c.backend_sslmode = ServerSslMode::kRequire;
  } else {
    return invalid(def.name, v, "available values: disable, prefer, require");
  }
  return {};
}
std::string showBackendSslmode(const Config& c) {
  switch (c.backend_sslmode) {
    case ServerSslMode::kDisable:
      return "disable";
    case ServerSslMode::kPrefer:
      return "prefer";
    case ServerSslMode::kRequire:
      return "require";
  }
  return "disable";
}

// A string key restricted to a fixed set of words (stored lower-case).
template <std::string Config::*F, const auto& kChoices>
Result setChoice(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::string s = lower(trim(v));
  for (std::string_view choice : kChoices) {
    if (s == choice) {
      c.*F = std::move(s);
      return {};
    }
  }
  std::string list;
  for (std::string_view choice : kChoices) {
    if (!list.empty()) list += ", ";
    list += choice;
  }
  return invalid(def.name, v, "available values: " + list);
}
constexpr std::array<std::string_view, 3> kCandidatePolicies = {"lsn", "sync_priority",
                                                                "node_order"};
constexpr std::array<std::string_view, 2> kSyncPolicies = {"availability", "durability"};

constexpr std::array<std::string_view, 13> kLogLevels = {
    "debug5", "debug4",  "debug3", "debug2", "debug1", "debug", "info",
    "notice", "warning", "error",  "log",    "fatal",  "panic"};
Result setLogMinMessages(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::string s = lower(trim(v));
  log::Level level{};
  if (!log::parseLevel(s, &level)) {
    return invalid(def.name, v,
                   "available values: debug5, debug4, debug3, debug2, debug1, info, notice, "
                   "warning, error, log, fatal, panic");
  }
  c.log_min_messages = s;
  return {};
}

// pgpool accepts a comma list of stderr and syslog; only stderr is implemented.
Result setLogDestination(Config& c, const KeyDef& def, std::string_view v, const SetContext& ctx) {
  std::string_view rest = v;
  bool any = false;
  while (true) {
    size_t comma = rest.find(',');
    std::string item = lower(trim(rest.substr(0, comma)));
    if (item == "syslog") {
      if (ctx.warnings != nullptr) {
        ctx.warnings->push_back(ctx.where +
                                "log_destination \"syslog\" is not implemented by pgpilot yet; "
                                "logging to stderr (or log_file) instead");
      }
    } else if (item != "stderr") {
      return invalid(def.name, v, "available values: stderr, syslog");
    }
    any = true;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!any) return invalid(def.name, v);
  c.log_destination = "stderr";
  return {};
}

// pgpilot is a streaming-replication proxy: other pgpool clustering modes would silently
// change data-safety semantics, so they are refused instead of ignored.
constexpr std::array<std::string_view, 6> kClusteringModes = {
    "streaming_replication", "native_replication", "logical_replication", "slony", "raw",
    "snapshot_isolation"};
Result setClusteringMode(Config&, const KeyDef& def, std::string_view v, const SetContext&) {
  std::string s = lower(trim(v));
  if (s == "streaming_replication") return {};
  if (std::find(kClusteringModes.begin(), kClusteringModes.end(), s) != kClusteringModes.end()) {
    return std::unexpected(fmt::format(
        "backend_clustering_mode \"{}\" is not supported: pgpilot supports streaming_replication "
        "only",
        s));
  }
  return invalid(def.name, v, "available values: streaming_replication");
}
std::string showClusteringMode(const Config&) {
  return "streaming_replication";
}

// ---- load balancing ----

constexpr std::array<std::string_view, 5> kLbOnWrite = {"off", "transaction", "trans_transaction",
                                                        "always", "dml_adaptive"};
Result setDisableLbOnWrite(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::string s = lower(trim(v));
  if (std::find(kLbOnWrite.begin(), kLbOnWrite.end(), s) == kLbOnWrite.end()) {
    return invalid(def.name, v,
                   "available values: off, transaction, trans_transaction, always, dml_adaptive");
  }
  c.disable_load_balance_on_write = s;
  return {};
}

// pgpool: catalog, trace, none (and the old on/off). pgpilot tracks temporary tables per
// session (a session that creates one stays on the primary), so every "on" value is one.
constexpr std::array<std::string_view, 5> kCheckTemp = {"catalog", "trace", "none", "on", "off"};
Result setCheckTempTable(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  std::string s = lower(trim(v));
  if (s == "catalog" || s == "trace" || s == "on" || s == "true" || s == "1") {
    c.check_temp_table = true;
  } else if (s == "none" || s == "off" || s == "false" || s == "0") {
    c.check_temp_table = false;
  } else {
    return invalid(def.name, v, "available values: catalog, trace, none");
  }
  return {};
}

// app_name_redirect_preference_list / database_redirect_preference_list: the raw string
// is kept for SHOW, the parsed rules (compiled regexes) for the sessions.
template <std::string Config::*Raw, std::vector<RedirectRule> Config::*Rules>
Result setRedirectList(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  auto rules = parseRedirectList(v);
  if (!rules) return invalid(def.name, v, rules.error());
  c.*Raw = std::string(v);
  c.*Rules = std::move(*rules);
  return {};
}

Result setObjectRelations(Config& c, const KeyDef& def, std::string_view v, const SetContext&) {
  auto rel = parseObjectRelationList(v);
  if (!rel) return invalid(def.name, v, rel.error());
  c.dml_adaptive_object_relationship_list = std::string(v);
  c.dml_adaptive_relations = std::move(*rel);
  return {};
}

// ---- the table ----

constexpr std::span<const std::string_view> kNoChoices{};

#define PG_STR(field) &setString<&Config::field>, &showString<&Config::field>, kNoChoices
#define PG_PATH(field) &setPath<&Config::field>, &showString<&Config::field>, kNoChoices
#define PG_BOOL(field) &setBool<&Config::field>, &showBool<&Config::field>, kNoChoices
#define PG_INT(field) &setInt<&Config::field>, &showInt<&Config::field>, kNoChoices
#define PG_DUR(field) &setDuration<&Config::field>, &showDuration<&Config::field>, kNoChoices
#define PG_CHOICE(field, choices) \
  &setChoice<&Config::field, choices>, &showString<&Config::field>, choices

using enum KeyType;
constexpr bool kRestart = true;
constexpr bool kReload = false;
constexpr bool kSecret = true;
constexpr bool kPlain = false;
constexpr Unit kS = Unit::kSeconds;
constexpr Unit kMs = Unit::kMilliseconds;
constexpr Unit kNo = Unit::kNone;

const std::array kKeys = std::to_array<KeyDef>({
    // ---- connections ----
    {"backend_clustering_mode", kEnum, kNo, 0, 0, kRestart, kPlain,
     "pgpool clustering mode; pgpilot implements streaming_replication only.", &setClusteringMode,
     &showClusteringMode, kNoChoices},
    {"listen_addresses", kList, kNo, 0, 0, kRestart, kPlain,
     "Comma-separated host names or IP addresses to listen on; '*' for all.",
     &setAddressList<&Config::listen_addresses>, &showAddressList<&Config::listen_addresses>,
     kNoChoices},
    {"port", kInt, kNo, 1, 65535, kRestart, kPlain, "TCP port for client connections.",
     PG_INT(port)},
    {"listen_backlog", kInt, kNo, 1, 1000000, kRestart, kPlain,
     "Backlog passed to listen(2) (capped by the kernel's somaxconn).", PG_INT(listen_backlog)},
    {"unix_socket_directories", kList, kNo, 0, 0, kRestart, kPlain,
     "Comma-separated directories where a Unix-domain socket for clients is created "
     "(.s.PGSQL.<port>); '' for none.",
     &setSocketDirectories, &showNameList<&Config::unix_socket_directories>, kNoChoices},
    {"unix_socket_group", kString, kNo, 0, 0, kRestart, kPlain,
     "Group owning the Unix-domain sockets; '' for pgpilot's own group.",
     PG_STR(unix_socket_group)},
    {"unix_socket_permissions", kInt, kNo, 0, 0777, kRestart, kPlain,
     "Access permissions of the Unix-domain sockets (octal, as in PostgreSQL: 0770).",
     &setInt<&Config::unix_socket_permissions>, &showOctal<&Config::unix_socket_permissions>,
     kNoChoices},
    {"max_client_connections", kInt, kNo, 1, 10000000, kReload, kPlain,
     "Maximum number of concurrent client connections; more are refused.",
     PG_INT(max_client_connections)},
    {"worker_threads", kInt, kNo, 0, 256, kRestart, kPlain,
     "Number of I/O worker threads; 0 means one per CPU core.", PG_INT(worker_threads)},
    // ---- pooling ----
    {"max_pool", kInt, kNo, 1, 1000000, kRestart, kPlain,
     "Maximum server connections per (node, user, database), shared by all workers.",
     PG_INT(max_pool)},
    {"pool_wait_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "How long a client waits for a pooled server connection when the pool is full.",
     PG_DUR(pool_wait_timeout)},
    {"connection_life_time", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Pooled server connections older than this are closed when released; 0 disables.",
     PG_DUR(connection_life_time)},
    {"server_idle_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Pooled server connections idle this long are closed; 0 disables.",
     PG_DUR(server_idle_timeout)},
    {"client_idle_limit", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Clients idle this long (even inside a transaction) are disconnected; 0 disables.",
     PG_DUR(client_idle_limit)},
    {"reset_query_list", kString, kNo, 0, 0, kReload, kPlain,
     "Semicolon-separated statements run on a server connection before it returns to the pool.",
     PG_STR(reset_query_list)},
    {"connect_timeout", kDuration, kMs, 0, kIntMax, kReload, kPlain,
     "Timeout for establishing a connection to a server; 0 means no timeout.",
     PG_DUR(connect_timeout)},
    {"authentication_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Time allowed for a client to complete authentication; 0 means no timeout.",
     PG_DUR(authentication_timeout)},
    // ---- authentication ----
    {"enable_pool_hba", kBool, kNo, 0, 0, kReload, kPlain,
     "Use pool_hba_file rules for client authentication.", PG_BOOL(enable_pool_hba)},
    {"pool_hba_file", kPath, kNo, 0, 0, kReload, kPlain,
     "hba-style client authentication rules (relative to the config file).",
     PG_PATH(pool_hba_file)},
    {"pool_passwd", kPath, kNo, 0, 0, kRestart, kPlain,
     "Password file in pgpool's pool_passwd format (relative to the config file); '' disables.",
     PG_PATH(pool_passwd)},
    {"allow_clear_text_frontend_auth", kBool, kNo, 0, 0, kReload, kPlain,
     "Ask clients for a clear-text password when pool_passwd has no entry for the user.",
     PG_BOOL(allow_clear_text_frontend_auth)},
    // ---- TLS ----
    {"ssl", kBool, kNo, 0, 0, kRestart, kPlain, "Accept TLS connections from clients.",
     PG_BOOL(ssl)},
    {"ssl_cert", kPath, kNo, 0, 0, kRestart, kPlain, "Server certificate file (PEM).",
     PG_PATH(ssl_cert)},
    {"ssl_key", kPath, kNo, 0, 0, kRestart, kPlain, "Server private key file (PEM).",
     PG_PATH(ssl_key)},
    {"ssl_ca_cert", kPath, kNo, 0, 0, kRestart, kPlain,
     "CA certificates used to verify client certificates (PEM).", PG_PATH(ssl_ca_cert)},
    {"ssl_ciphers", kString, kNo, 0, 0, kRestart, kPlain, "Allowed TLS cipher list (OpenSSL).",
     PG_STR(ssl_ciphers)},
    {"ssl_prefer_server_ciphers", kBool, kNo, 0, 0, kRestart, kPlain,
     "Prefer the server's cipher order over the client's.", PG_BOOL(ssl_prefer_server_ciphers)},
    {"backend_sslmode", kEnum, kNo, 0, 0, kReload, kPlain,
     "TLS towards servers: disable, prefer or require.", &setBackendSslmode, &showBackendSslmode,
     kSslModes},
    // ---- streaming replication check / health check ----
    {"sr_check_user", kString, kNo, 0, 0, kReload, kPlain,
     "User for the role and replication-lag checks.", PG_STR(sr_check_user)},
    {"sr_check_password", kString, kNo, 0, 0, kReload, kSecret,
     "Password of sr_check_user ('' to use pool_passwd).", PG_STR(sr_check_password)},
    {"sr_check_database", kString, kNo, 0, 0, kReload, kPlain,
     "Database for the role and replication-lag checks.", PG_STR(sr_check_database)},
    {"sr_check_period", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Interval between role and replication-lag checks; 0 disables.", PG_DUR(sr_check_period)},
    {"health_check_user", kString, kNo, 0, 0, kReload, kPlain, "User for health checks.",
     PG_STR(health_check_user)},
    {"health_check_password", kString, kNo, 0, 0, kReload, kSecret,
     "Password of health_check_user ('' to use pool_passwd).", PG_STR(health_check_password)},
    {"health_check_database", kString, kNo, 0, 0, kReload, kPlain, "Database for health checks.",
     PG_STR(health_check_database)},
    {"health_check_period", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Interval between health checks; 0 disables them.", PG_DUR(health_check_period)},
    {"health_check_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "A health check taking longer than this fails; 0 means no timeout.",
     PG_DUR(health_check_timeout)},
    // ---- failure detection and failover (cluster/failover.h) ----
    {"health_check_max_retries", kInt, kNo, 0, 1000, kReload, kPlain,
     "Failed health checks retried this many times before the node is declared down.",
     PG_INT(health_check_max_retries)},
    {"health_check_retry_delay", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Pause between health-check retries.", PG_DUR(health_check_retry_delay)},
    {"failover_command", kString, kNo, 0, 0, kReload, kPlain,
     "Command that promotes the new primary (pgpool placeholders); '' = built-in pg_promote().",
     PG_STR(failover_command)},
    {"follow_primary_command", kString, kNo, 0, 0, kReload, kPlain,
     "Command run per remaining standby after a failover; '' = built-in primary_conninfo "
     "update.",
     PG_STR(follow_primary_command)},
    {"failover_command_timeout", kDuration, kS, 1, kIntMax, kReload, kPlain,
     "failover_command and follow_primary_command are killed after this long.",
     PG_DUR(failover_command_timeout)},
    {"search_primary_node_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "After promoting, how long to wait for the candidate to leave recovery.",
     PG_DUR(search_primary_node_timeout)},
    {"follow_primary_timeout", kDuration, kS, 1, kIntMax, kReload, kPlain,
     "How long a repointed standby has to stream from the new primary before it is detached.",
     PG_DUR(follow_primary_timeout)},
    {"failover_on_backend_error", kBool, kNo, 0, 0, kReload, kPlain,
     "An I/O error on a query connection triggers an immediate confirming health check.",
     PG_BOOL(failover_on_backend_error)},
    {"detach_false_primary", kBool, kNo, 0, 0, kReload, kPlain,
     "Detach a node that claims to be a primary while another node is the primary.",
     PG_BOOL(detach_false_primary)},
    {"auto_failback", kBool, kNo, 0, 0, kReload, kPlain,
     "Re-attach a detached standby once it streams from the current primary again.",
     PG_BOOL(auto_failback)},
    {"auto_failback_interval", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Minimum time between two automatic failbacks of the same node.",
     PG_DUR(auto_failback_interval)},
    {"failover_candidate_policy", kEnum, kNo, 0, 0, kReload, kPlain,
     "Which standby is promoted: lsn (most advanced), sync_priority, node_order.",
     PG_CHOICE(failover_candidate_policy, kCandidatePolicies)},
    {"sync_replication_policy", kEnum, kNo, 0, 0, kReload, kPlain,
     "When the last synchronous standby is lost: availability (switch the primary to async) "
     "or durability (keep waiting).",
     PG_CHOICE(sync_replication_policy, kSyncPolicies)},
    {"status_file", kPath, kNo, 0, 0, kRestart, kPlain,
     "Node status file kept across restarts; '' = pgpilot_status in logdir.", PG_PATH(status_file)},
    {"switchover_drain_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "Planned switchover: how long held sessions' open transactions may take to finish before "
     "the old primary is restarted anyway.",
     PG_DUR(switchover_drain_timeout)},
    {"switchover_timeout", kDuration, kS, 1, kIntMax, kReload, kPlain,
     "Planned switchover: bound on the target catching up and the old primary coming back as "
     "a standby.",
     PG_DUR(switchover_timeout)},
    {"switchover_command", kString, kNo, 0, 0, kReload, kPlain,
     "Planned switchover: command that turns the old primary into a standby of the new one "
     "(failover_command placeholders); '' = built-in restart with standby.signal.",
     PG_STR(switchover_command)},
    {"replication_slots", kBool, kNo, 0, 0, kReload, kPlain,
     "Keep one physical replication slot per standby (pgpilot_node_<id>) on the primary, "
     "created after failover for every follower, and set primary_slot_name on the standbys.",
     PG_BOOL(replication_slots)},
    {"drop_slots_of_detached_nodes", kBool, kNo, 0, 0, kReload, kPlain,
     "With replication_slots: drop a detached standby's slot on the primary once it is not "
     "active, so the primary does not keep WAL for it.",
     PG_BOOL(drop_slots_of_detached_nodes)},
    // ---- logging ----
    {"log_min_messages", kEnum, kNo, 0, 0, kReload, kPlain,
     "Minimum level written to the log (debug5..debug1, info, notice, warning, error, log, "
     "fatal, panic).",
     &setLogMinMessages, &showString<&Config::log_min_messages>, kLogLevels},
    {"log_destination", kEnum, kNo, 0, 0, kReload, kPlain,
     "Where to log: stderr ('syslog' is accepted with a warning and ignored).", &setLogDestination,
     &showString<&Config::log_destination>, kNoChoices},
    {"log_file", kPath, kNo, 0, 0, kReload, kPlain,
     "When set, log lines are appended to this file instead of stderr.", PG_PATH(log_file)},
    {"log_connections", kBool, kNo, 0, 0, kReload, kPlain, "Log each client connection.",
     PG_BOOL(log_connections)},
    {"log_disconnections", kBool, kNo, 0, 0, kReload, kPlain, "Log the end of each client session.",
     PG_BOOL(log_disconnections)},
    {"log_statement", kBool, kNo, 0, 0, kReload, kPlain, "Log every statement.",
     PG_BOOL(log_statement)},
    {"log_line_prefix", kString, kNo, 0, 0, kReload, kPlain,
     "pgpool-style prefix (%t time, %p pid, %u user, %d database, %a application).",
     PG_STR(log_line_prefix)},
    // ---- process ----
    {"pid_file_name", kPath, kNo, 0, 0, kRestart, kPlain, "PID file (relative to the config file).",
     PG_PATH(pid_file_name)},
    {"logdir", kPath, kNo, 0, 0, kRestart, kPlain,
     "Directory of the node status file (relative to the config file).", PG_PATH(logdir)},
    {"smart_shutdown_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "On a smart shutdown, wait this long for clients to leave before closing them.",
     PG_DUR(smart_shutdown_timeout)},
    {"failover_hold_timeout", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "While no primary is known (failover in progress), a write waits this long for one.",
     PG_DUR(failover_hold_timeout)},
    // ---- admin console (ours) ----
    {"admin_port", kInt, kNo, 0, 65535, kRestart, kPlain,
     "TCP port of the admin console (SHOW and PGPILOT commands, pgpilotctl); 0 disables it.",
     PG_INT(admin_port)},
    {"admin_listen_addresses", kList, kNo, 0, 0, kRestart, kPlain,
     "Comma-separated addresses the admin port listens on; '*' for all.",
     &setNameList<&Config::admin_listen_addresses, false>,
     &showNameList<&Config::admin_listen_addresses>, kNoChoices},
    {"admin_users", kList, kNo, 0, 0, kReload, kPlain,
     "Comma-separated user names allowed on the admin port (authenticated with pool_passwd).",
     &setNameList<&Config::admin_users, true>, &showNameList<&Config::admin_users>, kNoChoices},
    // ---- HTTP endpoint: /metrics, /api, dashboard (ours; docs/http.md) ----
    {"http_port", kInt, kNo, 0, 65535, kRestart, kPlain,
     "TCP port of the HTTP endpoint (/metrics, /health, /api, dashboard); 0 turns it off.",
     PG_INT(http_port)},
    {"http_listen_addresses", kList, kNo, 0, 0, kRestart, kPlain,
     "Comma-separated addresses the HTTP endpoint listens on; '*' for all.",
     &setAddressList<&Config::http_listen_addresses>,
     &showAddressList<&Config::http_listen_addresses>, kNoChoices},
    {"http_token", kString, kNo, 0, 0, kRestart, kSecret,
     "Bearer token required by the HTTP POST endpoints; empty refuses every POST.",
     PG_STR(http_token)},
    // ---- load balancing and read/write routing (docs/routing.md) ----
    {"load_balance_mode", kBool, kNo, 0, 0, kReload, kPlain,
     "Send reads to standbys (and the primary) by backend_weight; writes always to the primary.",
     PG_BOOL(load_balance_mode)},
    {"statement_level_load_balance", kBool, kNo, 0, 0, kReload, kPlain,
     "Choose the load-balance node for every statement instead of once per session.",
     PG_BOOL(statement_level_load_balance)},
    {"disable_load_balance_on_write", kEnum, kNo, 0, 0, kReload, kPlain,
     "After a write, where reads go: off, transaction, trans_transaction, always, dml_adaptive.",
     &setDisableLbOnWrite, &showString<&Config::disable_load_balance_on_write>, kLbOnWrite},
    {"write_function_list", kString, kNo, 0, 0, kReload, kPlain,
     "Comma-separated regexes of functions that write (the others are read-only).",
     PG_STR(write_function_list)},
    {"read_only_function_list", kString, kNo, 0, 0, kReload, kPlain,
     "Comma-separated regexes of read-only functions (the others write).",
     PG_STR(read_only_function_list)},
    {"primary_routing_query_pattern_list", kString, kNo, 0, 0, kReload, kPlain,
     "';'-separated regexes; a matching statement always goes to the primary.",
     PG_STR(primary_routing_query_pattern_list)},
    {"check_temp_table", kEnum, kNo, 0, 0, kReload, kPlain,
     "Keep statements on temporary tables on the primary (catalog, trace, none, on, off).",
     &setCheckTempTable, &showBool<&Config::check_temp_table>, kCheckTemp},
    {"check_unlogged_table", kBool, kNo, 0, 0, kReload, kPlain,
     "Keep statements on unlogged tables on the primary (looked up in pg_class).",
     PG_BOOL(check_unlogged_table)},
    {"relcache_expire", kDuration, kS, 0, kIntMax, kReload, kPlain,
     "How long catalog lookups (function volatility, unlogged tables) are cached; 0 = forever.",
     PG_DUR(relcache_expire)},
    {"delay_threshold", kInt, kNo, 0, kIntMax, kReload, kPlain,
     "A standby whose replay lags the primary by more than this many bytes gets no reads; 0 = "
     "off.",
     PG_INT(delay_threshold)},
    {"delay_threshold_by_time", kDuration, kMs, 0, kIntMax, kReload, kPlain,
     "A standby whose replay lags the primary by more than this time (pg_stat_replication."
     "replay_lag) gets no reads; when > 0 it replaces delay_threshold. 0 = off.",
     PG_DUR(delay_threshold_by_time)},
    {"prefer_lower_delay_standby", kBool, kNo, 0, 0, kReload, kPlain,
     "When a session's standby lags beyond delay_threshold, read from the least-lagging "
     "standby instead of choosing by weight.",
     PG_BOOL(prefer_lower_delay_standby)},
    {"causal_reads", kBool, kNo, 0, 0, kReload, kPlain,
     "After a session writes, its reads go to a standby only once it replayed the write; "
     "else to the primary.",
     PG_BOOL(causal_reads)},
    {"app_name_redirect_preference_list", kString, kNo, 0, 0, kReload, kPlain,
     "'regex:primary|standby|node id[(weight)],...': where sessions of a matching "
     "application_name read; takes precedence over database_redirect_preference_list.",
     &setRedirectList<&Config::app_name_redirect_preference_list, &Config::app_name_redirect>,
     &showString<&Config::app_name_redirect_preference_list>, kNoChoices},
    {"database_redirect_preference_list", kString, kNo, 0, 0, kReload, kPlain,
     "'regex:primary|standby|node id[(weight)],...': where sessions on a matching database "
     "read.",
     &setRedirectList<&Config::database_redirect_preference_list, &Config::database_redirect>,
     &showString<&Config::database_redirect_preference_list>, kNoChoices},
    {"allow_sql_comments", kBool, kNo, 0, 0, kReload, kPlain,
     "off: a read that starts with a comment goes to the primary; on: comments are ignored "
     "(the /*NO LOAD BALANCE*/ hint still counts).",
     PG_BOOL(allow_sql_comments)},
    {"dml_adaptive_object_relationship_list", kString, kNo, 0, 0, kReload, kPlain,
     "'object:dependent,...' (object may be func()): with dml_adaptive, a write to object "
     "sends reads of dependent to the primary for the rest of the transaction.",
     &setObjectRelations, &showString<&Config::dml_adaptive_object_relationship_list>, kNoChoices},
});

#undef PG_STR
#undef PG_PATH
#undef PG_BOOL
#undef PG_INT
#undef PG_DUR
#undef PG_CHOICE

// ---- backend keys ----

// pgpool-II: an empty backend_hostname means the Unix-domain socket in /tmp.
Result setBackendHostname(BackendConfig& b, std::string_view v, const SetContext&) {
  b.hostname = trim(v).empty() ? std::string("/tmp") : std::string(v);
  return {};
}
std::string showBackendHostname(const BackendConfig& b) {
  return b.hostname;
}

Result setBackendPort(BackendConfig& b, std::string_view v, const SetContext& ctx) {
  std::optional<int64_t> n = parseInteger(v, Unit::kNone);
  if (!n) return invalid(ctx.key, v);
  if (*n < 1 || *n > 65535) return outOfRange(ctx.key, v, "1", "65535");
  b.port = static_cast<int>(*n);
  return {};
}
std::string showBackendPort(const BackendConfig& b) {
  return std::to_string(b.port);
}

Result setBackendWeight(BackendConfig& b, std::string_view v, const SetContext& ctx) {
  std::optional<double> w = parseQuantity(v, Unit::kNone);
  if (!w) return invalid(ctx.key, v);
  if (!(*w >= 0.0 && *w <= 100000000.0)) return outOfRange(ctx.key, v, "0", "100000000");
  b.weight = *w;
  return {};
}
std::string showBackendWeight(const BackendConfig& b) {
  return fmt::format("{}", b.weight);
}

Result setBackendDataDirectory(BackendConfig& b, std::string_view v, const SetContext&) {
  b.data_directory = std::string(v);  // a path on the database server: never resolved here
  return {};
}
std::string showBackendDataDirectory(const BackendConfig& b) {
  return b.data_directory;
}

// pgpool: '|'-separated ALLOW_TO_FAILOVER, DISALLOW_TO_FAILOVER, ALWAYS_PRIMARY.
Result setBackendFlag(BackendConfig& b, std::string_view v, const SetContext& ctx) {
  bool allow = false;
  bool disallow = false;
  bool always_primary = false;
  std::string_view rest = v;
  while (true) {
    size_t bar = rest.find('|');
    std::string item = lower(trim(rest.substr(0, bar)));
    if (item == "allow_to_failover") {
      allow = true;
    } else if (item == "disallow_to_failover") {
      disallow = true;
    } else if (item == "always_primary") {
      always_primary = true;
    } else {
      return invalid(ctx.key, v,
                     "available values: ALLOW_TO_FAILOVER, DISALLOW_TO_FAILOVER, ALWAYS_PRIMARY, "
                     "'|'-separated");
    }
    if (bar == std::string_view::npos) break;
    rest = rest.substr(bar + 1);
  }
  if (allow && disallow) {
    return invalid(ctx.key, v, "ALLOW_TO_FAILOVER and DISALLOW_TO_FAILOVER cannot be set together");
  }
  b.allow_failover = !disallow;
  if (always_primary) {
    b.flag = BackendFlag::kAlwaysPrimary;
  } else {
    b.flag = disallow ? BackendFlag::kDisallowToFailover : BackendFlag::kAllowToFailover;
  }
  return {};
}
std::string showBackendFlag(const BackendConfig& b) {
  std::string failover = b.allow_failover ? "ALLOW_TO_FAILOVER" : "DISALLOW_TO_FAILOVER";
  if (b.flag == BackendFlag::kAlwaysPrimary) return "ALWAYS_PRIMARY|" + failover;
  return failover;
}

Result setBackendApplicationName(BackendConfig& b, std::string_view v, const SetContext&) {
  b.application_name = std::string(v);
  return {};
}
std::string showBackendApplicationName(const BackendConfig& b) {
  return b.application_name;
}

// Per-node health-check overrides: the value is parsed by the global key's own rules (same
// type, default unit and range; messages name the suffixed key) and kept as an optional.
// An empty value ('') means not set: the global key applies.
template <auto OM, auto CM>
Result setHealthOverride(BackendConfig& b, std::string_view v, const SetContext& ctx) {
  std::string_view base;
  int index = 0;
  const KeyDef* global = splitIndex(ctx.key, &base, &index) ? findKey(base) : nullptr;
  if (global == nullptr) return std::unexpected(fmt::format("no global key for \"{}\"", ctx.key));
  KeyDef def = *global;
  def.name = ctx.key;
  auto& out = b.health_check.*OM;
  if (trim(v).empty()) {  // '' = not set: the global key applies (what SHOW prints then)
    out.reset();
    return {};
  }
  Config scratch;
  if (auto r = def.set(scratch, def, v, ctx); !r) return r;
  out = scratch.*CM;
  return {};
}
template <auto OM>
std::string showHealthOverride(const BackendConfig& b) {
  const auto& o = b.health_check.*OM;
  if (!o) return "";
  using T = std::decay_t<decltype(*o)>;
  if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
    return formatMilliseconds(o->count());
  } else if constexpr (std::is_same_v<T, int>) {
    return std::to_string(*o);
  } else {
    return *o;
  }
}
#define PG_NODE(field, config_field)                                       \
  &setHealthOverride<&HealthCheckOverrides::field, &Config::config_field>, \
      &showHealthOverride<&HealthCheckOverrides::field>

const std::array kBackendKeys = std::to_array<BackendKeyDef>({
    {"backend_hostname", kString, kRestart,
     "Host name, IP address or Unix socket directory of the server.", &setBackendHostname,
     &showBackendHostname},
    {"backend_port", kInt, kRestart, "Port of the server.", &setBackendPort, &showBackendPort},
    {"backend_weight", kReal, kReload, "Relative load-balancing weight.", &setBackendWeight,
     &showBackendWeight},
    {"backend_data_directory", kString, kRestart, "Data directory of the server.",
     &setBackendDataDirectory, &showBackendDataDirectory},
    {"backend_flag", kString, kReload,
     "ALLOW_TO_FAILOVER, DISALLOW_TO_FAILOVER and/or ALWAYS_PRIMARY, '|'-separated.",
     &setBackendFlag, &showBackendFlag},
    {"backend_application_name", kString, kReload,
     "application_name of the server's walreceiver (for SHOW pool_nodes).",
     &setBackendApplicationName, &showBackendApplicationName},
    // Per-node health-check overrides ('' = the global key applies).
    {"health_check_period", kDuration, kReload,
     "This node's health_check_period (0 disables its health checks); '' = the global value.",
     PG_NODE(period, health_check_period)},
    {"health_check_timeout", kDuration, kReload, "This node's health_check_timeout.",
     PG_NODE(timeout, health_check_timeout)},
    {"health_check_max_retries", kInt, kReload, "This node's health_check_max_retries.",
     PG_NODE(max_retries, health_check_max_retries)},
    {"health_check_retry_delay", kDuration, kReload, "This node's health_check_retry_delay.",
     PG_NODE(retry_delay, health_check_retry_delay)},
    {"connect_timeout", kDuration, kReload,
     "Timeout for the connection phase of this node's health checks.",
     PG_NODE(connect_timeout, connect_timeout)},
    {"health_check_user", kString, kReload, "This node's health_check_user.",
     PG_NODE(user, health_check_user)},
    {"health_check_password", kString, kReload, "This node's health_check_password.",
     PG_NODE(password, health_check_password), /*secret=*/true},
    {"health_check_database", kString, kReload, "This node's health_check_database.",
     PG_NODE(database, health_check_database)},
});
#undef PG_NODE

// ---- pgpool-II keys accepted with a "not implemented" warning ----
// Built from pgpool-II 4.3's pgpool.conf.sample and pool_config_variables.c; keys added in
// 4.4/4.5 and names used by older releases are included so upgrades from any pgpool-II
// configuration warn instead of failing.
constexpr auto kUnimplemented = std::to_array<std::string_view>({
    // connections
    "reserved_connections",
    "pcp_listen_addresses",
    "pcp_port",
    "pcp_socket_dir",
    "serialize_accept",
    "ssl_ca_cert_dir",
    "ssl_crl_file",
    "ssl_ecdh_curve",
    "ssl_dh_params_file",
    "ssl_passphrase_command",
    // pools and process management
    "process_management_mode",
    "process_management_strategy",
    "min_spare_children",
    "max_spare_children",
    "child_life_time",
    "child_max_connections",
    "connection_cache",
    // logging
    "log_hostname",
    "log_per_node_statement",
    "log_client_messages",
    "log_standby_delay",
    "log_error_verbosity",
    "client_min_messages",
    "syslog_facility",
    "syslog_ident",
    "logging_collector",
    "log_directory",
    "log_filename",
    "log_file_mode",
    "log_truncate_on_rotation",
    "log_rotation_age",
    "log_rotation_size",
    "log_backend_messages",
    // replication / load balancing
    "replication_mode",
    "replicate_select",
    "insert_lock",
    "lobj_lock_table",
    "replication_stop_on_mismatch",
    "failover_if_affected_tuples_mismatch",
    "ignore_leading_white_space",
    "relcache_query_target",
    // health check and failover
    "health_check_test",
    "failback_command",
    "fail_over_on_backend_error",
    "failover_on_backend_shutdown",
    // online recovery
    "recovery_user",
    "recovery_password",
    "recovery_1st_stage_command",
    "recovery_2nd_stage_command",
    "recovery_timeout",
    "client_idle_limit_in_recovery",
    // watchdog
    "use_watchdog",
    "trusted_servers",
    "trusted_server_command",
    "ping_path",
    "delegate_ip",
    "if_cmd_path",
    "if_up_cmd",
    "if_down_cmd",
    "arping_path",
    "arping_cmd",
    "clear_memqcache_on_escalation",
    "wd_escalation_command",
    "wd_de_escalation_command",
    "failover_when_quorum_exists",
    "failover_require_consensus",
    "allow_multiple_failover_requests_from_node",
    "enable_consensus_with_half_votes",
    "wd_remove_shutdown_nodes",
    "wd_lost_node_removal_timeout",
    "wd_no_show_node_removal_timeout",
    "wd_monitoring_interfaces_list",
    "wd_lifecheck_method",
    "wd_interval",
    "wd_priority",
    "wd_ipc_socket_dir",
    "wd_heartbeat_keepalive",
    "wd_heartbeat_deadtime",
    "wd_life_point",
    "wd_lifecheck_query",
    "wd_lifecheck_dbname",
    "wd_lifecheck_user",
    "wd_lifecheck_password",
    "wd_authkey",
    // in-memory query cache and relation cache
    "memory_cache_enabled",
    "memqcache_method",
    "memqcache_memcached_host",
    "memqcache_memcached_port",
    "memqcache_total_size",
    "memqcache_max_num_cache",
    "memqcache_expire",
    "memqcache_auto_cache_invalidation",
    "memqcache_maxcache",
    "memqcache_cache_block_size",
    "memqcache_oiddir",
    "cache_safe_memqcache_table_list",
    "cache_unsafe_memqcache_table_list",
    "relcache_size",
    "enable_shared_relcache",
    // names used by pgpool-II releases before 4.2/4.3
    "socket_dir",
    "master_slave_mode",
    "master_slave_sub_mode",
    "follow_master_command",
    "white_function_list",
    "black_function_list",
    "black_query_pattern_list",
    "white_memqcache_table_list",
    "black_memqcache_table_list",
    "debug_level",
    "wd_hostname",
    "wd_port",
    "wd_heartbeat_port",
});

// pgpool keys that take a node index: watchdog nodes. (The per-node health-check overrides
// are implemented: see kBackendKeys.)
constexpr auto kUnimplementedIndexed = std::to_array<std::string_view>({
    "hostname",
    "wd_port",
    "pgpool_port",
    "heartbeat_hostname",
    "heartbeat_port",
    "heartbeat_device",
    "heartbeat_destination",
    "heartbeat_destination_port",
    "other_pgpool_hostname",
    "other_pgpool_port",
    "other_wd_port",
});

}  // namespace

std::span<const KeyDef> keyTable() {
  return kKeys;
}

const KeyDef* findKey(std::string_view name) {
  for (const KeyDef& k : kKeys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::span<const BackendKeyDef> backendKeys() {
  return kBackendKeys;
}

bool splitIndex(std::string_view name, std::string_view* base, int* index) {
  size_t digits = 0;
  while (digits < name.size() && name[name.size() - 1 - digits] >= '0' &&
         name[name.size() - 1 - digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits == name.size()) return false;
  *base = name.substr(0, name.size() - digits);
  std::string_view num = name.substr(name.size() - digits);
  int value = 0;
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
  *index = (ec == std::errc() && ptr == num.data() + num.size()) ? value : -1;
  return true;
}

bool isUnimplementedPgpoolKey(std::string_view name) {
  return std::find(kUnimplemented.begin(), kUnimplemented.end(), name) != kUnimplemented.end();
}

bool isUnimplementedPgpoolIndexedBase(std::string_view base) {
  return std::find(kUnimplementedIndexed.begin(), kUnimplementedIndexed.end(), base) !=
         kUnimplementedIndexed.end();
}

const char* ignoredKeyNotice(std::string_view name) {
  if (name == "num_init_children") {
    return "num_init_children is ignored: pgpilot uses worker_threads and max_client_connections";
  }
  if (name == "listen_backlog_multiplier") {
    return "listen_backlog_multiplier is ignored: pgpilot sets the listen(2) backlog with "
           "listen_backlog";
  }
  return nullptr;
}

std::vector<std::string_view> unimplementedPgpoolKeys() {
  std::vector<std::string_view> out(kUnimplemented.begin(), kUnimplemented.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace pgpilot::config
