"""The basic data path through pgpilot: psql scripts, errors, transactions, temp tables,
LISTEN/NOTIFY, notices, ParameterStatus, startup parameters, SHOW pool_nodes /
pool_version, and the extended query protocol on the wire (pipelined, named statements,
portals with a row limit). Effects are checked on the primary directly where possible."""

import json
import os
import select
import signal
import stat
import subprocess
import threading
import time
import urllib.request
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from harness import procs
from harness.cluster import PG_BIN, run_psql, wait_until
from harness.errors import HarnessError, PsqlError
from harness.pgpilot import FREE_PORT
import pgwire

POOL_NODES_COLUMNS = ["node_id", "hostname", "port", "status", "pg_status", "lb_weight", "role",
                      "pg_role", "select_cnt", "load_balance_node", "replication_delay",
                      "replication_state", "replication_sync_state", "last_status_change"]


def uniq(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wire(pgpilot, **kw):
    return pgwire.PgWire(pgpilot.host, pgpilot.port, timeout=30, **kw).connect()


# ---- psql scripts -----------------------------------------------------------------------

def test_psql_multi_statement_script(cluster, pgpilot):
    t = uniq("basic_multi")
    out = pgpilot.psql(f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
                       f"INSERT INTO {t} SELECT g, 'v' || g FROM generate_series(1, 100) g;\n"
                       f"UPDATE {t} SET v = 'changed' WHERE id <= 10;\n"
                       f"SELECT count(*) FROM {t} WHERE v = 'changed';\n"
                       f"SELECT sum(id) FROM {t};")
    assert out == "10\n5050"
    # one Query message holding several statements (psql -c sends it as one; psql 15
    # prints every result)
    out = pgpilot.psql("", extra_args=("-c", f"SELECT 1; SELECT 2; DELETE FROM {t} WHERE id > 90"))
    assert out == "1\n2"
    assert cluster.primary.psql(f"SELECT count(*), sum(id) FROM {t}") == "90|4095"


def test_errors_keep_the_session_usable(cluster, pgpilot):
    # psql without ON_ERROR_STOP goes on after errors in the same session
    out = pgpilot.psql("SELECT 1;\nSELECT * FROM no_such_table;\nSELECT 1/0;\nSELECT 2;",
                       check=False, extra_args=("-v", "ON_ERROR_STOP=0"))
    assert out == "1\n2"
    conn = pgpilot.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        pid = conn.get_backend_pid()
        with pytest.raises(psycopg2.errors.UndefinedTable):
            cur.execute("SELECT * FROM no_such_table")
        with pytest.raises(psycopg2.errors.SyntaxError):
            cur.execute("SELEC 1")
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)
        # an error inside a transaction: aborted until ROLLBACK, then fine again
        conn.autocommit = False
        cur.execute("SELECT 1")
        with pytest.raises(psycopg2.errors.DivisionByZero):
            cur.execute("SELECT 1/0")
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("SELECT 1")
        conn.rollback()
        cur.execute("SELECT 7")
        assert cur.fetchone() == (7,)
        conn.commit()
        assert conn.get_backend_pid() == pid  # same (pgpilot) session throughout
    finally:
        conn.close()


def test_transactions_commit_and_rollback(cluster, pgpilot):
    t = uniq("basic_tx")
    cluster.primary.psql(f"CREATE TABLE {t} (v int)")
    conn = pgpilot.connect()
    try:
        cur = conn.cursor()
        cur.execute(f"INSERT INTO {t} VALUES (1)")
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        # not visible outside the transaction yet
        assert cluster.primary.psql(f"SELECT count(*) FROM {t}") == "0"
        conn.rollback()
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        assert cluster.primary.psql(f"SELECT count(*) FROM {t}") == "0"
        cur.execute(f"INSERT INTO {t} VALUES (2)")
        cur.execute("SAVEPOINT s1")
        cur.execute(f"INSERT INTO {t} VALUES (3)")
        cur.execute("ROLLBACK TO SAVEPOINT s1")
        cur.execute(f"INSERT INTO {t} VALUES (4)")
        conn.commit()
        assert cluster.primary.psql(f"SELECT string_agg(v::text, ',' ORDER BY v) FROM {t}") == "2,4"
    finally:
        conn.close()
    # an explicit BEGIN ... COMMIT block in one psql script
    pgpilot.psql(f"BEGIN; INSERT INTO {t} VALUES (5); INSERT INTO {t} VALUES (6); COMMIT;")
    assert cluster.primary.psql(f"SELECT count(*) FROM {t}") == "4"


