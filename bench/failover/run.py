#!/usr/bin/python3
"""Failover benchmark: pgpilot vs. pgpool-II 4.3 on the same faults, side by side.

    bench/failover/run.py [--binary PATH] [--proxies pgpilot,pgpool] [--scenarios ...]
    ./run bench failover [args]      (builds the release binary first)

Every (proxy, scenario) pair gets a fresh PostgreSQL 15 cluster from tests/harness
(primary + 2 streaming standbys, synchronous_standby_names = FIRST 1 (standby1, standby2))
and the same detection settings on both proxies: health_check_period 1,
health_check_timeout 2, health_check_max_retries 0 (retry delay 1, connect_timeout 3000 ms,
sr_check_period 1, failover_on_backend_error on, search_primary_node_timeout 20).

A writer thread inserts increasing ids through the proxy, one autocommit INSERT every
10 ms; a failed statement drops the connection and the next one reconnects (as an
application does). It records every acknowledged id and every failure. Scenarios:

    kill       kill -9 of the primary. Write-unavailability window = from the start of the
               first failed or held (> 100 ms) statement after the crash to the first
               acknowledged write after it; failed statements after the crash; the longest
               gap between acknowledgements (JSON); acknowledged writes missing on the new
               primary (queried directly).
    stop       SIGSTOP of every process of the primary until a standby is promoted (or
               30 s), then SIGCONT: time to the new primary (seen directly on the
               servers), write window, failed statements, lost writes.
    sync       kill -9 of the synchronous standby (standby1) with FIRST 1 (standby1,
               standby2): the longest commit gap (standby2 should take over at once).
    sync-only  kill -9 of the only synchronous standby (FIRST 1 (standby1)): pgpilot with
               sync_replication_policy = availability switches the primary to async;
               pgpool-II has no such feature, its commits wait until the standby returns.
               The stall is bounded: after 15 s the standby is restarted to release them.

pgpool-II gets a failover_command that promotes the new main node (psql ... pg_promote())
and a follow_primary_command that repoints the other standby's primary_conninfo
(ALTER SYSTEM + reload) and re-attaches it with pcp_attach_node. pgpilot uses its built-in
promote/follow. Prints one table with both proxies and the pgpool/pgpilot ratio, and
writes bench/results/failover-<timestamp>.json. Every wait is bounded; every process and
temp dir is removed on exit, Ctrl-C, SIGTERM or error. Not part of ctest.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import psycopg2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from bench import PgPool, git_rev, machine_info  # noqa: E402
from harness.cluster import Cluster  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.pgpilot import Pgpilot  # noqa: E402

SCENARIOS = ["kill", "stop", "sync", "sync-only"]
PROXIES = ["pgpilot", "pgpool"]
SYNC_BOTH = "FIRST 1 (standby1, standby2)"
SYNC_ONLY = "FIRST 1 (standby1)"
GLOBAL_BUDGET_S = 900
STALL_BOUND_S = 15
WRITE_INTERVAL_S = 0.01
HELD_S = 0.1  # a statement slower than this counts as held (normal: a few ms)

# Identical on both proxies (pgpool-II spelling; pgpilot accepts the same keys).
DETECTION = {
    "health_check_period": 1,
    "health_check_timeout": 2,
    "health_check_max_retries": 0,
    "health_check_retry_delay": 1,
    "health_check_user": "postgres",
    "sr_check_period": 1,
    "sr_check_user": "postgres",
    "connect_timeout": 3000,
    "failover_on_backend_error": True,
    "search_primary_node_timeout": 20,
}

PGPILOT_EXTRA = {
    "sync_replication_policy": "availability",
    "failover_hold_timeout": 30,
    "follow_primary_timeout": 20,
    "failover_command_timeout": 20,
}


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- writer

class Writer:
    """Autocommit INSERTs of increasing ids through `port`; records acknowledgements
    (id, monotonic time) and failures (monotonic time, SQLSTATE, message)."""

    def __init__(self, port):
        self.port = port
        self.acked = []
        self.failures = []
        self.attempts = []  # (start, end, ok) of every statement (with its reconnect)
        self.next_id = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self):
        c = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", connect_timeout=5)
        c.autocommit = True
        return c

    def _run(self):
        conn = None
        while not self._stop.is_set():
            i = self.next_id
            self.next_id += 1
            t_start = time.monotonic()
            try:
                if conn is None:
                    conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked (id) VALUES (%s)", (i,))
                self.acked.append((i, time.monotonic()))
                self.attempts.append((t_start, self.acked[-1][1], True))
            except psycopg2.Error as e:
                self.attempts.append((t_start, time.monotonic(), False))
                self.failures.append((time.monotonic(), getattr(e, "pgcode", None),
                                      str(e).strip().splitlines()[0][:160] if str(e).strip()
                                      else type(e).__name__))
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                time.sleep(0.05)
            time.sleep(WRITE_INTERVAL_S)
        if conn is not None:
            try:
                conn.close()
            except psycopg2.Error:
                pass

    def stop(self, timeout=10):
        """Returns False if the thread is still stuck in a statement (the caller then stops
        the proxy, which ends it)."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_acks_after(self, t, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for _, ta in self.acked if ta > t) >= n:
                return True
            time.sleep(0.05)
        return False

    def figures(self, t0):
        """Figures across the fault at t0. The write window runs from the start of the
        first disrupted statement (one that failed, or took > 100 ms: held) ending after
        t0, to the first acknowledgement at or after its end."""
        acks = list(self.acked)
        attempts = list(self.attempts)
        disrupted = [a for a in attempts
                     if a[1] > t0 and (not a[2] or a[1] - a[0] > HELD_S)]
        window = None
        if disrupted:
            first = disrupted[0]
            ends = [a[1] for a in attempts if a[2] and a[1] >= first[1]]
            window = (ends[0] - first[0]) if ends else None
        before = [ta for _, ta in acks if ta <= t0]
        after = [ta for _, ta in acks if ta > t0]
        seq = before[-1:] + after
        max_gap = max((b - a for a, b in zip(seq, seq[1:])), default=None)
        failed = [f for f in self.failures if f[0] > t0]
        return {
            "write_unavailable_s": r2(window) if disrupted else 0.0,
            "max_commit_gap_s": r2(max_gap),
            "failed_statements": len(failed),
            "failures": [{"t_s": r2(f[0] - t0), "sqlstate": f[1], "msg": f[2]}
                         for f in failed[:20]],
            "acked_before_fault": len(before),
            "acked_after_fault": len(after),
        }

    def acked_ids(self):
        return {i for i, _ in self.acked}


