"""pgpool-II routing keys on a real cluster (primary + 2 streaming standbys), the
destination of every read checked on the server side in the same statement
(inet_server_port(), pg_is_in_recovery()):
app_name_redirect_preference_list, database_redirect_preference_list, allow_sql_comments,
dml_adaptive_object_relationship_list and delay_threshold_by_time. The primary has weight 0
(a random choice never picks it), so "ran on the primary" always comes from the rule under
test."""

import os
import subprocess
import threading
import time

import pytest

from harness import procs
from harness.cluster import Cluster
from harness.pgpilot import DEFAULT_BINARY, Pgpilot

from routing_util import make, pool_nodes

BINARY = os.environ.get("PGPILOT_BIN") or DEFAULT_BINARY
WHERE = "SELECT inet_server_port(), pg_is_in_recovery()"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(num_standbys=2)
    try:
        c.start()
        c.primary.psql("CREATE DATABASE rkdb")
        for t in ("rk_t1", "rk_t2", "rk_t3", "rk_tf"):
            c.primary.psql(f"CREATE TABLE {t} (v int)")
        c.primary.psql("CREATE FUNCTION rk_ins(x int) RETURNS int LANGUAGE sql VOLATILE "
                       "AS 'INSERT INTO rk_tf VALUES (x) RETURNING x'")
        c.primary.psql("CREATE TABLE rk_lag (v int)")
        c.wait_replay()
        yield c
    finally:
        c.stop()


def where(cur, sql=WHERE):
    cur.execute(sql)
    return cur.fetchone()


def reads_of(p, n=5, **kw):
    """Where n reads of one new session ran: a set of (port, in_recovery)."""
    conn = p.connect(**kw)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        return {where(cur) for _ in range(n)}
    finally:
        conn.close()


# ---- app_name / database redirect lists ----------------------------------------------------

@pytest.fixture(scope="module")
def redirect(cluster):
    p = make(cluster,
             app_name_redirect_preference_list="psql:primary,myapp[0-4]:1,myapp[5-9]:standby",
             database_redirect_preference_list="rkdb:2")
    try:
        yield p
    finally:
        p.stop()


def test_app_name_redirect(cluster, redirect):
    primary = (cluster.primary.port, False)
    node1 = (cluster.standbys[0].port, True)
    standbys = {(s.port, True) for s in cluster.standbys}
    for _ in range(5):
        assert reads_of(redirect, application_name="psql") == {primary}
        assert reads_of(redirect, application_name="myapp3") == {node1}
        assert reads_of(redirect, application_name="myapp7") <= standbys
    # Anchored full match: these match no entry, so reads go by weight (standbys only).
    for app in ("psql2", "xpsql", "myapp10", "PSQL"):
        for _ in range(3):
            assert reads_of(redirect, application_name=app) <= standbys, app
    # SHOW pool_nodes names the session's load-balance node (chosen at its first read).
    conn = redirect.connect(application_name="myapp3")
    conn.autocommit = True
    cur = conn.cursor()
    assert where(cur) == node1
    cur.execute("SHOW pool_nodes")
    lb = {int(r[0]): r[[d[0] for d in cur.description].index("load_balance_node")]
          for r in cur.fetchall()}
    conn.close()
    assert lb == {0: "false", 1: "true", 2: "false"}


def test_database_redirect_and_app_name_precedence(cluster, redirect):
    primary = (cluster.primary.port, False)
    node2 = (cluster.standbys[1].port, True)
    for _ in range(5):
        assert reads_of(redirect, dbname="rkdb") == {node2}
        assert reads_of(redirect, dbname="rkdb", application_name="someapp") == {node2}
        # app_name_redirect_preference_list wins over the database rule.
        assert reads_of(redirect, dbname="rkdb", application_name="psql") == {primary}


def test_set_application_name_does_not_reroute(cluster, redirect):
    """pgpool only looks at the startup packet's application_name; so does pgpilot."""
    node2 = (cluster.standbys[1].port, True)
    conn = redirect.connect(dbname="rkdb", application_name="someapp")
    conn.autocommit = True
    cur = conn.cursor()
    assert where(cur) == node2
    cur.execute("SET application_name = 'psql'")
    cur.execute("SHOW application_name")
    assert cur.fetchone()[0] == "psql"  # the server-side setting did change ...
    assert {where(cur) for _ in range(5)} == {node2}  # ... the routing did not
    conn.close()


