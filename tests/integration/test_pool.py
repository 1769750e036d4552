"""Server connection pooling through pgpilot against a real PostgreSQL 15 primary:
max_pool and pool_wait_timeout (SQLSTATE 53300), hand-over to a waiting client, reuse of
server backends, server_idle_timeout, connection_life_time, and separate pools per
(user, database). Server-side effects are checked in pg_stat_activity over the unix
socket, not through pgpilot."""

import socket
import struct
import threading
import time

import psycopg2
import pytest

from harness.cluster import Cluster, wait_until

ROLES = ("pool_a", "pool_b", "pool_idle", "pool_life", "pool_reuse")


class WireError(Exception):
    def __init__(self, fields):
        self.fields = fields
        super().__init__(f"{fields.get('S')} {fields.get('C')}: {fields.get('M')}")

    @property
    def sqlstate(self):
        return self.fields.get("C")


def _recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("server closed the connection")
        out += chunk
    return out


def wire_connect(port, user, database="postgres", timeout=20.0):
    """Protocol 3.0 startup without a password (pgpilot trusts every client here). Returns
    once ReadyForQuery arrives (then sends Terminate); raises WireError on ErrorResponse,
    which carries the SQLSTATE that libpq hides on a failed connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" \
            + database.encode() + b"\0\0"
        sock.sendall(struct.pack("!I", len(body) + 4) + body)
        while True:
            head = _recv_exact(sock, 5)
            payload = _recv_exact(sock, struct.unpack("!I", head[1:])[0] - 4)
            if head[:1] == b"E":
                fields = {p[:1].decode(): p[1:].decode() for p in payload.split(b"\0") if p}
                raise WireError(fields)
            if head[:1] == b"Z":
                sock.sendall(b"X\0\0\0\4")
                return


@pytest.fixture(scope="module")
def pcluster():
    c = Cluster(num_standbys=0)
    try:
        c.start()
        c.primary.psql("".join(f"CREATE ROLE {r} LOGIN;" for r in ROLES)
                       + "CREATE DATABASE pooldb2;")
        yield c
    finally:
        c.stop()


def server_backends(cluster, user, database=None):
    """Pids of client backends of `user` (and `database`) on the primary."""
    where = f"usename = '{user}' AND backend_type = 'client backend'"
    if database:
        where += f" AND datname = '{database}'"
    out = cluster.primary.psql(f"SELECT pid FROM pg_stat_activity WHERE {where} ORDER BY pid")
    return [int(x) for x in out.split()]


def hold(p, user, database="postgres"):
    """An open psycopg2 session through pgpilot (it holds its server connection) and the
    server backend pid serving it."""
    conn = p.connect(user=user, dbname=database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return conn, cur.fetchone()[0]


def backend_pid(p, user, database="postgres"):
    conn, pid = hold(p, user, database)
    conn.close()
    return pid


def test_full_pool_times_out_with_53300(make_pgpilot, pcluster):
    p = make_pgpilot(pcluster, extra_conf={"max_pool": 2, "pool_wait_timeout": "1s",
                                           "worker_threads": 2})
    c1, pid1 = hold(p, "pool_a")
    c2, pid2 = hold(p, "pool_a")
    try:
        assert pid1 != pid2
        assert sorted(server_backends(pcluster, "pool_a")) == sorted([pid1, pid2])
        t0 = time.monotonic()
        with pytest.raises(WireError) as e:
            wire_connect(p.port, "pool_a")
        elapsed = time.monotonic() - t0
        assert e.value.sqlstate == "53300", e.value.fields
        assert "max_pool" in e.value.fields["M"], e.value.fields
        assert 0.8 <= elapsed <= 10, f"waited {elapsed:.2f}s for a 1s pool_wait_timeout"
        # libpq clients see the message too; the limit held (still two server backends).
        with pytest.raises(psycopg2.OperationalError, match="max_pool"):
            p.connect(user="pool_a").close()
        assert len(server_backends(pcluster, "pool_a")) == 2
        # The sessions holding the connections are unaffected.
        with c1.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        c1.close()
        c2.close()
    # Once they are gone the pool serves again.
    wire_connect(p.port, "pool_a")


@pytest.mark.parametrize("workers", [1, 2])
def test_waiting_client_gets_released_connection(make_pgpilot, pcluster, workers):
    p = make_pgpilot(pcluster, extra_conf={"max_pool": 2, "pool_wait_timeout": "5s",
                                           "worker_threads": workers})
    c1, pid1 = hold(p, "pool_b")
    c2, pid2 = hold(p, "pool_b")
    result = {}

    def third():
        t0 = time.monotonic()
        try:
            conn, pid = hold(p, "pool_b")
            result["pid"] = pid
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = e
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=third)
    t.start()
    try:
        time.sleep(0.6)  # the third client is now waiting for a slot
        assert "pid" not in result and "error" not in result, result
        c1.close()
        t.join(15)
        assert not t.is_alive(), "the waiting client never finished"
    finally:
        c1.close()
        c2.close()
        t.join(15)
    assert "error" not in result, result.get("error")
    assert 0.5 <= result["elapsed"] < 5, result
    if workers == 1:
        assert result["pid"] == pid1  # the released server connection itself
    assert len(server_backends(pcluster, "pool_b")) <= 2


def _reset_done(cluster, pid):
    """True once server backend `pid` sits idle after pgpilot's reset query."""
    return cluster.primary.psql(
        f"SELECT state, query FROM pg_stat_activity WHERE pid = {pid}") == "idle|DISCARD ALL"


