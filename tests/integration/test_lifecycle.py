"""pgpilot's process lifecycle: --check and configuration errors, pgpool-II compatibility
messages, smart (SIGTERM) and fast (SIGINT, `stop -m fast`) shutdown with open client
sessions, the pid file, and the log file."""

import os
import re
import signal
import subprocess
import time

import psycopg2
import pytest

from harness import procs
from harness.cluster import Cluster, wait_until
from harness.errors import HarnessError
from harness.pgpilot import DEFAULT_BINARY
from harness.ports import port_accepts

BINARY = os.environ.get("PGPILOT_BIN") or DEFAULT_BINARY


def run_pgpilot(*args, timeout=30):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=procs.clean_env())


@pytest.fixture(scope="module")
def lcluster():
    c = Cluster(num_standbys=0)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def write_conf(tmp_path, lines):
    path = tmp_path / "pgpilot.conf"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


GOOD = ["listen_addresses = '127.0.0.1'", "port = 19999",
        "backend_hostname0 = '127.0.0.1'", "backend_port0 = 5432"]


# ---- configuration checks --------------------------------------------------------------------

def test_check_accepts_a_good_file(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster, start=False)  # the harness's own (complete) config
    r = run_pgpilot("-f", p.conf_path, "--check")
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout
    assert "FATAL" not in r.stderr and "WARNING" not in r.stderr, r.stderr
    assert not port_accepts("127.0.0.1", p.port)  # --check never listens


@pytest.mark.parametrize("name,lines,line_no,needle", [
    ("unknown key", GOOD[:2] + ["bogus_setting = 1"] + GOOD[2:], 3, "bogus_setting"),
    ("bad value", GOOD[:1] + ["port = 'not-a-number'"] + GOOD[2:], 2, "port"),
    ("bad bool", GOOD + ["ssl = maybe"], 5, "ssl"),
    ("backend without host", GOOD + ["backend_port1 = 5433"], 5, "backend_hostname1"),
], ids=["unknown-key", "bad-value", "bad-bool", "backend-without-host"])
def test_bad_file_names_file_line_and_key(tmp_path, name, lines, line_no, needle):
    path = write_conf(tmp_path, lines)
    for args in (("--check",), ("-n",)):  # --check and a real start fail alike
        r = run_pgpilot("-f", path, *args)
        assert r.returncode == 1, (name, args, r.stdout, r.stderr)
        assert f"{path}:{line_no}:" in r.stderr, (name, r.stderr)
        assert needle in r.stderr, (name, r.stderr)
        assert "FATAL" in r.stderr


def test_no_backend_at_all_is_an_error(tmp_path):
    path = write_conf(tmp_path, GOOD[:2])
    r = run_pgpilot("-f", path, "--check")
    assert r.returncode == 1
    assert path in r.stderr and "backend_hostname0" in r.stderr, r.stderr


def test_missing_file_is_an_error(tmp_path):
    path = str(tmp_path / "nope.conf")
    r = run_pgpilot("-f", path, "--check")
    assert r.returncode == 1
    assert path in r.stderr, r.stderr


def test_pgpool_only_key_warns_and_num_init_children_notices(tmp_path):
    path = write_conf(tmp_path, GOOD + ["pcp_port = 9898", "num_init_children = 32"])
    r = run_pgpilot("-f", path, "--check")
    assert r.returncode == 0, r.stderr
    warn = [line for line in r.stderr.splitlines() if "WARNING" in line]
    assert len(warn) == 1 and "pcp_port" in warn[0] and f"{path}:5" in warn[0], r.stderr
    notice = [line for line in r.stderr.splitlines() if "NOTICE" in line]
    assert len(notice) == 1 and "num_init_children" in notice[0], r.stderr
    assert f"{path}:6" in notice[0], r.stderr


# ---- shutdown --------------------------------------------------------------------------------

def query_one(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def wait_exit(p, timeout):
    t0 = time.monotonic()
    try:
        rc = p.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pgpilot did not exit within {timeout}s\n{p.log_tails()}")
    return rc, time.monotonic() - t0


def test_sigterm_serves_open_session_then_exits_when_it_ends(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster, extra_conf={"smart_shutdown_timeout": "30s"})
    conn = p.connect()
    conn.autocommit = True
    assert query_one(conn, "SELECT 1") == 1
    p.send_signal(signal.SIGTERM)
    p.wait_log(r"smart shutdown", timeout=10)
    # The open session keeps working ...
    for i in range(3):
        assert query_one(conn, f"SELECT {i} + 1") == i + 1
        time.sleep(0.3)
    # ... new connections are refused, and pgpilot is still there.
    with pytest.raises(psycopg2.OperationalError):
        p.connect(connect_timeout=5).close()
    assert p.proc.poll() is None
    conn.close()
    rc, elapsed = wait_exit(p, 10)
    assert rc == 0, p.log_tails()
    assert elapsed < 5, f"exit took {elapsed:.1f}s after the last client left"
    assert not os.path.exists(p.pid_file)


def test_sigterm_gives_up_after_smart_shutdown_timeout(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster, extra_conf={"smart_shutdown_timeout": "3s"})
    conn = p.connect()
    assert query_one(conn, "SELECT 1") == 1
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc, _ = wait_exit(p, 15)
    elapsed = time.monotonic() - t0
    assert rc == 0, p.log_tails()
    assert 2.5 <= elapsed <= 10, f"exited {elapsed:.1f}s after SIGTERM (timeout 3s)"
    with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)):
        query_one(conn, "SELECT 1")
    conn.close()
    # The server-side session is gone too (rolled back and closed, not leaked).
    wait_until(lambda: lcluster.primary.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND client_addr IS NOT NULL AND usename = 'postgres'") == "0", 10,
        "pgpilot's server connections to close")