def test_redirect_weight_splits_reads(cluster):
    """'app:1(0.3)': node 1 gets about 30% of the choices, the other nodes (by weight: only
    node 2, the primary has weight 0) the rest; per statement here."""
    p = make(cluster, statement_level_load_balance="on",
             app_name_redirect_preference_list="weighted:1(0.3),half:standby(0.5)")
    try:
        conn = p.connect(application_name="weighted")
        conn.autocommit = True
        cur = conn.cursor()
        n = 400
        counts = {}
        for _ in range(n):
            w = where(cur)
            counts[w] = counts.get(w, 0) + 1
        conn.close()
        node1 = (cluster.standbys[0].port, True)
        node2 = (cluster.standbys[1].port, True)
        assert set(counts) == {node1, node2}, counts
        assert 0.18 * n < counts[node1] < 0.42 * n, counts  # expected 0.30 (sd ~0.023)
        conn = p.connect(application_name="half")
        conn.autocommit = True
        cur = conn.cursor()
        counts = {}
        for _ in range(n):
            w = where(cur)
            counts[w] = counts.get(w, 0) + 1
        conn.close()
        primary = (cluster.primary.port, False)
        assert 0.38 * n < counts.get(primary, 0) < 0.62 * n, counts  # expected 0.5
        assert counts.get(node1, 0) > 0 and counts.get(node2, 0) > 0, counts
    finally:
        p.stop()


def test_bad_redirect_list_is_a_config_error(cluster):
    p = Pgpilot(cluster, start=False, extra_conf={
        "app_name_redirect_preference_list": "psql:replica"})
    try:
        with open(p.conf_path) as f:
            lines = f.read().splitlines()
        line_no = next(i + 1 for i, line in enumerate(lines)
                       if line.startswith("app_name_redirect_preference_list"))
        r = subprocess.run([BINARY, "-f", p.conf_path, "--check"], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL,
                           env=procs.clean_env())
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert f"{p.conf_path}:{line_no}:" in r.stderr, r.stderr
        assert "app_name_redirect_preference_list" in r.stderr and "psql:replica" in r.stderr
    finally:
        p.stop()


# ---- allow_sql_comments --------------------------------------------------------------------

def test_allow_sql_comments_off_keeps_commented_reads_on_the_primary(cluster, redirect):
    """pgpool's default: a read that starts with a comment is not load balanced."""
    primary = (cluster.primary.port, False)
    conn = redirect.connect(application_name="someapp")
    conn.autocommit = True
    cur = conn.cursor()
    assert where(cur)[1] is True
    assert where(cur, "/* app=web */ " + WHERE) == primary
    assert where(cur, "-- app=web\n" + WHERE) == primary
    assert where(cur, "/*NO LOAD BALANCE*/ " + WHERE) == primary
    assert where(cur, WHERE + " /* trailing */")[1] is True
    assert where(cur, "SELECT /* inside */ inet_server_port(), pg_is_in_recovery()")[1] is True
    conn.close()


def test_allow_sql_comments_on_ignores_comments_but_not_the_hint(cluster):
    p = make(cluster, allow_sql_comments="on")
    primary = (cluster.primary.port, False)
    try:
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        assert where(cur, "/* app=web */ " + WHERE)[1] is True
        assert where(cur, "-- app=web\n" + WHERE)[1] is True
        assert where(cur, "/*NO LOAD BALANCE*/ " + WHERE) == primary
        assert where(cur, "/* a */ /*NO LOAD BALANCE*/ " + WHERE) == primary
        # A write stays a write behind a comment.
        cur.execute("/* app */ INSERT INTO rk_t3 VALUES (1) "
                    "RETURNING inet_server_port(), pg_is_in_recovery()")
        assert cur.fetchone() == primary
        conn.close()
    finally:
        p.stop()


# ---- dml_adaptive_object_relationship_list -------------------------------------------------

