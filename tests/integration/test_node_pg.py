"""node-postgres (`pg`) through pgpilot: simple query, parameterised queries and a named
prepared statement (extended protocol), a committed and a rolled-back transaction, an
error the session survives, a notice. Needs node and npm; the `pg` package is installed
into tests/integration/node/node_modules (gitignored) on first use."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from harness import procs

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
NODE = shutil.which("node")
NPM = shutil.which("npm")


@pytest.fixture(scope="module")
def node_pg():
    if not NODE or not NPM:
        pytest.skip("node and npm are needed for the node-postgres test")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")):
        try:
            r = subprocess.run([NPM, "install", "--no-audit", "--no-fund", "--no-save",
                                "--loglevel=error"], cwd=NODE_DIR, capture_output=True,
                               text=True, timeout=180, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install of `pg` timed out (npm registry unreachable?)")
        if r.returncode != 0:
            text = r.stdout + r.stderr
            if any(s in text for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT",
                                       "ECONNRESET", "network", "E403", "E407")):
                pytest.skip(f"npm registry unreachable, cannot install `pg`: {text[-500:]}")
            pytest.fail(f"npm install failed (rc {r.returncode}):\n{text}")
    return NODE_DIR


def test_node_pg_through_pgpilot(cluster, pgpilot, node_pg):
    table = f"node_{uuid.uuid4().hex[:8]}"
    cluster.primary.psql(f"CREATE TABLE {table} (id serial, v text)")
    env = procs.clean_env(PGHOST=pgpilot.host, PGPORT=str(pgpilot.port), PGUSER="postgres",
                          PGDATABASE="postgres", PGPASSWORD=cluster.password or "")
    r = subprocess.run([NODE, "pg_client.js", table], cwd=node_pg, capture_output=True,
                       text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{pgpilot.log_tails(20)}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["simple"] == {"rows": [{"one": 1, "two": "two"}], "fields": ["one", "two"]}
    assert out["param"] == [{"n": 42, "t": "héllo", "isnull": True}]
    assert out["prepared"] == [4, 9, 16]
    assert out["error"] == "22012"
    assert out["count_after_error"] == 1
    assert out["notices"] == ["node notice"]
    assert isinstance(out["backend_pid"], int)
    # on the primary: only the committed row
    assert cluster.primary.psql(f"SELECT string_agg(v, ',') FROM {table}") == "committed"