def test_sigint_closes_sessions_at_once(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster, extra_conf={"smart_shutdown_timeout": "30s"})
    conn = p.connect()
    assert query_one(conn, "SELECT 1") == 1
    busy = p.connect()
    with busy.cursor() as cur:
        cur.execute("BEGIN; CREATE TEMP TABLE t_in_tx (v int)")  # open transaction
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    rc, _ = wait_exit(p, 10)
    elapsed = time.monotonic() - t0
    assert rc == 0, p.log_tails()
    assert elapsed < 5, f"fast shutdown took {elapsed:.1f}s"
    for c in (conn, busy):
        with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)):
            query_one(c, "SELECT 1")
        c.close()
    assert not port_accepts("127.0.0.1", p.port)


def test_stop_command_fast(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster)
    conn = p.connect()
    assert query_one(conn, "SELECT 1") == 1
    r = run_pgpilot("-f", p.conf_path, "stop", "-m", "fast")
    assert r.returncode == 0, r.stderr
    assert f"(pid {p.pid}) stopped" in r.stdout, r.stdout
    rc, _ = wait_exit(p, 5)
    assert rc == 0
    with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)):
        query_one(conn, "SELECT 1")
    conn.close()
    # Nothing left to stop: a clear error, exit 1.
    r = run_pgpilot("-f", p.conf_path, "stop", "-m", "fast")
    assert r.returncode == 1
    assert "pid file" in r.stderr, r.stderr


def test_stop_command_smart(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster)
    r = run_pgpilot("-f", p.conf_path, "stop")
    assert r.returncode == 0, r.stderr
    rc, _ = wait_exit(p, 5)
    assert rc == 0


# ---- pid file --------------------------------------------------------------------------------

def dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_pid_file_does_not_block_start(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster, start=False)
    stale = dead_pid()
    with open(p.pid_file, "w") as f:
        f.write(f"{stale}\n")
    p.start()
    assert p.psql("SELECT 1") == "1"
    with open(p.pid_file) as f:
        assert int(f.read().strip()) == p.pid


def test_second_instance_with_same_pid_file_refuses(make_pgpilot, lcluster):
    first = make_pgpilot(lcluster)
    second = make_pgpilot(lcluster, start=False, extra_conf={"pid_file_name": first.pid_file})
    with pytest.raises(HarnessError, match="exited with status 1"):
        second.start(timeout=20)
    assert second.returncode == 1
    err = second.log_text("stderr")
    assert first.pid_file in err and str(first.pid) in err and "running" in err, err
    # The first one is untouched: still serving, still named in the pid file.
    assert first.psql("SELECT 1") == "1"
    with open(first.pid_file) as f:
        assert int(f.read().strip()) == first.pid


def test_second_instance_on_the_same_port_refuses(make_pgpilot, lcluster):
    """Workers bind with SO_REUSEPORT, which would let a second pgpilot (own pid file,
    same user) share the port and take half of the new clients. It must refuse instead."""
    first = make_pgpilot(lcluster)
    second = make_pgpilot(lcluster, start=False, extra_conf={"port": first.port})
    r = run_pgpilot("-n", "-f", second.conf_path)
    assert r.returncode == 1, r.stderr
    assert f"could not listen on 127.0.0.1:{first.port}: Address already in use" in r.stderr
    for _ in range(8):  # every new client still reaches the first one
        assert first.psql("SELECT 1") == "1"
    assert first.is_running()


# ---- log file --------------------------------------------------------------------------------

def test_log_file_has_levels_and_session_node_ids(make_pgpilot, lcluster):
    p = make_pgpilot(lcluster, extra_conf={"log_statement": True, "log_connections": True,
                                           "log_min_messages": "warning"})
    conn = p.connect(application_name="lifecycle-app")
    conn.autocommit = True
    assert query_one(conn, "SELECT 'marker-7781'") == "marker-7781"
    conn.close()
    m = p.wait_log(r"statement: SELECT 'marker-7781'", timeout=10, which="log")
    text = p.log_text("log")
    line = next(li for li in text.splitlines() if "marker-7781" in li)
    # "<timestamp> [pid] LOG: [s:<session> n:<node> u:<user> d:<db> a:<app>] message"
    assert re.search(r"\bLOG: \[s:\d+ n:0 u:postgres d:postgres a:lifecycle-app\] statement:",
                     line), line
    assert f"[{p.pid}]" in line, line
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line), line
    assert re.search(r"LOG: .*connection received", text), text
    assert re.search(r"WARNING: enable_pool_hba is off", text), text
    assert re.search(r"LOG: \[n:0\] primary: primary node is node 0", text), text
    assert m is not None
    # Nothing of this went to stderr instead.
    assert "marker-7781" not in p.log_text("stderr")
