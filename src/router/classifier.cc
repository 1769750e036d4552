#include "router/classifier.h"

#include "router/lexer.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

namespace pgpilot::router {
namespace {

using Kind = Classification::Kind;

// Deeper trees are not walked (the statement goes to the primary). PostgreSQL itself
// refuses much deeper nesting, so this only bounds our recursion on hostile input. 400
// levels keep our own walk well inside the stack even with ASan frames (2,000 overflowed).
constexpr int kMaxDepth = 400;

// Budget for Shape::nesting_cost above which a statement is not parsed at all (it goes to
// the primary). libpg_query's parser output and protobuf-c's unpack recurse once per tree
// level without a stack check; at this budget the deepest possible tree stays within a
// few MB of stack even under AddressSanitizer (measured: 1,300 nested sub-selects or
// 3,500 chained '+' pass; 1,500 nested sub-selects overflow 8 MB under ASan).
// PostgreSQL itself rejects much shallower trees (max_stack_depth = 2MB).
constexpr uint32_t kMaxNestingCost = 3000;

// Functions that must run on the primary whatever the configuration says: they write
// (sequences, large objects, NOTIFY), or their result only makes sense on the primary
// (currval/lastval read what nextval did in this session; xid and WAL insert position).
constexpr std::array<std::string_view, 22> kPrimaryFunctions = {
    "nextval",
    "setval",
    "currval",
    "lastval",
    "txid_current",
    "pg_current_xact_id",
    "pg_notify",
    "pg_current_wal_lsn",
    "pg_current_wal_insert_lsn",
    "pg_current_wal_flush_lsn",
    "pg_switch_wal",
    "pg_create_restore_point",
    "lo_create",
    "lo_creat",
    "lo_import",
    "lo_unlink",
    "lo_from_bytea",
    "lo_put",
    "lowrite",
    "lo_truncate",
    "lo_truncate64",
    "lo_open",
};

std::string_view bareName(std::string_view name) {
  constexpr std::string_view kCatalog = "pg_catalog.";
  if (name.starts_with(kCatalog)) name.remove_prefix(kCatalog.size());
  return name;
}

bool isPrimaryFunction(std::string_view name) {
  name = bareName(name);
  return std::find(kPrimaryFunctions.begin(), kPrimaryFunctions.end(), name) !=
         kPrimaryFunctions.end();
}

bool hasText(const char* s) {
  return s != nullptr && s[0] != '\0';
}

void addUnique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

// Payload of a Node (every oneof member shares one address).
const ProtobufCMessage* payload(const PgQuery__Node* n) {
  if (n == nullptr || n->node_case == PG_QUERY__NODE__NODE__NOT_SET) return nullptr;
  return reinterpret_cast<const ProtobufCMessage*>(n->alias);
}

const char* constString(const PgQuery__Node* n) {
  if (n == nullptr || n->node_case != PG_QUERY__NODE__NODE_A_CONST) return nullptr;
  const PgQuery__AConst* c = n->a_const;
  if (c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval != nullptr) return c->sval->sval;
  return nullptr;
}

// Value of a boolean-ish constant: TRUE/FALSE, 1/0, 'on'/'off', 'true', ... nullopt if
// the node is not a constant.
std::optional<bool> constBool(const PgQuery__Node* n) {
  if (n == nullptr) return std::nullopt;
  if (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) return constBool(n->type_cast->arg);
  if (n->node_case != PG_QUERY__NODE__NODE_A_CONST) return std::nullopt;
  const PgQuery__AConst* c = n->a_const;
  switch (c->val_case) {
    case PG_QUERY__A__CONST__VAL_BOOLVAL:
      return c->boolval != nullptr && c->boolval->boolval;
    case PG_QUERY__A__CONST__VAL_IVAL:
      return c->ival != nullptr && c->ival->ival != 0;
    case PG_QUERY__A__CONST__VAL_SVAL: {
      std::string_view v = c->sval != nullptr ? c->sval->sval : "";
      for (std::string_view t : {"on", "true", "yes", "1", "t", "y"}) {
        if (v.size() == t.size() && std::equal(v.begin(), v.end(), t.begin(), [](char a, char b) {
              return (a >= 'A' && a <= 'Z' ? static_cast<char>(a | 0x20) : a) == b;
            }))
          return true;
      }
      return false;
    }
    default:
      return std::nullopt;
  }
}

bool equalsIgnoreCase(const char* s, std::string_view lower) {
  if (s == nullptr) return false;
  std::string_view v(s);
  return v.size() == lower.size() &&
         std::equal(v.begin(), v.end(), lower.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a | 0x20) : a) == b;
         });
}

