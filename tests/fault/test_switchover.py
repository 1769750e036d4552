"""FAULTS.md 12: planned switchover under load. pgbench (TPC-B, explicit transactions) and an
autocommit writer run through pgpilot while an operator switches the primary to a standby
and then back: zero failed transactions, every acknowledged write on the new primary, the
old primary a streaming standby of the new one on its timeline, all checked on the servers."""

import subprocess
import threading
import time

import psycopg2
import pytest

from harness.cluster import PG_BIN, Cluster
from harness.pgpilot import Pgpilot

from faultlib import (Writer, conf, events, ids_on, pool_nodes, primary_of, read_only_errors,
                      report, setup_table, switchover, wait_for, wal_sender_port)


def _check_switched(c, p, new, old, other):
    """Server-side truth after a switchover from `old` to `new`."""
    assert c.node(new).psql("SELECT pg_is_in_recovery()").strip() == "f"
    assert c.node(old).psql("SELECT pg_is_in_recovery()").strip() == "t"
    for s in (old, other):
        wait_for(lambda s=s: wal_sender_port(c.node(s)) == (c.node(new).port, "streaming"), 30,
                 f"node {s} streaming from node {new}")
    # The demoted primary is on the new primary's timeline (no divergence, no rewind).
    # (The new primary's timeline from its WAL file name: pg_control_checkpoint() lags until
    # the first checkpoint after promotion.)
    walfile = c.node(new).psql("SELECT pg_walfile_name(pg_current_wal_lsn())").strip()
    tli = str(int(walfile[:8], 16))
    assert tli != "1"
    wait_for(lambda: c.node(old).psql("SELECT received_tli FROM pg_stat_wal_receiver").strip()
             == tli, 30, f"node {old} on timeline {tli}")
    nodes = pool_nodes(p)
    assert primary_of(p) == new
    assert nodes[old]["status"] == "up" and nodes[old]["role"] == "standby", nodes[old]
    assert nodes[other]["status"] == "up" and nodes[other]["role"] == "standby", nodes[other]