def _check_clean_session(conn):
    with conn.cursor() as cur:
        # The reset (DISCARD ALL) left nothing behind from the previous client.
        cur.execute("SHOW work_mem")
        assert cur.fetchone() == ("4MB",)
        cur.execute("SELECT count(*) FROM pg_class WHERE relname = 'leftover'")
        assert cur.fetchone() == (0,)


@pytest.mark.parametrize("max_pool", [1, 100])
def test_sequential_clients_reuse_server_backend(make_pgpilot, pcluster, max_pool):
    # One worker: idle connections are kept per worker (only the limit is process-wide).
    p = make_pgpilot(pcluster, extra_conf={"worker_threads": 1, "max_pool": max_pool,
                                           "pool_wait_timeout": "5s"})
    first, pid = hold(p, "pool_reuse")
    with first.cursor() as cur:
        cur.execute("SET work_mem = '77MB'; CREATE TEMP TABLE leftover (v int)")
    first.close()
    pids = []
    for _ in range(4):
        if max_pool > 1:
            # A client that arrives while the released connection is still being reset
            # gets a new one (the pool may grow); wait for the reset to be done.
            wait_until(lambda: _reset_done(pcluster, pid), 5, "the reset of the released "
                       "server connection")
            time.sleep(0.1)
        conn, other = hold(p, "pool_reuse")
        pids.append(other)
        _check_clean_session(conn)
        conn.close()
    assert pids == [pid] * 4
    assert server_backends(pcluster, "pool_reuse") == [pid]


def test_server_idle_timeout_closes_idle_connections(make_pgpilot, pcluster):
    p = make_pgpilot(pcluster, extra_conf={"server_idle_timeout": "1s", "worker_threads": 1})
    conn, pid = hold(p, "pool_idle")
    conn.close()
    released = time.monotonic()
    time.sleep(0.2)
    assert server_backends(pcluster, "pool_idle") == [pid], "closed at once, not pooled"
    wait_until(lambda: server_backends(pcluster, "pool_idle") == [], 5,
               "the idle server connection to be closed")
    assert time.monotonic() - released >= 0.9
    # A new client gets a new server connection.
    assert backend_pid(p, "pool_idle") != pid


def test_connection_life_time(make_pgpilot, pcluster):
    p = make_pgpilot(pcluster, extra_conf={"connection_life_time": "2s",
                                           "server_idle_timeout": "300s", "worker_threads": 1})
    t0 = time.monotonic()
    pid = backend_pid(p, "pool_life")
    wait_until(lambda: _reset_done(pcluster, pid), 5, "the reset of the released connection")
    time.sleep(0.1)
    assert backend_pid(p, "pool_life") == pid  # young: reused
    wait_until(lambda: pid not in server_backends(pcluster, "pool_life"), 6,
               "the server connection past connection_life_time to be closed")
    assert time.monotonic() - t0 >= 1.8
    # A session that outlives connection_life_time is not cut; its connection is closed when
    # the client leaves instead of going back to the pool.
    conn, pid2 = hold(p, "pool_life")
    assert pid2 != pid
    time.sleep(2.5)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone() == (pid2,)
    conn.close()
    wait_until(lambda: pid2 not in server_backends(pcluster, "pool_life"), 3,
               "the too-old server connection to be closed on release")
    assert backend_pid(p, "pool_life") not in (pid, pid2)


def test_pools_are_separate_per_user_and_database(make_pgpilot, pcluster):
    p = make_pgpilot(pcluster, extra_conf={"max_pool": 1, "pool_wait_timeout": "1s"})
    held_a, pid_a = hold(p, "pool_a", "postgres")
    held_b, pid_b = hold(p, "pool_b", "postgres")          # other user: own pool
    held_a2, pid_a2 = hold(p, "pool_a", "pooldb2")         # other database: own pool
    try:
        assert len({pid_a, pid_b, pid_a2}) == 3
        assert server_backends(pcluster, "pool_a", "postgres") == [pid_a]
        assert server_backends(pcluster, "pool_b", "postgres") == [pid_b]
        assert server_backends(pcluster, "pool_a", "pooldb2") == [pid_a2]
        # Each (user, database) pool is full on its own.
        for user, db in (("pool_a", "postgres"), ("pool_b", "postgres"),
                         ("pool_a", "pooldb2")):
            with pytest.raises(WireError) as e:
                wire_connect(p.port, user, db)
            assert e.value.sqlstate == "53300", (user, db, e.value.fields)
            assert f'user "{user}" database "{db}"' in e.value.fields["M"]
    finally:
        held_a.close()
    # Freeing pool_a/postgres frees that pool only.
    wait_until(lambda: backend_pid(p, "pool_a", "postgres"), 5, "pool_a/postgres to serve")
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "pool_b", "postgres")
    assert e.value.sqlstate == "53300"
    held_b.close()
    held_a2.close()
