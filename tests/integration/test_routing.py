"""Read/write routing with load_balance_mode = on, checked on the server side: every
statement reports where it ran (inet_server_port(), pg_is_in_recovery()) in the same
statement. A primary + 2 streaming standbys; the primary has weight 0 unless a test says
otherwise, so "a read ran on a standby" is deterministic."""

import re
import shutil
import subprocess
import time

import psycopg2
import pytest

from harness import procs
from harness.cluster import Cluster

import pgwire
from routing_util import internal_queries, make, pool_nodes

PGBENCH = shutil.which("pgbench") or "/usr/bin/pgbench"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(num_standbys=2)
    try:
        c.start()
        c.primary.psql("CREATE TABLE rt (id serial PRIMARY KEY, v int)")
        c.primary.psql("CREATE UNLOGGED TABLE rt_unlogged (v int)")
        c.primary.psql("CREATE FUNCTION rt_write(x int) RETURNS int LANGUAGE sql VOLATILE "
                       "AS 'INSERT INTO rt (v) VALUES (x) RETURNING v'")
        c.primary.psql("CREATE FUNCTION rt_stable(x int) RETURNS int LANGUAGE sql STABLE "
                       "AS 'SELECT x + 1'")
        c.wait_replay()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def lb(cluster):
    p = make(cluster)
    try:
        yield p
    finally:
        p.stop()


def where(cur, sql="SELECT inet_server_port(), pg_is_in_recovery()", args=None):
    cur.execute(sql, args)
    return cur.fetchone()


def standby_ports(cluster):
    return {n.port for n in cluster.standbys}


def test_reads_on_standby_writes_on_primary(cluster, lb):
    conn = lb.connect()
    conn.autocommit = True
    cur = conn.cursor()
    port, rec = where(cur)
    assert rec is True and port in standby_ports(cluster)
    # session-level load balancing: the same standby every time
    for _ in range(20):
        assert where(cur) == (port, True)
    # writes, locking reads, volatile functions: primary
    assert where(cur, "INSERT INTO rt (v) VALUES (1) RETURNING inet_server_port(), "
                 "pg_is_in_recovery()") == (cluster.primary.port, False)
    assert where(cur, "SELECT inet_server_port(), pg_is_in_recovery() FROM rt LIMIT 1 "
                 "FOR UPDATE") == (cluster.primary.port, False)
    assert where(cur, "SELECT inet_server_port(), pg_is_in_recovery(), rt_write(5)")[:2] == (
        cluster.primary.port, False)
    # a stable function and an unlogged table (pg_proc / pg_class lookups)
    assert where(cur, "SELECT inet_server_port(), pg_is_in_recovery(), rt_stable(1)")[:2] == (
        port, True)
    assert where(cur, "SELECT inet_server_port(), pg_is_in_recovery() FROM "
                 "(SELECT 1) x LEFT JOIN rt_unlogged ON true LIMIT 1") == (
        cluster.primary.port, False)
    # the hint
    assert where(cur, "/*NO LOAD BALANCE*/ SELECT inet_server_port(), pg_is_in_recovery()") == (
        cluster.primary.port, False)
    # back on the standby for plain reads (disable_load_balance_on_write = transaction)
    assert where(cur) == (port, True)
    conn.close()


def test_transaction_read_then_write(cluster, lb):
    """BEGIN; read (standby); write (primary); read (primary: sees the write); COMMIT."""
    conn = lb.connect()  # psycopg2: autocommit off, BEGIN before the first statement
    cur = conn.cursor()
    port, rec = where(cur)
    assert rec is True and port in standby_ports(cluster)
    marker = int(time.time() * 1000) % 1000000000
    assert where(cur, "INSERT INTO rt (v) VALUES (%s) RETURNING inet_server_port(), "
                 "pg_is_in_recovery()", (marker,)) == (cluster.primary.port, False)
    cur.execute("SELECT inet_server_port(), count(*) FROM rt WHERE v = %s", (marker,))
    assert cur.fetchone() == (cluster.primary.port, 1)
    conn.commit()
    assert cluster.primary.psql(f"SELECT count(*) FROM rt WHERE v = {marker}") == "1"
    # The standby's part of the block was ended: nothing idle in a transaction there.
    time.sleep(0.2)
    for s in cluster.standbys:
        assert s.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE "
                      "'idle in transaction%' AND backend_type = 'client backend'") == "0"
    # A rolled-back block leaves nothing.
    where(cur)
    cur.execute("INSERT INTO rt (v) VALUES (%s)", (marker + 1,))
    conn.rollback()
    assert cluster.primary.psql(f"SELECT count(*) FROM rt WHERE v = {marker + 1}") == "0"
    conn.close()


