// pgpilot configuration: an immutable snapshot of every setting.
//
// Purpose: parsed once from a postgresql.conf-syntax file (pgpool-II-compatible names where
// the meaning is the same) and passed around as std::shared_ptr<const Config>. Nothing
// mutates a Config after loading; a reload builds a new one.
// Thread-safety: immutable after load; share freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/redirect.h"

namespace pgpilot::config {

enum class BackendFlag { kAllowToFailover, kDisallowToFailover, kAlwaysPrimary };

// Per-node health-check settings (pgpool-II's health_check_period0, connect_timeout1, ...):
// what is set overrides the global key for that node only; unset means the global value.
// An empty user, password or database counts as unset.
struct HealthCheckOverrides {
  std::optional<std::chrono::milliseconds> period;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<int> max_retries;
  std::optional<std::chrono::milliseconds> retry_delay;
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::optional<std::string> database;
  bool operator==(const HealthCheckOverrides&) const = default;
};

struct BackendConfig {
  int id = 0;
  std::string hostname;  // host name, IP, or a unix socket directory (starts with '/')
  int port = 5432;
  double weight = 1.0;
  std::string data_directory;
  BackendFlag flag = BackendFlag::kAllowToFailover;
  std::string application_name;
  // False when backend_flag contains DISALLOW_TO_FAILOVER. Kept apart from `flag` because
  // pgpool allows 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER' (flag is then kAlwaysPrimary).
  bool allow_failover = true;
  HealthCheckOverrides health_check;
};

enum class ServerSslMode { kDisable, kPrefer, kRequire };

struct Config {
  // Where the file came from (for messages and reload).
  std::string source_path;

  // ---- connections (pgpool names) ----
  std::vector<std::string> listen_addresses = {"localhost"};  // "*" = all
  int port = 9999;
  int listen_backlog = 1024;
  // Directories for a Unix-domain socket each (.s.PGSQL.<port>). Empty (our default):
  // none; pgpool-II's default is /tmp.
  std::vector<std::string> unix_socket_directories;
  std::string unix_socket_group;  // '' = the group of the pgpilot process
  int unix_socket_permissions = 0777;
  int max_client_connections = 10000;  // ours; pgpool has num_init_children

  // ---- threads (ours) ----
  int worker_threads = 0;  // 0 = one per core

  // ---- backends ----
  std::vector<BackendConfig> backends;

  // ---- pooling ----
  int max_pool = 100;  // server connections per (node, user, database), across workers
  std::chrono::milliseconds pool_wait_timeout{5000};      // ours: bounded wait when full
  std::chrono::milliseconds connection_life_time{0};      // pgpool: 0 = no limit
  std::chrono::milliseconds server_idle_timeout{300000};  // ours; idle pooled conn closed
  std::chrono::milliseconds client_idle_limit{0};         // pgpool: 0 = no limit
  std::string reset_query_list = "DISCARD ALL";           // ';'-separated? pgpool: list
  std::chrono::milliseconds connect_timeout{10000};       // to servers
  std::chrono::milliseconds authentication_timeout{60000};

  // ---- authentication ----
  bool enable_pool_hba = false;
  std::string pool_hba_file;  // hba-style rules; relative paths resolved to the config dir
  std::string pool_passwd;    // password file (pgpool's pool_passwd formats)
  bool allow_clear_text_frontend_auth = false;

  // ---- TLS towards clients ----
  bool ssl = false;
  std::string ssl_cert;
  std::string ssl_key;
  std::string ssl_ca_cert;
  std::string ssl_ciphers = "HIGH:MEDIUM:+3DES:!aNULL";
  bool ssl_prefer_server_ciphers = false;
  // ---- TLS towards servers (ours) ----
  ServerSslMode backend_sslmode = ServerSslMode::kDisable;

