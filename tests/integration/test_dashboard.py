"""The web dashboard in a real headless Chromium (Debian `chromium`, driven by npm
`playwright-core` through tests/integration/web/dashboard.js) against a live primary +
2 standbys: the page shows the nodes as SHOW pool_nodes does and the live client sessions;
node actions need the token and a confirmation (cancel sends nothing, no token is 401, a
wrong one 403); a detach confirmed on the page is visible in SHOW pool_nodes; a switchover
confirmed on the page really switches the primary (checked on the servers); events (a
reload, a failover, the switchover) appear in the timeline.

playwright-core is installed into tests/integration/web/node_modules (gitignored) on first
use. Set PGPILOT_DASHBOARD_PNG=docs/dashboard.png to refresh the screenshot in docs/."""

import json
import re
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from harness.pgpilot import FREE_PORT, Pgpilot

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
NODE = shutil.which("node")
NPM = shutil.which("npm")
CHROMIUM = "/usr/bin/chromium"
TOKEN = "dashboard-test-token"
POOL_NODES = ["node_id", "hostname", "port", "status", "pg_status", "lb_weight", "role",
              "pg_role", "select_cnt", "load_balance_node", "replication_delay",
              "replication_state", "replication_sync_state", "last_status_change"]


def install_playwright():
    if not NODE or not NPM:
        pytest.skip("node and npm are needed for the dashboard test")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is needed for the dashboard test (./run installs it)")
    if os.path.isdir(os.path.join(WEB_DIR, "node_modules", "playwright-core")):
        return
    try:
        r = subprocess.run([NPM, "install", "--no-audit", "--no-fund", "--no-save",
                            "--loglevel=error"], cwd=WEB_DIR, capture_output=True, text=True,
                           timeout=180, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install of playwright-core timed out (npm registry unreachable?)")
    if r.returncode != 0:
        text = r.stdout + r.stderr
        if any(s in text for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT",
                                   "ECONNRESET", "network", "E403", "E407")):
            pytest.skip(f"npm registry unreachable, cannot install playwright-core: {text[-500:]}")
        pytest.fail(f"npm install failed (rc {r.returncode}):\n{text}")


