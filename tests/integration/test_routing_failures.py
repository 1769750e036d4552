"""Session behaviour when server connections or nodes go away (docs/routing.md, Sessions,
"Failures"), checked on the server side: a connection killed while the session is idle is
replaced transparently with the session's settings; one killed inside a transaction ends
the session; a stopped standby is skipped by reads; with the primary stopped reads keep
working and a write fails with an error naming failover_hold_timeout."""

import time

import psycopg2
import pytest

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(num_standbys=2)
    try:
        c.start()
        c.primary.psql("CREATE TABLE ft (v int)")
        c.wait_replay()
        yield c
    finally:
        c.stop()


def wait_roles(p, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = p.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW pool_nodes")
                roles = [r[6] for r in cur.fetchall()]
        finally:
            conn.close()
        if roles == ["primary", "standby", "standby"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"roles not known: {roles}")


def terminate(node, pid):
    assert node.psql(f"SELECT pg_terminate_backend({pid})") == "t"
    time.sleep(0.3)


@pytest.mark.parametrize("lb", ["off", "on"])
def test_idle_connection_killed_reconnects_with_settings(cluster, lb):
    with Pgpilot(cluster, extra_conf={"load_balance_mode": lb, "sr_check_period": "1",
                                      "backend_weight0": "0" if lb == "on" else "1"}) as p:
        if lb == "on":
            wait_roles(p)
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET statement_timeout = '3333ms'")
        cur.execute("SELECT pg_backend_pid(), inet_server_port()")
        pid, port = cur.fetchone()
        node = next(n for n in cluster.nodes if n.port == port)
        terminate(node, pid)
        cur.execute("SELECT pg_backend_pid(), current_setting('statement_timeout')")
        pid2, setting = cur.fetchone()
        assert pid2 != pid
        assert setting == "3333ms"
        # and writes still reach the primary with the setting
        cur.execute("INSERT INTO ft VALUES (1) RETURNING inet_server_port(), "
                    "current_setting('statement_timeout')")
        assert cur.fetchone() == (cluster.primary.port, "3333ms")
        conn.close()


def test_killed_inside_transaction_ends_session(cluster):
    with Pgpilot(cluster) as p:
        conn = p.connect()
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")  # psycopg2 opened a block
        pid = cur.fetchone()[0]
        terminate(cluster.primary, pid)
        with pytest.raises(psycopg2.Error):
            cur.execute("SELECT 1")
            cur.fetchone()
        conn.close()
        # a new session works
        assert p.psql("SELECT 1") == "1"


def test_stopped_standby_is_skipped_by_reads(cluster):
    with Pgpilot(cluster, extra_conf={"load_balance_mode": "on", "sr_check_period": "1",
                                      "backend_weight0": "0"}) as p:
        wait_roles(p)
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        port, rec = cur.fetchone()
        assert rec is True
        victim = next(n for n in cluster.standbys if n.port == port)
        other = next(n for n in cluster.standbys if n.port != port)
        victim.stop()
        try:
            for _ in range(5):
                cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
                assert cur.fetchone() == (other.port, True)
            cur.execute("INSERT INTO ft VALUES (2) RETURNING inet_server_port()")
            assert cur.fetchone()[0] == cluster.primary.port
            # new sessions read too
            c2 = p.connect()
            c2.autocommit = True
            with c2.cursor() as cur2:
                cur2.execute("SELECT pg_is_in_recovery()")
                assert cur2.fetchone()[0] is True
            c2.close()
        finally:
            victim.start()
            cluster.wait_streaming()
        conn.close()


def test_primary_down_reads_work_writes_fail_clearly(cluster):
    with Pgpilot(cluster, extra_conf={"load_balance_mode": "on", "sr_check_period": "1",
                                      "backend_weight0": "0", "failover_hold_timeout": "2"}) as p:
        wait_roles(p)
        conn = p.connect()
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone()[0] is True
        cluster.primary.stop()
        try:
            cur.execute("SELECT pg_is_in_recovery(), count(*) FROM ft")
            assert cur.fetchone()[0] is True
            start = time.monotonic()
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("INSERT INTO ft VALUES (3)")
            assert "failover_hold_timeout" in str(e.value), str(e.value)
            assert e.value.pgcode == "08006"
            assert time.monotonic() - start < 10
            # the session is still usable for reads
            cur.execute("SELECT pg_is_in_recovery()")
            assert cur.fetchone()[0] is True
        finally:
            cluster.primary.start()
        # the primary is back: the same session writes again
        deadline = time.monotonic() + 20
        while True:
            try:
                cur.execute("INSERT INTO ft VALUES (4) RETURNING inet_server_port()")
                assert cur.fetchone()[0] == cluster.primary.port
                break
            except psycopg2.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        conn.close()
        cluster.wait_streaming()
