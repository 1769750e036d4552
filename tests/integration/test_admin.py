"""The admin console and pgpilotctl against a real cluster (primary + 1 standby).

Every SHOW view is read on the admin port (admin_port, users from admin_users,
authenticated against pool_passwd) with its columns and values checked against what the
servers and the test itself did; admin-port authentication (SCRAM and md5 secrets, wrong
password, a user not in admin_users); PGPILOT commands on the normal port (superuser only);
pgpilotctl's subcommands, pcp_* aliases, --json output and exit codes (0 ok, 1 refused,
2 cannot connect/authenticate, 3 usage)."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time

import psycopg2
import pytest

from harness import procs
from harness.cluster import Cluster
from harness.pgpilot import FREE_PORT, Pgpilot

ADMIN = "opsadmin"
ADMIN_PW = "s3cret-admin"
MD5_ADMIN = "md5admin"
MD5_PW = "md5-pass"
NOT_ADMIN = "appuser"
NOT_ADMIN_PW = "app-pass"

CTL = os.path.join(os.path.dirname(os.path.abspath(os.environ.get("PGPILOT_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "debug", "src", "pgpilot"))), "pgpilotctl")


def scram_verifier(password, iterations=4096):
    """The SCRAM-SHA-256 secret PostgreSQL would store for `password`."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return (f"SCRAM-SHA-256${iterations}:{b64(salt)}$"
            f"{b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")


def md5_secret(password, user):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def start_pilot(cluster, extra=None):
    conf = {"admin_port": FREE_PORT, "admin_users": f"{ADMIN},{MD5_ADMIN}",
            "pool_passwd": "pool_passwd", "worker_threads": 2}
    conf.update(extra or {})
    p = Pgpilot(cluster, extra_conf=conf, start=False)
    with open(os.path.join(p.dir, "pool_passwd"), "w") as f:
        f.write(f"{ADMIN}:{scram_verifier(ADMIN_PW)}\n")
        f.write(f"{MD5_ADMIN}:{md5_secret(MD5_PW, MD5_ADMIN)}\n")
        f.write(f"{NOT_ADMIN}:{scram_verifier(NOT_ADMIN_PW)}\n")
    p.start()
    return p


