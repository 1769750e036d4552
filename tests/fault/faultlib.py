"""Shared pieces of the fault suite (FAULTS.md): fast failure-detection settings, a writer
that records every acknowledged write, and views of pgpilot's cluster state.

Every wait is bounded; every figure a test measures can be printed (pytest -s) and is
appended to $PGPILOT_FAULT_REPORT (JSON lines) when set, for the closing notes."""

import itertools
import json
import os
import re
import threading
import time

import psycopg2

from harness.cluster import connect_tcp

# health_check_period 1 s, timeout 2 s: FAULTS.md 5 demands no failover under load with
# exactly these values.
FAST = {
    "health_check_period": 1,
    "health_check_timeout": 2,
    "health_check_max_retries": 0,
    "health_check_retry_delay": 1,
    "sr_check_period": 1,
    "connect_timeout": 3000,  # ms, as in pgpool
    "search_primary_node_timeout": 20,
    "follow_primary_timeout": 20,
    "failover_hold_timeout": 30,
    "failover_command_timeout": 20,
}

POOL_NODES = ["node_id", "hostname", "port", "status", "pg_status", "lb_weight", "role",
              "pg_role", "select_cnt", "load_balance_node", "replication_delay",
              "replication_state", "replication_sync_state", "last_status_change"]


def conf(**extra):
    c = dict(FAST)
    c.update(extra)
    return c


def report(name, **figures):
    line = {"scenario": name, **figures}
    print(f"FIGURES {json.dumps(line)}")
    path = os.environ.get("PGPILOT_FAULT_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


def pool_nodes(p):
    conn = p.connect(connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW pool_nodes")
            return {int(r[0]): dict(zip(POOL_NODES, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def primary_of(p):
    """The primary's node id, or None. (Until sessions attach servers lazily, SHOW on the
    normal port needs a primary; "no primary node is available" means None.)"""
    try:
        nodes = pool_nodes(p)
    except psycopg2.OperationalError as e:
        if "no primary node is available" in str(e):
            return None
        raise
    for i, n in nodes.items():
        if n["role"] == "primary" and n["status"] == "up":
            return i
    return None


def switchover(p, node):
    """PGPILOT SWITCHOVER node through pgpilot; raises the ErrorResponse as psycopg2.Error."""
    conn = p.connect(connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"PGPILOT SWITCHOVER {node}")
    finally:
        conn.close()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except psycopg2.Error as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def events(p, kind=None):
    """Event lines from pgpilot's log ("<kind>: <message>")."""
    text = p.log_text()
    if kind is None:
        return text.splitlines()
    return [ln for ln in text.splitlines() if re.search(rf"\b{re.escape(kind)}: ", ln)]


def setup_table(node):
    node.psql("CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY, "
              "port int NOT NULL DEFAULT inet_server_port())")


def ids_on(node):
    out = node.psql("SELECT id FROM acked ORDER BY id")
    return {int(x) for x in out.split()} if out.strip() else set()


def own_ids(node):
    """Ids of the rows `node` wrote itself (the acked table records the server's port)."""
    out = node.psql(f"SELECT id FROM acked WHERE port = {int(node.port)} ORDER BY id")
    return {int(x) for x in out.split()} if out.strip() else set()


class Writer:
    """Inserts increasing ids through pgpilot, one autocommit statement at a time, and
    records what was acknowledged, what failed (time, SQLSTATE) and when. A failed
    statement drops the connection; the next one reconnects (as applications do)."""

    _ids = itertools.count(1)  # unique across writers of one process

    def __init__(self, p, interval=0.01, timeout=60):
        self.p = p
        self.interval = interval
        self.acked = []      # (id, monotonic time)
        self.failures = []   # (monotonic time, sqlstate, message)
        self._stop = threading.Event()
        self._deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=40)
        assert not self._thread.is_alive(), "writer did not stop"

    def _run(self):
        conn = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            i = next(Writer._ids)
            try:
                if conn is None:
                    conn = self.p.connect(connect_timeout=5)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked (id) VALUES (%s)", (i,))
                self.acked.append((i, time.monotonic()))
            except psycopg2.Error as e:
                self.failures.append((time.monotonic(), getattr(e, "pgcode", None),
                                      str(e).strip()[:200]))
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                time.sleep(0.05)
            time.sleep(self.interval)
        if conn is not None:
            conn.close()

    def wait_acks(self, n, timeout=20):
        start = len(self.acked)
        wait_for(lambda: len(self.acked) >= start + n, timeout, f"{n} more acknowledged writes")

    def acked_ids(self):
        return {i for i, _ in self.acked}

    def window_after(self, t0):
        """Seconds from t0 to the first acknowledgement after it, and the failures after it."""
        after = [t for _, t in self.acked if t > t0]
        window = (min(after) - t0) if after else None
        return window, [f for f in self.failures if f[0] > t0]

    def max_gap(self, t0=0.0):
        """Longest pause between acknowledgements from the last one before t0 on."""
        before = [t for _, t in self.acked if t <= t0]
        times = before[-1:] + [t for _, t in self.acked if t > t0]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def read_only_errors(w):
    """Writes refused because they reached a server in recovery (SQLSTATE 25006)."""
    return [f for f in w.failures if f[1] == "25006"]


def wal_sender_port(node):
    out = node.psql("SELECT coalesce(sender_port, 0) || '|' || coalesce(status, '') "
                    "FROM pg_stat_wal_receiver")
    if not out.strip():
        return 0, ""
    port, status = out.strip().split("|")
    return int(port), status


def direct(node):
    return connect_tcp(node.host, node.port, node.cluster.password)
