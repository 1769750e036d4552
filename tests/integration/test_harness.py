"""The test harness itself, against real PostgreSQL 15 servers (no pgpilot needed)."""

import os
import signal
import stat
import textwrap
import uuid

import psycopg2
import pytest

from harness import procs
from harness.errors import PsqlError, SanitizerError
from harness.pgpilot import FREE_PORT, Pgpilot


def replication_rows(node):
    out = node.psql("SELECT application_name, state, sync_state FROM pg_stat_replication "
                    "ORDER BY application_name")
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def test_primary_is_not_in_recovery(cluster):
    assert cluster.primary is cluster.node(0)
    assert cluster.primary.is_in_recovery() is False
    assert cluster.primary.psql("SHOW wal_level") == "replica"
    assert cluster.primary.psql("SHOW server_version_num").startswith("15")


def test_standbys_are_in_recovery_and_streaming(cluster):
    assert [s.name for s in cluster.standbys] == ["standby1", "standby2"]
    for s in cluster.standbys:
        assert s.is_in_recovery() is True
        assert s.psql("SELECT status FROM pg_stat_wal_receiver") == "streaming"
    rows = replication_rows(cluster.primary)
    assert len(rows) == 2
    assert [(name, state) for name, state, _ in rows] == [("standby1", "streaming"),
                                                          ("standby2", "streaming")]
    assert all(sync == "async" for _, _, sync in rows)


def test_nodes_have_distinct_ports_and_live_pids(cluster):
    ports = {n.port for n in cluster.nodes}
    assert len(ports) == 3
    for n in cluster.nodes:
        assert n.host == "127.0.0.1"
        assert procs.alive(n.pid())
        assert os.path.isfile(os.path.join(n.datadir, "PG_VERSION"))
        assert os.path.getsize(n.logfile) > 0
        assert n.psql("SHOW port") == str(n.port)


def test_write_on_primary_is_visible_on_standbys(cluster):
    token = uuid.uuid4().hex
    cluster.primary.psql("CREATE TABLE IF NOT EXISTS harness_t (v text);"
                         f"INSERT INTO harness_t VALUES ('{token}')")
    cluster.wait_replay(timeout=30)
    for s in cluster.standbys:
        assert s.psql(f"SELECT count(*) FROM harness_t WHERE v = '{token}'") == "1"


def test_psycopg2_connect_and_psql_errors(cluster):
    with cluster.standbys[0].connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone() == (True,)
    conn.close()
    with pytest.raises(PsqlError) as e:
        cluster.standbys[0].psql("CREATE TABLE nope (v int)")
    assert "read-only" in e.value.stderr
    # multi-row, multi-column output format
    assert cluster.primary.psql("SELECT 1, 'a' UNION ALL SELECT 2, 'b'") == "1|a\n2|b"


def test_kill_standby_promote_and_cleanup(make_cluster):
    c = make_cluster(num_standbys=2)
    victim = c.node(2)
    pid = victim.pid()
    victim.kill(signal.SIGKILL)
    assert not procs.alive(pid)
    assert victim.pid() is None
    procs.wait_gone(victim.pids(), 10)
    # the primary notices: only standby1 streams
    from harness.cluster import wait_until
    wait_until(lambda: [r[0] for r in replication_rows(c.primary)] == ["standby1"], 30,
               "standby2 to leave pg_stat_replication")
    # a stopped node restarts and streams again
    victim.start()
    c.wait_streaming()
    # promote standby1: it leaves recovery and becomes the harness' primary
    c.node(1).promote()
    assert c.primary is c.node(1)
    assert c.node(1).is_in_recovery() is False
    c.node(1).psql("CREATE TABLE after_promote (v int)")

    d = c.dir
    pids = [p for n in c.nodes for p in n.pids()]
    assert pids
    c.stop()
    assert not os.path.exists(d)
    assert not [p for p in pids if procs.alive(p)]
    c.stop()  # idempotent