class Page:
    """One Chromium page driven by dashboard.js, one JSON command per line."""

    def __init__(self):
        self.proc = subprocess.Popen([NODE, "dashboard.js"], cwd=WEB_DIR, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def do(self, timeout=30, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"dashboard.js did not answer {cmd} within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"dashboard.js exited: {self.proc.stderr.read()[-2000:]}")
        out = json.loads(line)
        assert out.pop("ok"), f"{cmd}: {out.get('error')}"
        return out

    def close(self):
        try:
            if self.proc.poll() is None:
                self.do(cmd="quit", timeout=10)
        except (AssertionError, OSError, ValueError):
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def pilot(cluster):
    install_playwright()
    p = Pgpilot(cluster, extra_conf={"http_port": FREE_PORT, "http_token": TOKEN,
                                     "sr_check_period": "1", "health_check_period": "1"})
    p.url = f"http://127.0.0.1:{p.ports['http_port']}/?interval=300"
    yield p
    p.stop()


@pytest.fixture
def page(pilot):
    pg = Page()
    try:
        assert pg.do(cmd="open", url=pilot.url)["title"] == "pgpilot dashboard"
        yield pg
        # No script errors and no failed loads, except the refusals the tests provoke.
        errors = [e for e in pg.do(cmd="errors")["errors"]
                  if not re.search(r"status of (401|403|503) ", e)]
        assert errors == []
    finally:
        pg.close()


def pool_nodes(p):
    conn = p.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW pool_nodes")
            return {int(r[0]): dict(zip(POOL_NODES, r)) for r in cur.fetchall()}
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


def test_page_shows_the_live_cluster(pilot, page):
    shown = {n["id"]: n for n in page.do(cmd="nodes")["nodes"]}
    truth = pool_nodes(pilot)
    assert sorted(shown) == sorted(truth) == [0, 1, 2]
    for i, row in truth.items():
        assert shown[i]["address"] == f"{row['hostname']}:{row['port']}"
        assert shown[i]["role"] == row["role"]
        assert shown[i]["status"] == row["status"] == "up"
        assert shown[i]["pg_status"] == row["pg_status"]
        # Lag: bytes as SHOW pool_nodes, then seconds once the lag monitor has sampled.
        assert shown[i]["lag"].split(" · ")[0].replace(",", "").isdigit(), shown[i]
    assert shown[0]["role"] == "primary"
    page.do(cmd="waitText", selector="#nodes tbody tr[data-node='1'] td:nth-child(6)",
            text=" s")
    assert "promote" not in shown[0]["actions"] and "detach" in shown[0]["actions"]
    assert shown[1]["actions"] == ["detach", "promote"]
    # A client connects: the page lists its session within a few polls.
    conn = pilot.connect(application_name="dashboard-probe")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        page.do(cmd="waitText", selector="#sessions", text="dashboard-probe")
        s = page.do(cmd="sessions")
        assert s["note"].startswith("1 client sessions")
        [row] = s["rows"]
        assert row[1:6] == ["postgres", "postgres", "dashboard-probe", "127.0.0.1", "0"]
        page.do(cmd="waitText", selector="#sessions-count", text="1")
    finally:
        conn.close()
    page.do(cmd="waitText", selector="#sessions-note", text="0 client sessions")
    target = os.environ.get("PGPILOT_DASHBOARD_PNG")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.abspath(target) if target else os.path.join(d, "dashboard.png")
        page.do(cmd="screenshot", path=path, settle_ms=300)
        assert os.path.getsize(path) > 10_000


def test_actions_need_confirmation_and_token(pilot, page):
    # Cancelled: nothing is sent.
    r = page.do(cmd="action", action="detach", node=2, token=TOKEN, confirm=False)
    assert r["title"] == "Detach node 2?" and "standby" in r["dialog"]
    assert r["posted"] is False
    # No token: 401; wrong token: 403. The page says so.
    r = page.do(cmd="action", action="detach", node=2, token="", confirm=True)
    assert r["toast"]["status"] == "error" and "HTTP 401" in r["toast"]["text"]
    r = page.do(cmd="action", action="detach", node=2, token="wrong", confirm=True)
    assert r["toast"]["status"] == "error" and "HTTP 403" in r["toast"]["text"]
    assert "wrong token" in r["toast"]["text"]
    assert pool_nodes(pilot)[2]["status"] == "up"


def test_detach_through_the_page(pilot, page):
    r = page.do(cmd="action", action="detach", node=2, token=TOKEN, confirm=True)
    assert r["toast"]["status"] == "ok", r
    wait_for(lambda: pool_nodes(pilot)[2]["status"] == "down")
    page.do(cmd="waitText", selector='[data-testid="status-2"]', text="down")
    page.do(cmd="waitText", selector="#events", text="detach")
    r = page.do(cmd="action", action="attach", node=2, token=TOKEN, confirm=True)
    assert r["toast"]["status"] == "ok", r
    wait_for(lambda: pool_nodes(pilot)[2]["status"] == "up")


def test_reload_shows_in_the_timeline(pilot, page):
    before = len([e for e in page.do(cmd="events")["events"] if e["kind"]])
    pilot.reload()  # SIGHUP
    page.do(cmd="waitText", selector="#events", text="reload")
    events = page.do(cmd="events")["events"]
    assert len(events) > before
    assert events[0]["kind"] == "reload" and "SIGHUP" in events[0]["text"]


def test_failover_shows_in_the_timeline(pilot, make_cluster):
    c = make_cluster(num_standbys=1)
    p = Pgpilot(c, extra_conf={"http_port": FREE_PORT, "http_token": TOKEN,
                               "sr_check_period": "1", "health_check_period": "1",
                               "connect_timeout": "1000", "health_check_timeout": "2"})
    pg = Page()
    try:
        pg.do(cmd="open", url=f"http://127.0.0.1:{p.ports['http_port']}/?interval=300")
        c.primary.kill()
        pg.do(cmd="waitText", selector="#events", text="failover done", wait_ms=60_000,
              timeout=70)
        events = pg.do(cmd="events")["events"]
        assert any(e["kind"] == "failover_done" for e in events), events
        wait_for(lambda: {n["id"]: n for n in pg.do(cmd="nodes")["nodes"]}[1]["role"]
                 == "primary")
        assert c.node(1).psql("SELECT pg_is_in_recovery()").strip() == "f"
    finally:
        pg.close()
        p.stop()


def test_switchover_through_the_page(pilot, make_cluster):
    """The switchover selector and button, confirmed with the token: a real planned
    switchover (checked on the servers) that shows up in the timeline."""
    c = make_cluster(num_standbys=1)
    p = Pgpilot(c, extra_conf={"http_port": FREE_PORT, "http_token": TOKEN,
                               "sr_check_period": "1", "health_check_period": "1"})
    pg = Page()
    try:
        pg.do(cmd="open", url=f"http://127.0.0.1:{p.ports['http_port']}/?interval=300")
        r = pg.do(cmd="switchover", node=1, token=TOKEN, confirm=True, timeout=90)
        assert r["toast"]["status"] == "ok", r
        assert c.node(1).psql("SELECT pg_is_in_recovery()").strip() == "f"
        assert c.node(0).psql("SELECT pg_is_in_recovery()").strip() == "t"
        pg.do(cmd="waitText", selector="#events", text="switchover done", wait_ms=30_000,
              timeout=40)
        wait_for(lambda: {n["id"]: n for n in pg.do(cmd="nodes")["nodes"]}[0]["role"]
                 == "standby")
    finally:
        pg.close()
        p.stop()