def r2(v):
    return None if v is None else round(v, 2)


# ---------------------------------------------------------------- servers

def in_recovery(node):
    """True/False, or None when the node does not answer within 1 s."""
    try:
        c = psycopg2.connect(host="127.0.0.1", port=node.port, user="postgres",
                             dbname="postgres", connect_timeout=1)
        try:
            c.autocommit = True
            with c.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                return cur.fetchone()[0]
        finally:
            c.close()
    except psycopg2.Error:
        return None


def wait_new_primary(cluster, timeout):
    """Polls the standbys directly; returns (node index, monotonic time) or (None, None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in cluster.nodes[1:]:
            if in_recovery(n) is False:
                return n.index, time.monotonic()
        time.sleep(0.1)
    return None, None


def follows(standby, primary, timeout=5):
    """Whether `standby`'s WAL receiver streams from `primary` (checked on the standby)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            out = standby.psql("SELECT sender_port || '|' || status FROM pg_stat_wal_receiver",
                               timeout=5).strip()
            if out == f"{primary.port}|streaming":
                return True
        except HarnessError:
            pass
        time.sleep(0.2)
    return False


def ids_on(node):
    out = node.psql("SELECT id FROM acked", timeout=20)
    return {int(x) for x in out.split()} if out.strip() else set()


# ---------------------------------------------------------------- pgpool-II