def test_temp_table_lives_in_the_session(pgpilot):
    a = pgpilot.connect()
    b = pgpilot.connect()
    try:
        a.autocommit = b.autocommit = True
        ca, cb = a.cursor(), b.cursor()
        ca.execute("CREATE TEMP TABLE basic_tmp (v int)")
        ca.execute("INSERT INTO basic_tmp SELECT generate_series(1, 10)")
        ca.execute("SELECT sum(v) FROM basic_tmp")
        assert ca.fetchone() == (55,)
        with pytest.raises(psycopg2.errors.UndefinedTable):
            cb.execute("SELECT * FROM basic_tmp")
        ca.execute("SELECT count(*) FROM basic_tmp")
        assert ca.fetchone() == (10,)
    finally:
        a.close()
        b.close()


# ---- asynchronous messages ----------------------------------------------------------------

def test_listen_notify_delivered_through_pgpilot(pgpilot):
    channel = uniq("chan")
    listener = pgpilot.connect()
    notifier = pgpilot.connect()
    try:
        listener.autocommit = notifier.autocommit = True
        listener.cursor().execute(f"LISTEN {channel}")
        notifier.cursor().execute(f"NOTIFY {channel}, 'hello-1'")
        notifier.cursor().execute("SELECT pg_notify(%s, %s)", (channel, "hello-2"))
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            # the notification arrives on its own, with no query running on the listener
            if select.select([listener], [], [], 1.0)[0]:
                listener.poll()
                while listener.notifies:
                    got.append(listener.notifies.pop(0))
        assert [(n.channel, n.payload) for n in got] == [(channel, "hello-1"),
                                                         (channel, "hello-2")]
        assert got[0].pid == got[1].pid  # both from the notifier's server backend
    finally:
        listener.close()
        notifier.close()


def test_notice_response_relayed(pgpilot):
    conn = pgpilot.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("DO $$ BEGIN RAISE NOTICE 'pgpilot notice %', 42; "
                    "RAISE WARNING 'pgpilot warning'; END $$")
        assert any("pgpilot notice 42" in n for n in conn.notices), conn.notices
        assert any("WARNING:  pgpilot warning" in n for n in conn.notices), conn.notices
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_parameter_status_follows_set(cluster, pgpilot):
    name = uniq("app")
    conn = pgpilot.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SET application_name = %s", (name,))
        assert conn.info.parameter_status("application_name") == name
        # the server itself has it
        assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                    f"WHERE application_name = '{name}'") == "1"
        cur.execute("SET DateStyle = 'SQL, DMY'")
        assert conn.info.parameter_status("DateStyle") == "SQL, DMY"
        cur.execute("SELECT current_setting('DateStyle')")
        assert cur.fetchone() == ("SQL, DMY",)
    finally:
        conn.close()


def test_startup_parameters_reach_the_server(cluster, pgpilot):
    name = uniq("startup_app")
    conn = pgpilot.connect(application_name=name, options="-c work_mem=8MB")
    try:
        conn.autocommit = True
        assert conn.info.parameter_status("application_name") == name
        cur = conn.cursor()
        cur.execute("SELECT current_setting('application_name'), current_setting('work_mem')")
        assert cur.fetchone() == (name, "8MB")
        rows = cluster.primary.psql("SELECT usename, datname, state FROM pg_stat_activity "
                                    f"WHERE application_name = '{name}'")
        assert rows == "postgres|postgres|idle"
    finally:
        conn.close()
    # a raw client sees ParameterStatus and pgpilot's BackendKeyData at startup
    with wire(pgpilot, application_name=name) as c:
        assert c.params["application_name"] == name
        assert c.params["server_version"].startswith("15")
        assert c.params["client_encoding"] == "UTF8"
        assert c.pid is not None and c.key is not None
        assert c.tx_status == "I"


# ---- admin statements ---------------------------------------------------------------------

def pool_nodes(conn):
    cur = conn.cursor()
    cur.execute("SHOW pool_nodes")
    cols = [d.name for d in cur.description]
    return cols, [dict(zip(cols, r)) for r in cur.fetchall()]


