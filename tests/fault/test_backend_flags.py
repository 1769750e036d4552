"""pgpool's backend_flag: DISALLOW_TO_FAILOVER (another tool, e.g. Pacemaker, owns the
node's fate: pgpilot never detaches or fails it over) and ALWAYS_PRIMARY (an address that
always leads to the primary, e.g. Aurora's cluster endpoint: regarded as the primary
without asking it, never failed over). Roles are checked on the servers themselves."""

import http.client
import json
import time

import psycopg2

from harness.cluster import Cluster
from harness.pgpilot import FREE_PORT, Pgpilot

from faultlib import conf, events, pool_nodes, primary_of, wait_for


def flags_conf(**flags):
    # A short failover_hold_timeout: a client waits that long for the primary to answer
    # again before it gets its error.
    return conf(http_port=FREE_PORT, failover_hold_timeout=3, **flags)


def api_nodes(p):
    """/api/nodes: readable while no session can start (the primary is down)."""
    conn = http.client.HTTPConnection("127.0.0.1", p.ports["http_port"], timeout=10)
    try:
        conn.request("GET", "/api/nodes")
        r = conn.getresponse()
        assert r.status == 200
        return {n["id"]: n for n in json.loads(r.read())["nodes"]}
    finally:
        conn.close()


def admin(p, sql):
    """An admin command through pgpilot: None if it succeeded, else the error's message."""
    conn = p.connect(connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        return None
    except psycopg2.Error as e:
        return str(e)
    finally:
        conn.close()


def in_recovery(node):
    return node.psql("SELECT pg_is_in_recovery()").strip() == "t"


def write_through(p, value):
    """One autocommit INSERT through pgpilot; returns the server port that ran it, or the
    psycopg2 error."""
    try:
        conn = p.connect(connect_timeout=5)
    except psycopg2.Error as e:
        return e
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO flags_t (v) VALUES (%s) RETURNING inet_server_port()",
                        (value,))
            return cur.fetchone()[0]
    except psycopg2.Error as e:
        return e
    finally:
        conn.close()


def primary_down_then_back(c, p, flag):
    """Stops the primary (node 0), checks that nothing is promoted and writes fail cleanly,
    then starts it again and checks that writes come back to it."""
    c.primary.psql("CREATE TABLE flags_t (v int)")
    assert write_through(p, 1) == c.node(0).port
    c.node(0).stop()
    p.wait_log(r"node_unreachable: node 0 .*not detached \(" + flag + r"\)", timeout=20)
    # Several health-check periods (1 s) later: no failover, the standby is still a standby.
    time.sleep(5)
    assert not events(p, "failover"), events(p, "failover")
    assert in_recovery(c.node(1)), "pgpilot promoted the standby"
    nodes = api_nodes(p)
    assert nodes[0]["status"] == "up" and nodes[0]["pg_status"] == "down", nodes[0]
    assert nodes[0]["role"] == "primary", nodes[0]
    t0 = time.monotonic()
    r = write_through(p, 2)
    assert isinstance(r, psycopg2.Error), f"a write succeeded on port {r} with the primary down"
    assert getattr(r, "pgcode", None) != "25006", "a write reached the standby"
    assert time.monotonic() - t0 < 15, "the client was held past failover_hold_timeout"
    c.node(0).start()
    wait_for(lambda: write_through(p, 3) == c.node(0).port, 30, "writes on node 0 again")
    p.wait_log(r"node_back: node 0 answers again", timeout=10)
    assert primary_of(p) == 0
    assert not events(p, "failover")


def test_disallow_to_failover_primary_is_not_failed_over():
    with Cluster(num_standbys=1) as c, \
            Pgpilot(c, extra_conf=flags_conf(backend_flag0="DISALLOW_TO_FAILOVER")) as p:
        assert primary_of(p) == 0
        # Operators cannot detach it or switch over from it either.
        assert "DISALLOW_TO_FAILOVER" in admin(p, "PGPILOT DETACH 0")
        assert "DISALLOW_TO_FAILOVER" in admin(p, "PGPILOT SWITCHOVER 1")
        assert pool_nodes(p)[0]["status"] == "up" and in_recovery(c.node(1))
        primary_down_then_back(c, p, "DISALLOW_TO_FAILOVER")


def test_always_primary_node_is_not_failed_over():
    # ALWAYS_PRIMARY alone (failover allowed): the node is still never failed over.
    with Cluster(num_standbys=1) as c, \
            Pgpilot(c, extra_conf=flags_conf(backend_flag0="ALWAYS_PRIMARY")) as p:
        assert primary_of(p) == 0
        primary_down_then_back(c, p, "ALWAYS_PRIMARY")


def test_always_primary_is_not_asked():
    # Set on a node that is in fact a standby: pgpilot regards it as the primary anyway
    # (pgpool-II does the same; the flag is the operator's promise). Its writes are then
    # refused by the server, never sent to the real primary.
    with Cluster(num_standbys=1) as c, \
            Pgpilot(c, extra_conf=flags_conf(backend_flag1="ALWAYS_PRIMARY")) as p:
        c.primary.psql("CREATE TABLE flags_t (v int)")
        c.wait_replay(timeout=30)
        wait_for(lambda: primary_of(p) == 1, 20, "node 1 (ALWAYS_PRIMARY) as the primary")
        nodes = pool_nodes(p)
        assert nodes[1]["role"] == "primary" and nodes[1]["pg_role"] == "standby", nodes[1]
        assert nodes[0]["role"] == "standby" and nodes[0]["pg_role"] == "primary", nodes[0]
        r = write_through(p, 1)
        assert isinstance(r, psycopg2.Error) and r.pgcode == "25006", r
        assert c.primary.psql("SELECT count(*) FROM flags_t").strip() == "0"
        # It stays the primary: no detach, no switchover, no promotion of another node.
        assert "ALWAYS_PRIMARY" in admin(p, "PGPILOT DETACH 1")
        assert "ALWAYS_PRIMARY" in admin(p, "PGPILOT SWITCHOVER 0")
        assert "ALWAYS_PRIMARY" in admin(p, "PGPILOT PROMOTE 0")
        assert primary_of(p) == 1