// Walks a parse (sub)tree generically through the protobuf-c descriptors, so every node
// type is covered without a hand-written case per node; only the nodes that matter for
// routing are looked at.
class TreeWalker {
 public:
  explicit TreeWalker(Classification& c) : c_(c) {}

  // Walks everything below `m` (not `m` itself).
  void walkChildren(const ProtobufCMessage* m, int depth) {
    if (depth > kMaxDepth) {
      too_deep_ = true;
      return;
    }
    const ProtobufCMessageDescriptor* d = m->descriptor;
    const char* base = reinterpret_cast<const char*>(m);
    for (unsigned i = 0; i < d->n_fields; ++i) {
      const ProtobufCFieldDescriptor& f = d->fields[i];
      if (f.type != PROTOBUF_C_TYPE_MESSAGE) continue;
      if (f.label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *reinterpret_cast<const size_t*>(base + f.quantifier_offset);
        auto* items = *reinterpret_cast<const ProtobufCMessage* const* const*>(base + f.offset);
        for (size_t k = 0; k < n; ++k) visit(items[k], depth + 1);
        continue;
      }
      if ((f.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
          *reinterpret_cast<const uint32_t*>(base + f.quantifier_offset) != f.id)
        continue;
      visit(*reinterpret_cast<const ProtobufCMessage* const*>(base + f.offset), depth + 1);
    }
  }

  bool too_deep_ = false;
  bool nested_write_ = false;     // INSERT/UPDATE/DELETE/MERGE below the root
  bool temp_object_ = false;      // a RangeVar with TEMP persistence: a temp object is created
  std::string lock_strength_;     // first locking clause seen, e.g. "FOR UPDATE"
  std::string primary_function_;  // first function of kPrimaryFunctions seen

 private:
  void visit(const ProtobufCMessage* m, int depth) {
    if (m == nullptr) return;
    const ProtobufCMessageDescriptor* d = m->descriptor;
    if (d == &pg_query__node__descriptor) {
      // A Node is only a wrapper: go straight to its payload.
      visit(payload(reinterpret_cast<const PgQuery__Node*>(m)), depth);
      return;
    }
    if (d == &pg_query__func_call__descriptor) {
      funcCall(reinterpret_cast<const PgQuery__FuncCall*>(m));
    } else if (d == &pg_query__range_var__descriptor) {
      rangeVar(reinterpret_cast<const PgQuery__RangeVar*>(m));
    } else if (d == &pg_query__locking_clause__descriptor) {
      lockingClause(reinterpret_cast<const PgQuery__LockingClause*>(m));
    } else if (d == &pg_query__into_clause__descriptor) {
      c_.select_into = true;
    } else if (d == &pg_query__insert_stmt__descriptor || d == &pg_query__update_stmt__descriptor ||
               d == &pg_query__delete_stmt__descriptor || d == &pg_query__merge_stmt__descriptor) {
      nested_write_ = true;
    }
    walkChildren(m, depth);
  }

  void funcCall(const PgQuery__FuncCall* f) {
    std::string name;
    for (size_t i = 0; i < f->n_funcname; ++i) {
      const PgQuery__Node* part = f->funcname[i];
      if (part == nullptr || part->node_case != PG_QUERY__NODE__NODE_STRING) continue;
      if (!name.empty()) name += '.';
      name += part->string->sval;
    }
    std::string_view bare = bareName(name);
    if (bare.starts_with("pg_advisory_") || bare.starts_with("pg_try_advisory_")) {
      c_.advisory_lock = true;
      // Session-level locks (not *_xact_*) outlive the transaction: session state.
      if (bare.find("_xact_") == std::string_view::npos) c_.session_state = true;
    }
    if (bare == "set_config") {
      // set_config(name, value, is_local): only a literal TRUE keeps it transaction-local.
      // TRUE/FALSE are keywords, so this reads the shape, not a literal value.
      std::optional<bool> local;
      if (f->n_args == 3 && f->args[2]->node_case == PG_QUERY__NODE__NODE_A_CONST &&
          f->args[2]->a_const->val_case == PG_QUERY__A__CONST__VAL_BOOLVAL)
        local = constBool(f->args[2]);
      if (!local.value_or(false)) c_.session_state = true;
    }
    if (primary_function_.empty() && isPrimaryFunction(name)) primary_function_ = name;
    addUnique(c_.functions, std::move(name));
  }

  void rangeVar(const PgQuery__RangeVar* r) {
    if (hasText(r->relpersistence) && r->relpersistence[0] == 't') temp_object_ = true;
    std::string name;
    if (hasText(r->catalogname)) (name += r->catalogname) += '.';
    if (hasText(r->schemaname)) (name += r->schemaname) += '.';
    if (hasText(r->relname)) name += r->relname;
    addUnique(c_.relations, std::move(name));
  }

  void lockingClause(const PgQuery__LockingClause* l) {
    c_.locking_clause = true;
    if (!lock_strength_.empty()) return;
    switch (l->strength) {
      case PG_QUERY__LOCK_CLAUSE_STRENGTH__LCS_FORKEYSHARE:
        lock_strength_ = "FOR KEY SHARE";
        break;
      case PG_QUERY__LOCK_CLAUSE_STRENGTH__LCS_FORSHARE:
        lock_strength_ = "FOR SHARE";
        break;
      case PG_QUERY__LOCK_CLAUSE_STRENGTH__LCS_FORNOKEYUPDATE:
        lock_strength_ = "FOR NO KEY UPDATE";
        break;
      default:
        lock_strength_ = "FOR UPDATE";
        break;
    }
  }

  Classification& c_;
};

void setTarget(Classification& c, Target t, Kind k, std::string reason) {
  c.target = t;
  c.kind = k;
  c.reason = std::move(reason);
}

Classification classifyStatement(const PgQuery__Node* stmt);

// Adopts an inner statement's classification (EXPLAIN, PREPARE, DECLARE, COPY (query)).
void adoptInner(Classification& c, Classification inner) {
  c.functions = std::move(inner.functions);
  c.relations = std::move(inner.relations);
  c.has_writing_cte = inner.has_writing_cte;
  c.select_into = inner.select_into;
  c.locking_clause = inner.locking_clause;
  c.advisory_lock = inner.advisory_lock;
  c.session_state = c.session_state || inner.session_state;
  c.target = inner.target;
  c.reason = std::move(inner.reason);
}

// Transaction options (BEGIN, START TRANSACTION, SET TRANSACTION, SET SESSION
// CHARACTERISTICS): DefElem transaction_isolation / transaction_read_only.
void transactionOptions(PgQuery__Node** opts, size_t n, bool& read_only, bool& serializable) {
  for (size_t i = 0; i < n; ++i) {
    if (opts[i] == nullptr || opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM) continue;
    const PgQuery__DefElem* d = opts[i]->def_elem;
    if (equalsIgnoreCase(d->defname, "transaction_isolation")) {
      serializable = equalsIgnoreCase(constString(d->arg), "serializable");
    } else if (equalsIgnoreCase(d->defname, "transaction_read_only")) {
      read_only = constBool(d->arg).value_or(false);
    }
  }
}

void classifyTransaction(const PgQuery__TransactionStmt* t, Classification& c) {
  if (hasText(t->savepoint_name)) c.object_name = t->savepoint_name;
  switch (t->kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
      transactionOptions(t->options, t->n_options, c.begin_read_only, c.begin_serializable);
      // A hot standby refuses SERIALIZABLE ("cannot use serializable mode in a hot standby").
      if (c.begin_serializable)
        setTarget(c, Target::kPrimary, Kind::kBegin, "SERIALIZABLE transaction");
      else
        setTarget(c, Target::kAny, Kind::kBegin, c.begin_read_only ? "BEGIN READ ONLY" : "BEGIN");
      return;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
      return setTarget(c, Target::kAny, Kind::kCommit, "COMMIT: every node in the transaction");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
      return setTarget(c, Target::kAny, Kind::kRollback, "ROLLBACK: every node in the transaction");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
      return setTarget(c, Target::kAny, Kind::kSavepoint, "SAVEPOINT");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
      return setTarget(c, Target::kAny, Kind::kReleaseSavepoint, "RELEASE SAVEPOINT");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
      return setTarget(c, Target::kAny, Kind::kRollbackTo, "ROLLBACK TO SAVEPOINT");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
      return setTarget(c, Target::kPrimary, Kind::kPrepareTransaction, "PREPARE TRANSACTION");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
      return setTarget(c, Target::kPrimary, Kind::kCommitPrepared, "COMMIT PREPARED");
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
      return setTarget(c, Target::kPrimary, Kind::kRollbackPrepared, "ROLLBACK PREPARED");
    default:
      return setTarget(c, Target::kPrimary, Kind::kOther, "unknown transaction statement");
  }
}

void classifySet(const PgQuery__VariableSetStmt* s, Classification& c) {
  std::string_view name = hasText(s->name) ? s->name : "";
  c.object_name = std::string(name);
  switch (s->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
      c.session_state = true;
      return setTarget(c, Target::kAny, Kind::kReset, "RESET: every node the session uses");
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
      if (name == "TRANSACTION") {
        transactionOptions(s->args, s->n_args, c.set_transaction_read_only,
                           c.set_transaction_serializable);
      } else {  // SESSION CHARACTERISTICS AS TRANSACTION ...
        transactionOptions(s->args, s->n_args, c.session_default_read_only,
                           c.session_default_serializable);
        c.session_state = true;
      }
      break;
    default: {
      // In SET statements literals are part of the shape (lexer.h), so their values
      // may be read here.
      const PgQuery__Node* v = s->n_args > 0 ? s->args[0] : nullptr;
      if (name == "transaction_isolation") {
        c.set_transaction_serializable = equalsIgnoreCase(constString(v), "serializable");
      } else if (name == "default_transaction_isolation") {
        c.session_default_serializable = equalsIgnoreCase(constString(v), "serializable");
      } else if (name == "transaction_read_only") {
        c.set_transaction_read_only = constBool(v).value_or(false);
      } else if (name == "default_transaction_read_only") {
        c.session_default_read_only = constBool(v).value_or(false);
      }
      if (!s->is_local && name != "transaction_isolation" && name != "transaction_read_only")
        c.session_state = true;
      break;
    }
  }
  if (c.set_transaction_serializable || c.session_default_serializable)
    return setTarget(c, Target::kPrimary, Kind::kSet, "SERIALIZABLE transaction");
  setTarget(c, Target::kAny, Kind::kSet,
            c.session_state ? "SET: every node the session uses" : "SET (transaction scope)");
}

void classifySelect(TreeWalker& w, Classification& c) {
  if (c.select_into) return setTarget(c, Target::kPrimary, Kind::kDdl, "SELECT INTO");
  if (w.nested_write_) {
    c.has_writing_cte = true;
    return setTarget(c, Target::kPrimary, Kind::kWrite,
                     "writing CTE (WITH ... INSERT/UPDATE/DELETE)");
  }
  if (c.locking_clause)
    return setTarget(c, Target::kPrimary, Kind::kRead, "SELECT ... " + w.lock_strength_);
  setTarget(c, Target::kAny, Kind::kRead, "read");
}

void classifyCopy(const PgQuery__CopyStmt* s, Classification& c) {
  if (s->is_from) return setTarget(c, Target::kPrimary, Kind::kCopyFrom, "COPY FROM");
  if (s->query != nullptr) {
    Classification inner = classifyStatement(s->query);
    adoptInner(c, std::move(inner));
    if (c.target == Target::kPrimary)
      return setTarget(c, Target::kPrimary, Kind::kCopyTo, "COPY (" + c.reason + ") TO");
  }
  if (s->is_program || hasText(s->filename))
    return setTarget(c, Target::kPrimary, Kind::kCopyTo, "COPY TO a server file or program");
  setTarget(c, Target::kAny, Kind::kCopyTo, "COPY TO STDOUT");
}

void classifyExplain(const PgQuery__ExplainStmt* s, Classification& c) {
  bool analyze = false;
  for (size_t i = 0; i < s->n_options; ++i) {
    const PgQuery__Node* o = s->options[i];
    if (o != nullptr && o->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
        equalsIgnoreCase(o->def_elem->defname, "analyze"))
      analyze = true;  // any value: the option's argument may be a literal
  }
  Classification inner = classifyStatement(s->query);
  bool write = inner.target == Target::kPrimary;
  adoptInner(c, std::move(inner));
  if (write) {
    // Plain EXPLAIN of a write only plans it, but the option value may be a literal
    // (EXPLAIN (ANALYZE 0)), which the shape ignores: primary either way.
    return setTarget(c, Target::kPrimary, analyze ? Kind::kWrite : Kind::kRead,
                     (analyze ? "EXPLAIN ANALYZE of " : "EXPLAIN of ") + c.reason);
  }
  setTarget(c, Target::kAny, Kind::kRead, analyze ? "EXPLAIN ANALYZE of a read" : "EXPLAIN");
}

void classifyWrapped(const PgQuery__Node* inner_stmt, Classification& c, Kind kind,
                     std::string_view what) {
  Classification inner = classifyStatement(inner_stmt);
  adoptInner(c, std::move(inner));
  c.kind = kind;
  if (c.target == Target::kPrimary)
    c.reason = std::string(what) + " of " + c.reason;
  else
    c.reason = std::string(what);
}

std::string ddlReason(const PgQuery__Node* stmt) {
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_CREATE_STMT:
      return "CREATE TABLE";
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
      return "ALTER TABLE";
    case PG_QUERY__NODE__NODE_DROP_STMT:
      return "DROP";
    case PG_QUERY__NODE__NODE_INDEX_STMT:
      return "CREATE INDEX";
    case PG_QUERY__NODE__NODE_VIEW_STMT:
      return "CREATE VIEW";
    case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
      return "CREATE SEQUENCE";
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT:
      return "CREATE FUNCTION";
    case PG_QUERY__NODE__NODE_GRANT_STMT:
      return "GRANT/REVOKE";
    case PG_QUERY__NODE__NODE_VACUUM_STMT:
      return stmt->vacuum_stmt->is_vacuumcmd ? "VACUUM" : "ANALYZE";
    case PG_QUERY__NODE__NODE_CHECK_POINT_STMT:
      return "CHECKPOINT";
    case PG_QUERY__NODE__NODE_CLUSTER_STMT:
      return "CLUSTER";
    case PG_QUERY__NODE__NODE_REINDEX_STMT:
      return "REINDEX";
    case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
      return "REFRESH MATERIALIZED VIEW";
    case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
      return "ALTER SYSTEM";
    default: {
      const ProtobufCFieldDescriptor* f = protobuf_c_message_descriptor_get_field(
          &pg_query__node__descriptor, static_cast<unsigned>(stmt->node_case));
      return std::string("DDL (") + (f != nullptr ? f->name : "unknown") + ")";
    }
  }
}