def test_show_pool_nodes(cluster, pgpilot):
    conn = pgpilot.connect()
    try:
        conn.autocommit = True

        def roles_known():
            _, rows = pool_nodes(conn)
            return [r["role"] for r in rows] == ["primary", "standby", "standby"] and rows

        rows = wait_until(roles_known, 30, "pgpilot to know the node roles")
        cols, _ = pool_nodes(conn)
        assert cols == POOL_NODES_COLUMNS
        assert [r["node_id"] for r in rows] == ["0", "1", "2"]
        for r, n in zip(rows, cluster.nodes):
            assert r["hostname"] == n.host
            assert r["port"] == str(n.port)
            assert r["status"] == "up"
            assert r["pg_status"] == "up"
            assert float(r["lb_weight"]) == pytest.approx(1 / 3, abs=1e-4)
        assert [r["pg_role"] for r in rows] == ["primary", "standby", "standby"]
        assert rows[0]["load_balance_node"] == "true"  # this session runs on the primary

        before = int(rows[0]["select_cnt"])
        cur = conn.cursor()
        for i in range(5):
            cur.execute("SELECT %s", (i,))
            assert cur.fetchone() == (i,)
        after = int(pool_nodes(conn)[1][0]["select_cnt"])
        assert after >= before + 5
    finally:
        conn.close()


def test_show_pool_version(pgpilot):
    conn = pgpilot.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SHOW pool_version")
        assert [d.name for d in cur.description] == ["pool_version"]
        rows = cur.fetchall()
        assert len(rows) == 1 and rows[0][0].startswith("pgpilot ")
        # the session goes on to the server afterwards
        cur.execute("SHOW server_version_num")
        assert cur.fetchone()[0].startswith("15")
    finally:
        conn.close()
    # inside a transaction the admin answer keeps the transaction status
    out = pgpilot.psql("BEGIN; SHOW pool_version; SELECT 1; COMMIT;")
    assert out.splitlines()[-1] == "1" and out.startswith("pgpilot ")


# ---- extended protocol on the wire --------------------------------------------------------

def test_extended_pipeline_exact_replies(pgpilot):
    with wire(pgpilot) as c:
        # many messages, one Sync, one write
        c.send(pgwire.parse("s1", "SELECT $1::int + 1 AS v, $2::text AS t"),
               pgwire.bind("", "s1", ["41", "abc"]),
               pgwire.describe("P", ""),
               pgwire.execute(""),
               pgwire.bind("", "s1", ["1", None]),
               pgwire.execute(""),
               pgwire.parse("", "SELECT g FROM generate_series(1, 3) g"),
               pgwire.bind("", ""),
               pgwire.execute(""),
               pgwire.sync())
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "12TDC2DC12DDDCZ"
        assert pgwire.row_description(msgs[2][1]) == ["v", "t"]
        assert pgwire.data_row(msgs[3][1]) == ["42", "abc"]
        assert pgwire.command_tag(msgs[4][1]) == "SELECT 1"
        assert pgwire.data_row(msgs[6][1]) == ["2", None]
        assert [pgwire.data_row(b) for t, b in msgs if t == "D"][2:] == [["1"], ["2"], ["3"]]
        assert c.tx_status == "I"

        # the named statement persists across Syncs
        for i in range(3):
            c.send(pgwire.bind("p", "s1", [str(i), f"x{i}"]), pgwire.execute("p"),
                   pgwire.sync())
            msgs = c.read_until_ready()
            assert pgwire.types(msgs) == "2DCZ"
            assert pgwire.data_row(msgs[1][1]) == [str(i + 1), f"x{i}"]
        c.send(pgwire.describe("S", "s1"), pgwire.sync())
        assert pgwire.types(c.read_until_ready()) == "tTZ"
        assert c.query_rows("SELECT name FROM pg_prepared_statements") == [["s1"]]

        # an error skips to the Sync; the session goes on
        c.send(pgwire.parse("bad", "SELEC nope"), pgwire.bind("", "bad"), pgwire.execute(""),
               pgwire.sync())
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "EZ"
        assert pgwire.error_fields(msgs[0][1])["C"] == "42601"
        c.send(pgwire.bind("", "s1", ["9", "y"]), pgwire.execute(""), pgwire.sync())
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "2DCZ"

        # Close the statement; using it then fails
        c.send(pgwire.close_msg("S", "s1"), pgwire.sync())
        assert pgwire.types(c.read_until_ready()) == "3Z"
        c.send(pgwire.bind("", "s1", ["1", "a"]), pgwire.execute(""), pgwire.sync())
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "EZ"
        assert pgwire.error_fields(msgs[0][1])["C"] == "26000"


