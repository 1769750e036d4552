#include "router/classifier.h"

#include "router/lexer.h"

#include <pg_query.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>

namespace pgpilot::router {
namespace {

using Kind = Classification::Kind;

namespace dom = simdjson::dom;

// Deeper parse trees are not walked (the statement goes to the primary). The limit is on
// the depth of libpg_query's JSON, about two levels per level of the tree; simdjson checks
// it while parsing (without recursion), and it bounds the recursion of our own walk. 1,000
// JSON levels keep the walk well inside the stack even with ASan frames. PostgreSQL
// itself refuses much deeper nesting.
constexpr size_t kMaxJsonDepth = 1000;

// Budget for Shape::nesting_cost above which a statement is not parsed at all (it goes to
// the primary). libpg_query's parser and its JSON output recurse once per tree level
// without a stack check; at this budget the deepest possible tree stays within a
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

void addUnique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

// ---- reading libpg_query's JSON -------------------------------------------------------
// libpg_query prints a parse tree as JSON: a node whose field is declared `Node *` (any
// node type) is an object with one key, its type, around an object of its fields:
// {"FuncCall": {"funcname": [...], "args": [...]}}. A field declared with a specific type
// (RangeVar *relation, IntoClause *intoClause, FuncCall *funccall) is the object of fields
// alone. Field names are PostgreSQL's C member names, which all start in lower case, so an
// object with one key in upper case is a node. Enums are their C names as strings; a false
// bool, a zero number and a null pointer are left out.

std::string_view stringField(dom::object o, std::string_view key) {
  std::string_view v;
  if (o[key].get(v) != simdjson::SUCCESS) return {};
  return v;
}

bool boolField(dom::object o, std::string_view key) {
  bool v = false;
  if (o[key].get(v) != simdjson::SUCCESS) return false;
  return v;
}

int64_t intField(dom::object o, std::string_view key) {
  int64_t v = 0;
  if (o[key].get(v) != simdjson::SUCCESS) return 0;
  return v;
}

// An empty list that can be iterated (a default-constructed dom::array cannot).
dom::array emptyList() {
  static dom::parser parser;
  static const dom::array empty = [] {
    dom::array a;
    if (parser.parse(std::string_view("[]")).get(a) != simdjson::SUCCESS) std::abort();
    return a;
  }();
  return empty;
}

// The list in field `key`; empty when the field is absent.
dom::array listField(dom::object o, std::string_view key) {
  dom::array v;
  if (o[key].get(v) != simdjson::SUCCESS) return emptyList();
  return v;
}

struct Node {
  std::string_view type;  // "SelectStmt", "A_Const", ...; empty: not a node
  dom::object fields;
  explicit operator bool() const { return !type.empty(); }
};

bool isUpper(char ch) {
  return ch >= 'A' && ch <= 'Z';
}

Node asNode(dom::object o) {
  if (o.size() != 1) return {};
  dom::key_value_pair kv = *o.begin();
  dom::object fields;
  if (kv.key.empty() || !isUpper(kv.key[0]) || kv.value.get(fields) != simdjson::SUCCESS) return {};
  return {kv.key, fields};
}

Node asNode(dom::element e) {
  dom::object o;
  if (e.get(o) != simdjson::SUCCESS) return {};
  return asNode(o);
}

// The node in field `key` (declared `Node *`); empty when absent.
Node nodeField(dom::object o, std::string_view key) {
  dom::element e;
  if (o[key].get(e) != simdjson::SUCCESS) return {};
  return asNode(e);
}

std::string_view constString(const Node& n) {
  if (n.type != "A_Const") return {};
  dom::object s;
  if (n.fields["sval"].get(s) != simdjson::SUCCESS) return {};
  return stringField(s, "sval");
}

bool equalsIgnoreCase(std::string_view v, std::string_view lower) {
  return v.size() == lower.size() &&
         std::equal(v.begin(), v.end(), lower.begin(), [](char a, char b) {
           return (isUpper(a) ? static_cast<char>(a | 0x20) : a) == b;
         });
}

// Value of a boolean-ish constant: TRUE/FALSE, 1/0, 'on'/'off', 'true', ... nullopt if
// the node is not a constant.
std::optional<bool> constBool(const Node& n) {
  if (n.type == "TypeCast") return constBool(nodeField(n.fields, "arg"));
  if (n.type != "A_Const") return std::nullopt;
  dom::object v;
  if (n.fields["boolval"].get(v) == simdjson::SUCCESS) return boolField(v, "boolval");
  if (n.fields["ival"].get(v) == simdjson::SUCCESS) return intField(v, "ival") != 0;
  if (n.fields["sval"].get(v) == simdjson::SUCCESS) {
    std::string_view s = stringField(v, "sval");
    for (std::string_view t : {"on", "true", "yes", "1", "t", "y"}) {
      if (equalsIgnoreCase(s, t)) return true;
    }
    return false;
  }
  return std::nullopt;
}

// Walks a parse (sub)tree generically, so every node type is covered without a
// hand-written case per node; only the nodes that matter for routing are looked at.
class TreeWalker {
 public:
  explicit TreeWalker(Classification& c) : c_(c) {}