// Statements that carry no sub-query: decided by their type alone.
bool classifySimple(const PgQuery__Node* stmt, Classification& c) {
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT:
      setTarget(c, Target::kPrimary, Kind::kWrite, "INSERT");
      return true;
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
      setTarget(c, Target::kPrimary, Kind::kWrite, "UPDATE");
      return true;
    case PG_QUERY__NODE__NODE_DELETE_STMT:
      setTarget(c, Target::kPrimary, Kind::kWrite, "DELETE");
      return true;
    case PG_QUERY__NODE__NODE_MERGE_STMT:
      setTarget(c, Target::kPrimary, Kind::kWrite, "MERGE");
      return true;
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
      setTarget(c, Target::kPrimary, Kind::kWrite, "TRUNCATE");
      return true;
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
      classifyTransaction(stmt->transaction_stmt, c);
      return true;
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
      classifySet(stmt->variable_set_stmt, c);
      return true;
    case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
      setTarget(c, Target::kAny, Kind::kSet, "SET CONSTRAINTS");
      return true;
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
      if (hasText(stmt->variable_show_stmt->name)) c.object_name = stmt->variable_show_stmt->name;
      setTarget(c, Target::kAny, Kind::kShow, "SHOW");
      return true;
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
      c.session_state = true;
      setTarget(c, Target::kAny, Kind::kDiscard, "DISCARD: every node the session uses");
      return true;
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
      c.object_name = stmt->execute_stmt->name;
      // The statement's text is known only to the session, which routes EXECUTE by its
      // PREPARE; on its own it must be assumed to write.
      setTarget(c, Target::kPrimary, Kind::kExecute, "EXECUTE (routed by its PREPARE)");
      return true;
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
      if (hasText(stmt->deallocate_stmt->name)) c.object_name = stmt->deallocate_stmt->name;
      c.session_state = true;
      setTarget(c, Target::kAny, Kind::kDeallocate, "DEALLOCATE: every node the session uses");
      return true;
    case PG_QUERY__NODE__NODE_FETCH_STMT:
      if (hasText(stmt->fetch_stmt->portalname)) c.object_name = stmt->fetch_stmt->portalname;
      setTarget(c, Target::kAny, Kind::kFetch, "FETCH/MOVE: runs where the cursor is");
      return true;
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
      if (hasText(stmt->close_portal_stmt->portalname))
        c.object_name = stmt->close_portal_stmt->portalname;
      setTarget(c, Target::kAny, Kind::kClose, "CLOSE: runs where the cursor is");
      return true;
    case PG_QUERY__NODE__NODE_LISTEN_STMT:
      c.object_name = stmt->listen_stmt->conditionname;
      c.session_state = true;
      setTarget(c, Target::kPrimary, Kind::kListen, "LISTEN");
      return true;
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
      if (hasText(stmt->unlisten_stmt->conditionname))
        c.object_name = stmt->unlisten_stmt->conditionname;
      c.session_state = true;
      setTarget(c, Target::kPrimary, Kind::kUnlisten, "UNLISTEN");
      return true;
    case PG_QUERY__NODE__NODE_NOTIFY_STMT:
      c.object_name = stmt->notify_stmt->conditionname;
      setTarget(c, Target::kPrimary, Kind::kNotify, "NOTIFY");
      return true;
    case PG_QUERY__NODE__NODE_LOCK_STMT:
      setTarget(c, Target::kPrimary, Kind::kLock, "LOCK");
      return true;
    case PG_QUERY__NODE__NODE_DO_STMT:
      setTarget(c, Target::kPrimary, Kind::kOther, "DO block");
      return true;
    case PG_QUERY__NODE__NODE_CALL_STMT:
      setTarget(c, Target::kPrimary, Kind::kOther, "CALL");
      return true;
    case PG_QUERY__NODE__NODE_LOAD_STMT:
      c.session_state = true;
      setTarget(c, Target::kPrimary, Kind::kOther, "LOAD");
      return true;
    default:
      return false;
  }
}

