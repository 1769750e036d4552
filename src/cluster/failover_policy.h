// Failover policy: the pure decisions of a failover, kept apart from I/O so they can be
// unit tested exhaustively — which standby to promote, whether promoting it could lose
// commits that synchronous replication acknowledged, what synchronous_standby_names
// becomes, how a standby's primary_conninfo is repointed, and pgpool's %-placeholders.
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgpilot::cluster {

struct Candidate {
  int id = 0;
  uint64_t receive_lsn = 0;
  uint64_t replay_lsn = 0;
  std::string application_name;
  bool allow_failover = true;
  int sync_priority = 0;  // from the old primary's pg_stat_replication; 0 = async
  bool was_sync = false;  // sync_state was sync or quorum when last seen
};

// failover_candidate_policy: "lsn" (highest received, then replayed LSN, ties by node
// order), "sync_priority" (the synchronous standby with the lowest sync_priority, then by
// LSN), "node_order" (lowest node id). Nodes with allow_failover false are skipped.
std::optional<int> chooseCandidate(std::string_view policy, const std::vector<Candidate>& c);

// synchronous_standby_names, parsed: `FIRST 2 (a, b)`, `ANY 1 (a, "b")`, `2 (a, b)`, `a, b`.
struct SyncNames {
  std::string method;  // "FIRST" or "ANY"
  int num_sync = 1;
  std::vector<std::string> names;  // "*" matches any standby
  bool empty() const { return names.empty(); }
};
SyncNames parseSyncNames(std::string_view s);
std::string formatSyncNames(const SyncNames& s);  // '' when no names
bool syncNamesInclude(const SyncNames& s, std::string_view application_name);

// May a standby be promoted without losing a commit that synchronous replication
// acknowledged? `sync_rows` are the old primary's synchronous standbys when last seen
// (application names whose sync_state was sync or quorum), `alive` the application names
// of the standbys that can still be promoted. With FIRST, one surviving synchronous
// standby suffices; with ANY k of n, at least n - k + 1 of them must survive (then the
// most advanced has every acknowledged commit). Always true when nothing was synchronous.
bool promotionIsSafe(const SyncNames& names, const std::vector<std::string>& sync_rows,
                     const std::vector<std::string>& alive);

// Replaces host and port in a libpq connection string, keeping every other keyword
// (user, passfile, sslmode ...); application_name too, unless a new one is given (a
// demoted primary reuses its new primary's primary_conninfo under its own name).
// Errors: the string does not parse.
std::expected<std::string, std::string> repointConninfo(
    std::string_view conninfo, std::string_view host, int port,
    std::optional<std::string_view> application_name = std::nullopt);

// A word for /bin/sh: single-quoted, with embedded quotes escaped ('\'').
std::string shellQuote(std::string_view word);

// Planned switchover, built-in demotion: the shell command the old primary runs (through
// COPY ... TO PROGRAM, as the postgres OS user) to restart itself as a standby once
// standby.signal and primary_conninfo are in place. It detaches from the backend that
// starts it (setsid, no inherited descriptors) because that backend ends with the server;
// a short pause lets the COPY return first. The server log of the restart goes to
// <datadir>/pgpilot_restart.log.
std::string restartAsStandbyCommand(std::string_view bindir, std::string_view datadir);

// pgpool-II failover_command / follow_primary_command placeholders.
struct PlaceholderValues {
  int failed_id = -1;  // %d %h %p %D: the failed node (follow: the standby to repoint)
  std::string failed_host;
  int failed_port = 0;
  std::string failed_dir;
  int new_id = -1;  // %m %H %r %R: the new primary
  std::string new_host;
  int new_port = 0;
  std::string new_dir;
  int old_main_id = -1;          // %M
  int old_primary_id = -1;       // %P
  std::string old_primary_host;  // %N
  int old_primary_port = 0;      // %S
};
std::string expandPlaceholders(std::string_view command, const PlaceholderValues& v);

}  // namespace pgpilot::cluster