  // Walks everything below a node's fields (not the node itself).
  void walkFields(dom::object o) {
    bool range_var = false;
    for (dom::key_value_pair field : o) {
      std::string_view key = field.key;
      if (key == "relpersistence") {
        range_var = true;  // only RangeVar has this field, and always prints it
        continue;
      }
      if (key == "intoClause") {
        c_.select_into = true;
      } else if (key == "funccall") {  // CallStmt's FuncCall, declared with its type
        dom::object f;
        if (field.value.get(f) == simdjson::SUCCESS) funcCall(f);
      }
      walkValue(field.value);
    }
    if (range_var) rangeVar(o);
  }

  bool nested_write_ = false;     // INSERT/UPDATE/DELETE/MERGE below the root
  bool temp_object_ = false;      // a RangeVar with TEMP persistence: a temp object is created
  std::string lock_strength_;     // first locking clause seen, e.g. "FOR UPDATE"
  std::string primary_function_;  // first function of kPrimaryFunctions seen

 private:
  void walkValue(dom::element e) {
    switch (e.type()) {
      case dom::element_type::ARRAY:
        for (dom::element item : dom::array(e)) walkValue(item);
        return;
      case dom::element_type::OBJECT: {
        auto o = dom::object(e);
        if (Node n = asNode(o)) {
          visit(n);
        } else {
          walkFields(o);
        }
        return;
      }
      default:
        return;  // scalars: names, enums, literals, locations
    }
  }

  void visit(const Node& n) {
    std::string_view t = n.type;
    if (t == "FuncCall") {
      funcCall(n.fields);
    } else if (t == "LockingClause") {
      lockingClause(n.fields);
    } else if (t == "InsertStmt" || t == "UpdateStmt" || t == "DeleteStmt" || t == "MergeStmt") {
      nested_write_ = true;
    }
    walkFields(n.fields);
  }

  void funcCall(dom::object f) {
    std::string name;
    for (dom::element part : listField(f, "funcname")) {
      Node s = asNode(part);
      if (s.type != "String") continue;
      if (!name.empty()) name += '.';
      name += stringField(s.fields, "sval");
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
      dom::array args = listField(f, "args");
      if (args.size() == 3) {
        Node third = asNode(args.at(2).value_unsafe());
        dom::element b;
        if (third.type == "A_Const" && third.fields["boolval"].get(b) == simdjson::SUCCESS)
          local = constBool(third);
      }
      if (!local.value_or(false)) c_.session_state = true;
    }
    if (primary_function_.empty() && isPrimaryFunction(name)) primary_function_ = name;
    addUnique(c_.functions, std::move(name));
  }

  void rangeVar(dom::object r) {
    if (stringField(r, "relpersistence") == "t") temp_object_ = true;
    std::string name;
    for (std::string_view part : {stringField(r, "catalogname"), stringField(r, "schemaname")}) {
      if (!part.empty()) (name += part) += '.';
    }
    name += stringField(r, "relname");
    addUnique(c_.relations, std::move(name));
  }