// Statements wrapping another statement, or carrying a query: decided with the walk.
void classifyComposite(const PgQuery__Node* stmt, TreeWalker& w, Classification& c) {
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
      return classifySelect(w, c);
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
      return classifyExplain(stmt->explain_stmt, c);
    case PG_QUERY__NODE__NODE_COPY_STMT:
      return classifyCopy(stmt->copy_stmt, c);
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
      c.object_name = stmt->prepare_stmt->name;
      classifyWrapped(stmt->prepare_stmt->query, c, Kind::kPrepare, "PREPARE");
      c.session_state = true;
      return;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT: {
      c.object_name = stmt->declare_cursor_stmt->portalname;
      classifyWrapped(stmt->declare_cursor_stmt->query, c, Kind::kDeclareCursor, "DECLARE CURSOR");
      constexpr int32_t kCursorOptHold = 0x0020;  // CURSOR_OPT_HOLD, parsenodes.h
      if ((stmt->declare_cursor_stmt->options & kCursorOptHold) != 0) c.session_state = true;
      return;
    }
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
      const PgQuery__CreateTableAsStmt* s = stmt->create_table_as_stmt;
      c.select_into = true;
      const char* what = s->is_select_into ? "SELECT INTO"
                         : s->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW
                             ? "CREATE MATERIALIZED VIEW"
                             : "CREATE TABLE AS";
      return setTarget(c, Target::kPrimary, Kind::kDdl, what);
    }
    default:
      return setTarget(c, Target::kPrimary, Kind::kDdl, ddlReason(stmt));
  }
}