def test_write_first_transaction_never_touches_a_standby(cluster, lb):
    conn = lb.connect()
    cur = conn.cursor()
    assert where(cur, "UPDATE rt SET v = v WHERE id = 1 RETURNING inet_server_port(), "
                 "pg_is_in_recovery()") in [(cluster.primary.port, False), None]
    assert where(cur) == (cluster.primary.port, False)  # same block: primary
    conn.commit()
    port, rec = where(cur)  # new block, first statement a read: standby
    assert rec is True
    conn.commit()
    conn.close()


def test_block_first_statement_carries_its_begin(cluster, lb):
    """BEGIN is answered by pgpilot and written to the primary just ahead of the block's
    first statement: the client sees exactly the replies PostgreSQL would give, the
    statement runs inside the block, and an error in it fails the block as it should."""
    c = pgwire.PgWire(lb.host, lb.port, timeout=10).connect()
    direct = pgwire.PgWire(cluster.primary.host, cluster.primary.port, timeout=10).connect()
    try:
        seen = []
        for i in range(4):  # the first round fills the classification and catalog caches
            if i == 1:
                before = internal_queries(lb)
            marker = 910000 + i
            c.send(pgwire.query("BEGIN"))
            assert [t for t, _ in c.read_until_ready()] == ["C", "Z"] and c.tx_status == "T"
            c.send(pgwire.query(f"INSERT INTO rt (v) VALUES ({marker}) RETURNING txid_current()"))
            replies = c.read_until_ready()
            assert [t for t, _ in replies] == ["T", "D", "C", "Z"], replies
            assert pgwire.command_tag(replies[2][1]) == "INSERT 0 1"
            assert c.tx_status == "T"
            txid = pgwire.data_row(replies[1][1])[0]
            seen.append(direct.query_value(
                f"SELECT pid FROM pg_stat_activity WHERE backend_xid::text = '{txid}'"))
            # The same block, on the primary.
            assert c.query_rows("SELECT txid_current(), inet_server_port(), "
                                "pg_is_in_recovery()") == [[txid, str(cluster.primary.port), "f"]]
            c.send(pgwire.query("ROLLBACK"))
            assert [t for t, _ in c.read_until_ready()] == ["C", "Z"] and c.tx_status == "I"
            assert direct.query_value(f"SELECT count(*) FROM rt WHERE v = {marker}") == "0"
        # One server session throughout; once cached, the BEGIN reached the primary with the
        # INSERT: no statement of pgpilot's own (a separate BEGIN round trip) in 3 blocks.
        assert len(set(seen)) == 1, seen
        assert internal_queries(lb) == before

        # An error in the first statement fails the block, exactly as on PostgreSQL: the same
        # error fields, status E, later statements refused until ROLLBACK.
        bad = "INSERT INTO rt (v, nosuch) VALUES (1, 2)"
        direct.query_rows("BEGIN")
        with pytest.raises(pgwire.ServerError) as want:
            direct.query_rows(bad)
        direct.query_rows("ROLLBACK")
        assert want.value.fields.get("P") == "20"  # at "nosuch"
        for _ in range(3):
            c.query_rows("BEGIN")
            with pytest.raises(pgwire.ServerError) as got:
                c.query_rows(bad)
            assert got.value.fields == want.value.fields
            assert c.tx_status == "E"
            with pytest.raises(pgwire.ServerError) as aborted:
                c.query_rows("INSERT INTO rt (v) VALUES (920000)")
            assert aborted.value.sqlstate == "25P02"
            c.send(pgwire.query("COMMIT"))
            replies = c.read_until_ready()
            assert [(t, pgwire.command_tag(b)) for t, b in replies if t == "C"] == \
                [("C", "ROLLBACK")]
            assert c.tx_status == "I"
        assert direct.query_value("SELECT count(*) FROM rt WHERE v = 920000") == "0"
    finally:
        c.close()
        direct.close()