  void lockingClause(dom::object l) {
    c_.locking_clause = true;
    if (!lock_strength_.empty()) return;
    std::string_view strength = stringField(l, "strength");
    if (strength == "LCS_FORKEYSHARE") {
      lock_strength_ = "FOR KEY SHARE";
    } else if (strength == "LCS_FORSHARE") {
      lock_strength_ = "FOR SHARE";
    } else if (strength == "LCS_FORNOKEYUPDATE") {
      lock_strength_ = "FOR NO KEY UPDATE";
    } else {
      lock_strength_ = "FOR UPDATE";
    }
  }

  Classification& c_;
};

void setTarget(Classification& c, Target t, Kind k, std::string reason) {
  c.target = t;
  c.kind = k;
  c.reason = std::move(reason);
}

Classification classifyStatement(const Node& stmt);

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
void transactionOptions(dom::array opts, bool& read_only, bool& serializable) {
  for (dom::element e : opts) {
    Node d = asNode(e);
    if (d.type != "DefElem") continue;
    std::string_view name = stringField(d.fields, "defname");
    if (equalsIgnoreCase(name, "transaction_isolation")) {
      serializable = equalsIgnoreCase(constString(nodeField(d.fields, "arg")), "serializable");
    } else if (equalsIgnoreCase(name, "transaction_read_only")) {
      read_only = constBool(nodeField(d.fields, "arg")).value_or(false);
    }
  }
}

void classifyTransaction(dom::object t, Classification& c) {
  c.object_name = std::string(stringField(t, "savepoint_name"));
  std::string_view kind = stringField(t, "kind");
  if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") {
    transactionOptions(listField(t, "options"), c.begin_read_only, c.begin_serializable);
    // A hot standby refuses SERIALIZABLE ("cannot use serializable mode in a hot standby").
    if (c.begin_serializable)
      return setTarget(c, Target::kPrimary, Kind::kBegin, "SERIALIZABLE transaction");
    return setTarget(c, Target::kAny, Kind::kBegin,
                     c.begin_read_only ? "BEGIN READ ONLY" : "BEGIN");
  }
  struct Entry {
    std::string_view kind;
    Target target;
    Kind k;
    std::string_view reason;
  };
  static constexpr std::array<Entry, 8> kOthers = {{
      {"TRANS_STMT_COMMIT", Target::kAny, Kind::kCommit, "COMMIT: every node in the transaction"},
      {"TRANS_STMT_ROLLBACK", Target::kAny, Kind::kRollback,
       "ROLLBACK: every node in the transaction"},
      {"TRANS_STMT_SAVEPOINT", Target::kAny, Kind::kSavepoint, "SAVEPOINT"},
      {"TRANS_STMT_RELEASE", Target::kAny, Kind::kReleaseSavepoint, "RELEASE SAVEPOINT"},
      {"TRANS_STMT_ROLLBACK_TO", Target::kAny, Kind::kRollbackTo, "ROLLBACK TO SAVEPOINT"},
      {"TRANS_STMT_PREPARE", Target::kPrimary, Kind::kPrepareTransaction, "PREPARE TRANSACTION"},
      {"TRANS_STMT_COMMIT_PREPARED", Target::kPrimary, Kind::kCommitPrepared, "COMMIT PREPARED"},
      {"TRANS_STMT_ROLLBACK_PREPARED", Target::kPrimary, Kind::kRollbackPrepared,
       "ROLLBACK PREPARED"},
  }};
  for (const Entry& e : kOthers) {
    if (e.kind == kind) return setTarget(c, e.target, e.k, std::string(e.reason));
  }
  setTarget(c, Target::kPrimary, Kind::kOther, "unknown transaction statement");
}

void classifySet(dom::object s, Classification& c) {
  std::string_view name = stringField(s, "name");
  c.object_name = std::string(name);
  std::string_view kind = stringField(s, "kind");
  if (kind == "VAR_RESET" || kind == "VAR_RESET_ALL") {
    c.session_state = true;
    return setTarget(c, Target::kAny, Kind::kReset, "RESET: every node the session uses");
  }
  if (kind == "VAR_SET_MULTI") {
    if (name == "TRANSACTION") {
      transactionOptions(listField(s, "args"), c.set_transaction_read_only,
                         c.set_transaction_serializable);
    } else {  // SESSION CHARACTERISTICS AS TRANSACTION ...
      transactionOptions(listField(s, "args"), c.session_default_read_only,
                         c.session_default_serializable);
      c.session_state = true;
    }
  } else {
    // In SET statements literals are part of the shape (lexer.h), so their values may be
    // read here.
    dom::array args = listField(s, "args");
    Node v = args.size() > 0 ? asNode(*args.begin()) : Node{};
    if (name == "transaction_isolation") {
      c.set_transaction_serializable = equalsIgnoreCase(constString(v), "serializable");
    } else if (name == "default_transaction_isolation") {
      c.session_default_serializable = equalsIgnoreCase(constString(v), "serializable");
    } else if (name == "transaction_read_only") {
      c.set_transaction_read_only = constBool(v).value_or(false);
    } else if (name == "default_transaction_read_only") {
      c.session_default_read_only = constBool(v).value_or(false);
    }
    if (!boolField(s, "is_local") && name != "transaction_isolation" &&
        name != "transaction_read_only")
      c.session_state = true;
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

void classifyCopy(dom::object s, Classification& c) {
  if (boolField(s, "is_from")) return setTarget(c, Target::kPrimary, Kind::kCopyFrom, "COPY FROM");
  if (Node query = nodeField(s, "query")) {
    adoptInner(c, classifyStatement(query));
    if (c.target == Target::kPrimary)
      return setTarget(c, Target::kPrimary, Kind::kCopyTo, "COPY (" + c.reason + ") TO");
  }
  if (boolField(s, "is_program") || !stringField(s, "filename").empty())
    return setTarget(c, Target::kPrimary, Kind::kCopyTo, "COPY TO a server file or program");
  setTarget(c, Target::kAny, Kind::kCopyTo, "COPY TO STDOUT");
}

void classifyExplain(dom::object s, Classification& c) {
  bool analyze = false;
  for (dom::element e : listField(s, "options")) {
    Node o = asNode(e);
    if (o.type == "DefElem" && equalsIgnoreCase(stringField(o.fields, "defname"), "analyze"))
      analyze = true;  // any value: the option's argument may be a literal
  }
  Classification inner = classifyStatement(nodeField(s, "query"));
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

void classifyWrapped(const Node& inner_stmt, Classification& c, Kind kind, std::string_view what) {
  adoptInner(c, classifyStatement(inner_stmt));
  c.kind = kind;
  if (c.target == Target::kPrimary)
    c.reason = std::string(what) + " of " + c.reason;
  else
    c.reason = std::string(what);
}

// Statement types decided by their type alone: the routing, and for statements naming an
// object (prepared statement, cursor, channel, parameter) the field holding its name.
struct ByType {
  std::string_view type;
  std::string_view name_field;  // empty: the statement names nothing the session tracks
  Target target;
  Kind kind;
  std::string_view reason;
  bool session_state = false;
};
constexpr std::array<ByType, 19> kByType = {{
    {"InsertStmt", "", Target::kPrimary, Kind::kWrite, "INSERT"},
    {"UpdateStmt", "", Target::kPrimary, Kind::kWrite, "UPDATE"},
    {"DeleteStmt", "", Target::kPrimary, Kind::kWrite, "DELETE"},
    {"MergeStmt", "", Target::kPrimary, Kind::kWrite, "MERGE"},
    {"TruncateStmt", "", Target::kPrimary, Kind::kWrite, "TRUNCATE"},
    {"ConstraintsSetStmt", "", Target::kAny, Kind::kSet, "SET CONSTRAINTS"},
    {"DiscardStmt", "", Target::kAny, Kind::kDiscard, "DISCARD: every node the session uses", true},
    {"LockStmt", "", Target::kPrimary, Kind::kLock, "LOCK"},
    {"DoStmt", "", Target::kPrimary, Kind::kOther, "DO block"},
    {"CallStmt", "", Target::kPrimary, Kind::kOther, "CALL"},
    {"LoadStmt", "", Target::kPrimary, Kind::kOther, "LOAD", true},
    {"VariableShowStmt", "name", Target::kAny, Kind::kShow, "SHOW"},
    // The statement's text is known only to the session, which routes EXECUTE by its
    // PREPARE; on its own it must be assumed to write.
    {"ExecuteStmt", "name", Target::kPrimary, Kind::kExecute, "EXECUTE (routed by its PREPARE)"},
    {"DeallocateStmt", "name", Target::kAny, Kind::kDeallocate,
     "DEALLOCATE: every node the session uses", true},
    {"FetchStmt", "portalname", Target::kAny, Kind::kFetch, "FETCH/MOVE: runs where the cursor is"},
    {"ClosePortalStmt", "portalname", Target::kAny, Kind::kClose,
     "CLOSE: runs where the cursor is"},
    {"ListenStmt", "conditionname", Target::kPrimary, Kind::kListen, "LISTEN", true},
    {"UnlistenStmt", "conditionname", Target::kPrimary, Kind::kUnlisten, "UNLISTEN", true},
    {"NotifyStmt", "conditionname", Target::kPrimary, Kind::kNotify, "NOTIFY"},
}};

// Reasons for DDL and maintenance statements that have a well-known name.
constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kDdlNames = {{
    {"CreateStmt", "CREATE TABLE"},
    {"AlterTableStmt", "ALTER TABLE"},
    {"DropStmt", "DROP"},
    {"IndexStmt", "CREATE INDEX"},
    {"ViewStmt", "CREATE VIEW"},
    {"CreateSeqStmt", "CREATE SEQUENCE"},
    {"CreateFunctionStmt", "CREATE FUNCTION"},
    {"GrantStmt", "GRANT/REVOKE"},
    {"CheckPointStmt", "CHECKPOINT"},
    {"ClusterStmt", "CLUSTER"},
    {"ReindexStmt", "REINDEX"},
    {"RefreshMatViewStmt", "REFRESH MATERIALIZED VIEW"},
    {"AlterSystemStmt", "ALTER SYSTEM"},
}};

std::string ddlReason(const Node& stmt) {
  if (stmt.type == "VacuumStmt")
    return boolField(stmt.fields, "is_vacuumcmd") ? "VACUUM" : "ANALYZE";
  for (const auto& [type, reason] : kDdlNames) {
    if (type == stmt.type) return std::string(reason);
  }
  return "DDL (" + std::string(stmt.type) + ")";
}

// Statements that carry no sub-query: decided by their type alone.
bool classifySimple(const Node& stmt, Classification& c) {
  for (const ByType& t : kByType) {
    if (t.type != stmt.type) continue;
    if (!t.name_field.empty()) c.object_name = std::string(stringField(stmt.fields, t.name_field));
    c.session_state = c.session_state || t.session_state;
    setTarget(c, t.target, t.kind, std::string(t.reason));
    return true;
  }
  if (stmt.type == "TransactionStmt") {
    classifyTransaction(stmt.fields, c);
    return true;
  }
  if (stmt.type == "VariableSetStmt") {
    classifySet(stmt.fields, c);
    return true;
  }
  return false;
}

// Statements wrapping another statement, or carrying a query: decided with the walk.
void classifyComposite(const Node& stmt, TreeWalker& w, Classification& c) {
  const dom::object& f = stmt.fields;
  if (stmt.type == "SelectStmt") return classifySelect(w, c);
  if (stmt.type == "ExplainStmt") return classifyExplain(f, c);
  if (stmt.type == "CopyStmt") return classifyCopy(f, c);
  if (stmt.type == "PrepareStmt") {
    c.object_name = std::string(stringField(f, "name"));
    classifyWrapped(nodeField(f, "query"), c, Kind::kPrepare, "PREPARE");
    c.session_state = true;
    return;
  }
  if (stmt.type == "DeclareCursorStmt") {
    c.object_name = std::string(stringField(f, "portalname"));
    classifyWrapped(nodeField(f, "query"), c, Kind::kDeclareCursor, "DECLARE CURSOR");
    constexpr int64_t kCursorOptHold = 0x0020;  // CURSOR_OPT_HOLD, parsenodes.h
    if ((intField(f, "options") & kCursorOptHold) != 0) c.session_state = true;
    return;
  }
  if (stmt.type == "CreateTableAsStmt") {
    c.select_into = true;
    const char* what = boolField(f, "is_select_into")                  ? "SELECT INTO"
                       : stringField(f, "objtype") == "OBJECT_MATVIEW" ? "CREATE MATERIALIZED VIEW"
                                                                       : "CREATE TABLE AS";
    return setTarget(c, Target::kPrimary, Kind::kDdl, what);
  }
  setTarget(c, Target::kPrimary, Kind::kDdl, ddlReason(stmt));
}

Classification classifyStatement(const Node& stmt) {
  Classification c;
  if (!stmt) {
    setTarget(c, Target::kAny, Kind::kOther, "empty statement");
    return c;
  }
  TreeWalker w(c);
  w.walkFields(stmt.fields);
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

Classification failed(std::string reason) {
  Classification c;
  c.parse_error = true;
  setTarget(c, Target::kPrimary, Kind::kOther, std::move(reason));
  return c;
}

// One JSON parser per thread: its buffers, and the padded copy of the input simdjson
// reads (it reads up to SIMDJSON_PADDING bytes past the end), are reused by the next
// classify() on the thread. After a statement larger than kKeepBytes they shrink back.
class JsonParser {
 public:
  simdjson::error_code parse(std::string_view json, dom::element& root) {
    if (parser_.capacity() > kKeepBytes) {
      parser_ = dom::parser();
      std::string().swap(input_);
    }
    if (parser_.max_depth() != kMaxJsonDepth) {
      if (auto err = parser_.allocate(std::max(json.size(), kInitialBytes), kMaxJsonDepth))
        return err;
    }
    input_.reserve(json.size() + simdjson::SIMDJSON_PADDING);
    input_.assign(json);
    return parser_.parse(input_.data(), input_.size(), /*realloc_if_needed=*/false).get(root);
  }

 private:
  static constexpr size_t kInitialBytes = 16 * 1024;
  static constexpr size_t kKeepBytes = 1024 * 1024;
  dom::parser parser_;
  std::string input_;
};

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
  PgQueryParseResult parsed = pg_query_parse(buffer.c_str());
  if (parsed.error != nullptr) {
    pg_query_free_parse_result(parsed);
    return failed("parse error");
  }
  thread_local JsonParser json;
  dom::element root;
  simdjson::error_code err = json.parse(parsed.parse_tree, root);
  pg_query_free_parse_result(parsed);  // the parsed document holds its own copy
  if (err == simdjson::DEPTH_ERROR) {
    Classification c;  // the shape decides the depth: cacheable
    setTarget(c, Target::kPrimary, Kind::kOther, "statement too deeply nested");
    return c;
  }
  dom::array stmts;
  if (err != simdjson::SUCCESS || root["stmts"].get(stmts) != simdjson::SUCCESS)
    return failed("parse error (libpg_query output)");

  Classification out;
  const size_t n = stmts.size();
  if (n == 0) {
    setTarget(out, Target::kAny, Kind::kOther, "empty query");
  } else if (n == 1) {
    dom::object raw;
    if (stmts.at(0).get(raw) == simdjson::SUCCESS) out = classifyStatement(nodeField(raw, "stmt"));
  } else {
    std::vector<Classification> parts;
    parts.reserve(n);
    for (dom::element e : stmts) {
      dom::object raw;
      parts.push_back(e.get(raw) == simdjson::SUCCESS ? classifyStatement(nodeField(raw, "stmt"))
                                                      : classifyStatement(Node{}));
    }
    out = combine(std::move(parts));
  }
  return out;
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
