"""Configuration reload (SIGHUP and RELOAD) against a real cluster.

- Under a pgbench load through pgpilot, a reload adds a backend (backend_hostname2) and
  changes backend_weight1: pgbench sees 0 failed transactions, the new node appears in
  SHOW pool_nodes as "unused" (not used until attached), the weight applies, a reloadable
  setting reaches new sessions.
- A restart-only change (port) is reported ("requires restart") and the old value kept.
- An invalid file changes nothing: RELOAD fails with the file:line, SIGHUP logs it, and
  SHOW pool_status still shows the running values."""

import os
import re
import shutil
import signal
import subprocess
import time

import psycopg2
import pytest

from harness import procs
from harness.cluster import Cluster
from harness.pgpilot import Pgpilot

from routing_util import pool_nodes

PGBENCH = shutil.which("pgbench") or "/usr/bin/pgbench"
DB = "reloadbench"
NODE2_KEYS = ("backend_hostname2", "backend_port2", "backend_weight2",
              "backend_data_directory2", "backend_application_name2")


@pytest.fixture(scope="module")
def cl():
    c = Cluster(num_standbys=2)
    try:
        c.start()
        c.primary.psql(f"CREATE DATABASE {DB}")
        yield c
    finally:
        c.stop()


@pytest.fixture
def pilot(cl):
    # Starts with nodes 0 and 1 only; node 2 is added by a reload.
    p = Pgpilot(cl, extra_conf={k: None for k in NODE2_KEYS} | {"sr_check_period": "1"})
    try:
        yield p
    finally:
        p.stop()


def status(p):
    conn = p.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_status")
            return {r[0]: r[1] for r in cur.fetchall()}
    finally:
        conn.close()


def sql_reload(p):
    """RELOAD on the normal port (superuser): (ok, message, sqlstate)."""
    conn = p.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("PGPILOT RELOAD")
            return True, "\n".join(conn.notices), None
    except psycopg2.Error as e:
        return False, e.pgerror, e.pgcode
    finally:
        conn.close()


def pgbench(p, *args, timeout=120):
    cmd = [PGBENCH, "-h", p.host, "-p", str(p.port), "-U", "postgres", *args, DB]
    env = procs.clean_env(PGPASSWORD=p.cluster.password, PGCONNECT_TIMEOUT=10)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, stdin=subprocess.DEVNULL)


def test_reload_adds_backend_and_changes_weight_under_load(pilot, cl):
    init = pgbench(pilot, "-i", "-s", "1", "-q")
    out, _ = init.communicate(timeout=120)
    assert init.returncode == 0, out
    before = pool_nodes(pilot)
    assert sorted(before) == [0, 1]
    assert status(pilot)["client_idle_limit"] == "0"

    run = pgbench(pilot, "-c", "4", "-j", "2", "-T", "6", "-n")
    time.sleep(2)
    node2 = cl.standbys[1]
    pilot.extra_conf.update({"backend_hostname2": node2.host, "backend_port2": node2.port,
                             "backend_weight2": 1, "backend_data_directory2": node2.datadir,
                             "backend_application_name2": node2.name,
                             "backend_weight1": 3, "client_idle_limit": "300"})
    pilot.write_conf()
    pilot.reload()  # SIGHUP
    pilot.wait_log(r"LOG: reload: configuration reloaded from .*changed .*client_idle_limit.*"
                   r"\(requested by SIGHUP\)")
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 0, out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m and int(m.group(1)) == 0, out
    assert int(re.search(r"actually processed: (\d+)", out).group(1)) > 0, out

    nodes = pool_nodes(pilot)
    assert sorted(nodes) == [0, 1, 2]
    assert nodes[2]["status"] == "unused"
    assert nodes[2]["port"] == str(node2.port)
    assert nodes[0]["status"] == nodes[1]["status"] == "up"
    assert float(nodes[1]["lb_weight"]) == pytest.approx(3 / 5)
    assert float(nodes[0]["lb_weight"]) == pytest.approx(1 / 5)
    s = status(pilot)
    assert (s["backend_weight1"], s["client_idle_limit"], s["backend_port2"]) == (
        "3", "5min", str(node2.port))
    assert re.search(r"LOG: \[n:2\] reload: node 2 \(.*\) added by reload: status unused",
                     pilot.log_text())
    # The monitor probes the new node: pg_status up, pg_role standby (it is not attached).
    deadline = time.monotonic() + 20
    while pool_nodes(pilot)[2]["pg_role"] != "standby" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert pool_nodes(pilot)[2]["pg_role"] == "standby"
    assert pool_nodes(pilot)[2]["status"] == "unused"