def test_read_only_and_serializable(cluster, lb):
    conn = lb.connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("BEGIN READ ONLY")
    port, rec = where(cur)
    assert rec is True
    with pytest.raises(psycopg2.Error) as e:
        cur.execute("INSERT INTO rt (v) VALUES (1)")
    assert "read-only transaction" in str(e.value)
    cur.execute("ROLLBACK")
    cur.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    assert where(cur) == (cluster.primary.port, False)
    cur.execute("COMMIT")
    conn.close()


def test_session_settings_follow_the_session(cluster, lb):
    conn = lb.connect()
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET statement_timeout = '4321ms'")  # where the session started: the primary
    cur.execute("SET application_name = 'routing-test'")
    before = internal_queries(lb)
    port, rec, st = where(cur, "SELECT inet_server_port(), pg_is_in_recovery(), "
                          "current_setting('statement_timeout')")
    assert rec is True and st == "4321ms"
    # Both SETs were replayed on the standby's connection: pgpilot's own statements.
    assert internal_queries(lb) >= before + 2
    port, rec, st = where(cur, "INSERT INTO rt (v) VALUES (2) RETURNING inet_server_port(), "
                          "pg_is_in_recovery(), current_setting('statement_timeout')")
    assert (port, rec, st) == (cluster.primary.port, False, "4321ms")
    cur.execute("RESET statement_timeout")
    assert where(cur, "SELECT pg_is_in_recovery(), current_setting('statement_timeout')") == (
        True, "0")
    assert where(cur, "INSERT INTO rt (v) VALUES (3) RETURNING pg_is_in_recovery(), "
                 "current_setting('statement_timeout')") == (False, "0")
    # SQL PREPARE / EXECUTE of a read runs on the standby, which has the statement.
    cur.execute("PREPARE rd AS SELECT inet_server_port(), pg_is_in_recovery()")
    assert cur.execute("EXECUTE rd") is None and cur.fetchone()[1] is True
    cur.execute("DEALLOCATE rd")
    # LISTEN pins the session to the primary.
    cur.execute("LISTEN routing_test")
    assert where(cur) == (cluster.primary.port, False)
    conn.close()


def test_statement_level_load_balance(cluster):
    p = make(cluster, statement_level_load_balance="on")
    try:
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        seen = {where(cur) for _ in range(60)}
        assert seen == {(n.port, True) for n in cluster.standbys}
        conn.close()
    finally:
        p.stop()


