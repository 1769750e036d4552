"""FAULTS.md 10 and 17: failover_command with pgpool's placeholders (working, failing,
hanging: bounded by failover_command_timeout, logged, no primary -> writes held then a
clear error, never sent to a standby), and pgpilot killed with -9 and restarted (the
status file keeps a detached node detached)."""

import signal
import time

import psycopg2

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from faultlib import Writer, conf, events, pool_nodes, primary_of, report, setup_table, wait_for


def test_failover_command_with_placeholders_promotes(tmp_path):
    out = tmp_path / "args"
    cmd = (f"echo '%d %h %p %m %H %r %P %%' > {out} && "
           "psql -h %H -p %r -U postgres -d postgres -Atc 'SELECT pg_promote()'")
    with Cluster(num_standbys=2) as c, \
            Pgpilot(c, extra_conf=conf(failover_command=cmd,
                                       failover_candidate_policy="node_order")) as p:
        setup_table(c.primary)
        c.node(0).kill(signal.SIGKILL)
        wait_for(lambda: primary_of(p) == 1, 30, "node 1 promoted by failover_command")
        assert out.read_text().split() == ["0", "127.0.0.1", str(c.node(0).port), "1",
                                           "127.0.0.1", str(c.node(1).port), "0", "%"]
        with Writer(p) as w:
            w.wait_acks(20)
        assert not w.failures


def _no_primary_after_bad_command(c, p, what):
    setup_table(c.primary)
    c.node(0).kill(signal.SIGKILL)
    p.wait_log(what, timeout=30)
    assert primary_of(p) is None
    assert c.node(1).is_in_recovery() and c.node(2).is_in_recovery()
    t0 = time.monotonic()
    try:
        conn = p.connect(connect_timeout=10)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acked (id) VALUES (1)")
        raise AssertionError("a write succeeded with no primary")
    except psycopg2.Error as e:
        assert "primary" in str(e)
    waited = time.monotonic() - t0
    assert 2.5 < waited < 15
    return waited


def test_failing_failover_command_leaves_no_primary_and_clear_errors():
    with Cluster(num_standbys=2) as c, \
            Pgpilot(c, extra_conf=conf(failover_command="exit 3", failover_hold_timeout=3)) as p:
        _no_primary_after_bad_command(c, p, r"failover_command failed \(exit 3\)")
        assert events(p, "failover_failed")


def test_hanging_failover_command_is_killed_after_its_timeout():
    with Cluster(num_standbys=2) as c, \
            Pgpilot(c, extra_conf=conf(failover_command="sleep 600",
                                       failover_command_timeout=3,
                                       failover_hold_timeout=3)) as p:
        t0 = time.monotonic()
        _no_primary_after_bad_command(c, p, r"failover_command timed out after 3 s")
        report("hanging failover_command", bounded_after_s=round(time.monotonic() - t0, 1))


def test_pgpilot_kill_restart_keeps_detached_node_detached():
    with Cluster(num_standbys=2) as c, Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        c.node(2).kill(signal.SIGKILL)
        wait_for(lambda: pool_nodes(p)[2]["status"] == "down", 15, "standby 2 detached")
        p.kill(signal.SIGKILL)
        c.node(2).start()  # healthy again, but nobody attached it
        c.wait_streaming()
        p.start()
        time.sleep(3)
        nodes = pool_nodes(p)
        assert nodes[2]["status"] == "down", nodes
        assert nodes[1]["status"] == "up"
        assert primary_of(p) == 0
        with Writer(p) as w:  # clients reconnect and carry on
            w.wait_acks(20)
        assert not w.failures