Classification classifyStatement(const PgQuery__Node* stmt) {
  Classification c;
  const ProtobufCMessage* body = payload(stmt);
  if (body == nullptr) {
    setTarget(c, Target::kAny, Kind::kOther, "empty statement");
    return c;
  }
  TreeWalker w(c);
  w.walkChildren(body, 0);
  if (w.too_deep_) {
    setTarget(c, Target::kPrimary, Kind::kOther, "statement too deeply nested");
    return c;
  }
  if (!classifySimple(stmt, c)) classifyComposite(stmt, w, c);
  if (w.temp_object_) c.session_state = true;  // CREATE TEMP TABLE/VIEW/SEQUENCE, SELECT INTO TEMP
  // A function that must run on the primary overrides a read decision.
  if (c.target == Target::kAny && !w.primary_function_.empty()) {
    c.target = Target::kPrimary;
    c.reason = "calls " + w.primary_function_;
  } else if (c.target == Target::kAny && c.advisory_lock) {
    c.target = Target::kPrimary;
    c.reason = "advisory lock";
  }
  return c;
}

bool isPlainRead(const Classification& c) {
  return (c.kind == Kind::kRead || c.kind == Kind::kShow) && c.target == Target::kAny &&
         !c.session_state;
}

Classification combine(std::vector<Classification> parts) {
  Classification out;
  out.statement_count = static_cast<int>(parts.size());
  setTarget(out, Target::kAny, Kind::kRead, "read (multi-statement)");
  for (Classification& p : parts) {
    if (!isPlainRead(p) && out.target == Target::kAny)
      setTarget(out, Target::kPrimary, Kind::kOther, "multi-statement: " + p.reason);
    for (std::string& f : p.functions) addUnique(out.functions, std::move(f));
    for (std::string& r : p.relations) addUnique(out.relations, std::move(r));
    out.has_writing_cte |= p.has_writing_cte;
    out.select_into |= p.select_into;
    out.locking_clause |= p.locking_clause;
    out.advisory_lock |= p.advisory_lock;
    out.session_state |= p.session_state;
    out.begin_read_only |= p.begin_read_only;
    out.begin_serializable |= p.begin_serializable;
    out.set_transaction_read_only |= p.set_transaction_read_only;
    out.set_transaction_serializable |= p.set_transaction_serializable;
    out.session_default_read_only |= p.session_default_read_only;
    out.session_default_serializable |= p.session_default_serializable;
  }
  return out;
}

