"""FAULTS.md 13, 15, 16: network faults between pgpilot and the primary. Node 0 (the
primary) runs in its own network namespace behind a veth pair (tests/harness/netns.py);
the standbys and pgpilot stay on the host and reach it at 10.201.X.2, so a fault on that
link cuts the primary off from pgpilot and from its standbys, as a real partition would.
Synchronous replication FIRST 1, health_check_period 1 s, timeout 2 s.

FAULTS 14 (20% loss / 200 ms delay to a standby) is not here: it needs tc netem, and the
test VM's kernel has no sch_netem (nor tc matchall/u32 actions to emulate it)."""

import time

import pytest

from harness import netns
from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import (Writer, conf, events, ids_on, own_ids, pool_nodes, primary_of,
                      read_only_errors, report, setup_table, wait_for, wal_sender_port)

SYNC = "FIRST 1 (standby1, standby2)"

_reason = netns.unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=f"network faults: {_reason}")


@pytest.fixture
def ns():
    n = netns.NetNs()
    try:
        yield n
    finally:
        n.close()


def _check_one_writer(c, w, final):
    """Zero acknowledged writes lost; no acknowledged write exists only on another node
    (i.e. written there after the histories split)."""
    on_final = ids_on(c.node(final))
    missing = w.acked_ids() - on_final
    assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
    for n in c.nodes:
        if n.index != final:
            stray = (ids_on(n) - on_final) & w.acked_ids()
            assert not stray, f"acknowledged writes only on {n.name}: {sorted(stray)[:10]}"


def _partition(ns, cut, name):
    """Cuts node 0 off with `cut`, expects one failover (as for a hung primary, FAULTS 3),
    heals the link and checks that the old primary, reachable again and still a primary,
    gets no write."""
    with Cluster(num_standbys=2, sync_standby_names=SYNC, primary_netns=ns) as c, \
            Pgpilot(c, extra_conf=conf()) as p:
        assert c.node(0).host == ns.inner_addr
        assert pool_nodes(p)[0]["hostname"] == ns.inner_addr
        setup_table(c.primary)
        with Writer(p, timeout=120) as w:
            w.wait_acks(30)
            cut()
            t_cut = time.monotonic()
            try:
                new = wait_for(lambda: (primary_of(p) or 0) or None, 40, "failover")
                t_new = time.monotonic()
                w.wait_acks(50, timeout=30)
            finally:
                ns.heal()
            t_heal = time.monotonic()
            # Reachable again and still running as a primary: it must stay detached.
            time.sleep(4)
            w.wait_acks(50, timeout=30)
        # A write acknowledged just as the rule went in can be recorded after t_cut: the
        # window is the longest pause between acknowledgements around the cut.
        _, failed_after = w.window_after(t_cut)
        report(name, detection_and_promotion_s=round(t_new - t_cut, 2),
               write_unavailable_s=round(w.max_gap(t_cut), 2),
               failed_statements=len(failed_after))
        assert new in (1, 2)
        assert len(events(p, "failover done")) == 1, events(p, "failover")
        assert len(events(p, "failover")) == 1, events(p, "failover")
        nodes = pool_nodes(p)
        assert nodes[0]["status"] == "down"
        assert nodes[new]["role"] == "primary" and nodes[new]["status"] == "up"
        assert c.node(0).psql("SELECT pg_is_in_recovery()") == "f"  # a live old primary
        assert c.node(new).psql("SELECT pg_is_in_recovery()") == "f"
        other = 3 - new
        assert c.node(other).psql("SELECT pg_is_in_recovery()") == "t"
        wait_for(lambda: wal_sender_port(c.node(other)) == (c.node(new).port, "streaming"), 30,
                 f"node {other} streaming from node {new}")
        assert not read_only_errors(w)
        _check_one_writer(c, w, new)
        # The writer's ids increase: every row the old primary holds comes before the first
        # row written on the new one, and nothing acknowledged after the failover is on it.
        old_rows = ids_on(c.node(0))
        assert max(old_rows) < min(own_ids(c.node(new))), "the old primary took writes"
        assert not ({i for i, t in w.acked if t > t_new} & old_rows)
        healed = {i for i, t in w.acked if t > t_heal}
        assert healed and healed <= ids_on(c.node(new))
        # Reads through pgpilot work.
        assert int(p.psql("SELECT count(*) FROM acked")) >= len(w.acked)


def test_primary_unreachable_both_ways_fails_over_once(ns):
    """FAULTS 13: every packet to and from the primary's namespace is dropped."""
    _partition(ns, ns.drop_both, "primary partitioned (DROP both ways)")


def test_asymmetric_partition_fails_over_once(ns):
    """FAULTS 15: only packets leaving the primary's namespace are dropped: queries and
    SYNs arrive, nothing comes back."""
    _partition(ns, ns.drop_out, "primary partitioned (DROP outbound only)")


def test_flapping_link_at_most_one_failover(ns):
    """FAULTS 16: the primary's link goes down and up every second for 24 s."""
    with Cluster(num_standbys=2, sync_standby_names=SYNC, primary_netns=ns) as c, \
            Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        flaps = 0
        with Writer(p, timeout=120) as w:
            w.wait_acks(30)
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < 24:
                    ns.link_down()
                    time.sleep(1)
                    ns.link_up()
                    flaps += 1
                    time.sleep(1)
            finally:
                ns.link_up()
            t_end = time.monotonic()
            wait_for(lambda: primary_of(p) is not None, 40, "a primary after the flapping")
            final = primary_of(p)
            w.wait_acks(50, timeout=40)
        failovers = len(events(p, "failover done"))
        started = len(events(p, "failover"))
        window, failed = w.window_after(t0)
        report("flapping link (down/up every 1 s, 24 s)", flaps=flaps, failovers=failovers,
               failed_statements=len(failed), max_commit_gap_s=round(w.max_gap(t0), 2),
               writes_acked_while_flapping=len([1 for _, t in w.acked if t0 < t <= t_end]))
        assert flaps >= 10
        assert w.max_gap(t0) > 0.5, "the flapping never reached the primary's traffic"
        assert failovers <= 1, events(p, "failover")
        assert started == failovers, events(p, "failover")
        nodes = pool_nodes(p)
        assert nodes[final]["role"] == "primary" and nodes[final]["status"] == "up"
        assert c.node(final).psql("SELECT pg_is_in_recovery()") == "f"
        if failovers:
            assert final in (1, 2) and nodes[0]["status"] == "down"
        else:
            assert final == 0
        # Exactly one attached node is a primary on the server side.
        attached_primaries = [i for i, n in nodes.items() if n["status"] == "up"
                              and c.node(i).psql("SELECT pg_is_in_recovery()") == "f"]
        assert attached_primaries == [final]
        assert not read_only_errors(w)
        _check_one_writer(c, w, final)
        late = {i for i, t in w.acked if t > t_end}
        assert late and late <= ids_on(c.node(final))
