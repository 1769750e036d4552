#pragma once
// SQL classification with the real PostgreSQL grammar (libpg_query, PostgreSQL 15).
// classify() parses a statement string and reports what the statement does as far as
// routing is concerned: whether it may run on a hot standby, what kind of statement it is
// (transaction control, session state, ...), and which functions and relations it names,
// so that the policy (policy.h) can apply the catalog- and configuration-dependent rules
// afterwards. docs/routing.md lists every rule and why.
//
// A Classification depends only on the statement's shape (lexer.h): it never reads a
// literal's value, except in SET statements, whose literals are part of the shape. That
// is what makes it safe to cache per shape (cache.h).
//
// Cost: one libpg_query parse to JSON, read with simdjson, and a tree walk, ~3.5-5 us for
// pgbench-sized statements. Thread-safety: classify() is reentrant (libpg_query keeps its
// memory context per thread); call it from any worker.
//
//   Classification c = classify("SELECT * FROM t FOR UPDATE");
//   // c.target == Target::kPrimary, c.reason == "SELECT ... FOR UPDATE"
#include <string>
#include <string_view>
#include <vector>

namespace pgpilot::router {

// Where a statement may run. kAny: a standby can run it (reads); kPrimary: only the
// primary can (or must, to keep the session consistent).
enum class Target { kAny, kPrimary };

std::string_view targetName(Target t) noexcept;  // "any" / "primary"

struct Classification {
  enum class Kind {
    kRead,   // SELECT / VALUES / TABLE / EXPLAIN of a read
    kWrite,  // INSERT / UPDATE / DELETE / MERGE / TRUNCATE
    kDdl,    // schema changes, SELECT INTO, maintenance (VACUUM, CHECKPOINT, ...)
    kBegin,
    kCommit,
    kRollback,
    kSavepoint,
    kReleaseSavepoint,
    kRollbackTo,
    kPrepareTransaction,
    kCommitPrepared,
    kRollbackPrepared,
    kSet,  // SET, SET LOCAL, SET TRANSACTION, SET SESSION CHARACTERISTICS, SET CONSTRAINTS
    kReset,
    kDiscard,
    kPrepare,
    kDeallocate,
    kExecute,
    kDeclareCursor,
    kFetch,  // FETCH and MOVE: run where the cursor lives
    kClose,  // CLOSE cursor
    kListen,
    kUnlisten,
    kNotify,
    kLock,
    kCopyFrom,
    kCopyTo,
    kShow,
    kOther,  // DO, CALL, LOAD, anything not listed above
  };

  Target target = Target::kPrimary;
  std::string reason;  // short why, e.g. "INSERT", "SELECT ... FOR UPDATE", "calls nextval"
  Kind kind = Kind::kOther;

  // Transaction characteristics. begin_*: options of BEGIN / START TRANSACTION.
  // set_transaction_*: SET TRANSACTION ... / SET transaction_isolation|transaction_read_only.
  // session_default_*: SET SESSION CHARACTERISTICS AS TRANSACTION ... /
  // SET default_transaction_isolation|default_transaction_read_only.
  bool begin_read_only = false;
  bool begin_serializable = false;
  bool set_transaction_read_only = false;
  bool set_transaction_serializable = false;
  bool session_default_read_only = false;
  bool session_default_serializable = false;

  // Every function called, as PostgreSQL resolves the name (unquoted parts folded to
  // lower case, quoted parts verbatim), schema-qualified as written: "public.f".
  std::vector<std::string> functions;
  // Every relation referenced (tables, views, sequences, CTE names), qualified as written.
  std::vector<std::string> relations;

  bool has_writing_cte = false;  // INSERT/UPDATE/DELETE inside a WITH, at any depth
  bool select_into = false;      // SELECT INTO / CREATE TABLE AS / CREATE MATERIALIZED VIEW
  bool locking_clause = false;   // FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE anywhere
  bool advisory_lock = false;    // calls a pg_advisory_* / pg_try_advisory_* function
  // Changes session state the session must replay on, or pin to, the nodes it uses:
  // SET (not LOCAL/TRANSACTION), RESET, DISCARD, PREPARE, DEALLOCATE, LISTEN/UNLISTEN,
  // CREATE TEMP ..., DECLARE ... WITH HOLD, session-level advisory locks,
  // set_config(..., false), LOAD.
  bool session_state = false;

  // The object the statement names, when the session needs it: prepared statement
  // (PREPARE/EXECUTE/DEALLOCATE; empty for DEALLOCATE ALL), cursor (DECLARE/FETCH/MOVE/
  // CLOSE), savepoint, LISTEN/UNLISTEN/NOTIFY channel, or SET/RESET/SHOW parameter name.
  std::string object_name;

  int statement_count = 1;  // > 1 for a multi-statement string
  // libpg_query rejected the text. Not cached: a literal's content alone can make a
  // statement invalid (PostgreSQL 15's "trailing junk after numeric literal" for 0x1F,
  // bad escapes in U&''), and such a statement must not pin its shape to the primary.
  bool parse_error = false;
};

// Classifies one query string (possibly several statements separated by ';').
// Parse failure -> kPrimary, reason "parse error". A multi-statement string runs on the
// primary unless every statement is a plain read.
Classification classify(std::string_view sql);

std::string_view kindName(Classification::Kind kind) noexcept;

}  // namespace pgpilot::router