def _pgbench(p, seconds):
    return subprocess.Popen(
        [f"{PG_BIN}/pgbench", "-n", "-c", "6", "-j", "2", "-T", str(seconds), "-h", p.host, "-p",
         str(p.port), "-U", "postgres", "postgres"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_switchover_under_pgbench_has_no_failed_transactions_and_switches_back():
    with Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1, standby2)") as c, \
            Pgpilot(c, extra_conf=conf()) as p:
        subprocess.run([f"{PG_BIN}/pgbench", "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p",
                        str(c.primary.port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True, timeout=120)
        setup_table(c.primary)
        c.wait_replay()
        assert primary_of(p) == 0
        bench = _pgbench(p, 24)
        with Writer(p) as w:
            w.wait_acks(30)
            time.sleep(2)  # pgbench is running
            t0 = time.monotonic()
            switchover(p, 1)
            t1 = time.monotonic()
            w.wait_acks(30, timeout=30)
            _check_switched(c, p, new=1, old=0, other=2)
            time.sleep(2)
            t2 = time.monotonic()
            switchover(p, 0)
            t3 = time.monotonic()
            w.wait_acks(30, timeout=30)
        out, err = bench.communicate(timeout=120)
        _check_switched(c, p, new=0, old=1, other=2)
        report("planned switchover under pgbench", switchover_s=round(t1 - t0, 2),
               switch_back_s=round(t3 - t2, 2), writer_max_gap_s=round(w.max_gap(t0), 2),
               writer_failures=len(w.failures), pgbench_rc=bench.returncode)
        assert bench.returncode == 0, out[-2000:] + err[-2000:]
        assert "aborted" not in out + err, out[-2000:] + err[-2000:]
        assert "number of failed transactions: 0" in out, out
        assert not w.failures, w.failures[:5]
        assert not read_only_errors(w)
        missing = w.acked_ids() - ids_on(c.node(0))
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
        # Writes went to exactly the primary of the moment: ids landed on node 0 or node 1
        # as primary, and never on node 2.
        ports = {int(x) for x in c.node(0).psql("SELECT DISTINCT port FROM acked").split()}
        assert ports <= {c.node(0).port, c.node(1).port}, ports
        assert len(events(p, "switchover done")) == 2, events(p, "switchover")
        assert not events(p, "failover done")
        assert t1 - t0 < 30 and t3 - t2 < 30


def test_switchover_refusals_change_nothing():
    with Cluster(num_standbys=1) as c, Pgpilot(c, extra_conf=conf()) as p:
        conn = p.connect(connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("PGPILOT SWITCHOVER 0")  # already the primary: succeeds, no-op
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("PGPILOT SWITCHOVER 5")
            assert "does not exist" in e.value.pgerror
            cur.execute("PGPILOT DETACH 1")
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("PGPILOT SWITCHOVER 1")
            assert "not attached" in e.value.pgerror
        conn.close()
        assert primary_of(p) == 0
        assert c.node(0).psql("SELECT pg_is_in_recovery()").strip() == "f"
        assert not events(p, "switchover done")


def test_switchover_with_open_transaction_waits_for_it():
    """A transaction open when the switchover starts may finish (switchover_drain_timeout);
    its commit lands on the old primary, and the session's next statement runs on the new."""
    with Cluster(num_standbys=1) as c, \
            Pgpilot(c, extra_conf=conf(switchover_drain_timeout=20)) as p:
        setup_table(c.primary)
        c.wait_replay()
        tx = p.connect(connect_timeout=5)
        with tx.cursor() as cur:
            cur.execute("INSERT INTO acked (id) VALUES (-1)")  # transaction open
        result = {}
        th = threading.Thread(target=lambda: result.setdefault("r", switchover(p, 1)))
        th.start()
        wait_for(lambda: events(p, "switchover"), 10, "switchover started")
        time.sleep(1)
        assert th.is_alive(), result  # still waiting for the open transaction
        tx.commit()
        th.join(timeout=60)
        assert not th.is_alive()
        with tx.cursor() as cur:
            cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
            port, rec = cur.fetchone()
        tx.close()
        assert (port, rec) == (c.node(1).port, False)
        assert -1 in ids_on(c.node(1))
        assert primary_of(p) == 1


def test_switchover_from_pgpilotctl_and_http():
    """The operator surfaces: `pgpilotctl switchover --to N` (admin port) and
    POST /api/switchover (token), each a real switchover checked on the servers."""
    import hashlib
    import http.client
    import json
    import os

    from harness import procs
    from harness.pgpilot import FREE_PORT

    admin, admin_pw, token = "opsadmin", "s3cret-admin", "sw-token"
    with Cluster(num_standbys=1) as c:
        p = Pgpilot(c, extra_conf=conf(admin_port=FREE_PORT, admin_users=admin,
                                       pool_passwd="pool_passwd", http_port=FREE_PORT,
                                       http_token=token), start=False)
        with open(os.path.join(p.dir, "pool_passwd"), "w") as f:
            f.write(f"{admin}:md5{hashlib.md5((admin_pw + admin).encode()).hexdigest()}\n")
        p.start()
        try:
            setup_table(c.primary)
            ctl = os.path.join(os.path.dirname(os.path.abspath(os.environ["PGPILOT_BIN"])),
                               "pgpilotctl")
            r = subprocess.run([ctl, "-p", str(p.ports["admin_port"]), "-U", admin, "--json",
                                "switchover", "--to", "1"], capture_output=True, text=True,
                               timeout=120, env=procs.clean_env(PGPASSWORD=admin_pw),
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 0, r
            assert json.loads(r.stdout)["ok"] is True, r.stdout
            assert c.node(1).psql("SELECT pg_is_in_recovery()").strip() == "f"
            assert c.node(0).psql("SELECT pg_is_in_recovery()").strip() == "t"
            wait_for(lambda: wal_sender_port(c.node(0)) == (c.node(1).port, "streaming"), 30,
                     "node 0 streaming from node 1")
            p.psql("INSERT INTO acked (id) VALUES (1)")
            conn = http.client.HTTPConnection("127.0.0.1", p.ports["http_port"], timeout=120)
            conn.request("POST", "/api/switchover", body='{"node": 0}',
                         headers={"Authorization": "Bearer " + token})
            resp = conn.getresponse()
            body = resp.read().decode()
            conn.close()
            assert resp.status == 200, body
            assert c.node(0).psql("SELECT pg_is_in_recovery()").strip() == "f"
            wait_for(lambda: wal_sender_port(c.node(1)) == (c.node(0).port, "streaming"), 30,
                     "node 1 streaming from node 0")
            p.psql("INSERT INTO acked (id) VALUES (2)")
            assert ids_on(c.node(0)) == {1, 2}
            assert primary_of(p) == 0
            # A bad target: exit code 1, nothing changes.
            r = subprocess.run([ctl, "-p", str(p.ports["admin_port"]), "-U", admin,
                                "switchover", "--to", "7"], capture_output=True, text=True,
                               timeout=60, env=procs.clean_env(PGPASSWORD=admin_pw),
                               stdin=subprocess.DEVNULL)
            assert r.returncode == 1, r
            assert primary_of(p) == 0
        finally:
            p.stop()


def test_failed_switchover_leaves_the_old_primary_in_charge():
    """A target that cannot catch up is abandoned before anything changes; a failing
    switchover_command is rolled back. Either way node 0 stays the primary and takes writes."""
    with Cluster(num_standbys=1) as c, \
            Pgpilot(c, extra_conf=conf(switchover_timeout=3, switchover_command="exit 3")) as p:
        setup_table(c.primary)
        c.wait_replay()
        c.node(1).psql("SELECT pg_wal_replay_pause()")
        p.psql("INSERT INTO acked (id) VALUES (1)")
        with pytest.raises(psycopg2.Error) as e:
            switchover(p, 1)
        assert "did not replay up to the primary's position" in e.value.pgerror
        c.node(1).psql("SELECT pg_wal_replay_resume()")
        c.wait_replay()
        with pytest.raises(psycopg2.Error) as e:
            switchover(p, 1)
        assert "switchover_command failed (exit 3)" in e.value.pgerror
        assert "primary: node 0" in e.value.pgerror
        p.psql("INSERT INTO acked (id) VALUES (2)")
        assert ids_on(c.node(0)) == {1, 2}
        assert c.node(1).psql("SELECT pg_is_in_recovery()").strip() == "t"
        assert primary_of(p) == 0
        assert len(events(p, "switchover_failed")) == 2
