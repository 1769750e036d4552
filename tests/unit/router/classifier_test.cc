#include "router/classifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace pgpilot::router {
namespace {

using Kind = Classification::Kind;

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(Classifier, PlainSelectIsARead) {
  Classification c = classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1");
  EXPECT_EQ(c.target, Target::kAny);
  EXPECT_EQ(c.kind, Kind::kRead);
  EXPECT_TRUE(has(c.relations, "pgbench_accounts"));
  EXPECT_TRUE(c.functions.empty());
  EXPECT_FALSE(c.session_state);
  EXPECT_FALSE(c.parse_error);
}

TEST(Classifier, WritesAndReasons) {
  EXPECT_EQ(classify("INSERT INTO t VALUES (1)").reason, "INSERT");
  EXPECT_EQ(classify("UPDATE t SET a = 1").reason, "UPDATE");
  EXPECT_EQ(classify("DELETE FROM t").reason, "DELETE");
  EXPECT_EQ(classify("MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE").reason, "MERGE");
  EXPECT_EQ(classify("INSERT INTO t VALUES (1)").kind, Kind::kWrite);
  EXPECT_EQ(classify("SELECT * FROM t FOR NO KEY UPDATE").reason, "SELECT ... FOR NO KEY UPDATE");
  EXPECT_EQ(classify("SELECT * FROM t FOR KEY SHARE").reason, "SELECT ... FOR KEY SHARE");
  EXPECT_EQ(classify("SELECT nextval('s')").reason, "calls nextval");
  EXPECT_EQ(classify("CREATE TABLE x (a int)").reason, "CREATE TABLE");
  EXPECT_EQ(classify("SELECT 1 +").reason, "parse error");
  EXPECT_TRUE(classify("SELECT 1 +").parse_error);
}

TEST(Classifier, WritingCteAtAnyDepth) {
  Classification c = classify(
      "SELECT * FROM t WHERE a IN (SELECT x FROM (WITH d AS (DELETE FROM u RETURNING x) "
      "SELECT x FROM d) s)");
  EXPECT_EQ(c.target, Target::kPrimary);
  EXPECT_TRUE(c.has_writing_cte);
  EXPECT_TRUE(has(c.relations, "u"));
}

TEST(Classifier, LockingClauseAnywhere) {
  Classification c = classify("SELECT * FROM t WHERE a IN (SELECT a FROM u FOR UPDATE)");
  EXPECT_TRUE(c.locking_clause);
  EXPECT_EQ(c.target, Target::kPrimary);
  EXPECT_FALSE(classify("SELECT $$ FOR UPDATE $$").locking_clause);
}

TEST(Classifier, SelectIntoAndCreateTableAs) {
  Classification c = classify("SELECT * INTO n FROM t");
  EXPECT_TRUE(c.select_into);
  EXPECT_EQ(c.kind, Kind::kDdl);
  EXPECT_EQ(c.reason, "SELECT INTO");
  EXPECT_EQ(classify("CREATE TABLE n AS SELECT 1").reason, "CREATE TABLE AS");
  EXPECT_TRUE(classify("CREATE TEMP TABLE n AS SELECT 1").session_state);
  EXPECT_TRUE(classify("SELECT 1 INTO TEMP n").session_state);
}

TEST(Classifier, FunctionsAreCollectedWithSchemas) {
  Classification c =
      classify("SELECT lower(a), app.f(b), \"MixedCase\"(c), pg_catalog.upper(d) FROM t");
  EXPECT_TRUE(has(c.functions, "lower"));
  EXPECT_TRUE(has(c.functions, "app.f"));
  EXPECT_TRUE(has(c.functions, "MixedCase"));
  EXPECT_TRUE(has(c.functions, "pg_catalog.upper"));
  EXPECT_EQ(c.target, Target::kAny);  // volatility is the policy's job
}

TEST(Classifier, RelationsAreCollectedQualified) {
  Classification c = classify("SELECT * FROM app.events e JOIN users u ON u.id = e.uid");
  EXPECT_TRUE(has(c.relations, "app.events"));
  EXPECT_TRUE(has(c.relations, "users"));
}

// Fields declared with a node's own type (not `Node *`) print without the node's name in
// libpg_query's JSON: the walk must still see the relations and functions inside them.
TEST(Classifier, NodesInTypedFieldsAreSeen) {
  Classification ins =
      classify("INSERT INTO app.t (a) SELECT b FROM \"Src\" RETURNING nextval('s')");
  EXPECT_TRUE(has(ins.relations, "app.t"));  // InsertStmt.relation is a RangeVar *
  EXPECT_TRUE(has(ins.relations, "Src"));
  EXPECT_TRUE(has(ins.functions, "nextval"));
  Classification call = classify("CALL app.proc(lower('x'))");  // CallStmt.funccall
  EXPECT_TRUE(has(call.functions, "app.proc"));
  EXPECT_TRUE(has(call.functions, "lower"));
  Classification into = classify("SELECT a INTO TEMP n FROM t");  // SelectStmt.intoClause
  EXPECT_TRUE(into.select_into);
  EXPECT_TRUE(has(into.relations, "n"));
  EXPECT_TRUE(has(into.relations, "t"));
  // A writing CTE inside a UNION arm (SelectStmt.larg/rarg are SelectStmt *).
  Classification arm =
      classify("SELECT 1 UNION ALL (WITH w AS (DELETE FROM t RETURNING 1) SELECT * FROM w)");
  EXPECT_TRUE(arm.has_writing_cte);
  EXPECT_EQ(arm.target, Target::kPrimary);
  // DDL without a well-known name is named after PostgreSQL's node.
  EXPECT_EQ(classify("CREATE SCHEMA s").reason, "DDL (CreateSchemaStmt)");
}

TEST(Classifier, AdvisoryLocks) {
  Classification s = classify("SELECT pg_advisory_lock(1)");
  EXPECT_TRUE(s.advisory_lock);
  EXPECT_TRUE(s.session_state);
  EXPECT_EQ(s.target, Target::kPrimary);
  Classification x = classify("SELECT pg_advisory_xact_lock(1)");
  EXPECT_TRUE(x.advisory_lock);
  EXPECT_FALSE(x.session_state);  // released at transaction end
  EXPECT_EQ(x.target, Target::kPrimary);
}

TEST(Classifier, SetConfig) {
  EXPECT_TRUE(classify("SELECT set_config('a.b', 'x', false)").session_state);
  EXPECT_FALSE(classify("SELECT set_config('a.b', 'x', true)").session_state);
  // Not a boolean keyword: assume session scope.
  EXPECT_TRUE(classify("SELECT set_config('a.b', 'x', $1)").session_state);
}

TEST(Classifier, TransactionControl) {
  Classification b = classify("BEGIN");
  EXPECT_EQ(b.kind, Kind::kBegin);
  EXPECT_EQ(b.target, Target::kAny);
  EXPECT_FALSE(b.begin_read_only);

  Classification ro = classify("START TRANSACTION READ ONLY");
  EXPECT_TRUE(ro.begin_read_only);
  EXPECT_FALSE(classify("BEGIN READ WRITE").begin_read_only);

  Classification ser = classify("BEGIN ISOLATION LEVEL SERIALIZABLE");
  EXPECT_TRUE(ser.begin_serializable);
  EXPECT_EQ(ser.target, Target::kPrimary);

  EXPECT_EQ(classify("COMMIT").kind, Kind::kCommit);
  EXPECT_EQ(classify("END").kind, Kind::kCommit);
  EXPECT_EQ(classify("ROLLBACK").kind, Kind::kRollback);
  Classification sp = classify("SAVEPOINT a1");
  EXPECT_EQ(sp.kind, Kind::kSavepoint);
  EXPECT_EQ(sp.object_name, "a1");
  EXPECT_EQ(classify("RELEASE a1").kind, Kind::kReleaseSavepoint);
  EXPECT_EQ(classify("ROLLBACK TO a1").kind, Kind::kRollbackTo);
  EXPECT_EQ(classify("PREPARE TRANSACTION 'x'").kind, Kind::kPrepareTransaction);
  EXPECT_EQ(classify("COMMIT PREPARED 'x'").kind, Kind::kCommitPrepared);
  EXPECT_EQ(classify("ROLLBACK PREPARED 'x'").kind, Kind::kRollbackPrepared);
}

TEST(Classifier, SetForms) {
  Classification s = classify("SET search_path = app");
  EXPECT_EQ(s.kind, Kind::kSet);
  EXPECT_TRUE(s.session_state);
  EXPECT_EQ(s.object_name, "search_path");
  EXPECT_FALSE(classify("SET LOCAL search_path = app").session_state);

  Classification t = classify("SET TRANSACTION READ ONLY");
  EXPECT_TRUE(t.set_transaction_read_only);
  EXPECT_FALSE(t.session_state);
  EXPECT_TRUE(classify("SET transaction_read_only = on").set_transaction_read_only);
  EXPECT_TRUE(
      classify("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").set_transaction_serializable);

  Classification d = classify("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
  EXPECT_TRUE(d.session_default_read_only);
  EXPECT_TRUE(d.session_state);
  EXPECT_TRUE(classify("SET default_transaction_read_only = true").session_default_read_only);
  EXPECT_TRUE(
      classify("SET default_transaction_isolation = 'SERIALIZABLE'").session_default_serializable);

  Classification r = classify("RESET ALL");
  EXPECT_EQ(r.kind, Kind::kReset);
  EXPECT_TRUE(r.session_state);
  EXPECT_EQ(classify("DISCARD ALL").kind, Kind::kDiscard);
  EXPECT_EQ(classify("SHOW work_mem").object_name, "work_mem");
}

TEST(Classifier, PreparedStatementsAndCursors) {
  Classification p = classify("PREPARE q AS UPDATE t SET a = $1");
  EXPECT_EQ(p.kind, Kind::kPrepare);
  EXPECT_EQ(p.object_name, "q");
  EXPECT_EQ(p.target, Target::kPrimary);
  EXPECT_EQ(p.reason, "PREPARE of UPDATE");
  EXPECT_TRUE(p.session_state);

  Classification e = classify("EXECUTE q(1)");
  EXPECT_EQ(e.kind, Kind::kExecute);
  EXPECT_EQ(e.object_name, "q");

  Classification dealloc = classify("DEALLOCATE PREPARE q");
  EXPECT_EQ(dealloc.kind, Kind::kDeallocate);
  EXPECT_EQ(dealloc.object_name, "q");
  EXPECT_EQ(classify("DEALLOCATE ALL").object_name, "");

  Classification d = classify("DECLARE cur CURSOR WITH HOLD FOR SELECT * FROM t");
  EXPECT_EQ(d.kind, Kind::kDeclareCursor);
  EXPECT_EQ(d.object_name, "cur");
  EXPECT_TRUE(d.session_state);
  EXPECT_EQ(d.target, Target::kAny);
  EXPECT_FALSE(classify("DECLARE cur CURSOR FOR SELECT 1").session_state);
  EXPECT_EQ(classify("FETCH 5 FROM cur").kind, Kind::kFetch);
  EXPECT_EQ(classify("FETCH 5 FROM cur").object_name, "cur");
  EXPECT_EQ(classify("CLOSE cur").kind, Kind::kClose);
}

TEST(Classifier, ListenNotifyLockCopy) {
  Classification l = classify("LISTEN jobs");
  EXPECT_EQ(l.kind, Kind::kListen);
  EXPECT_EQ(l.object_name, "jobs");
  EXPECT_TRUE(l.session_state);
  EXPECT_EQ(classify("UNLISTEN *").kind, Kind::kUnlisten);
  EXPECT_EQ(classify("NOTIFY jobs").kind, Kind::kNotify);
  EXPECT_EQ(classify("LOCK t").kind, Kind::kLock);
  EXPECT_EQ(classify("COPY t FROM STDIN").kind, Kind::kCopyFrom);
  Classification to = classify("COPY t TO STDOUT");
  EXPECT_EQ(to.kind, Kind::kCopyTo);
  EXPECT_EQ(to.target, Target::kAny);
  EXPECT_TRUE(has(to.relations, "t"));
}

TEST(Classifier, ExplainFollowsItsStatement) {
  Classification a = classify("EXPLAIN ANALYZE INSERT INTO t VALUES (1)");
  EXPECT_EQ(a.target, Target::kPrimary);
  EXPECT_EQ(a.reason, "EXPLAIN ANALYZE of INSERT");
  Classification r = classify("EXPLAIN SELECT my_fn() FROM t");
  EXPECT_EQ(r.target, Target::kAny);
  EXPECT_TRUE(has(r.functions, "my_fn"));
}

TEST(Classifier, MultiStatement) {
  Classification reads = classify("SELECT 1; SELECT a FROM t");
  EXPECT_EQ(reads.statement_count, 2);
  EXPECT_EQ(reads.target, Target::kAny);
  EXPECT_TRUE(has(reads.relations, "t"));
  Classification mixed = classify("SELECT 1; UPDATE t SET a = 1");
  EXPECT_EQ(mixed.target, Target::kPrimary);
  EXPECT_EQ(mixed.reason, "multi-statement: UPDATE");
}

TEST(Classifier, EmptyAndHostileInput) {
  EXPECT_EQ(classify("").target, Target::kAny);
  EXPECT_EQ(classify("  -- nothing").target, Target::kAny);
  EXPECT_EQ(classify(std::string_view("SELECT 1\0; DELETE FROM t", 24)).target, Target::kPrimary);
  // Parentheses alone do not nest the tree; a long chain of operators does.
  std::string parens = "SELECT " + std::string(500, '(') + "1" + std::string(500, ')');
  EXPECT_EQ(classify(parens).target, Target::kAny);
  std::string deep = "SELECT 1";
  for (int i = 0; i < 2500; ++i) deep += " + 1";
  Classification d = classify(deep);
  EXPECT_EQ(d.target, Target::kPrimary);  // too deep to walk: conservative
  EXPECT_EQ(d.reason, "statement too deeply nested");
  // Deeper than the parse budget: not handed to libpg_query at all (it would overflow
  // the stack at ~25,000 levels).
  for (std::string unit : {" + 1", " UNION SELECT 1", "::int"}) {
    std::string s = "SELECT 1";
    for (int i = 0; i < 100000; ++i) s += unit;
    EXPECT_EQ(classify(s).reason, "statement too complex to classify") << unit;
  }
  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += "(SELECT ";
  nested += "1";
  nested += std::string(100000, ')');
  EXPECT_EQ(classify(nested).target, Target::kPrimary);
  // Long but shallow statements are still parsed.
  std::string in_list = "SELECT * FROM t WHERE id IN (1";
  for (int i = 0; i < 20000; ++i) in_list += ", " + std::to_string(i);
  in_list += ")";
  EXPECT_EQ(classify(in_list).target, Target::kAny);
  // The per-thread JSON parser grew for that statement (over 1 MB of JSON) and is rebuilt
  // small for the next one.
  Classification after = classify("UPDATE t SET a = 1 WHERE id = 2");
  EXPECT_EQ(after.target, Target::kPrimary);
  EXPECT_EQ(after.reason, "UPDATE");
}

TEST(Classifier, KindNames) {
  EXPECT_EQ(kindName(Kind::kRead), "read");
  EXPECT_EQ(kindName(Kind::kOther), "other");
  EXPECT_EQ(targetName(Target::kPrimary), "primary");
}

}  // namespace
}  // namespace pgpilot::router
