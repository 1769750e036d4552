"""FAULTS.md 1, 9, 11: kill -9 of the primary, the old primary restarting afterwards, and two
failovers in a row. Synchronous replication (FIRST 1 of both standbys) so that "every
acknowledged write survives" is a promise the servers made and pgpilot must keep."""

import signal
import time

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import (Writer, conf, ids_on, pool_nodes, primary_of, read_only_errors, report,
                      setup_table, wait_for, wal_sender_port, events)


def test_kill_primary_then_old_primary_restarts_then_second_failover():
    with Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1, standby2)") as c, \
            Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        assert primary_of(p) == 0
        with Writer(p) as w:
            w.wait_acks(50)
            t_kill = time.monotonic()
            c.node(0).kill(signal.SIGKILL)
            new = wait_for(lambda: (primary_of(p) or 0) or None, 30, "a new primary")
            t_new = time.monotonic()
            w.wait_acks(50, timeout=30)
        window, failed_after = w.window_after(t_kill)
        report("kill -9 primary", detection_and_promotion_s=round(t_new - t_kill, 2),
               write_unavailable_s=round(window, 2), failed_statements=len(failed_after),
               failures=[f[1] for f in failed_after])
        assert new in (1, 2)
        assert not read_only_errors(w), "a write reached a standby"
        # Every acknowledged write is on the new primary (synchronous replication).
        missing = w.acked_ids() - ids_on(c.node(new))
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
        assert window < 15, f"writes unavailable for {window:.1f} s"
        # The crash itself may fail the statement in flight; statements issued after it
        # reconnect and wait for the new primary.
        assert len(failed_after) <= 3, failed_after
        # The other standby follows the new primary (checked on the standby itself).
        other = 3 - new
        wait_for(lambda: wal_sender_port(c.node(other)) == (c.node(new).port, "streaming"), 30,
                 f"node {other} streaming from node {new}")
        nodes = pool_nodes(p)
        assert nodes[0]["status"] == "down"
        assert nodes[other]["status"] == "up" and nodes[other]["role"] == "standby"
        assert len(events(p, "failover done")) == 1

        # FAULTS 9: the old primary comes back (as a primary, on the old timeline): it stays
        # detached and gets no writes.
        before = ids_on(c.node(new))
        c.node(0).start()
        p.wait_log(r"detached node 0 is running as a primary", timeout=20)
        with Writer(p) as w2:
            w2.wait_acks(30)
        assert pool_nodes(p)[0]["status"] == "down"
        assert primary_of(p) == new
        old_ids = ids_on(c.node(0))
        assert not (w2.acked_ids() & old_ids), "a write went to the detached old primary"
        assert w2.acked_ids() <= ids_on(c.node(new)) - before
        c.node(0).stop()

        # FAULTS 11: the new primary dies too; the last standby takes over.
        with Writer(p) as w3:
            w3.wait_acks(30)
            t_kill2 = time.monotonic()
            c.node(new).kill(signal.SIGKILL)
            wait_for(lambda: primary_of(p) == other, 30, f"node {other} promoted")
            w3.wait_acks(30, timeout=30)
        window2, failed2 = w3.window_after(t_kill2)
        report("second failover", write_unavailable_s=round(window2, 2),
               failed_statements=len(failed2))
        missing = w3.acked_ids() - ids_on(c.node(other))
        assert not missing, f"acknowledged writes lost in the second failover: {sorted(missing)[:10]}"
        assert not read_only_errors(w3)
        assert len(events(p, "failover done")) == 2
        assert [n["status"] for n in pool_nodes(p).values()].count("up") == 1


def test_idle_session_keeps_its_connection_and_settings_across_failover():
    """ARCHITECTURE/issue 4: a session idle when the primary dies keeps its client
    connection; its next statement runs on the new primary with its SET replayed."""
    with Cluster(num_standbys=1) as c, Pgpilot(c, extra_conf=conf()) as p:
        conn = p.connect(connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET work_mem = '7MB'")
            cur.execute("SELECT inet_server_port()")
            assert cur.fetchone()[0] == c.node(0).port
        c.node(0).kill(signal.SIGKILL)
        wait_for(lambda: primary_of(p) == 1, 30, "node 1 promoted")
        with conn.cursor() as cur:
            cur.execute("SELECT inet_server_port(), pg_is_in_recovery(), "
                        "current_setting('work_mem')")
            assert cur.fetchone() == (c.node(1).port, False, "7MB")
            cur.execute("CREATE TABLE after_failover (x int)")
        conn.close()
