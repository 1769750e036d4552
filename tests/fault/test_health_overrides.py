"""Per-node health-check overrides (pgpool-II's health_check_period0 ...): health checks off
for one node (health_check_period1 = 0) while the others are checked; a reload that drops
the override turns them on for that node too."""

import signal
import time

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import conf, pool_nodes, primary_of, wait_for


def health_stats(p):
    conn = p.connect(connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW pool_health_check_stats")
            cols = [d[0] for d in cur.description]
            return {int(r[0]): dict(zip(cols, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def test_node_with_health_checks_off_is_not_checked_or_detached():
    with Cluster(num_standbys=2) as c, \
            Pgpilot(c, extra_conf=conf(health_check_period1=0)) as p:
        wait_for(lambda: int(health_stats(p)[2]["total_count"]) >= 3, 15,
                 "node 2 health-checked")
        stats = health_stats(p)
        assert int(stats[0]["total_count"]) >= 1, stats[0]
        assert int(stats[1]["total_count"]) == 0, stats[1]  # not health-checked

        c.node(1).kill(signal.SIGKILL)
        c.node(2).kill(signal.SIGKILL)
        t0 = time.monotonic()
        wait_for(lambda: pool_nodes(p)[2]["status"] == "down", 15, "standby 2 detached")
        # Node 1 is just as dead, but nothing checks it: it stays attached. Its role check
        # (sr_check_period 1 s) still sees the server gone (pg_status down). The budget of
        # a checked node is period + timeout x 2 = 5 s; wait past it.
        wait_for(lambda: pool_nodes(p)[1]["pg_status"] == "down", 10, "node 1 seen down")
        time.sleep(max(0.0, 6.0 - (time.monotonic() - t0)))
        nodes = pool_nodes(p)
        assert nodes[1]["status"] == "up", nodes[1]
        assert int(health_stats(p)[1]["total_count"]) == 0
        assert primary_of(p) == 0

        # Reload without the override: node 1 gets the global health_check_period and is
        # detached like any other dead node.
        p.extra_conf.pop("health_check_period1")
        p.write_conf()
        p.reload()
        wait_for(lambda: pool_nodes(p)[1]["status"] == "down", 15, "node 1 detached after reload")
        assert primary_of(p) == 0


def test_per_node_timeout_bounds_that_nodes_check():
    """health_check_timeout2 = 1 s with a global 20 s: the hung standby 2 (SIGSTOP) is
    detached within its own budget, far before the global timeout would allow."""
    extra = conf(health_check_timeout=20, health_check_timeout2=1, connect_timeout=20000,
                 connect_timeout2=1000)
    with Cluster(num_standbys=2) as c, Pgpilot(c, extra_conf=extra) as p:
        wait_for(lambda: pool_nodes(p)[2]["pg_status"] == "up", 15, "node 2 checked")
        c.node(2).signal_all(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            # period 1 + timeout 1 x 2 attempts (a timeout is always retried once) ~ 3 s;
            # with the global 20 s timeout it would take over 40 s.
            wait_for(lambda: pool_nodes(p)[2]["status"] == "down", 15, "hung standby 2 detached")
            took = time.monotonic() - t0
        finally:
            c.node(2).signal_all(signal.SIGCONT)
        assert took < 15, took
        nodes = pool_nodes(p)
        assert nodes[1]["status"] == "up" and primary_of(p) == 0