def test_extended_portal_row_limit_and_transaction(cluster, pgpilot):
    t = uniq("basic_ext")
    cluster.primary.psql(f"CREATE TABLE {t} (v int)")
    with wire(pgpilot) as c:
        c.send(pgwire.query("BEGIN"))
        c.read_until_ready()
        assert c.tx_status == "T"
        # a portal run 2 rows at a time (PortalSuspended 's'), inside the transaction
        c.send(pgwire.parse("", "SELECT g FROM generate_series(1, 5) g"),
               pgwire.bind("cur", ""), pgwire.execute("cur", 2), pgwire.execute("cur", 2),
               pgwire.execute("cur", 2), pgwire.sync())
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "12DDsDDsDCZ"
        assert c.tx_status == "T"
        c.send(pgwire.parse("ins", f"INSERT INTO {t} VALUES ($1)", [23]))
        for i in range(10):
            c.send(pgwire.bind("", "ins", [str(i)]), pgwire.execute(""))
        c.send(pgwire.sync())
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "1" + "2C" * 10 + "Z"
        assert cluster.primary.psql(f"SELECT count(*) FROM {t}") == "0"  # not committed yet
        c.send(pgwire.query("COMMIT"))
        c.read_until_ready()
        assert c.tx_status == "I"
    assert cluster.primary.psql(f"SELECT count(*), sum(v) FROM {t}") == "10|45"


def test_extended_flush_without_sync(pgpilot):
    with wire(pgpilot) as c:
        # Flush makes the server send what it has although no Sync came yet
        c.send(pgwire.parse("f1", "SELECT 5"), pgwire.bind("", "f1"), pgwire.execute(""),
               pgwire.flush())
        got = [c.read_message()[0] for _ in range(4)]
        assert got == ["1", "2", "D", "C"]
        c.send(pgwire.sync())
        assert pgwire.types(c.read_until_ready()) == "Z"
        assert c.query_value("SELECT 6") == "6"


# ---- backends reached over Unix-domain sockets --------------------------------------------

def test_backends_over_unix_sockets(cluster, make_pgpilot):
    """backend_hostnameN as a socket directory (libpq's rule: it starts with '/'): server
    connections, the monitor, cancel and load balancing go over the Unix socket."""
    conf = {f"backend_hostname{n.index}": cluster.dir for n in cluster.nodes}
    p = make_pgpilot(extra_conf=dict(conf, load_balance_mode="on", backend_weight0=0,
                                     sr_check_period=1))
    conn = p.connect(application_name="unix_backend")
    try:
        conn.autocommit = True

        def roles_known():
            _, rows = pool_nodes(conn)
            ok = [(r["role"], r["status"]) for r in rows] == [
                ("primary", "up"), ("standby", "up"), ("standby", "up")]
            return ok and rows

        rows = wait_until(roles_known, 30, "pgpilot to monitor the nodes over Unix sockets")
        assert [r["hostname"] for r in rows] == [cluster.dir] * 3
        cur = conn.cursor()
        # A connection over a Unix socket has no server address: inet_server_port() is NULL.
        t = uniq("unix_backend")
        cur.execute(f"CREATE TABLE {t} (v int)")  # DDL: the primary
        cur.execute(f"INSERT INTO {t} VALUES (7) RETURNING inet_server_port() IS NULL, "
                    "pg_is_in_recovery()")
        assert cur.fetchone() == (True, False)
        cur.execute("SELECT inet_server_port() IS NULL, pg_is_in_recovery()")  # a standby
        assert cur.fetchone() == (True, True)
        assert cluster.primary.psql(f"SELECT sum(v) FROM {t}") == "7"

        # Cancel reaches the server process over the socket too.
        result = {}

        def run():
            try:
                conn.cursor().execute("SELECT pg_sleep(30)")
                result["outcome"] = "completed"
            except psycopg2.Error as e:
                result["outcome"] = e

        th = threading.Thread(target=run)
        th.start()
        wait_until(lambda: any(n.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'unix_backend' "
            "AND query LIKE 'SELECT pg_sleep%' AND state = 'active'") == "1"
            for n in cluster.nodes), 15, "the pg_sleep to run")
        started = time.monotonic()
        conn.cancel()
        th.join(10)
        assert not th.is_alive()
        assert isinstance(result["outcome"], psycopg2.errors.QueryCanceled)
        assert time.monotonic() - started < 5
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_empty_backend_hostname_is_the_tmp_socket(cluster, make_pgpilot):
    """pgpool-II: backend_hostnameN = '' means the Unix-domain socket in /tmp. The test
    cluster's sockets live in its own directory, so /tmp gets a link to the primary's."""
    port = cluster.primary.port
    link = f"/tmp/.s.PGSQL.{port}"
    assert not os.path.lexists(link), f"{link} exists: another server uses port {port}"
    os.symlink(os.path.join(cluster.dir, f".s.PGSQL.{port}"), link)
    try:
        p = make_pgpilot(extra_conf={"backend_hostname0": ""})
        conn = p.connect()
        try:
            conn.autocommit = True
            cur = conn.cursor()
            _, rows = pool_nodes(conn)
            assert rows[0]["hostname"] == "/tmp"
            # Over a Unix socket the server has no address: inet_server_port() is NULL.
            cur.execute("SELECT inet_server_port() IS NULL, pg_is_in_recovery()")
            assert cur.fetchone() == (True, False)
        finally:
            conn.close()
    finally:
        os.unlink(link)