// Bump allocator for protobuf-c's unpack: one parse tree's messages live in a few blocks
// that are reused by the next classify() on this thread, so neither the per-message
// malloc nor protobuf_c_message_free_unpacked (a walk over every field of every message)
// is paid. Blocks beyond kKeepBytes are released after a large statement.
class UnpackArena {
 public:
  UnpackArena() {
    allocator_.alloc = [](void* self, size_t n) {
      return static_cast<UnpackArena*>(self)->allocate(n);
    };
    allocator_.free = [](void*, void*) {};
    allocator_.allocator_data = this;
  }
  ProtobufCAllocator* allocator() { return &allocator_; }

  void reset() {
    size_t kept = 0;
    size_t i = 0;
    for (; i < blocks_.size() && kept + blocks_[i].size <= kKeepBytes; ++i) kept += blocks_[i].size;
    blocks_.resize(std::max(i, std::min<size_t>(1, blocks_.size())));  // keep at least one
    current_ = 0;
    used_ = 0;
  }

 private:
  static constexpr size_t kBlockBytes = 64 * 1024;
  static constexpr size_t kKeepBytes = 1024 * 1024;
  struct Block {
    std::unique_ptr<std::byte[]> data;
    size_t size = 0;
  };

  void* allocate(size_t n) {
    n = (n + 15) & ~size_t{15};
    while (current_ < blocks_.size()) {
      if (used_ + n <= blocks_[current_].size) {
        void* p = blocks_[current_].data.get() + used_;
        used_ += n;
        return p;
      }
      ++current_;
      used_ = 0;
    }
    size_t size = std::max(kBlockBytes, n);
    blocks_.push_back(Block{std::make_unique<std::byte[]>(size), size});
    current_ = blocks_.size() - 1;
    used_ = n;
    return blocks_.back().data.get();
  }

