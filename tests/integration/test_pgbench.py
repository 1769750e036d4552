"""pgbench through pgpilot: initialisation (COPY + DDL), then the default TPC-B script in
the simple, extended and prepared query modes with 8 clients. No transaction may fail,
and the TPC-B balances must add up on the primary afterwards (every transaction's UPDATEs
and its history row committed together)."""

import re
import shutil
import subprocess

import pytest

from harness import procs

PGBENCH = shutil.which("pgbench") or "/usr/bin/pgbench"
DB = "bench"


def run_pgbench(pgpilot, *args, timeout=120):
    cmd = [PGBENCH, "-h", pgpilot.host, "-p", str(pgpilot.port), "-U", "postgres", *args, DB]
    env = procs.clean_env(PGPASSWORD=pgpilot.cluster.password, PGCONNECT_TIMEOUT=10)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"pgbench {' '.join(args)} failed (rc {r.returncode}):\n" \
                              f"{r.stdout}\n{r.stderr}\n{pgpilot.log_tails()}"
    return r.stdout + r.stderr


def balances(node):
    return node.psql("SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
                     "(SELECT sum(bbalance) FROM pgbench_branches), "
                     "(SELECT sum(tbalance) FROM pgbench_tellers), "
                     "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)", db=DB).split("|")


@pytest.fixture(scope="module")
def bench_db(cluster, pgpilot):
    cluster.primary.psql(f"CREATE DATABASE {DB}")
    out = run_pgbench(pgpilot, "-i", "-s", "2", "-q")
    assert "done in" in out, out
    assert cluster.primary.psql("SELECT count(*) FROM pgbench_accounts", db=DB) == "200000"
    assert cluster.primary.psql("SELECT count(*) FROM pgbench_branches", db=DB) == "2"
    assert cluster.primary.psql("SELECT count(*) FROM pgbench_history", db=DB) == "0"
    return DB


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_tpcb(cluster, pgpilot, bench_db, mode):
    history_before = int(cluster.primary.psql("SELECT count(*) FROM pgbench_history", db=DB))
    out = run_pgbench(pgpilot, "-M", mode, "-c", "8", "-j", "2", "-T", "10", "-n")
    assert f"query mode: {mode}" in out, out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m, out
    assert int(m.group(1)) == 0, out
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m, out
    processed = int(m.group(1))
    assert processed > 0, out
    # one history row per committed TPC-B transaction, and balances consistent
    history = int(cluster.primary.psql("SELECT count(*) FROM pgbench_history", db=DB))
    assert history - history_before == processed, out
    a, b, t, h = balances(cluster.primary)
    assert a == b == t == h, (a, b, t, h)
    # pgbench's connections went back to the pool clean: nothing idle in a transaction
    assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE state LIKE 'idle in transaction%'") == "0"
