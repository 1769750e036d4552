"""Shared by the routing suites: pgpilot with load balancing on, started once the
replication monitor knows every node's role, and SHOW pool_nodes as dicts."""

import time

from harness.pgpilot import Pgpilot


def pool_nodes(p, **kw):
    conn = p.connect(**kw)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_nodes")
            cols = [d[0] for d in cur.description]
            return {int(r[0]): dict(zip(cols, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def internal_queries(p):
    """Statements pgpilot ran on servers on top of its clients' own (SHOW pool_processes,
    summed over the workers)."""
    conn = p.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_processes")
            col = [d[0] for d in cur.description].index("internal_queries")
            return sum(int(r[col]) for r in cur.fetchall())
    finally:
        conn.close()


def make(cluster, **conf):
    """pgpilot over a primary + 2 standbys with load_balance_mode on and no reads on the
    primary (backend_weight0 0) unless `conf` says otherwise."""
    settings = {"load_balance_mode": "on", "sr_check_period": "1", "backend_weight0": "0"}
    settings.update(conf)
    p = Pgpilot(cluster, extra_conf=settings)
    # The monitor must know the roles before a session can pick a standby.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = pool_nodes(p)
        if rows[0]["role"] == "primary" and all(rows[i]["role"] == "standby" for i in (1, 2)):
            return p
        time.sleep(0.2)
    p.stop()
    raise AssertionError("roles not known within 20 s")