  ProtobufCAllocator allocator_{};
  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t used_ = 0;
};

Classification failed(std::string reason) {
  Classification c;
  c.parse_error = true;
  setTarget(c, Target::kPrimary, Kind::kOther, std::move(reason));
  return c;
}

}  // namespace

Classification classify(std::string_view sql) {
  // The protocol carries queries as C strings; a NUL inside would make libpg_query see a
  // shorter statement than the lexer did.
  if (sql.find('\0') != std::string_view::npos) return failed("parse error (NUL byte)");
  if (lexShape(sql).nesting_cost > kMaxNestingCost) {
    Classification c;  // depends on the tokens only: cacheable, not a parse error
    setTarget(c, Target::kPrimary, Kind::kOther, "statement too complex to classify");
    return c;
  }
  thread_local std::string buffer;  // libpg_query needs a NUL-terminated copy
  buffer.assign(sql);
  PgQueryProtobufParseResult parsed = pg_query_parse_protobuf(buffer.c_str());
  if (parsed.error != nullptr) {
    pg_query_free_protobuf_parse_result(parsed);
    return failed("parse error");
  }
  thread_local UnpackArena arena;
  arena.reset();
  PgQuery__ParseResult* tree =
      pg_query__parse_result__unpack(arena.allocator(), parsed.parse_tree.len,
                                     reinterpret_cast<const uint8_t*>(parsed.parse_tree.data));
  pg_query_free_protobuf_parse_result(parsed);
  if (tree == nullptr) return failed("parse error (unpack)");

  Classification out;
  if (tree->n_stmts == 0) {
    setTarget(out, Target::kAny, Kind::kOther, "empty query");
  } else if (tree->n_stmts == 1) {
    out = classifyStatement(tree->stmts[0]->stmt);
  } else {
    std::vector<Classification> parts;
    parts.reserve(tree->n_stmts);
    for (size_t i = 0; i < tree->n_stmts; ++i)
      parts.push_back(classifyStatement(tree->stmts[i]->stmt));
    out = combine(std::move(parts));
  }
  return out;  // the tree lives in the arena until the next call
}

std::string_view targetName(Target t) noexcept {
  return t == Target::kAny ? "any" : "primary";
}

std::string_view kindName(Classification::Kind kind) noexcept {
  static constexpr std::array<std::string_view, 29> kNames = {"read",
                                                              "write",
                                                              "ddl",
                                                              "begin",
                                                              "commit",
                                                              "rollback",
                                                              "savepoint",
                                                              "release",
                                                              "rollback_to",
                                                              "prepare_transaction",
                                                              "commit_prepared",
                                                              "rollback_prepared",
                                                              "set",
                                                              "reset",
                                                              "discard",
                                                              "prepare",
                                                              "deallocate",
                                                              "execute",
                                                              "declare",
                                                              "fetch",
                                                              "close",
                                                              "listen",
                                                              "unlisten",
                                                              "notify",
                                                              "lock",
                                                              "copy_from",
                                                              "copy_to",
                                                              "show",
                                                              "other"};
  auto i = static_cast<size_t>(kind);
  return i < kNames.size() ? kNames[i] : "?";
}

}  // namespace pgpilot::router