  // ---- health check / roles (used by cluster) ----
  std::string sr_check_user;
  std::string sr_check_password;
  std::string sr_check_database = "postgres";
  std::chrono::milliseconds sr_check_period{10000};  // pgpool: role/lag check interval
  std::string health_check_user;
  std::string health_check_password;
  std::string health_check_database = "postgres";
  std::chrono::milliseconds health_check_period{0};
  std::chrono::milliseconds health_check_timeout{20000};
  // ---- failure detection and failover ----
  int health_check_max_retries = 0;
  std::chrono::milliseconds health_check_retry_delay{1000};
  std::string failover_command;        // '' = built-in pg_promote()
  std::string follow_primary_command;  // '' = built-in primary_conninfo update
  std::chrono::milliseconds failover_command_timeout{60000};  // ours
  std::chrono::milliseconds search_primary_node_timeout{300000};
  std::chrono::milliseconds follow_primary_timeout{30000};  // ours
  bool failover_on_backend_error = true;
  bool detach_false_primary = false;
  bool auto_failback = false;
  std::chrono::milliseconds auto_failback_interval{60000};
  std::string failover_candidate_policy = "lsn";         // ours: lsn | sync_priority | node_order
  std::string sync_replication_policy = "availability";  // ours: availability | durability
  std::string status_file;                               // ours; '' = logdir/pgpilot_status
  // Planned switchover (ours): how long to wait for sessions to finish their transactions,
  // the bound on the whole demote/promote sequence, and an optional command that demotes
  // the old primary ('' = built-in restart as a standby through COPY ... TO PROGRAM).
  std::chrono::milliseconds switchover_drain_timeout{10000};
  std::chrono::milliseconds switchover_timeout{60000};
  std::string switchover_command;
  // ours (docs/failover.md, "Replication slots"): one physical slot per standby on the
  // primary, named pgpilot_node_<id>, and primary_slot_name set on each standby.
  bool replication_slots = false;
  bool drop_slots_of_detached_nodes = true;  // with replication_slots: drop inactive slots

  // ---- logging ----
  std::string log_min_messages = "warning";  // error, warning, notice, info, debug1..debug5
  std::string log_destination = "stderr";    // stderr or a file path via log_file
  std::string log_file;                      // ours: when set, logs go to this file
  bool log_connections = false;
  bool log_disconnections = false;
  bool log_statement = false;
  std::string log_line_prefix = "%t: pid %p: ";  // pgpool-style; %u user %d db %a app

  // ---- process ----
  std::string pid_file_name = "/tmp/pgpilot.pid";
  std::string logdir = "/tmp";  // where the status file lives (pgpool: logdir)
  std::chrono::milliseconds smart_shutdown_timeout{30000};  // ours
  std::chrono::milliseconds failover_hold_timeout{30000};   // ours

