"""Clients that die at awkward moments leave nothing behind on the server, and pooled
server connections are handed on clean.

pgpilot runs with max_pool=1 and one worker so that every client gets the same server
connection (the idle pool is per worker): the next client must find it idle, outside any
transaction, with the session state of the previous client gone. Effects are checked on
the primary directly (rows not committed, no 'idle in transaction' backends)."""

import os
import select
import signal
import subprocess
import time
import uuid

import pytest

import pgwire
from harness import procs
from harness.cluster import PSQL, wait_until
from harness.pgpilot import Pgpilot

REUSE_BOUND = 10.0  # seconds for the next client to get the (cleaned) server connection


@pytest.fixture(scope="module")
def pilot(cluster):
    p = Pgpilot(cluster, extra_conf={"max_pool": 1, "worker_threads": 1,
                                     "pool_wait_timeout": 20})
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def table(cluster):
    t = f"kill_{uuid.uuid4().hex[:8]}"
    cluster.primary.psql(f"CREATE TABLE {t} (v int)")
    return t


def wire(pilot, **kw):
    return pgwire.PgWire(pilot.host, pilot.port, timeout=30, **kw).connect()


def no_idle_in_transaction(cluster):
    return cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE state LIKE 'idle in transaction%'") == "0"


def assert_next_client_clean(cluster, pilot, expect_pid):
    """The next client gets the same server backend, idle, outside any transaction, with
    no setting, temp table or prepared statement of the previous client."""
    started = time.monotonic()
    with wire(pilot) as c:
        took = time.monotonic() - started
        assert c.tx_status == "I"
        rows = c.query_rows(
            "SELECT pg_backend_pid(), txid_current_if_assigned() IS NULL, "
            "now() = statement_timestamp(), current_setting('application_name'), "
            "current_setting('work_mem'), (SELECT count(*) FROM pg_prepared_statements), "
            "(SELECT count(*) FROM pg_class WHERE relpersistence = 't')")
        assert rows == [[str(expect_pid), "t", "t", "", "4MB", "0", "0"]], rows
        assert c.tx_status == "I"
        assert no_idle_in_transaction(cluster)
    assert took < REUSE_BOUND, f"the next client waited {took:.1f}s for the server connection"


def first_client(pilot, app):
    c = wire(pilot, application_name=app)
    pid = int(c.query_value("SELECT pg_backend_pid()"))
    return c, pid


def wait_active(cluster, app, like):
    wait_until(lambda: cluster.primary.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        f"AND application_name = '{app}' AND query LIKE '{like}'") == "1",
        15, f"{app} to run {like!r} on the primary")


def test_sequential_clients_share_a_clean_backend(cluster, pilot):
    c, pid = first_client(pilot, "kill_reuse")
    c.query_rows("SET work_mem = '77MB'; SET search_path = nowhere, public; "
                 "PREPARE p1 AS SELECT 1; CREATE TEMP TABLE leak_tmp (v int); "
                 "LISTEN leak_channel")
    assert c.query_value("SHOW work_mem") == "77MB"
    c.close()
    assert_next_client_clean(cluster, pilot, pid)
    with wire(pilot) as c2:
        assert c2.query_value("SHOW search_path") == '"$user", public'
        assert c2.query_rows("SELECT * FROM pg_listening_channels()") == []


def test_client_rst_mid_transaction(cluster, pilot, table):
    c, pid = first_client(pilot, "kill_tx")
    c.query_rows(f"BEGIN; INSERT INTO {table} VALUES (1)")
    assert c.tx_status == "T"
    assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE state = 'idle in transaction'") == "1"
    c.abort(rst=True)
    assert_next_client_clean(cluster, pilot, pid)
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"


def test_psql_killed_mid_transaction(cluster, pilot, table):
    env = procs.clean_env(PGPASSWORD=cluster.password)
    p = subprocess.Popen([PSQL, "-X", "-A", "-t", "-q", "-h", pilot.host, "-p", str(pilot.port),
                          "-U", "postgres", "-d", "postgres"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        p.stdin.write(f"BEGIN;\nINSERT INTO {table} VALUES (2);\n"
                      "SELECT 'inserted', pg_backend_pid();\n")
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 15)
        assert ready, "psql did not answer"
        line = p.stdout.readline().strip()
        assert line.startswith("inserted|"), line + p.stderr.read()
        pid = int(line.split("|")[1])
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert_next_client_clean(cluster, pilot, pid)
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"


def test_client_killed_mid_query(cluster, pilot, table):
    c, pid = first_client(pilot, "kill_query")
    c.query_rows(f"BEGIN; INSERT INTO {table} VALUES (3)")
    c.send(pgwire.query("SELECT pg_sleep(30)"))
    wait_active(cluster, "kill_query", "SELECT pg_sleep%")
    c.abort(rst=True)
    assert_next_client_clean(cluster, pilot, pid)  # bounded: the sleep was cancelled
    assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE query LIKE 'SELECT pg_sleep(30)%' "
                                "AND state = 'active'") == "0"
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"


