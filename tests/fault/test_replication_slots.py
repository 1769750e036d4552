"""replication_slots = on: one physical slot per standby (pgpilot_node_<id>) on the primary,
primary_slot_name set on each standby; after a kill -9 of the primary the remaining
standby streams from the new primary through its slot there; a detached standby's slot is
dropped once inactive (drop_slots_of_detached_nodes). Asserted on the servers."""

import signal
import time

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import (Writer, conf, events, ids_on, pool_nodes, primary_of, setup_table,
                      switchover, wait_for, wal_sender_port)


def slots(node):
    """{slot_name: active} of the physical slots on `node`."""
    out = node.psql("SELECT slot_name || '|' || active FROM pg_replication_slots "
                    "WHERE slot_type = 'physical' ORDER BY 1")
    return {ln.split("|")[0]: ln.split("|")[1] == "true"
            for ln in out.split() if "|" in ln}


def slot_name_of(node):
    return node.psql("SHOW primary_slot_name").strip()


def walsender_uses_slot(primary, standby_name, slot):
    """The walsender for `standby_name` on `primary` is the slot's active process."""
    out = primary.psql(
        "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s "
        f"ON s.active_pid = r.pid WHERE r.application_name = '{standby_name}' "
        f"AND s.slot_name = '{slot}' AND r.state = 'streaming'")
    return out.strip() == "1"


def test_slots_follow_failover_and_are_dropped_for_detached_nodes():
    with Cluster(num_standbys=2) as c, \
            Pgpilot(c, extra_conf=conf(replication_slots="on")) as p:
        setup_table(c.primary)
        # At start: a slot per standby on the primary, used by each standby.
        for i in (1, 2):
            wait_for(lambda i=i: walsender_uses_slot(c.node(0), c.node(i).name,
                                                     f"pgpilot_node_{i}"),
                     20, f"node {i} streaming through pgpilot_node_{i} on node 0")
            assert slot_name_of(c.node(i)) == f"pgpilot_node_{i}"

        with Writer(p) as w:
            w.wait_acks(30)
            c.node(0).kill(signal.SIGKILL)
            time.sleep(0.5)  # acks the old primary sent before it died are counted by now
            acked_by_old_primary = set(w.acked_ids())
            wait_for(lambda: primary_of(p) in (1, 2), 30, "a standby promoted")
            w.wait_acks(30)
        new = primary_of(p)
        other = 3 - new
        slot = f"pgpilot_node_{other}"
        # Server side, on the new primary: the follower's slot exists and is active, and
        # the follower streams through it.
        wait_for(lambda: slots(c.node(new)).get(slot) is True, 30,
                 f"{slot} active on new primary node {new}")
        wait_for(lambda: walsender_uses_slot(c.node(new), c.node(other).name, slot), 20,
                 f"node {other} streams through {slot}")
        assert slot_name_of(c.node(other)) == slot
        assert wal_sender_port(c.node(other)) == (c.node(new).port, "streaming")
        assert pool_nodes(p)[other]["status"] == "up"
        # Replication is asynchronous here: the crash may lose the old primary's last
        # writes that were not streamed yet (PostgreSQL's documented behaviour; zero loss
        # with synchronous replication is test_primary_loss.py's). Every write acknowledged
        # after the failover is on the new primary.
        lost = w.acked_ids() - ids_on(c.node(new))
        assert lost <= acked_by_old_primary, sorted(lost - acked_by_old_primary)[:10]
        assert not [s for s in slots(c.node(new)) if s == f"pgpilot_node_{new}"]

        # An operator detaches the follower while it still streams: the slot is in use,
        # so it is kept (and reported) ...
        p.psql(f"PGPILOT DETACH {other}")
        wait_for(lambda: pool_nodes(p)[other]["status"] == "down", 10, f"node {other} detached")
        p.wait_log(rf"slot_kept: replication slot {slot} of detached node {other}", timeout=15)
        assert slots(c.node(new)).get(slot) is True
        # ... and dropped once the standby is gone.
        c.node(other).kill(signal.SIGKILL)
        wait_for(lambda: slot not in slots(c.node(new)), 20, f"{slot} dropped on node {new}")
        assert events(p, "slot_dropped")


def test_slots_follow_switchover_there_and_back():
    """0 -> 1 -> 0: each time every standby, the demoted primary included, streams through
    its own slot on the new primary. Going back, node 1 still has the primary_slot_name it
    had as a standby at the start; its slot must exist on node 0 again."""
    with Cluster(num_standbys=2) as c, \
            Pgpilot(c, extra_conf=conf(replication_slots="on", switchover_timeout=60)) as p:
        for i in (1, 2):
            wait_for(lambda i=i: walsender_uses_slot(c.node(0), c.node(i).name,
                                                     f"pgpilot_node_{i}"),
                     20, f"node {i} streaming through its slot on node 0")
        for new, old, other in ((1, 0, 2), (0, 1, 2)):
            switchover(p, new)
            wait_for(lambda: primary_of(p) == new, 60, f"node {new} primary")
            for s in (old, other):
                wait_for(lambda s=s: walsender_uses_slot(c.node(new), c.node(s).name,
                                                         f"pgpilot_node_{s}"),
                         30, f"node {s} streaming through pgpilot_node_{s} on node {new}")
                assert slot_name_of(c.node(s)) == f"pgpilot_node_{s}"
            assert pool_nodes(p)[old]["status"] == "up"


def test_slots_off_by_default_touch_nothing():
    with Cluster(num_standbys=1) as c, Pgpilot(c, extra_conf=conf()) as p:
        wait_for(lambda: pool_nodes(p)[1]["pg_status"] == "up", 15, "node 1 checked")
        c.node(1).kill(signal.SIGKILL)
        wait_for(lambda: pool_nodes(p)[1]["status"] == "down", 15, "standby 1 detached")
        assert slots(c.node(0)) == {}
        assert not events(p, "slot_created")
