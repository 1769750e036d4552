"""The HTTP endpoint (docs/http.md) against a real primary + 2 standbys: /metrics parsed by
the Prometheus client library's text parser and cross-checked with SHOW pool_nodes and the
servers; /health and /ready codes; JSON shapes of /api/*; secrets masked in /api/config;
POST refused without/with a wrong token and when no token is configured; bad requests
(garbage, oversized headers and bodies, idle connections) answered or cut off without
hurting the process."""

import http.client
import json
import re
import socket
import time

import psycopg2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.pgpilot import FREE_PORT, Pgpilot

TOKEN = "t0ken-for-tests"
POOL_NODES = ["node_id", "hostname", "port", "status", "pg_status", "lb_weight", "role",
              "pg_role", "select_cnt", "load_balance_node", "replication_delay",
              "replication_state", "replication_sync_state", "last_status_change"]
# One exposition line: a comment, or name{labels} value.
SAMPLE_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? '
    r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')


@pytest.fixture(scope="module")
def pilot(cluster):
    p = Pgpilot(cluster, extra_conf={"http_port": FREE_PORT, "http_token": TOKEN,
                                     "health_check_period": "1", "sr_check_period": "1"})
    p.http_port = p.ports["http_port"]
    wait_for(lambda: request(p, "GET", "/health")[0] == 200)
    yield p
    p.stop()