def test_client_killed_mid_copy_in(cluster, pilot, table):
    c, pid = first_client(pilot, "kill_copy")
    c.send(pgwire.query(f"COPY {table} FROM STDIN"))
    t, _ = c.read_message()
    assert t == "G"  # CopyInResponse
    c.send(*[pgwire.copy_data(f"{i}\n".encode()) for i in range(1000)])
    time.sleep(0.3)
    c.abort(rst=True)
    assert_next_client_clean(cluster, pilot, pid)
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"


def test_client_closed_mid_copy_in_transaction(cluster, pilot, table):
    c, pid = first_client(pilot, "kill_copy_tx")
    c.query_rows(f"BEGIN; INSERT INTO {table} VALUES (-1)")
    c.send(pgwire.query(f"COPY {table} FROM STDIN"))
    assert c.read_message()[0] == "G"
    c.send(pgwire.copy_data(b"1\n2\n3\n"))
    c.abort(rst=False)  # an orderly FIN this time, but no CopyDone and no Terminate
    assert_next_client_clean(cluster, pilot, pid)
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"


def test_client_killed_inside_a_copy_data_message(cluster, pilot, table):
    # Half a CopyData message has reached the server: no CopyFail can follow it, so the
    # server connection must be closed at once (not drained for seconds, never reused).
    c, pid = first_client(pilot, "kill_mid_msg")
    c.send(pgwire.query(f"COPY {table} FROM STDIN"))
    assert c.read_message()[0] == "G"
    whole = pgwire.copy_data(b"1\n" * 50000)  # large: a CopyFail would vanish in its body
    c.sock.sendall(whole[:len(whole) // 2])
    time.sleep(0.3)
    c.abort(rst=True)
    started = time.monotonic()
    with wire(pilot) as nxt:
        took = time.monotonic() - started
        new_pid = int(nxt.query_value("SELECT pg_backend_pid()"))
        assert nxt.tx_status == "I"
    assert took < 5, f"the next client waited {took:.1f}s"
    assert new_pid != pid  # the broken connection was not reused
    wait_until(lambda: cluster.primary.psql(
        f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == "0",
        15, "the broken server backend to go away")
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"


@pytest.mark.parametrize("reset", ["DISCARD ALL", "RESET ALL"])
def test_client_killed_with_unsynced_extended_work(cluster, make_pgpilot, table, reset):
    # Parse/Bind/Execute of an INSERT without Sync: the server ran it in an implicit
    # transaction that only the Sync would commit. The dead client's row must not be
    # committed by whatever pgpilot sends next on that server connection. (PostgreSQL
    # refuses DISCARD ALL inside such a pipeline, but RESET ALL would run and commit it.)
    pilot = make_pgpilot(extra_conf={"max_pool": 1, "worker_threads": 1,
                                     "pool_wait_timeout": 20, "reset_query_list": reset})
    c, pid = first_client(pilot, "kill_unsynced")
    c.send(pgwire.parse("", f"INSERT INTO {table} VALUES (7)"), pgwire.bind("", ""),
           pgwire.execute(""), pgwire.flush())
    assert [c.read_message()[0] for _ in range(3)] == ["1", "2", "C"]
    c.abort(rst=True)
    with wire(pilot) as c2:
        assert c2.tx_status == "I"
        rows = c2.query_rows("SELECT txid_current_if_assigned() IS NULL, "
                             "now() = statement_timestamp()")
        assert rows == [["t", "t"]]
    assert cluster.primary.psql(f"SELECT count(*) FROM {table}") == "0"
    assert no_idle_in_transaction(cluster)


def test_pgpilot_still_serves(cluster, pilot):
    assert pilot.psql("SELECT 'alive'") == "alive"
    assert pilot.is_running()
    # exactly one server connection was ever needed at a time (max_pool=1)
    assert int(cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE backend_type = 'client backend' "
                                    "AND pid <> pg_backend_pid() "
                                    "AND application_name <> 'psql'")) <= 1