FAILOVER_SH = """#!/bin/sh
# failover_command '%d %h %p %m %H %r %P'
echo "$(date +%T.%N) failover failed=$1 new_main=$4 ($5:$6) old_primary=$7" >> {dir}/scripts.log
[ "$1" = "$7" ] || exit 0          # a standby failed: nothing to promote
[ "$4" -ge 0 ] 2>/dev/null || exit 0
PGCONNECT_TIMEOUT=5 psql -X -q -h "$5" -p "$6" -U postgres -d postgres \\
  -c 'SELECT pg_promote()' >> {dir}/scripts.log 2>&1
"""

FOLLOW_SH = """#!/bin/sh
# follow_primary_command '%d %h %p %m %H %r %P'
echo "$(date +%T.%N) follow node=$1 ($2:$3) new_primary=$4 ($5:$6) old_primary=$7" >> {dir}/scripts.log
[ "$1" = "$4" ] && exit 0
[ "$1" = "$7" ] && exit 0          # the failed old primary: leave it detached
PGCONNECT_TIMEOUT=3 psql -X -q -h "$2" -p "$3" -U postgres -d postgres \\
  -c "ALTER SYSTEM SET primary_conninfo = 'host=$5 port=$6 user=postgres application_name=standby$1'" \\
  -c 'SELECT pg_reload_conf()' >> {dir}/scripts.log 2>&1 || exit 1
PCPPASSFILE={dir}/pcppass pcp_attach_node -h {dir} -p {pcp_port} -U postgres -w -n "$1" \\
  >> {dir}/scripts.log 2>&1
"""


class FailoverPgPool(PgPool):
    """bench.PgPool with health checks, failover_command and follow_primary_command."""

    def __init__(self, cluster):
        super().__init__(cluster, num_init_children=16)
        d = self.dir
        with open(self.conf) as f:
            text = f.read()
        pcp_port = int(re.search(r"(?m)^pcp_port = (\d+)", text).group(1))
        for name, body in (("failover.sh", FAILOVER_SH), ("follow.sh", FOLLOW_SH)):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(body.format(dir=d, pcp_port=pcp_port))
            os.chmod(path, 0o755)
        with open(os.path.join(d, "pcp.conf"), "w") as f:
            f.write("postgres:" + hashlib.md5(b"pcpbench").hexdigest() + "\n")
        with open(os.path.join(d, "pcppass"), "w") as f:
            f.write(f"*:{pcp_port}:postgres:pcpbench\n")
        os.chmod(os.path.join(d, "pcppass"), 0o600)
        settings = {k: ("on" if v is True else v) for k, v in DETECTION.items()}
        settings.update({
            "failover_command": f"'{d}/failover.sh %d %h %p %m %H %r %P'",
            "follow_primary_command": f"'{d}/follow.sh %d %h %p %m %H %r %P'",
            "health_check_user": "'postgres'", "sr_check_user": "'postgres'",
            "log_min_messages": "log",
        })
        for k, v in settings.items():
            line = f"{k} = {v}"
            text, n = re.subn(rf"(?m)^{k} = .*$", line, text)
            if n == 0:
                text += line + "\n"
        with open(self.conf, "w") as f:
            f.write(text)

    def scripts_log(self):
        try:
            with open(os.path.join(self.dir, "scripts.log")) as f:
                return f.read()
        except OSError:
            return ""


def start_proxy(name, cluster, binary):
    if name == "pgpilot":
        return Pgpilot(cluster, extra_conf=dict(DETECTION, **PGPILOT_EXTRA), binary=binary)
    p = FailoverPgPool(cluster)
    try:
        p.start()
    except BaseException:
        p.stop()
        raise
    return p


def stop_proxy(proxy):
    try:
        proxy.stop()
    except Exception as e:  # noqa: BLE001 - keep cleaning up
        print(f"stopping proxy: {e}", file=sys.stderr)


# ---------------------------------------------------------------- scenarios

