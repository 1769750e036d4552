"""SHOW pool_nodes reports replication as the servers see it (pgpool's sr_check):
replication_state / replication_sync_state from the primary's pg_stat_replication, and
replication_delay in bytes between the primary's WAL position and each standby's replay
position. Checked against the servers themselves, with a standby made to lag."""

import time

import pytest

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

COLUMNS = ["node_id", "hostname", "port", "status", "pg_status", "lb_weight", "role",
           "pg_role", "select_cnt", "load_balance_node", "replication_delay",
           "replication_state", "replication_sync_state", "last_status_change"]


def pool_nodes(p):
    conn = p.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_nodes")
            assert [d[0] for d in cur.description] == COLUMNS
            return {int(r[0]): dict(zip(COLUMNS, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s; last value {last!r}")


@pytest.fixture(scope="module")
def sync_cluster():
    c = Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1)")
    c.start()
    yield c
    c.stop()


def test_states_match_pg_stat_replication(sync_cluster):
    p = Pgpilot(sync_cluster, extra_conf={"sr_check_period": "1"})
    try:
        server = dict(
            (row.split("|")[0], row.split("|")[1:])
            for row in sync_cluster.primary.psql(
                "SELECT application_name, state, sync_state FROM pg_stat_replication"
            ).splitlines())

        def settled():
            nodes = pool_nodes(p)
            return nodes if nodes[1]["replication_state"] else None

        nodes = wait_for(settled)
        assert nodes[0]["role"] == "primary"
        assert nodes[0]["replication_state"] == ""
        for i, node in enumerate(sync_cluster.standbys, start=1):
            assert nodes[i]["role"] == "standby"
            state, sync_state = server[node.name]
            assert nodes[i]["replication_state"] == state == "streaming"
            assert nodes[i]["replication_sync_state"] == sync_state
        assert nodes[1]["replication_sync_state"] == "sync"
        assert nodes[2]["replication_sync_state"] in ("async", "potential")
    finally:
        p.stop()


def test_paused_standby_shows_delay_in_bytes(sync_cluster):
    p = Pgpilot(sync_cluster, extra_conf={"sr_check_period": "1"})
    lagging = sync_cluster.standbys[1]  # standby2 is async: the primary does not wait on it
    try:
        lagging.psql("SELECT pg_wal_replay_pause()")
        sync_cluster.primary.psql(
            "CREATE TABLE IF NOT EXISTS lagtest (v int); "
            "INSERT INTO lagtest SELECT generate_series(1, 200000)")
        expected = int(sync_cluster.primary.psql(
            "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")) - int(lagging.psql(
                "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"))
        assert expected > 1_000_000
        nodes = wait_for(lambda: (lambda n: n if int(n[2]["replication_delay"]) > 1_000_000
                                  else None)(pool_nodes(p)))
        # pgpilot's figure is the same distance, measured a moment apart.
        assert abs(int(nodes[2]["replication_delay"]) - expected) < expected // 2 + 1_000_000
        lagging.psql("SELECT pg_wal_replay_resume()")
        wait_for(lambda: int(pool_nodes(p)[2]["replication_delay"]) == 0)
    finally:
        lagging.psql("SELECT pg_wal_replay_resume()", check=False)
        p.stop()