def test_stop_cleans_sigstopped_node(make_cluster):
    c = make_cluster(num_standbys=1)
    c.node(1).signal_all(signal.SIGSTOP)
    d = c.dir
    c.stop()
    assert not os.path.exists(d)
    assert procs.pids_under(d) == []


def test_sync_cluster(make_cluster):
    c = make_cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1)")
    assert c.primary.psql("SHOW synchronous_standby_names") == "FIRST 1 (standby1)"
    from harness.cluster import wait_until
    wait_until(lambda: dict((n, s) for n, _, s in replication_rows(c.primary))
               == {"standby1": "sync", "standby2": "async"}, 30, "sync_state")
    # commits are acknowledged by the sync standby; standbys do not inherit the setting
    c.primary.psql("CREATE TABLE sync_t (v int); INSERT INTO sync_t VALUES (1)")
    assert c.node(1).psql("SHOW synchronous_standby_names") == ""


def test_password_auth_cluster(make_cluster):
    c = make_cluster(num_standbys=1, auth="scram-sha-256", password="s3c\\ret'pw")
    p = c.primary
    assert p.psql("SELECT 1", host="127.0.0.1") == "1"
    with pytest.raises(PsqlError):
        p.psql("SELECT 1", host="127.0.0.1", password="wrong")
    with pytest.raises(psycopg2.OperationalError):
        p.connect(password="wrong")
    p.connect().close()
    c.wait_streaming()


def test_partial_start_failure_cleans_up():
    from harness.cluster import Cluster
    from harness.errors import HarnessError
    c = Cluster(num_standbys=1, extra_conf={"shared_buffers": "not-a-size"})
    with pytest.raises(HarnessError) as e:
        c.start()
    assert "shared_buffers" in str(e.value)
    assert not os.path.exists(c.dir)
    c.stop()


FAKE_PGPILOT = textwrap.dedent("""\
    #!/usr/bin/python3
    # Stand-in for pgpilot: listens on the config's port, exits on SIGTERM.
    import os, re, signal, socket, sys
    conf = open(sys.argv[sys.argv.index("-f") + 1]).read()
    port = int(re.search(r"^port = '(\\d+)'", conf, re.M).group(1))
    log = re.search(r"^log_file = '([^']+)'", conf, re.M).group(1)
    open(log, "a").write("fake pgpilot listening\\n")
    def term(*_):
        if os.environ.get("FAKE_ASAN"):
            sys.stderr.write("==1==ERROR: AddressSanitizer: heap-use-after-free\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.close()
""")


@pytest.fixture
def fake_binary(tmp_path):
    path = tmp_path / "fake-pgpilot"
    path.write_text(FAKE_PGPILOT)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_pgpilot_fixture_with_stand_in(cluster, fake_binary):
    p = Pgpilot(cluster, binary=fake_binary,
                extra_conf={"log_min_messages": "info", "pcp_port": FREE_PORT})
    d = p.dir
    try:
        conf = open(p.conf_path).read()
        assert f"port = '{p.port}'" in conf
        assert "log_min_messages = 'info'" in conf
        assert f"pcp_port = '{p.ports['pcp_port']}'" in conf
        for n in cluster.nodes:
            assert f"backend_port{n.index} = '{n.port}'" in conf
            assert f"backend_data_directory{n.index} = '{n.datadir}'" in conf
        p.wait_log("fake pgpilot listening", timeout=5)
        assert p.rss_kb() > 0
        assert p.cpu_seconds() >= 0
        assert p.dsn(application_name="x y") == (
            f"host=127.0.0.1 port={p.port} user=postgres dbname=postgres application_name='x y'")
        p.kill(signal.SIGKILL)  # restartable in place
        p.start()
    finally:
        p.stop()
    assert not os.path.exists(d)


def test_pgpilot_fixture_raises_on_sanitizer_report(cluster, fake_binary):
    p = Pgpilot(cluster, binary=fake_binary, env={"FAKE_ASAN": "1"})
    with pytest.raises(SanitizerError, match="heap-use-after-free"):
        p.stop()
    assert not os.path.exists(p.dir)
    p.stop()  # idempotent, no second report