def test_restart_only_setting_is_reported_and_kept(pilot):
    old_port = pilot.port
    pilot.extra_conf["max_pool"] = 7
    pilot.extra_conf["log_statement"] = "on"
    pilot.write_conf()
    ok, msg, _ = sql_reload(pilot)
    assert ok, msg
    assert "changed log_statement" in msg and "requires restart" in msg and "max_pool" in msg
    s = status(pilot)
    assert s["max_pool"] == "100" and s["log_statement"] == "on"
    assert pilot.port == old_port
    pilot.psql("SELECT 'logged statement'")
    pilot.wait_log(r"statement: SELECT 'logged statement'")


def test_invalid_file_changes_nothing(pilot):
    pilot.extra_conf["client_idle_limit"] = "77"
    pilot.write_conf()
    with open(pilot.conf_path, "a") as f:
        f.write("max_pool = 'lots'\n")
    bad_line = sum(1 for _ in open(pilot.conf_path))
    ok, msg, code = sql_reload(pilot)
    assert not ok and code == "F0000", msg
    assert f"pgpilot.conf:{bad_line}" in msg and "max_pool" in msg, msg
    assert "nothing changed" in msg
    assert status(pilot)["client_idle_limit"] == "0"

    pilot.send_signal(signal.SIGHUP)
    pilot.wait_log(rf"WARNING: reload: configuration reload failed, nothing changed .*"
                   rf"pgpilot.conf:{bad_line}")
    assert status(pilot)["client_idle_limit"] == "0"
    assert pilot.psql("SELECT 42") == "42"

    # A missing pool_hba_file fails the reload as a whole too.
    pilot.write_conf()
    with open(pilot.conf_path, "a") as f:
        f.write("enable_pool_hba = on\npool_hba_file = 'no_such_hba.conf'\n")
    ok, msg, code = sql_reload(pilot)
    assert not ok and "no_such_hba.conf" in msg, msg
    assert status(pilot)["client_idle_limit"] == "0"

    # Once the file is fixed, the reload applies.
    pilot.write_conf()
    ok, msg, _ = sql_reload(pilot)
    assert ok, msg
    assert status(pilot)["client_idle_limit"] == "77s"


def test_hba_reload_applies_to_new_sessions_only(pilot):
    """pool_hba rules reloaded: new clients see them at once, a session opened before the
    reload keeps working (its connection is not dropped)."""
    with open(os.path.join(pilot.dir, "hba.conf"), "w") as f:
        f.write("host all all 127.0.0.1/32 reject\n")
    before = pilot.connect()
    before.autocommit = True
    pilot.extra_conf.update({"enable_pool_hba": "on", "pool_hba_file": "hba.conf"})
    pilot.write_conf()
    pilot.reload()
    pilot.wait_log(r"reload: configuration reloaded .*changed enable_pool_hba, pool_hba_file")
    with pytest.raises(psycopg2.OperationalError, match="rejects connection"):
        pilot.connect()
    with before.cursor() as cur:
        cur.execute("SELECT 7")
        assert cur.fetchone()[0] == 7
    pilot.extra_conf.update({"enable_pool_hba": "off"})
    pilot.write_conf()
    with before.cursor() as cur:  # RELOAD from the session opened before the first one
        cur.execute("PGPILOT RELOAD")
    before.close()
    assert pilot.psql("SELECT 8") == "8"