def test_dml_adaptive_object_relationships(cluster):
    p = make(cluster, disable_load_balance_on_write="dml_adaptive",
             dml_adaptive_object_relationship_list="rk_t1:rk_t2,rk_ins():rk_tf")
    primary = (cluster.primary.port, False)
    try:
        conn = p.connect()  # autocommit off: every statement is inside a block
        cur = conn.cursor()

        def at(table):
            return where(cur, f"SELECT inet_server_port(), pg_is_in_recovery() FROM "
                              f"(SELECT count(*) FROM {table}) x")

        home = at("rk_t2")
        assert home[1] is True  # before any write: a standby
        cur.execute("INSERT INTO rk_t1 VALUES (1) RETURNING inet_server_port()")
        assert cur.fetchone()[0] == cluster.primary.port
        assert at("rk_t1") == primary  # written table (plain dml_adaptive)
        assert at("rk_t2") == primary  # its configured dependent
        assert at("rk_t3") == home     # unrelated: stays on the block's standby
        assert at("rk_tf") == home
        conn.commit()
        # A new block starts afresh; a write through rk_ins() makes rk_tf primary-only.
        home = at("rk_t2")
        assert home[1] is True
        cur.execute("SELECT rk_ins(2), inet_server_port()")
        assert cur.fetchone()[1] == cluster.primary.port
        assert at("rk_tf") == primary
        assert at("rk_t2") == home
        assert at("public.rk_tf") == primary  # qualified use of the dependent
        conn.commit()
        conn.close()
    finally:
        p.stop()


# ---- delay_threshold_by_time ---------------------------------------------------------------

def test_delay_threshold_by_time(cluster):
    """A standby whose replay is paused while the primary keeps writing shows a growing
    replay_lag; past delay_threshold_by_time (1 s) it leaves the rotation, SHOW pool_nodes
    showing the delay in seconds; after resume it comes back."""
    p = make(cluster, statement_level_load_balance="on", delay_threshold_by_time="1000")
    lagging = cluster.standbys[1]  # node 2
    healthy = cluster.standbys[0]
    stop = threading.Event()

    def writer():  # keeps WAL and walsender feedback flowing
        while not stop.is_set():
            cluster.primary.psql("INSERT INTO rk_lag VALUES (1)", check=False)
            time.sleep(0.1)

    t = threading.Thread(target=writer, daemon=True)
    try:
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        assert {where(cur)[0] for _ in range(40)} == {healthy.port, lagging.port}
        nodes = pool_nodes(p)
        float(nodes[2]["replication_delay"])  # seconds, e.g. "0.000000"
        assert "." in nodes[2]["replication_delay"], nodes
        t.start()
        lagging.psql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 30
        while True:
            nodes = pool_nodes(p)
            if (float(nodes[2]["replication_delay"]) > 1.0
                    and float(nodes[1]["replication_delay"]) <= 1.0):
                break
            assert time.monotonic() < deadline, nodes
            time.sleep(0.2)
        assert {where(cur) for _ in range(40)} == {(healthy.port, True)}
        lagging.psql("SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 30
        while float(pool_nodes(p)[2]["replication_delay"]) > 1.0:
            assert time.monotonic() < deadline, pool_nodes(p)
            time.sleep(0.2)
        assert lagging.port in {where(cur)[0] for _ in range(40)}
        conn.close()
    finally:
        stop.set()
        if t.is_alive():
            t.join(10)
        lagging.psql("SELECT pg_wal_replay_resume()", check=False)
        p.stop()


@pytest.mark.parametrize("mode", ["off", "transaction", "trans_transaction", "always"])
def test_disable_load_balance_on_write_modes(cluster, mode):
    """Where reads go after a write, per disable_load_balance_on_write (pgpool's meaning),
    inside the block, in the next block and outside blocks. Most of these statements stay
    on the session's current node, so they exercise the synchronous routing path
    (routeFast) as well as the coroutine one."""
    p = make(cluster, disable_load_balance_on_write=mode)
    try:
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        primary = (cluster.primary.port, False)

        def where():
            cur.execute(WHERE)
            return cur.fetchone()

        home = where()
        assert home[1] is True  # the session's load-balance node: a standby
        cur.execute("BEGIN")
        assert where() == home  # the block starts where its first statement reads
        assert where() == home
        cur.execute("INSERT INTO rk_t1 VALUES (1) RETURNING inet_server_port()")
        assert cur.fetchone()[0] == cluster.primary.port
        after_write = [where() for _ in range(3)]
        cur.execute("COMMIT")
        expected_in_block = home if mode == "off" else primary
        assert after_write == [expected_in_block] * 3, after_write
        # The next block, and reads outside any block.
        cur.execute("BEGIN")
        next_block = [where() for _ in range(2)]
        cur.execute("COMMIT")
        outside = [where() for _ in range(2)]
        sticky = mode in ("trans_transaction", "always")
        assert next_block == [primary if sticky else home] * 2, next_block
        assert outside == [primary if mode == "always" else home] * 2, outside
        conn.close()
    finally:
        p.stop()