  // ---- admin console (ours; see docs/operations.md) ----
  int admin_port = 0;  // 0 = no admin port
  std::vector<std::string> admin_listen_addresses = {"localhost"};
  std::vector<std::string> admin_users;  // user names allowed on the admin port
  // ---- HTTP endpoint (ours; docs/http.md) ----
  int http_port = 0;  // 0 = off
  std::vector<std::string> http_listen_addresses = {"127.0.0.1"};
  std::string http_token;  // empty: every POST is refused
  // ---- load balancing and read/write routing (pgpool names; docs/routing.md) ----
  bool load_balance_mode = false;  // pgpool's default is on; pgpilot's is off
  bool statement_level_load_balance = false;
  // off, transaction, trans_transaction, always, dml_adaptive
  std::string disable_load_balance_on_write = "transaction";
  std::string write_function_list;                 // comma-separated regexes
  std::string read_only_function_list;             // comma-separated regexes
  std::string primary_routing_query_pattern_list;  // ';'-separated regexes
  bool check_temp_table = true;                    // catalog/trace/on = true; none/off = false
  bool check_unlogged_table = true;
  std::chrono::milliseconds relcache_expire{0};  // catalog lookups kept this long; 0 = forever
  int delay_threshold = 0;  // bytes of replay lag that take a standby out of rotation; 0 = off
  // pgpool 4.4+: replay lag in time (pg_stat_replication.replay_lag) that takes a standby out
  // of rotation; when > 0 it replaces delay_threshold. 0 = off.
  std::chrono::milliseconds delay_threshold_by_time{0};
  bool prefer_lower_delay_standby = false;
  bool causal_reads = false;  // ours: read-your-writes across nodes
  // 'regex:primary|standby|node[(weight)],...': the session's load-balance node by
  // application_name (startup packet) or database; app_name wins (config/redirect.h).
  std::string app_name_redirect_preference_list;
  std::vector<RedirectRule> app_name_redirect;
  std::string database_redirect_preference_list;
  std::vector<RedirectRule> database_redirect;
  // Off (pgpool's default): a read that starts with a comment is not load balanced. On:
  // comments are ignored; only the /*NO LOAD BALANCE*/ hint keeps a read on the primary.
  bool allow_sql_comments = false;
  // 'object:dependent,...' for disable_load_balance_on_write = dml_adaptive.
  std::string dml_adaptive_object_relationship_list;
  std::vector<ObjectRelation> dml_adaptive_relations;
};

// A problem found while loading: "file:line: message".
struct ConfigError {
  std::string file;
  int line = 0;  // 0 when not tied to one line
  std::string message;
  std::string str() const;
};

// Non-fatal messages produced while loading (unimplemented pgpool keys, ignored keys).
struct LoadResult {
  std::shared_ptr<const Config> config;
  std::vector<std::string> warnings;
  std::vector<std::string> notices;
};

// Loads and validates a config file. Every unknown key or bad value is an error naming
// file, line and key; keys that pgpool-II knows but pgpilot does not implement produce one
// warning each.
std::expected<LoadResult, ConfigError> loadFile(const std::string& path);
// Same, from text (tests, fuzzing). `name` is used in messages; relative include targets
// and relative file names are resolved against its directory.
std::expected<LoadResult, ConfigError> loadString(std::string_view text, const std::string& name);

struct LoadOptions {
  // When false, include / include_if_exists / include_dir are errors, so loading touches
  // no file at all (the fuzzer must not read /dev/stdin because an input said so).
  bool follow_includes = true;
};
std::expected<LoadResult, ConfigError> loadString(std::string_view text, const std::string& name,
                                                  const LoadOptions& options);

// The health-check settings that apply to one node: its per-node overrides, else the
// global keys.
struct HealthCheckSettings {
  std::chrono::milliseconds period{0};
  std::chrono::milliseconds timeout{0};
  int max_retries = 0;
  std::chrono::milliseconds retry_delay{0};
  std::chrono::milliseconds connect_timeout{0};
  std::string user;
  std::string password;
  std::string database;
};
HealthCheckSettings healthCheckSettings(const Config& config, const BackendConfig& backend);
// By backend id; the global values when `config` has no such backend.
HealthCheckSettings healthCheckSettings(const Config& config, int backend_id);

// ---- helpers for reload and SHOW (see docs/configuration.md) ----

// True when a change of `key` only takes effect after a restart. Accepts backend keys with
// their numeric suffix ("backend_port1"). Unknown keys return false.
bool needsRestart(std::string_view key);

// Names of the settings whose values differ between two snapshots, in key-table order,
// then backend keys ("backend_hostname2") by backend id. A backend present in only one
// snapshot contributes all of its keys.
std::vector<std::string> diffKeys(const Config& a, const Config& b);

// The subset of diffKeys(old_config, new_config) that a reload cannot apply. Like pgpool,
// adding a new backend is allowed on reload; changing the address of an existing one is not.
std::vector<std::string> restartRequiredKeys(const Config& old_config, const Config& new_config);

// What a reload applies: `next` with every restart-only setting that differs from `old`
// put back to its old value (the running process keeps using it), and backends that `next`
// no longer has kept. The names of the settings held back are appended to `kept`.
// New backends are taken from `next` (adding a backend is a reload-time change).
Config keepRestartValues(const Config& old, const Config& next, std::vector<std::string>* kept);

// One row of SHOW pool_status. Secrets (passwords) are shown as "********" when set.
struct SettingInfo {
  std::string name;
  std::string value;  // as text, in the key's default unit for times ("10s", "500ms")
  std::string description;
  bool needs_restart = false;
};
std::vector<SettingInfo> describeSettings(const Config& config);

// pgpool-II setting names that are accepted with a "not implemented" warning.
std::vector<std::string_view> unimplementedPgpoolKeys();

}  // namespace pgpilot::config