@pytest.fixture(scope="module")
def cl():
    c = Cluster(num_standbys=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def pilot(cl):
    p = start_pilot(cl)
    try:
        yield p
    finally:
        p.stop()


def admin_connect(p, user=ADMIN, password=ADMIN_PW):
    conn = psycopg2.connect(host="127.0.0.1", port=p.ports["admin_port"], user=user,
                            password=password, dbname="pgpilot", connect_timeout=10)
    conn.autocommit = True
    return conn


def show(p, what, conn=None):
    own = conn is None
    conn = conn or admin_connect(p)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SHOW {what}")
            cols = [d[0] for d in cur.description]
            return cols, [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        if own:
            conn.close()


def ctl(p, *args, password=ADMIN_PW, user=ADMIN, port=None, timeout=30, prog=None):
    env = procs.clean_env(PGPASSWORD=password)
    cmd = [prog or CTL, "-p", str(port or p.ports["admin_port"]), "-U", user, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


# ---- SHOW views ------------------------------------------------------------------------

def test_show_pool_nodes_and_version(pilot, cl):
    cols, rows = show(pilot, "pool_nodes")
    assert cols[:8] == ["node_id", "hostname", "port", "status", "pg_status", "lb_weight",
                        "role", "pg_role"]
    assert [(r["node_id"], r["port"], r["role"], r["status"]) for r in rows] == [
        ("0", str(cl.primary.port), "primary", "up"),
        ("1", str(cl.standbys[0].port), "standby", "up")]
    cols, rows = show(pilot, "pool_version")
    assert cols == ["pool_version"] and rows[0]["pool_version"].startswith("pgpilot ")


def test_show_pool_status(pilot):
    cols, rows = show(pilot, "pool_status")
    assert cols == ["item", "value", "description"]
    items = {r["item"]: r for r in rows}
    assert items["admin_port"]["value"] == str(pilot.ports["admin_port"])
    assert items["port"]["value"] == str(pilot.port)
    assert items["max_pool"]["value"] == "100"
    assert items["worker_threads"]["value"] == "2"
    assert items["admin_users"]["value"] == f"{ADMIN},{MD5_ADMIN}"
    assert items["backend_port1"]["value"] == str(pilot.cluster.standbys[0].port)
    assert all(r["description"] for r in rows)
    if pilot.cluster.password is None:
        assert items["health_check_password"]["value"] == ""


def test_show_pool_sessions_and_pools(pilot):
    client = pilot.connect(application_name="sess_probe")
    try:
        with client.cursor() as cur:  # psycopg2 opens a transaction: idle in transaction
            cur.execute("CREATE TEMP TABLE sess_probe_t (v int)")  # a write: the primary
        admin = admin_connect(pilot)
        cols, rows = show(pilot, "pool_sessions", admin)
        assert cols == ["session_id", "worker", "pid", "username", "database",
                        "application_name", "client_address", "node_id", "nodes", "state",
                        "in_transaction", "since"]
        mine = [r for r in rows if r["application_name"] == "sess_probe"]
        assert len(mine) == 1, rows
        s = mine[0]
        assert (s["username"], s["database"], s["client_address"], s["node_id"], s["nodes"],
                s["state"], s["in_transaction"]) == (
            "postgres", "postgres", "127.0.0.1", "0", "0", "idle in transaction", "true")
        assert int(s["pid"]) == client.get_backend_pid()  # pgpilot's BackendKeyData pid
        assert any(r["state"] == "admin" and r["username"] == ADMIN for r in rows), rows

        cols, rows = show(pilot, "pool_pools", admin)
        assert cols == ["node_id", "username", "database", "connections", "idle", "in_use",
                        "max_pool"]
        pool = [r for r in rows if r["node_id"] == "0" and r["username"] == "postgres"]
        assert len(pool) == 1, rows
        assert int(pool[0]["in_use"]) >= 1 and pool[0]["max_pool"] == "100"
        assert int(pool[0]["connections"]) == int(pool[0]["idle"]) + int(pool[0]["in_use"])

        cols, rows = show(pilot, "pool_processes", admin)
        assert cols[:3] == ["worker", "start_time", "client_sessions"]
        assert [r["worker"] for r in rows] == ["0", "1"]
        assert sum(int(r["client_sessions"]) for r in rows) >= 2
        assert sum(int(r["server_connections_opened"]) for r in rows) >= 1
        admin.close()
    finally:
        client.close()


def test_pool_sessions_lists_every_node_of_a_load_balanced_session(cl):
    """With load_balance_mode a session reads on the standby and writes on the primary: its
    pool_sessions row names both nodes (nodes "0,1"), node_id the current one."""
    p = start_pilot(cl, {"load_balance_mode": "on", "backend_weight0": "0",
                         "sr_check_period": "1", "health_check_period": "1"})
    try:
        deadline = time.monotonic() + 20
        while show(p, "pool_nodes")[1][1]["role"] != "standby":
            assert time.monotonic() < deadline, "roles not known within 20 s"
            time.sleep(0.2)
        client = p.connect(application_name="lb_probe")
        try:
            client.autocommit = True
            with client.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                assert cur.fetchone()[0] is True  # the read ran on the standby
                cur.execute("CREATE TEMP TABLE lb_probe_t (v int)")  # the write: the primary
            [row] = [r for r in show(p, "pool_sessions")[1]
                     if r["application_name"] == "lb_probe"]
            assert row["nodes"] == "0,1" and row["node_id"] in ("0", "1"), row
        finally:
            client.close()
    finally:
        p.stop()


def test_show_health_check_stats(pilot, cl):
    cols, rows = show(pilot, "pool_health_check_stats")
    assert cols == ["node_id", "hostname", "port", "status", "role", "last_status_change",
                    "total_count", "success_count", "fail_count", "skip_count", "retry_count",
                    "average_retry_count", "max_retry_count", "max_duration", "min_duration",
                    "average_duration", "last_health_check", "last_successful_health_check",
                    "last_skip_health_check", "last_failed_health_check"]
    assert [(r["node_id"], r["port"], r["role"]) for r in rows] == [
        ("0", str(cl.primary.port), "primary"), ("1", str(cl.standbys[0].port), "standby")]
    for r in rows:
        assert int(r["success_count"]) + int(r["fail_count"]) <= int(r["total_count"])


def backend_stats(p):
    cols, rows = show(p, "pool_backend_stats")
    assert cols == ["node_id", "hostname", "port", "status", "role", "select_cnt",
                    "insert_cnt", "update_cnt", "delete_cnt", "ddl_cnt", "other_cnt",
                    "panic_cnt", "fatal_cnt", "error_cnt"]
    keys = cols[5:]
    return {k: sum(int(r[k]) for r in rows) for k in keys}


def test_show_pool_backend_stats_counts_statements(pilot):
    before = backend_stats(pilot)
    conn = pilot.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        for sql in ("SELECT 1", "CREATE TABLE bs_t (v int)", "INSERT INTO bs_t VALUES (1)",
                    "UPDATE bs_t SET v = 2", "DELETE FROM bs_t", "DROP TABLE bs_t",
                    "SET work_mem = '8MB'"):
            cur.execute(sql)
        with pytest.raises(psycopg2.Error):
            cur.execute("SELECT 1/0")
    conn.close()
    after = backend_stats(pilot)
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {"select_cnt": 2, "insert_cnt": 1, "update_cnt": 1, "delete_cnt": 1,
                     "ddl_cnt": 2, "other_cnt": 1, "panic_cnt": 0, "fatal_cnt": 0,
                     "error_cnt": 1}, delta


def test_show_pool_state(pilot):
    conn = admin_connect(pilot)
    try:
        cols, rows = show(pilot, "pool_state", conn)
        assert cols == ["item", "value"]
        state = {r["item"]: r["value"] for r in rows}
        assert state["paused"] == "false" and state["primary_node_id"] == "0"
        assert state["nodes"] == "2" and state["config_file"] == pilot.conf_path
        assert int(state["client_sessions"]) >= 1 and state["version"].startswith("pgpilot ")
        with conn.cursor() as cur:
            cur.execute("PAUSE")
        assert {r["item"]: r["value"] for r in show(pilot, "pool_state", conn)[1]}["paused"] \
            == "true"
    finally:
        with conn.cursor() as cur:
            cur.execute("RESUME")
        conn.close()


def test_show_pool_events_and_commands_on_admin_port(pilot):
    conn = admin_connect(pilot)
    notices = conn.notices
    with conn.cursor() as cur:
        cur.execute("PAUSE")
        assert cur.statusmessage == "PAUSE"
        cur.execute("PGPILOT RESUME")
        assert cur.statusmessage == "RESUME"
        cur.execute("RELOAD")
        assert cur.statusmessage == "RELOAD"
        with pytest.raises(psycopg2.Error) as e:  # no node 9: refused, controller or not
            cur.execute("PGPILOT DETACH 9")
        assert e.value.pgcode in ("0A000", "55000", "22023"), e.value.pgerror
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("PGPILOT ATTACH x")
        assert e.value.pgcode == "42601"
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT 1")
        assert e.value.pgcode == "42601"
    assert any("paused" in n for n in notices), notices
    cols, rows = show(pilot, "pool_events", conn)
    assert cols == ["id", "time", "kind", "node_id", "failure", "message"]
    kinds = [r["kind"] for r in rows]
    assert kinds[-3:] == ["pause", "resume", "reload"], rows
    assert ADMIN in rows[-3]["message"]
    assert rows[-1]["failure"] == "false" and "configuration reloaded" in rows[-1]["message"]
    assert f"requested by admin port ({ADMIN}@127.0.0.1)" in rows[-1]["message"]
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids)
    conn.close()
    pilot.wait_log(r"LOG: pause: paused")


def test_pause_holds_new_statements_until_resume(pilot):
    in_tx = pilot.connect()
    with in_tx.cursor() as cur:
        cur.execute("SELECT 1")  # psycopg2 opened a transaction: not held
    idle = pilot.connect()
    idle.autocommit = True
    su = pilot.connect()
    su.autocommit = True
    admin = admin_connect(pilot)
    done = threading.Event()
    result = []

    def held_query():
        with idle.cursor() as c:
            c.execute("SELECT 'released'")
            result.append(c.fetchone()[0])
        done.set()

    try:
        with admin.cursor() as cur:
            cur.execute("PAUSE")
        t = threading.Thread(target=held_query, daemon=True)
        t.start()
        assert not done.wait(1.5), "a new statement ran while paused"
        with in_tx.cursor() as cur:  # inside a transaction: goes on
            cur.execute("SELECT 2")
            assert cur.fetchone()[0] == 2
        in_tx.commit()
        with su.cursor() as cur:  # RESUME itself is never held (normal port, superuser)
            cur.execute("PGPILOT RESUME")
        assert done.wait(10), "the held statement was not released by RESUME"
        assert result == ["released"]
        t.join(5)
    finally:
        with admin.cursor() as cur:
            cur.execute("RESUME")
        for c in (in_tx, idle, su, admin):
            c.close()


# ---- authentication on the admin port ---------------------------------------------------

def test_admin_port_authentication(pilot):
    admin_connect(pilot).close()                          # SCRAM verifier
    admin_connect(pilot, MD5_ADMIN, MD5_PW).close()       # md5 hash
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        admin_connect(pilot, ADMIN, "wrong")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        admin_connect(pilot, MD5_ADMIN, "wrong")
    with pytest.raises(psycopg2.OperationalError, match="not allowed on the admin port"):
        admin_connect(pilot, NOT_ADMIN, NOT_ADMIN_PW)
    with pytest.raises(psycopg2.OperationalError, match="not allowed on the admin port"):
        admin_connect(pilot, "postgres", "")


def test_admin_port_is_exempt_from_max_client_connections(cl):
    p = start_pilot(cl, {"max_client_connections": 1})
    try:
        # The harness's readiness probe (a bare TCP connect) is a client until pgpilot sees
        # it close: wait for that slot to be free (failed once in a fresh-clone CI run).
        deadline = time.monotonic() + 10
        while True:
            try:
                first = p.connect()
                break
            except psycopg2.OperationalError as e:
                if "too many clients" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with pytest.raises(psycopg2.OperationalError, match="too many clients"):
            p.connect()
        _, rows = show(p, "pool_sessions")  # the operator still gets in
        assert len([r for r in rows if r["state"] != "admin"]) == 1
        first.close()
    finally:
        p.stop()


def test_normal_port_commands_need_superuser(pilot, cl):
    cl.primary.psql("DO $$ BEGIN CREATE ROLE plain_user LOGIN; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    conn = pilot.connect(user="plain_user")
    conn.autocommit = True
    with conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("PGPILOT PAUSE")
        assert e.value.pgcode == "42501"
        cur.execute("SHOW pool_version")  # the views stay open, as in pgpool
        assert cur.fetchone()[0].startswith("pgpilot ")
        cur.execute("SELECT 1")  # the session goes on
    conn.close()
    conn = pilot.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("PGPILOT PAUSE")
        assert cur.statusmessage == "PAUSE"
        cur.execute("pgpilot resume;")
        assert cur.statusmessage == "RESUME"
        cur.execute("SHOW pool_status")
        assert len(cur.fetchall()) > 40
    conn.close()


# ---- pgpilotctl -------------------------------------------------------------------------

def test_ctl_nodes_and_node_info(pilot, cl):
    r = ctl(pilot, "nodes")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["node_id", "hostname", "port", "status"]
    assert len(lines) == 4  # header, rule, 2 nodes
    r = ctl(pilot, "--json", "nodes")
    assert r.returncode == 0, r.stderr
    nodes = json.loads(r.stdout)
    assert [(n["node_id"], n["role"]) for n in nodes] == [("0", "primary"), ("1", "standby")]
    r = ctl(pilot, "-j", "node", "info", "1")
    assert r.returncode == 0, r.stderr
    assert [n["port"] for n in json.loads(r.stdout)] == [str(cl.standbys[0].port)]
    r = ctl(pilot, "pcp_node_info", "-n", "0")
    assert r.returncode == 0 and str(cl.primary.port) in r.stdout, r
    r = ctl(pilot, "node", "info", "7")
    assert r.returncode == 1 and "no node 7" in r.stderr, r
    for args in (["node_count"], ["pcp_node_count"]):
        r = ctl(pilot, *args)
        assert (r.returncode, r.stdout.strip()) == (0, "2"), r


def test_ctl_pcp_view_aliases(pilot):
    r = ctl(pilot, "--json", "pcp_pool_status")
    assert r.returncode == 0, r
    assert {row["item"]: row["value"] for row in json.loads(r.stdout)}["port"] == str(pilot.port)
    r = ctl(pilot, "--json", "pcp_proc_info")
    assert r.returncode == 0, r
    rows = json.loads(r.stdout)
    assert rows and {"worker", "client_sessions"} <= set(rows[0]), rows
    r = ctl(pilot, "--json", "pcp_health_check_stats", "-n", "1")
    assert r.returncode == 0, r
    assert [row["node_id"] for row in json.loads(r.stdout)] == ["1"]
    r = ctl(pilot, "pcp_health_check_stats", "5")
    assert r.returncode == 1 and "no node 5" in r.stderr, r
    assert ctl(pilot, "pcp_health_check_stats").returncode == 3


def test_ctl_sessions_status_and_commands(pilot):
    client = pilot.connect(application_name="ctl_probe")
    try:
        r = ctl(pilot, "--json", "sessions")
        assert r.returncode == 0, r.stderr
        assert any(s["application_name"] == "ctl_probe" for s in json.loads(r.stdout))
        r = ctl(pilot, "status", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["primary_node_id"] == 0 and len(doc["nodes"]) == 2
        assert doc["client_sessions"] >= 2 and doc["version"].startswith("pgpilot ")
        assert doc["paused"] is False and doc["config_file"] == pilot.conf_path
    finally:
        client.close()
    for args, word in ((["reload"], "configuration reloaded"),
                       (["pcp_reload_config"], "configuration reloaded"),
                       (["pause"], "paused"), (["status"], "PAUSED"),
                       (["resume"], "resumed")):
        r = ctl(pilot, *args)
        assert r.returncode == 0 and word in r.stdout, (args, r)
    assert "PAUSED" not in ctl(pilot, "status").stdout
    r = ctl(pilot, "--json", "reload")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r


def test_ctl_detach_and_attach_a_standby(pilot):
    def status_of(node):
        return {r["node_id"]: r["status"] for r in show(pilot, "pool_nodes")[1]}[node]

    r = ctl(pilot, "detach", "1")
    assert r.returncode == 0, r
    assert status_of("1") == "down"
    r = ctl(pilot, "node", "info", "7")
    assert r.returncode == 1
    r = ctl(pilot, "pcp_attach_node", "-n", "1")
    assert r.returncode == 0, r
    assert status_of("1") == "up"
    kinds = [e["kind"] for e in show(pilot, "pool_events")[1]]
    assert "detach" in kinds and "attach" in kinds
    pilot.wait_log(r"detach: node 1 detached")
    pilot.wait_log(r"LOG: \[n:1\] attach: node 1 attached")
    r = ctl(pilot, "detach", "9")
    assert r.returncode == 1, r


def test_ctl_exit_codes(pilot, tmp_path):
    r = ctl(pilot, "nodes", password="wrong")
    assert r.returncode == 2 and "password authentication failed" in r.stderr, r
    r = ctl(pilot, "nodes", user=NOT_ADMIN, password=NOT_ADMIN_PW)
    assert r.returncode == 2 and "not allowed" in r.stderr, r
    r = ctl(pilot, "nodes", port=pilot.port + 1 if pilot.port + 1 != pilot.ports["admin_port"]
            else pilot.port + 2)
    assert r.returncode == 2 and "cannot connect" in r.stderr, r
    for bad in (["no_such_command"], [], ["attach"], ["stop", "--mode", "slow"],
                ["attach", "1", "-n", "1"]):
        r = ctl(pilot, *bad)
        assert r.returncode == 3, (bad, r)
    assert ctl(pilot, "--help").returncode == 0
    # Called through a pcp_* name (symlink), as pgpool's tools.
    link = tmp_path / "pcp_node_count"
    link.symlink_to(CTL)
    r = ctl(pilot, prog=str(link))
    assert (r.returncode, r.stdout.strip()) == (0, "2"), r


def test_ctl_stop_fast_and_shutdown_smart(cl):
    p = start_pilot(cl)
    try:
        client = p.connect()
        r = ctl(p, "stop", "--mode", "fast")
        assert r.returncode == 0 and "fast shutdown started" in r.stdout, r
        p.proc.wait(timeout=20)
        assert p.proc.returncode == 0
        assert "LOG: shutdown: fast shutdown" in p.log_text()
        client.close()
    finally:
        p.stop()
    p = start_pilot(cl)
    try:
        conn = admin_connect(p)
        with conn.cursor() as cur:
            cur.execute("SHUTDOWN")
            assert cur.statusmessage == "SHUTDOWN"
        conn.close()
        p.proc.wait(timeout=20)
        assert p.proc.returncode == 0
        assert "smart shutdown" in p.log_text()
    finally:
        p.stop()
