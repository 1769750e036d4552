"""500 client connections open through pgpilot at the same time, each running several
queries and checking the answers; all of them held at once (checked in pg_stat_activity
on the primary: one server backend per client, session pooling); afterwards pgpilot still
serves."""

import threading
import time

import pytest

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

CLIENTS = 500
BARRIER_TIMEOUT = 90


@pytest.fixture(scope="module")
def env():
    c = Cluster(num_standbys=0, extra_conf={"max_connections": 600})
    c.start()
    try:
        p = Pgpilot(c, extra_conf={"max_pool": 550, "pool_wait_timeout": 30})
        try:
            yield c, p
        finally:
            p.stop()
    finally:
        c.stop()


def test_500_concurrent_clients(env):
    cluster, pgpilot = env
    cluster.primary.psql("CREATE TABLE conc_t (client int PRIMARY KEY, pid int)")
    all_connected = threading.Barrier(CLIENTS + 1)
    all_done = threading.Barrier(CLIENTS + 1)
    errors = []
    pids = [None] * CLIENTS

    def client(i):
        conn = None
        try:
            conn = pgpilot.connect(application_name=f"conc-{i}", connect_timeout=60)
            conn.autocommit = True
            all_connected.wait(BARRIER_TIMEOUT)
            cur = conn.cursor()
            cur.execute("SELECT %s * 2, current_setting('application_name')", (i,))
            assert cur.fetchone() == (i * 2, f"conc-{i}")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            cur.execute("SELECT count(*), sum(g) FROM generate_series(1, %s) g", (i + 1,))
            assert cur.fetchone() == (i + 1, (i + 1) * (i + 2) // 2)
            cur.execute("INSERT INTO conc_t VALUES (%s, pg_backend_pid())", (i,))
            conn.autocommit = False
            cur.execute("SELECT client FROM conc_t WHERE client = %s FOR UPDATE", (i,))
            assert cur.fetchone() == (i,)
            conn.commit()
            pids[i] = pid
            all_done.wait(BARRIER_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - collected and reported by the test
            errors.append((i, repr(e)))
            all_connected.abort()
            all_done.abort()
        finally:
            if conn is not None:
                conn.close()

    old_stack = threading.stack_size(512 * 1024)
    try:
        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(CLIENTS)]
    finally:
        threading.stack_size(old_stack)
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        all_connected.wait(BARRIER_TIMEOUT)
        connected_at = time.monotonic() - started
        # every client holds its own server connection right now
        held = cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE application_name LIKE 'conc-%'")
        all_done.wait(BARRIER_TIMEOUT)
    except threading.BrokenBarrierError:
        held = None
        connected_at = None
    for t in threads:
        t.join(BARRIER_TIMEOUT)
    elapsed = time.monotonic() - started
    assert not errors, f"{len(errors)} clients failed, first: {errors[:5]}\n" \
                       + pgpilot.log_tails(20)
    assert not [t for t in threads if t.is_alive()]
    assert held == str(CLIENTS)
    assert len(set(pids)) == CLIENTS  # 500 distinct server backends at once
    expected = f"{CLIENTS}|{CLIENTS * (CLIENTS - 1) // 2}|{CLIENTS}"
    assert cluster.primary.psql("SELECT count(*), sum(client), count(DISTINCT pid) "
                                "FROM conc_t") == expected
    print(f"{CLIENTS} clients connected in {connected_at:.1f}s, done in {elapsed:.1f}s")

    # afterwards: pgpilot serves, and the pooled connections are idle, none in a transaction
    assert pgpilot.psql("SELECT 'still serving'") == "still serving"
    assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE state LIKE 'idle in transaction%'") == "0"
    conn = pgpilot.connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM conc_t")
        assert cur.fetchone() == (CLIENTS,)
    finally:
        conn.close()
