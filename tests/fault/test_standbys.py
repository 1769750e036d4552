"""FAULTS.md 2, 7, 8: a standby killed (detached; writes never stall in async mode),
standbys at different LSNs when the primary dies (the most advanced is promoted, the
other follows it), and a standby promoted by hand (a false primary: alert, no writes)."""

import signal
import time

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import (Writer, conf, events, ids_on, pool_nodes, primary_of, read_only_errors,
                      report, setup_table, wait_for, wal_sender_port)


def test_kill_standby_detaches_it_without_stalling_writes():
    with Cluster(num_standbys=2) as c, Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        with Writer(p) as w:
            w.wait_acks(30)
            t_kill = time.monotonic()
            c.node(2).kill(signal.SIGKILL)
            wait_for(lambda: pool_nodes(p)[2]["status"] == "down", 15, "standby 2 detached")
            t_down = time.monotonic()
            w.wait_acks(50)
        report("kill -9 standby", detection_s=round(t_down - t_kill, 2),
               failed_statements=len(w.failures), max_commit_gap_s=round(w.max_gap(t_kill), 2))
        assert not w.failures, w.failures
        assert w.max_gap(t_kill) < 2.0
        assert primary_of(p) == 0
        assert pool_nodes(p)[1]["status"] == "up"
        assert events(p, "detach")


def test_most_advanced_standby_is_promoted_and_the_other_follows():
    with Cluster(num_standbys=2) as c, Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        c.wait_replay()
        # Node 1 stops receiving WAL (its WAL receiver is switched off); node 2 keeps up.
        # Node order would pick node 1, so only the LSN rule picks node 2.
        c.node(1).psql("ALTER SYSTEM SET primary_conninfo = ''; SELECT pg_reload_conf()")
        wait_for(lambda: wal_sender_port(c.node(1)) == (0, ""), 15, "node 1 WAL receiver off")
        with Writer(p) as w:
            w.wait_acks(100)
        c.wait_replay(nodes=[c.node(2)])
        c.node(0).kill(signal.SIGKILL)
        wait_for(lambda: primary_of(p) == 2, 30, "node 2 (most advanced) promoted")
        # Node 1 is repointed to node 2 and catches up from it (it had not diverged).
        wait_for(lambda: wal_sender_port(c.node(1)) == (c.node(2).port, "streaming"), 30,
                 "node 1 streaming from node 2")
        wait_for(lambda: ids_on(c.node(1)) >= w.acked_ids(), 20, "node 1 caught up")
        assert pool_nodes(p)[1]["status"] == "up"
        assert events(p, "follow")
        assert w.acked_ids() <= ids_on(c.node(2))


def test_standby_promoted_by_hand_is_a_false_primary():
    with Cluster(num_standbys=2) as c, Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        c.wait_replay()
        with Writer(p) as w:
            w.wait_acks(30)
            c.node(2).promote()
            t_promoted = time.monotonic()
            p.wait_log(r"false_primary: node 2 claims to be a primary", timeout=15)
            w.wait_acks(50)
        assert primary_of(p) == 0
        assert not read_only_errors(w)
        after = {i for i, t in w.acked if t > t_promoted}
        assert after and not (after & ids_on(c.node(2))), "a write reached the false primary"
        assert w.acked_ids() <= ids_on(c.node(0))
        assert not events(p, "failover")