def scenario_primary_fault(cluster, proxy, w, kind):
    res = {}
    pids = []
    t0 = time.monotonic()
    if kind == "kill":
        cluster.node(0).kill(signal.SIGKILL)
    else:
        pids = cluster.node(0).signal_all(signal.SIGSTOP)
    try:
        new, t_new = wait_new_primary(cluster, 30)
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    res["new_primary"] = new
    res["new_primary_after_s"] = r2(t_new - t0) if new is not None else None
    ok = w.wait_acks_after(t0, 50, timeout=30)
    res["writes_resumed"] = ok
    return res, t0, new


def scenario_sync_standby(cluster, w):
    res = {}
    t0 = time.monotonic()
    cluster.node(1).kill(signal.SIGKILL)
    # 10 acknowledgements (~0.1 s of normal traffic): the statement in flight at the kill
    # may still be acknowledged before the primary notices.
    if not w.wait_acks_after(t0, 10, timeout=STALL_BOUND_S):
        res["stalled_beyond_bound"] = True
        log(f"  commits still stalled after {STALL_BOUND_S} s: restarting standby1")
        cluster.node(1).start()
    else:
        res["stalled_beyond_bound"] = False
    res["writes_resumed"] = w.wait_acks_after(t0, 50, timeout=20)
    return res, t0


def run_one(proxy_name, scenario, binary):
    sync = SYNC_ONLY if scenario == "sync-only" else SYNC_BOTH
    res = {"proxy": proxy_name, "scenario": scenario, "synchronous_standby_names": sync}
    with Cluster(num_standbys=2, sync_standby_names=sync) as c:
        log(f"  cluster in {c.dir}")
        c.primary.psql("CREATE TABLE acked (id bigint PRIMARY KEY, "
                       "port int NOT NULL DEFAULT inet_server_port())")
        c.wait_replay()
        proxy = start_proxy(proxy_name, c, binary)
        log(f"  {proxy_name} on port {proxy.port} in {proxy.dir}")
        w = None
        try:
            w = Writer(proxy.port)
            if not w.wait_acks_after(0, 50, timeout=20):
                raise HarnessError(f"{proxy_name}: no writes before the fault: "
                                   f"{w.failures[-3:]}")
            if scenario in ("kill", "stop"):
                extra, t0, new = scenario_primary_fault(c, proxy, w, scenario)
            else:
                extra, t0 = scenario_sync_standby(c, w)
                new = 0
            res.update(extra)
            if not w.stop():
                res["writer_stuck"] = True
                stop_proxy(proxy)
                w.stop(timeout=10)
            res.update(w.figures(t0))
            if new is not None:
                missing = w.acked_ids() - ids_on(c.node(new))
                res["lost_acked_writes"] = len(missing)
                res["lost_ids_sample"] = sorted(missing)[:10]
            if scenario in ("kill", "stop") and new is not None:
                res["other_standby_follows"] = follows(c.node(3 - new), c.node(new))
            res["acked_total"] = len(w.acked)
        finally:
            if w is not None:
                w.stop(timeout=1)
            if isinstance(proxy, FailoverPgPool):
                res["pgpool_scripts_log"] = proxy.scripts_log()[-3000:]
            else:
                res["pgpilot_events"] = [ln for ln in proxy.log_text().splitlines()
                                         if re.search(r"failover|sync_to_async|detach", ln)][:20]
            stop_proxy(proxy)
    return res


# ---------------------------------------------------------------- report

ROWS = [
    ("kill", "kill -9 primary", [("write_unavailable_s", "writes unavailable (s)"),
                                 ("new_primary_after_s", "new primary after (s)"),
                                 ("max_commit_gap_s", "longest commit gap (s)"),
                                 ("failed_statements", "failed statements"),
                                 ("lost_acked_writes", "lost acknowledged writes"),
                                 ("other_standby_follows", "other standby follows")]),
    ("stop", "SIGSTOP primary", [("new_primary_after_s", "new primary after (s)"),
                                 ("write_unavailable_s", "writes unavailable (s)"),
                                 ("max_commit_gap_s", "longest commit gap (s)"),
                                 ("failed_statements", "failed statements"),
                                 ("lost_acked_writes", "lost acknowledged writes"),
                                 ("other_standby_follows", "other standby follows")]),
    ("sync", "kill -9 sync standby (FIRST 1 of 2)",
     [("max_commit_gap_s", "longest commit gap (s)"), ("failed_statements", "failed statements")]),
    ("sync-only", "kill -9 only sync standby",
     [("max_commit_gap_s", "longest commit gap (s)"), ("failed_statements", "failed statements")]),
]


