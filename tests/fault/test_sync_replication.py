"""FAULTS.md 2 (sync) and 6: the synchronous standby dies — with
sync_replication_policy = availability pgpilot switches the primary to asynchronous after
a bounded commit stall and restores synchronous replication when the standby streams
again; with = durability it never does. Primary and its only synchronous standby lost
together: no automatic promotion of a standby that may lack acknowledged commits."""

import signal
import threading
import time

import psycopg2

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import Writer, conf, events, pool_nodes, primary_of, report, setup_table, wait_for


def sync_names(node):
    return node.psql("SHOW synchronous_standby_names").strip()


def test_availability_switches_to_async_and_back():
    with Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1)") as c, \
            Pgpilot(c, extra_conf=conf(sync_replication_policy="availability")) as p:
        setup_table(c.primary)
        with Writer(p) as w:
            w.wait_acks(30)
            t_kill = time.monotonic()
            c.node(1).kill(signal.SIGKILL)
            wait_for(lambda: sync_names(c.node(0)) == "", 20, "primary switched to async")
            w.wait_acks(50, timeout=20)
        stall = w.max_gap(t_kill)
        report("kill -9 sync standby (availability)", commit_stall_s=round(stall, 2),
               failed_statements=len(w.failures))
        assert not w.failures, w.failures
        assert stall < 10, f"commits stalled {stall:.1f} s"
        assert events(p, "sync_to_async")
        # The standby comes back and streams: synchronous replication is restored.
        c.node(1).start()
        wait_for(lambda: "standby1" in sync_names(c.node(0)), 30, "sync restored")
        assert events(p, "async_to_sync")
        assert primary_of(p) == 0


def test_durability_never_switches_to_async():
    with Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1)") as c, \
            Pgpilot(c, extra_conf=conf(sync_replication_policy="durability")) as p:
        setup_table(c.primary)
        c.node(1).kill(signal.SIGKILL)
        wait_for(lambda: pool_nodes(p)[1]["status"] == "down", 15, "sync standby detached")
        done = threading.Event()

        def commit():
            conn = p.connect(connect_timeout=5)
            conn.autocommit = True
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked (id) VALUES (-1)")
                done.set()
            finally:
                conn.close()

        t = threading.Thread(target=commit, daemon=True)
        t.start()
        time.sleep(5)
        assert not done.is_set(), "a commit returned without its synchronous standby"
        assert sync_names(c.node(0)) == "FIRST 1 (standby1)"
        assert not events(p, "sync_to_async")
        c.node(1).start()  # releases the waiting commit
        t.join(timeout=30)
        assert done.is_set()


def test_primary_and_sync_standby_lost_together_blocks_promotion():
    with Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1)") as c, \
            Pgpilot(c, extra_conf=conf(failover_hold_timeout=3)) as p:
        setup_table(c.primary)
        c.wait_replay()
        c.node(1).kill(signal.SIGKILL)
        c.node(0).kill(signal.SIGKILL)
        p.wait_log(r"failover_blocked: not promoting", timeout=20)
        time.sleep(3)
        assert c.node(2).is_in_recovery(), "the async standby was promoted"
        assert primary_of(p) is None
        assert not events(p, "failover done")
        # A write waits for a primary, then gets a clear error (never a standby).
        t0 = time.monotonic()
        try:
            conn = p.connect(connect_timeout=10)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("INSERT INTO acked (id) VALUES (-2)")
            conn.close()
            raise AssertionError("a write succeeded without a primary")
        except psycopg2.Error as e:
            assert "primary" in str(e), str(e)
        assert 2.5 < time.monotonic() - t0 < 15