def request(p, method, path, body=None, headers=None, port=None):
    conn = http.client.HTTPConnection("127.0.0.1", port or p.http_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode(), dict(r.getheaders())
    finally:
        conn.close()


def get_json(p, path):
    status, body, headers = request(p, "GET", path)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except OSError as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s; last value {last!r}")


def pool_nodes(p):
    conn = p.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_nodes")
            assert [d[0] for d in cur.description] == POOL_NODES
            return {int(r[0]): dict(zip(POOL_NODES, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def scrape(p):
    status, text, headers = request(p, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or \
            SAMPLE_LINE.match(line), f"not exposition format: {line!r}"
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def by_node(samples, name):
    return {int(lbl["node"]): v for lbl, v in samples[name]}


def test_health_and_ready(pilot):
    status, body, _ = request(pilot, "GET", "/health")
    assert (status, body) == (200, "ok: primary node 0\n")
    status, body, _ = request(pilot, "GET", "/ready")
    assert (status, body) == (200, "ready\n")
    status, body, _ = request(pilot, "HEAD", "/health")
    assert (status, body) == (200, "")


def test_metrics_match_show_pool_nodes(pilot, cluster):
    for _ in range(3):
        assert pilot.psql("SELECT 1") == "1"
    conns = [pilot.connect() for _ in range(3)]
    try:
        for c in conns:
            with c.cursor() as cur:
                cur.execute("SELECT 2")
        wait_for(lambda: pool_nodes(pilot)[1]["replication_state"] == "streaming")
        nodes = pool_nodes(pilot)

        # pool_nodes() just closed its own connection; pgpilot counts it out when that
        # session has finished on its worker, which may be a moment after the close.
        def settled():
            scraped = scrape(pilot)
            return scraped if scraped["pgpilot_client_sessions"] == [({}, 3.0)] else None

        m = wait_for(settled, timeout=10)
    finally:
        for c in conns:
            c.close()
    assert m["pgpilot_info"][0][0]["version"]
    assert m["pgpilot_ready"] == [({}, 1.0)]
    assert m["pgpilot_primary_node"] == [({}, 0.0)]
    # Exactly our three open connections are client sessions at the time of the scrape.
    assert m["pgpilot_client_sessions"] == [({}, 3.0)]
    assert sum(v for _, v in m["pgpilot_worker_sessions"]) == 3
    up = by_node(m, "pgpilot_node_up")
    primary = by_node(m, "pgpilot_node_primary")
    selects = by_node(m, "pgpilot_node_selects_total")
    delay = by_node(m, "pgpilot_node_replication_delay_bytes")
    info = {int(lbl["node"]): lbl for lbl, _ in m["pgpilot_node_info"]}
    assert sorted(up) == sorted(nodes) == [0, 1, 2]
    for i, row in nodes.items():
        assert up[i] == (1.0 if row["status"] == "up" else 0.0)
        assert primary[i] == (1.0 if row["role"] == "primary" else 0.0)
        assert info[i]["role"] == row["role"] and info[i]["status"] == row["status"]
        assert info[i]["hostname"] == row["hostname"] and info[i]["port"] == row["port"]
        assert info[i]["pg_role"] == row["pg_role"]
        # SHOW pool_nodes is not a SELECT; nothing else ran between it and the scrape.
        assert selects[i] == int(row["select_cnt"])
        assert delay[i] == int(row["replication_delay"])
    assert nodes[0]["role"] == "primary" and int(nodes[0]["select_cnt"]) >= 6
    assert by_node(m, "pgpilot_node_statements_total")[0] >= 6
    # The servers agree on who is primary.
    assert cluster.primary.is_in_recovery() is False
    # Health checks: /metrics shows the same HealthStats as /api/nodes, and a healthy
    # cluster has no failed check. (The counts grow once the health checker records them
    # in ClusterState; until then they are 0 on both sides.)
    checks = by_node(m, "pgpilot_node_health_checks_total")
    fails = by_node(m, "pgpilot_node_health_check_failures_total")
    last = by_node(m, "pgpilot_node_health_check_last_duration_seconds")
    api = {n["id"]: n["health"] for n in get_json(pilot, "/api/nodes")["nodes"]}
    for i in nodes:
        assert fails[i] == 0 == api[i]["fail_count"]
        assert 0 <= checks[i] <= api[i]["total_count"] <= checks[i] + 5
        assert 0 <= last[i] < 5
    assert m["pgpilot_failovers_total"] == [({}, 0.0)]
    assert "pgpilot_last_failover_duration_seconds" not in m  # no failover yet
    # Pool: the sessions above used node 0 as postgres/postgres.
    pool = {(lbl["node"], lbl["user"], lbl["database"]): v
            for lbl, v in m["pgpilot_pool_server_connections"]}
    assert pool.get(("0", "postgres", "postgres"), 0) >= 1
    assert sum(v for _, v in m["pgpilot_pool_server_connections_opened_total"]) >= 1


def backend_stats(p):
    conn = p.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_backend_stats")
            cols = [d[0] for d in cur.description]
            return {int(r[0]): dict(zip(cols, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def test_metrics_by_class_match_pool_backend_stats(pilot):
    conn = pilot.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE m (v int)")
            cur.execute("INSERT INTO m VALUES (1), (2)")
            cur.execute("UPDATE m SET v = v + 1")
            cur.execute("DELETE FROM m WHERE v = 2")
            with pytest.raises(Exception):
                cur.execute("SELECT 1/0")
    finally:
        conn.close()
    stats = backend_stats(pilot)
    m = scrape(pilot)
    by_class = {(int(lbl["node"]), lbl["class"]): v
                for lbl, v in m["pgpilot_node_statements_by_class_total"]}
    by_sev = {(int(lbl["node"]), lbl["severity"]): v
              for lbl, v in m["pgpilot_node_server_errors_by_severity_total"]}
    for i, row in stats.items():
        for cls in ("select", "insert", "update", "delete", "ddl", "other"):
            assert by_class[(i, cls)] == int(row[f"{cls}_cnt"]), (i, cls)
        for sev in ("error", "fatal", "panic"):
            assert by_sev[(i, sev)] == int(row[f"{sev}_cnt"]), (i, sev)
    assert by_class[(0, "insert")] >= 1 and by_class[(0, "update")] >= 1
    assert by_class[(0, "delete")] >= 1 and by_class[(0, "ddl")] >= 1
    assert by_sev[(0, "error")] >= 1


def lag_seconds(p):
    """node -> lag seconds, for the nodes whose lag is known."""
    m = scrape(p)
    return by_node(m, "pgpilot_node_replication_lag_seconds") \
        if "pgpilot_node_replication_lag_seconds" in m else {}


def test_replication_lag_seconds(pilot, cluster):
    """A standby whose replay is paused while the primary writes lags in seconds; the
    figure is the primary's pg_stat_replication.replay_lag (sampled every sr_check_period)."""
    standby = cluster.nodes[1]
    primary = cluster.primary
    # Caught up: the primary is 0, the standbys are known and small.
    lags = wait_for(lambda: (lambda l: l if sorted(l) == [0, 1, 2] and max(l.values()) < 5
                             else None)(lag_seconds(pilot)), timeout=30)
    assert lags[0] == 0.0
    primary.psql("CREATE TABLE IF NOT EXISTS lag_probe (id serial, at timestamptz)")
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        deadline = time.monotonic() + 60
        lag = 0.0
        while time.monotonic() < deadline:
            primary.psql("INSERT INTO lag_probe (at) VALUES (now())")
            lag = lag_seconds(pilot).get(1, 0.0)
            if lag >= 1.5:
                break
            time.sleep(0.3)
        assert lag >= 1.5, f"paused standby's lag stayed at {lag} s"
        # The server agrees (and the lag only grows while replay is paused).
        server = float(primary.psql(
            "SELECT extract(epoch FROM replay_lag) FROM pg_stat_replication "
            f"WHERE application_name = '{standby.name}'"))
        assert lag <= server + 1.0, (lag, server)
        # The same figure in /api/nodes; the standby that replays stays well behind it.
        api = {n["id"]: n for n in get_json(pilot, "/api/nodes")["nodes"]}
        assert api[1]["replication_lag_seconds"] >= lag - 0.001
        assert api[0]["replication_lag_seconds"] == 0.0
        assert api[1]["replication_delay_bytes"] > 0
        assert lag_seconds(pilot)[2] < lag
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")
    # Replay resumed: the lag falls back.
    wait_for(lambda: lag_seconds(pilot).get(1, 99) < 1.0, timeout=60)


def errors_by_class(p):
    return {lbl["class"]: v for lbl, v in scrape(p).get("pgpilot_errors_total", [])}


def test_errors_by_sqlstate_class(pilot):
    """pgpilot_errors_total counts every ErrorResponse a client received, forwarded from a
    server or made by pgpilot, by SQLSTATE class; exactly what this client provoked."""
    before = errors_by_class(pilot)
    conn = pilot.connect()
    codes = []
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE uniq (id int PRIMARY KEY)")
            cur.execute("INSERT INTO uniq VALUES (1)")
            for sql in ["SELECT * FROM no_such_table", "SELECT 1 +", "SELECT no_such_column",
                        "INSERT INTO uniq VALUES (1)", "INSERT INTO uniq VALUES (NULL)",
                        "SELECT * FROM no_such_table"]:
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(sql)
                codes.append(e.value.pgcode)
            # An error inside a transaction (and the aborted transaction's refusal).
            cur.execute("BEGIN")
            for sql in ["SELECT 1/0", "SELECT 1"]:
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(sql)
                codes.append(e.value.pgcode)
            cur.execute("ROLLBACK")
    finally:
        conn.close()
    assert codes == ["42P01", "42601", "42703", "23505", "23502", "42P01", "22012", "25P02"]
    # pgpilot's own error: a startup packet with an invalid length (08P01, FATAL).
    s = socket.create_connection(("127.0.0.1", pilot.port), timeout=10)
    try:
        s.sendall(b"\x00\x00\x00\x04")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    finally:
        s.close()
    assert answer.startswith(b"E") and b"08P01" in answer
    after = errors_by_class(pilot)
    delta = {c: after.get(c, 0) - before.get(c, 0) for c in set(after) | set(before)}
    assert {c: d for c, d in delta.items() if d} == {"42": 4, "23": 2, "22": 1, "25": 1,
                                                     "08": 1}, delta


def test_query_latency_histogram(pilot):
    before = scrape(pilot)["pgpilot_query_duration_seconds_count"][0][1]
    conn = pilot.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(0.3)")
            for _ in range(5):
                cur.execute("SELECT 1")
    finally:
        conn.close()
    m = scrape(pilot)
    count = m["pgpilot_query_duration_seconds_count"][0][1]
    assert count >= before + 6
    buckets = {lbl["le"]: v for lbl, v in m["pgpilot_query_duration_seconds_bucket"]}
    assert buckets["+Inf"] == count
    # The 0.3 s sleep is above the 0.25 s bound, and the sum covers it.
    assert buckets["0.25"] <= count - 1
    assert m["pgpilot_query_duration_seconds_sum"][0][1] >= 0.3


def test_api_nodes_events_status_config(pilot):
    nodes = get_json(pilot, "/api/nodes")
    assert nodes["primary"] == 0 and nodes["topology_version"] >= 1
    assert [n["id"] for n in nodes["nodes"]] == [0, 1, 2]
    n0 = nodes["nodes"][0]
    for key in ("hostname", "port", "status", "pg_status", "role", "pg_role", "weight",
                "lb_weight", "select_cnt", "statements", "server_errors", "lsn",
                "replication_delay_bytes", "replication_lag_seconds", "replication_state",
                "replication_sync_state", "last_status_change", "server_connections", "health"):
        assert key in n0, key
    assert n0["role"] == "primary" and n0["status"] == "up"
    assert {n["role"] for n in nodes["nodes"][1:]} == {"standby"}
    assert set(n0["health"]) >= {"total_count", "success_count", "fail_count", "retry_count",
                                 "average_duration_ms", "last_duration_ms"}

    events = get_json(pilot, "/api/events")
    assert set(events) == {"last_id", "events"} and isinstance(events["events"], list)
    for e in events["events"]:
        assert set(e) == {"id", "time", "unix_ms", "kind", "node", "message", "failure"}
    after = get_json(pilot, f"/api/events?after={events['last_id']}")
    assert after["events"] == []

    status = get_json(pilot, "/api/status")
    assert status["ready"] is True and status["primary"] == 0
    assert status["post_enabled"] is True and status["pid"] == pilot.pid

    status_code, body, _ = request(pilot, "GET", "/api/config")
    assert TOKEN not in body
    settings = {s["name"]: s for s in json.loads(body)["settings"]}
    assert settings["http_token"]["value"] == "********"
    assert settings["http_port"]["value"] == str(pilot.http_port)
    assert settings["port"]["value"] == str(pilot.port)
    assert settings["backend_port1"]["value"] == str(pilot.cluster.nodes[1].port)
    assert all({"name", "value", "description", "needs_restart"} == set(s)
               for s in settings.values())

    sessions = get_json(pilot, "/api/sessions")
    assert sessions["client_sessions"] == 0 and sessions["sessions"] == []
    conn = pilot.connect(application_name="http-test-app")
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN; SELECT 1")
        sessions = get_json(pilot, "/api/sessions")
    finally:
        conn.close()
    assert sessions["client_sessions"] == 1
    assert sum(w["sessions"] for w in sessions["workers"]) == 1
    [row] = sessions["sessions"]
    assert set(row) == {"id", "worker", "pid", "user", "database", "application_name",
                        "client_address", "node", "nodes", "state", "in_transaction", "since"}
    assert (row["user"], row["database"], row["application_name"]) == (
        "postgres", "postgres", "http-test-app")
    assert row["client_address"] == "127.0.0.1" and row["node"] == 0 and row["nodes"] == [0]
    assert row["in_transaction"] is True and row["state"].startswith("idle in transaction")


def test_post_needs_the_token(pilot):
    path = "/api/nodes/1/detach"
    status, body, headers = request(pilot, "POST", path)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = request(pilot, "POST", path, headers={"Authorization": "Bearer wrong"})
    assert status == 403
    status, _, _ = request(pilot, "POST", path, headers={"Authorization": "Basic " + TOKEN})
    assert status == 401
    status, _, _ = request(pilot, "POST", "/api/switchover", body='{"node": 2}',
                           headers={"Authorization": "Bearer " + TOKEN + "x"})
    assert status == 403
    # Nothing changed.
    assert all(r["status"] == "up" for r in pool_nodes(pilot).values())
    # With the token: a bad node id is a client error, before any command runs.
    auth = {"Authorization": "Bearer " + TOKEN}
    assert request(pilot, "POST", "/api/nodes/9/detach", headers=auth)[0] == 404
    assert request(pilot, "POST", "/api/switchover", body="{}", headers=auth)[0] == 400
    assert request(pilot, "POST", "/api/switchover", body="junk", headers=auth)[0] == 400
    # The right token reaches cluster::Control: attaching a node that is up changes nothing
    # (503 "not available" while the failover controller is not wired in).
    status, body, _ = request(pilot, "POST", "/api/nodes/1/attach", headers=auth)
    assert status in (200, 409, 503), body
    assert {"ok", "message"} <= set(json.loads(body))
    assert all(r["status"] == "up" for r in pool_nodes(pilot).values())
    assert request(pilot, "GET", "/api/nodes/1/detach")[0] == 405
    assert request(pilot, "DELETE", "/api/nodes")[0] == 405


def test_post_disabled_without_token(cluster):
    p = Pgpilot(cluster, extra_conf={"http_port": FREE_PORT})
    try:
        port = p.ports["http_port"]
        status, body, _ = request(p, "POST", "/api/nodes/1/detach", port=port,
                                  headers={"Authorization": "Bearer "})
        assert status == 403 and "http_token" in body
        status, body, _ = request(p, "POST", "/api/nodes/1/detach", port=port,
                                  headers={"Authorization": "Bearer anything"})
        assert status == 403
        assert json.loads(request(p, "GET", "/api/status", port=port)[1])["post_enabled"] is False
    finally:
        p.stop()


def raw(p, data, read=True):
    s = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
    try:
        s.sendall(data)
        if not read:
            return s
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        if read:
            s.close()


def test_bad_requests(pilot):
    assert raw(pilot, b"\x00\xff garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(pilot, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    assert raw(pilot, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 414 ")
    assert raw(pilot, b"POST /api/switchover HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n"
               ).startswith(b"HTTP/1.1 413 ")
    # Pipelined requests are answered in order on one connection.
    two = raw(pilot, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert two.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 404 " in two
    # Idle and half-sent connections do not block anyone else.
    idle = [raw(pilot, b"GET /he", read=False) for _ in range(10)]
    try:
        assert request(pilot, "GET", "/health")[0] == 200
    finally:
        for s in idle:
            s.close()
    assert pilot.psql("SELECT 1") == "1" and pilot.is_running()


def test_dashboard_files_are_served(pilot):
    status, body, headers = request(pilot, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "pgpilot" in body
    assert request(pilot, "GET", "/no-such-file.js")[0] == 404