def test_clients_over_unix_socket(cluster, make_pgpilot, tmp_path):
    """unix_socket_directories: psql, psycopg2 and pgbench reach pgpilot over
    <dir>/.s.PGSQL.<port>; pool_hba's `local` lines apply there; the file has
    unix_socket_permissions, is replaced after a crash, refused to a second server, and
    removed at shutdown."""
    sock_dir = str(tmp_path)
    p = make_pgpilot(extra_conf={"enable_pool_hba": True, "pool_hba_file": "pool_hba.conf",
                                 "unix_socket_directories": sock_dir,
                                 "unix_socket_permissions": "0770", "http_port": FREE_PORT},
                     start=False)
    with open(os.path.join(p.dir, "pool_hba.conf"), "w") as f:
        f.write("local all all trust\nhost all all 127.0.0.1/32 reject\n")
    p.start()
    path = os.path.join(sock_dir, f".s.PGSQL.{p.port}")
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o770
    assert run_psql("SELECT 'via socket'", sock_dir, p.port) == "via socket"
    with pytest.raises(PsqlError, match=r'rejects connection for host "127\.0\.0\.1"'):
        p.psql("SELECT 1")  # TCP: the host line applies
    conn = psycopg2.connect(host=sock_dir, port=p.port, user="postgres", dbname="postgres",
                            application_name="unix_client")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            assert cur.fetchone() == (False,)
        url = f"http://127.0.0.1:{p.ports['http_port']}/api/sessions"
        with urllib.request.urlopen(url, timeout=10) as resp:
            sessions = json.load(resp)["sessions"]
        mine = [x for x in sessions if x["application_name"] == "unix_client"]
        assert [x["client_address"] for x in mine] == ["[local]"], sessions
    finally:
        conn.close()
    script = tmp_path / "select.sql"
    script.write_text("SELECT 1;\n")
    r = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-n", "-h", sock_dir, "-p", str(p.port), "-U", "postgres",
                        "-c", "4", "-j", "2", "-t", "100", "-f", str(script), "postgres"],
                       capture_output=True, text=True, timeout=120, env=procs.clean_env())
    assert r.returncode == 0, r.stderr
    assert "number of transactions actually processed: 400/400" in r.stdout

    # Killed: the file stays behind, and the next start replaces it.
    p.kill(signal.SIGKILL)
    assert os.path.exists(path)
    p.start()
    assert run_psql("SELECT 2", sock_dir, p.port) == "2"
    # A second server on the same socket is refused and leaves it alone.
    q = make_pgpilot(extra_conf={"unix_socket_directories": sock_dir, "port": p.port},
                     start=False)
    with pytest.raises(HarnessError):
        q.start(timeout=10)
    assert "another server is accepting connections on it" in q.log_text()
    assert run_psql("SELECT 3", sock_dir, p.port) == "3"
    p.stop()
    assert not os.path.exists(path)


def test_unix_socket_connections_are_dealt_to_every_worker(cluster, make_pgpilot, tmp_path):
    """Unix sockets have no SO_REUSEPORT: one worker accepts and hands the connections out
    round-robin, so with 3 workers, 6 clients in a row get 2 sessions on each worker, and
    every one of them works."""
    sock_dir = str(tmp_path)
    p = make_pgpilot(extra_conf={"unix_socket_directories": sock_dir, "worker_threads": 3,
                                 "http_port": FREE_PORT})
    conns = []
    try:
        for i in range(6):
            conns.append(psycopg2.connect(host=sock_dir, port=p.port, user="postgres",
                                          dbname="postgres", application_name=f"dealt{i}"))
        for i, c in enumerate(conns):
            with c.cursor() as cur:
                cur.execute("SELECT current_setting('application_name')")
                assert cur.fetchone() == (f"dealt{i}",)
        url = f"http://127.0.0.1:{p.ports['http_port']}/api/sessions"
        with urllib.request.urlopen(url, timeout=10) as resp:
            sessions = json.load(resp)["sessions"]
        mine = [x for x in sessions if x["application_name"].startswith("dealt")]
        assert len(mine) == 6, sessions
        assert all(x["client_address"] == "[local]" for x in mine), mine
        per_worker = {}
        for x in mine:
            per_worker[x["worker"]] = per_worker.get(x["worker"], 0) + 1
        assert sorted(per_worker.values()) == [2, 2, 2], per_worker
    finally:
        for c in conns:
            c.close()