def run_pgbench(p, *args, timeout=120):
    cmd = [PGBENCH, "-h", p.host, "-p", str(p.port), "-U", "postgres", *args, "postgres"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=procs.clean_env(PGCONNECT_TIMEOUT=10), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"pgbench {args} failed:\n{r.stdout}\n{r.stderr}\n{p.log_tails()}"
    out = r.stdout + r.stderr
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m and int(m.group(1)) == 0, out
    return out


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_mixed_spreads_reads_by_weight(cluster, mode):
    """TPC-B clients and -S clients at once, 0 errors, balances consistent; the -S reads
    are spread over the nodes by backend_weight (primary 1, standby1 2, standby2 1)."""
    if mode == "simple":
        run_pgbench_init(cluster)
    p = make(cluster, backend_weight0="1", backend_weight1="2", backend_weight2="1")
    try:
        before = {i: int(r["select_cnt"]) for i, r in pool_nodes(p).items()}
        procs_ = [
            subprocess.Popen([PGBENCH, "-h", p.host, "-p", str(p.port), "-U", "postgres",
                              "-M", mode, "-c", "3", "-T", "6", "-n", "postgres"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=procs.clean_env(PGCONNECT_TIMEOUT=10)),
        ]
        out_s = run_pgbench(p, "-M", mode, "-S", "-C", "-c", "4", "-T", "6", "-n")
        out_b, _ = procs_[0].communicate(timeout=60)
        assert procs_[0].returncode == 0, out_b
        m = re.search(r"number of failed transactions: (\d+)", out_b)
        assert m and int(m.group(1)) == 0, out_b
        tpcb = int(re.search(r"number of transactions actually processed: (\d+)", out_b)[1])
        after = {i: int(r["select_cnt"]) for i, r in pool_nodes(p).items()}
        reads = {i: after[i] - before[i] for i in after}
        # TPC-B's SELECT runs inside its write transaction, on the primary: not balanced.
        assert reads[0] >= tpcb, (reads, tpcb)
        reads[0] -= tpcb
        total = sum(reads.values())
        assert total > 200, (reads, out_s)
        share = {i: reads[i] / total for i in reads}
        assert 0.35 < share[1] < 0.65, share
        assert 0.12 < share[0] < 0.40, share
        assert 0.12 < share[2] < 0.40, share
        a, b, t, h = cluster.primary.psql(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
            "(SELECT sum(bbalance) FROM pgbench_branches), "
            "(SELECT sum(tbalance) FROM pgbench_tellers), "
            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)").split("|")
        assert a == b == t == h
    finally:
        p.stop()


def run_pgbench_init(cluster):
    r = subprocess.run([PGBENCH, "-i", "-s", "1", "-q", "-h", cluster.primary.host, "-p",
                        str(cluster.primary.port), "-U", "postgres", "postgres"],
                       capture_output=True, text=True, timeout=120,
                       env=procs.clean_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    cluster.wait_replay()


def test_lagging_standby_leaves_rotation_and_comes_back(cluster):
    """delay_threshold: a standby with replay paused (pg_wal_replay_pause) gets no reads
    once the monitor sees it lag, and gets reads again after it caught up."""
    p = make(cluster, statement_level_load_balance="on", delay_threshold="1000000")
    lagging = cluster.standbys[1]  # node 2
    healthy = cluster.standbys[0]
    try:
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        assert {where(cur)[0] for _ in range(40)} == {healthy.port, lagging.port}
        lagging.psql("SELECT pg_wal_replay_pause()")
        cluster.primary.psql("INSERT INTO rt (v) SELECT generate_series(1, 100000)")
        cluster.wait_replay(nodes=[healthy])
        deadline = time.monotonic() + 20
        while True:  # the monitor sees node 2 lag and node 1 (streaming) caught up
            nodes = pool_nodes(p)
            if (int(nodes[2]["replication_delay"]) > 1000000
                    and int(nodes[1]["replication_delay"]) <= 1000000):
                break
            assert time.monotonic() < deadline, nodes
            time.sleep(0.2)
        assert {where(cur) for _ in range(40)} == {(healthy.port, True)}
        lagging.psql("SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 20
        while int(pool_nodes(p)[2]["replication_delay"]) > 1000000:
            assert time.monotonic() < deadline, pool_nodes(p)
            time.sleep(0.2)
        assert lagging.port in {where(cur)[0] for _ in range(40)}
        conn.close()
    finally:
        lagging.psql("SELECT pg_wal_replay_resume()", check=False)
        p.stop()


def test_causal_reads_never_stale(cluster):
    """Write-then-read loop with a standby whose replay is paused: a plain session reads
    stale values, a causal_reads session never does (10,000 iterations)."""
    cluster.primary.psql("CREATE TABLE IF NOT EXISTS causal (id int PRIMARY KEY, v int); "
                         "INSERT INTO causal VALUES (1, 0) ON CONFLICT DO NOTHING")
    cluster.wait_replay()
    lagging = cluster.standbys[1]
    plain = make(cluster, statement_level_load_balance="on")
    causal = make(cluster, statement_level_load_balance="on", causal_reads="on")

    def loop(p, n):
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        stale = 0
        places = set()
        for i in range(1, n + 1):
            cur.execute("UPDATE causal SET v = %s WHERE id = 1", (i,))
            cur.execute("SELECT v, inet_server_port() FROM causal WHERE id = 1")
            v, port = cur.fetchone()
            places.add(port)
            stale += v != i
        conn.close()
        return stale, places

    try:
        lagging.psql("SELECT pg_wal_replay_pause()")
        stale, _ = loop(plain, 200)
        assert stale > 0
        stale, places = loop(causal, 10000)
        assert stale == 0
        assert cluster.primary.port in places  # the paused standby was avoided
    finally:
        lagging.psql("SELECT pg_wal_replay_resume()", check=False)
        plain.stop()
        causal.stop()