def cell(r, key):
    if r is None:
        return "-"
    if r.get("error"):
        return "ERROR"
    v = r.get(key)
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if key == "max_commit_gap_s" and r.get("stalled_beyond_bound"):
        return f">= {STALL_BOUND_S} (held)"
    return str(v)


def table(results):
    by = {(r["proxy"], r["scenario"]): r for r in results}
    head = f"{'scenario':<36} {'figure':<26} {'pgpilot':>10} {'pgpool-II':>16} {'pgpool/pgpilot':>14}"
    lines = [head, "-" * len(head)]
    for sc, title, metrics in ROWS:
        if not any((p, sc) in by for p in PROXIES):
            continue
        for j, (key, label) in enumerate(metrics):
            a, b = by.get(("pgpilot", sc)), by.get(("pgpool", sc))
            ca, cb = cell(a, key), cell(b, key)
            ratio = "-"
            try:
                va, vb = float(a[key]), float(b[key])
                if va > 0 and key.endswith("_s"):
                    ratio = f"{vb / va:.1f}x"
            except (TypeError, KeyError, ValueError):
                pass
            if ratio != "-" and b.get("stalled_beyond_bound"):
                ratio = ">=" + ratio
            lines.append(f"{title if j == 0 else '':<36} {label:<26} {ca:>10} {cb:>16} {ratio:>14}")
    lines.append("(times in seconds; ratio > 1: pgpool-II takes longer)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "build/release/src/pgpilot"))
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--results-dir", default=os.path.join(REPO, "bench", "results"))
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    proxies = [p for p in args.proxies.split(",") if p]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for p in proxies:
        if p not in PROXIES:
            ap.error(f"unknown proxy {p!r}")
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    if "pgpilot" in proxies and not os.access(args.binary, os.X_OK):
        ap.error(f"pgpilot binary not found: {args.binary}")

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(s, on_signal)
    signal.alarm(GLOBAL_BUDGET_S)
    started = datetime.datetime.now().astimezone()
    results = []
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine_info(),
              "git": git_rev(), "binary": os.path.realpath(args.binary),
              "detection": DETECTION, "pgpilot_extra": PGPILOT_EXTRA, "results": results}
    status = 0
    try:
        for sc in scenarios:
            for px in proxies:
                log(f"{px}: {sc} ...")
                try:
                    r = run_one(px, sc, args.binary)
                except (HarnessError, psycopg2.Error, subprocess.SubprocessError, OSError) as e:
                    r = {"proxy": px, "scenario": sc, "error": str(e)[:2000]}
                    status = 1
                    print(f"!! {px} {sc}: {e}", file=sys.stderr)
                results.append(r)
                log(f"{px}: {sc}: " + ", ".join(
                    f"{k}={r.get(k)}" for k in ("new_primary_after_s", "write_unavailable_s",
                                                "max_commit_gap_s", "failed_statements",
                                                "lost_acked_writes", "error") if k in r))
        report["table"] = table(results)
        print()
        print(f"failover benchmark {started:%Y-%m-%d %H:%M %Z}, git {report['git']}, "
              f"{report['machine'].get('cpus')} CPUs")
        print(report["table"])
    except Stop as s:
        print(f"\n{s}: stopping", file=sys.stderr)
        report["interrupted"] = str(s)
        status = 130
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if results:
            os.makedirs(args.results_dir, exist_ok=True)
            path = os.path.join(args.results_dir, f"failover-{started:%Y%m%d-%H%M%S}.json")
            with open(path, "w") as f:
                json.dump(report, f, indent=2)
            print(f"results: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
