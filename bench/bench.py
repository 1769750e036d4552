#!/usr/bin/python3
"""pgpilot benchmark: pgbench through pgpilot, PgBouncer and pgpool-II vs. direct.

    bench/run_bench.sh [--duration 20] [--quick] [--binary PATH] [--clients 32]

One run starts a PostgreSQL 15 cluster (primary + 2 streaming standbys, max_connections
300) with the test harness, loads `pgbench -i -s 10`, starts pgpilot (release build),
PgBouncer (pool_mode=transaction) and pgpool-II (streaming_replication, load balancing
off) in front of it, plus pgpilot with load_balance_mode = on twice (pgpilot-route: all
weight on the primary, i.e. the cost of routing alone; pgpilot-lb: reads spread over the
primary and both standbys) and pgpool-II with load_balance_mode = on (pgpool-lb, the
same three weights), and runs the same pgbench loads against every target:

    select-simple    pgbench -S -c 32 -j 2 -M simple      (main figure)
    select-prepared  pgbench -S -c 32 -j 2 -M prepared    (n/a for PgBouncer: transaction
                                                           mode cannot do prepared statements)
    tpcb             pgbench    -c 16 -j 2 -M simple      (TPC-B-like default script)

For each mode the targets run interleaved: direct, pgpilot, pgbouncer, pgpool, direct
again (the two direct figures show the run-to-run noise). For the proxies the CPU time
(utime+stime, summed over the proxy's whole process tree: pgpool forks a process per
client) is sampled before and after each run and reported per 100k transactions.

Results are printed as a table and saved as JSON in bench/results/<timestamp>.json.
Every wait is bounded; every process started here is stopped on exit, Ctrl-C, SIGTERM
or error (and by the harness's reaper processes if this script is SIGKILLed).
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from harness import procs  # noqa: E402
from harness.cluster import Cluster, tail, wait_until  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.pgpilot import Pgpilot  # noqa: E402
from harness.ports import free_port, port_accepts  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
PGBENCH = "/usr/bin/pgbench"
PGBOUNCER = "/usr/sbin/pgbouncer"
PGPOOL = "/usr/sbin/pgpool"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_ORDER = ["direct", "pgpilot", "pgpilot-route", "pgpilot-lb", "pgbouncer", "pgpool",
                "pgpool-lb", "direct2"]
PROXIES = ["pgpilot", "pgpilot-route", "pgpilot-lb", "pgbouncer", "pgpool", "pgpool-lb"]
# pgpilot with load_balance_mode = on: "route" keeps every statement on the primary
# (standby weights 0), so against "pgpilot" it measures the cost of routing alone; "lb"
# spreads reads over the primary and both standbys (weights 1/1/1).
PGPILOT_VARIANTS = {
    "pgpilot-route": {"load_balance_mode": "on", "backend_weight1": 0, "backend_weight2": 0},
    "pgpilot-lb": {"load_balance_mode": "on"},
}
GLOBAL_BUDGET_S = 1200  # hard cap on the whole run (alarm), far above a normal run

# Settings on top of the harness defaults, applied to every node (standbys need
# max_connections >= the primary's).
CLUSTER_CONF = {
    "max_connections": 300,  # every proxy keeps its server connections between runs
    "shared_buffers": "256MB",
    "autovacuum": False,  # keeps background work out of the measured runs
}

# pgpilot settings on top of the harness defaults (listen address, port, backends, pid/log
# files, sr/health check users).
PGPILOT_CONF = {
    "log_min_messages": "warning",
    "worker_threads": 0,   # one per core
    "max_pool": 64,
}


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- CPU accounting

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _children_map():
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry)[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_cpu_seconds(root_pid, split=False):
    """utime+stime+cutime+cstime summed over root_pid and all its live descendants
    (split: the pair (user, system) instead of their sum).

    A live process's time is in its own utime/stime; an exited-and-reaped child's time
    moved into its parent's cutime/cstime; so the sum counts every process exactly once
    and does not drop when a pgpool child exits between two samples."""
    kids = _children_map()
    user = system = 0
    stack = [root_pid]
    seen = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            f = _stat_fields(pid)
            # fields[0] is stat field 3; utime=14, stime=15, cutime=16, cstime=17
            u, s, cu, cs = (int(x) for x in f[11:15])
        except (OSError, IndexError, ValueError):
            continue
        user += u + cu
        system += s + cs
        stack.extend(kids.get(pid, []))
    if split:
        return user / CLK_TCK, system / CLK_TCK
    return (user + system) / CLK_TCK


def machine_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat, to see how busy the machine was."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    # already in user. Busy = time spent running tasks (irq/softirq time is charged to no
    # task, so it stays out of both sides of the "other" figure).
    busy = v[0] + v[1] + v[2]
    return busy, sum(v[:8])


def cluster_cpu(cluster):
    """CPU seconds of every PostgreSQL node (postmaster trees; backends are reaped by
    their postmaster, so their time stays counted in its cutime)."""
    return sum(tree_cpu_seconds(pid) for pid in (n.pid() for n in cluster.nodes) if pid)


def children_cpu():
    """CPU seconds of our reaped children (pgbench, psql)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tree_size(root_pid):
    kids = _children_map()
    n, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        n += 1
        stack.extend(kids.get(pid, []))
    return n


# ---------------------------------------------------------------- third-party proxies

class _Daemon:
    """A process started in its own temp dir (cwd) and session, stopped with `stop_sig`,
    then SIGKILL, then a sweep of everything whose cwd is in the dir."""

    name = "daemon"
    stop_sig = signal.SIGTERM

    def __init__(self, cluster):
        self.cluster = cluster
        self.port = free_port()
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix=f"pgpilot-bench-{self.name}-")
        uid, gid = procs.pg_user_ids()
        os.chown(self.dir, uid, gid)
        os.chmod(self.dir, 0o700)
        self._reaper = procs.Reaper(self.dir)
        self.out_path = os.path.join(self.dir, "output.log")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _spawn(self, cmd, as_pg_user):
        kw = procs.as_pg_user_kwargs() if as_pg_user else {}
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         env=procs.clean_env(HOME=self.dir),
                                         start_new_session=True, **kw)

    def wait_ready(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with status {self.proc.returncode}\n"
                                   + self.log_tail())
            return port_accepts("127.0.0.1", self.port)
        wait_until(ready, timeout, f"{self.name} to listen on {self.port}", self.log_tail)
        # A real query proves the backend side works, not just the listener.
        r = run_psql_via(self.port, "SELECT 1")
        if r.strip() != "1":
            raise HarnessError(f"{self.name}: SELECT 1 returned {r!r}\n{self.log_tail()}")

    def log_tail(self, lines=30):
        return f"--- {self.out_path} ---\n{tail(self.out_path, lines)}"

    def stop(self, timeout=10):
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    os.kill(self.proc.pid, self.stop_sig)
                    self.proc.wait(timeout)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait(5)
            procs.sweep(self.dir)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self._reaper:
                self._reaper.cancel()
                self._reaper = None


class PgBouncer(_Daemon):
    name = "pgbouncer"
    stop_sig = signal.SIGINT  # "safe shutdown" is SIGINT in 1.18; SIGTERM is immediate

    def __init__(self, cluster, pool_size=40, unix=False):
        """unix: clients connect over <self.dir>/.s.PGSQL.<port> (self.socket_dir) and
        PgBouncer reaches PostgreSQL over the cluster's socket directory."""
        super().__init__(cluster)
        p = cluster.primary
        self.socket_dir = self.dir if unix else None
        server = f"host={cluster.dir}" if unix else "host=127.0.0.1"
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        userlist = os.path.join(self.dir, "userlist.txt")
        with open(userlist, "w") as f:
            f.write('"postgres" ""\n')
        with open(self.ini, "w") as f:
            f.write(f"""[databases]
* = {server} port={p.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir = {self.socket_dir or ""}
auth_type = trust
auth_file = {userlist}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
max_db_connections = 0
pidfile = {self.dir}/pgbouncer.pid
logfile =
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
log_stats = 0
stats_period = 3600
admin_users = postgres
ignore_startup_parameters = extra_float_digits
""")
        for path in (self.ini, userlist):
            os.chown(path, *procs.pg_user_ids())

    def start(self):
        self._spawn([PGBOUNCER, self.ini], as_pg_user=True)  # it refuses to run as root
        self.wait_ready()
        return self

    def version(self):
        return subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.splitlines()[0]


class PgPool(_Daemon):
    name = "pgpool"
    stop_sig = signal.SIGINT  # fast shutdown

    def __init__(self, cluster, num_init_children=64, load_balance=False):
        if load_balance:
            self.name = "pgpool-lb"
        super().__init__(cluster)
        self.conf = os.path.join(self.dir, "pgpool.conf")
        pcp = os.path.join(self.dir, "pcp.conf")
        hba = os.path.join(self.dir, "pool_hba.conf")
        with open(pcp, "w") as f:
            f.write("")
        with open(hba, "w") as f:
            f.write("host all all 127.0.0.1/32 trust\nlocal all all trust\n")
        backends = ""
        for n in cluster.nodes:
            backends += (f"backend_hostname{n.index} = '127.0.0.1'\n"
                         f"backend_port{n.index} = {n.port}\n"
                         f"backend_weight{n.index} = 1\n"
                         f"backend_data_directory{n.index} = '{n.datadir}'\n"
                         f"backend_flag{n.index} = 'ALLOW_TO_FAILOVER'\n"
                         f"backend_application_name{n.index} = '{n.name}'\n")
        d = self.dir
        with open(self.conf, "w") as f:
            f.write(f"""backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{d}'
pcp_listen_addresses = ''
pcp_port = {free_port()}
pcp_socket_dir = '{d}'
wd_ipc_socket_dir = '{d}'
{backends}
num_init_children = {num_init_children}
max_pool = 1
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
connection_cache = on
reserved_connections = 0
load_balance_mode = {'on' if load_balance else 'off'}
statement_level_load_balance = off
sr_check_period = 0
sr_check_user = 'postgres'
sr_check_password = ''
health_check_period = 0
failover_on_backend_error = off
search_primary_node_timeout = 10
enable_pool_hba = off
pool_passwd = ''
allow_clear_text_frontend_auth = off
use_watchdog = off
memory_cache_enabled = off
pid_file_name = '{d}/pgpool.pid'
logdir = '{d}'
log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
client_min_messages = notice
log_connections = off
log_disconnections = off
log_statement = off
log_per_node_statement = off
log_hostname = off
""")
        self.cmd = [PGPOOL, "-n", "-D", "-f", self.conf, "-F", pcp, "-a", hba]

    def start(self):
        # -n: no daemon; -D: discard the node status file (start with every node up).
        self._spawn(self.cmd, as_pg_user=False)
        self.wait_ready(timeout=60)
        # pgpool must have found node 0 as the primary before we measure anything.
        out = run_psql_via(self.port, "SHOW pool_nodes")
        if "primary" not in out:
            raise HarnessError(f"pgpool did not find the primary:\n{out}\n{self.log_tail()}")
        return self

    def version(self):
        r = subprocess.run([PGPOOL, "--version"], capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip()


def run_psql_via(port, sql, timeout=30):
    r = subprocess.run(["/usr/bin/psql", "-X", "-A", "-t", "-q", "-h", "127.0.0.1", "-p",
                        str(port), "-U", "postgres", "-d", "postgres", "-c", sql],
                       capture_output=True, text=True, timeout=timeout,
                       env=procs.clean_env(PGCONNECT_TIMEOUT=10))
    if r.returncode != 0:
        raise HarnessError(f"psql on port {port} failed: {r.stderr}")
    return r.stdout


# ---------------------------------------------------------------- pgbench

MODES = {
    # name: (pgbench args without -T, clients)
    "select-simple": (["-S", "-M", "simple"], 32),
    "select-prepared": (["-S", "-M", "prepared"], 32),
    "tpcb": (["-M", "simple"], 16),
}

_running = []  # pgbench Popen objects to kill on exit


def pgbench(port, args, timeout, host="127.0.0.1"):
    """Runs pgbench against host:port (host may be a Unix socket directory); returns
    (rc, output, timed_out)."""
    cmd = [PGBENCH, "-h", host, "-p", str(port), "-U", "postgres", "-n", *args, "postgres"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=procs.clean_env(),
                         start_new_session=True)
    _running.append(p)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out, False
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate(timeout=10)
        return None, out or "", True
    finally:
        _running.remove(p)


def parse_pgbench(out):
    def num(pattern, cast=float):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else None
    return {
        "tps": num(r"tps = ([0-9.]+) \(without initial connection time\)"),
        "transactions": num(r"number of transactions actually processed: (\d+)", int),
        "failed": num(r"number of failed transactions: (\d+)", int),
        "latency_ms": num(r"latency average = ([0-9.]+) ms"),
        "connect_ms": num(r"initial connection time = ([0-9.]+) ms"),
    }


# ---------------------------------------------------------------- main

def machine_info():
    info = {"hostname": platform.node(), "kernel": platform.release(),
            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu_model"] = m.group(1).strip() if m else None
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return info


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty-src" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def fmt(v, spec, na="n/a"):
    return na if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def print_table(results, args):
    by = {(r["mode"], r["target"]): r for r in results}
    lines = []
    lines.append(f"{'target':<14} {'mode':<16} {'tps':>9} {'vs direct':>9} "
                 f"{'proxy CPU s':>11} {'CPU s/100k tx':>13} {'failed':>6} {'other%':>6}")
    lines.append("-" * len(lines[0]))
    for mode in MODES:
        d1 = by.get((mode, "direct"), {}).get("tps")
        d2 = by.get((mode, "direct2"), {}).get("tps")
        direct = (d1 + d2) / 2 if d1 and d2 else (d1 or d2)
        for target in TARGET_ORDER:
            r = by.get((mode, target))
            if r is None:
                continue
            if r.get("skipped"):
                lines.append(f"{target:<14} {mode:<16} {'n/a':>9} {'':>9} {'':>11} {'':>13} "
                             f"{'':>6}  ({r['skipped']})")
                continue
            if r.get("error"):
                lines.append(f"{target:<14} {mode:<16} {'ERROR':>9}  {r['error']}")
                continue
            vs = ratio(r["tps"], direct) if target in PROXIES else None
            lines.append(f"{target:<14} {mode:<16} {fmt(r['tps'], '9.0f')} "
                         f"{fmt(vs, '9.2f', '-'):>9} {fmt(r.get('proxy_cpu_s'), '11.2f', '-'):>11} "
                         f"{fmt(r.get('cpu_s_per_100k'), '13.2f', '-'):>13} "
                         f"{fmt(r.get('failed'), '6d', '?'):>6} "
                         f"{fmt(r.get('other_cpu_pct'), '6.0f', '?'):>6}")
        lines.append("")
    lines.append("'vs direct' = tps / mean of the two direct runs (direct = before the "
                 "proxies, direct2 = after).")
    lines.append("other% = CPU used during the run by processes outside the benchmark "
                 "(% of all cores): > ~5 means the figures are disturbed.")
    lines.append("")
    # Ratio tables: (column title, target a, target b, field) -> a's figure / b's.
    def ratio_table(columns):
        lines.append(f"{'mode':<16} " + " ".join(f"{title:>{len(title)}}" for title, *_ in columns))
        for mode in MODES:
            cells = []
            for title, a, b, field in columns:
                ra = by.get((mode, a), {}).get(field)
                rb = by.get((mode, b), {}).get(field)
                cells.append(f"{fmt(ratio(ra, rb), f'{len(title)}.2f'):>{len(title)}}")
            lines.append(f"{mode:<16} " + " ".join(cells))

    ratio_table([("tps pgpilot/pgbouncer", "pgpilot", "pgbouncer", "tps"),
                 ("tps pgpilot/pgpool", "pgpilot", "pgpool", "tps"),
                 ("CPU/tx pgpilot/pgbouncer", "pgpilot", "pgbouncer", "cpu_s_per_100k"),
                 ("CPU/tx pgpilot/pgpool", "pgpilot", "pgpool", "cpu_s_per_100k")])
    lines.append("(tps ratio > 1: pgpilot faster; CPU/tx ratio < 1: pgpilot cheaper)")
    lines.append("")
    ratio_table([("routing: tps route/off", "pgpilot-route", "pgpilot", "tps"),
                 ("CPU/tx route/off", "pgpilot-route", "pgpilot", "cpu_s_per_100k"),
                 ("lb: tps pgpilot/pgpool", "pgpilot-lb", "pgpool-lb", "tps"),
                 ("CPU/tx pgpilot/pgpool", "pgpilot-lb", "pgpool-lb", "cpu_s_per_100k")])
    lines.append("(routing: pgpilot-route = load balancing on, every read kept on the primary, "
                 "against pgpilot with routing off;\n lb: reads spread over primary + 2 "
                 "standbys, pgpilot-lb against pgpool-lb)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "build/release/src/pgpilot"),
                    help="pgpilot binary (an optimised build; never the ASan debug build)")
    ap.add_argument("--duration", type=int, default=20, help="seconds per pgbench run")
    ap.add_argument("--quick", action="store_true", help="5 s per run (overrides --duration)")
    ap.add_argument("--scale", type=int, default=10, help="pgbench -i scale")
    ap.add_argument("--workers", type=int, default=0,
                    help="pgpilot worker_threads (0 = one per core)")
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"comma-separated subset of {','.join(MODES)}")
    ap.add_argument("--targets", default=",".join(TARGET_ORDER),
                    help=f"comma-separated subset of {','.join(TARGET_ORDER)}")
    ap.add_argument("--results-dir", default=os.path.join(REPO, "bench", "results"))
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if args.quick:
        args.duration = 5
    modes = [m for m in args.modes.split(",") if m]
    targets = [t for t in args.targets.split(",") if t]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    for t in targets:
        if t not in TARGET_ORDER:
            ap.error(f"unknown target {t!r}")
    if "debug" in os.path.realpath(args.binary).split(os.sep):
        ap.error("refusing to benchmark a debug (ASan) build")
    if not os.access(args.binary, os.X_OK):
        ap.error(f"pgpilot binary not found: {args.binary} (bench/run_bench.sh builds it)")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(GLOBAL_BUDGET_S)

    started = datetime.datetime.now().astimezone()
    cluster = None
    daemons = {}
    results = []
    status = 0
    report = {"started": started.isoformat(timespec="seconds"), "machine": machine_info(),
              "git": git_rev(), "binary": os.path.realpath(args.binary),
              "duration_s": args.duration, "scale": args.scale, "results": results}
    try:
        log(f"starting PostgreSQL 15: primary + 2 standbys ({CLUSTER_CONF}) ...")
        cluster = Cluster(num_standbys=2, extra_conf=CLUSTER_CONF)
        cluster.start()
        p = cluster.primary
        log(f"cluster up (primary 127.0.0.1:{p.port}); pgbench -i -s {args.scale} ...")
        r = subprocess.run([PGBENCH, "-i", "-s", str(args.scale), "-q", "-h", "127.0.0.1",
                            "-p", str(p.port), "-U", "postgres", "postgres"],
                           capture_output=True, text=True, timeout=300, env=procs.clean_env())
        if r.returncode != 0:
            raise HarnessError(f"pgbench -i failed:\n{r.stdout}{r.stderr}")
        cluster.wait_replay(timeout=120)
        report["postgres"] = p.psql("SHOW server_version")

        if "pgpilot" in targets:
            log(f"starting pgpilot ({args.binary}) ...")
            daemons["pgpilot"] = Pgpilot(cluster, extra_conf=dict(PGPILOT_CONF, worker_threads=args.workers),
                                         binary=args.binary)
        for name, extra in PGPILOT_VARIANTS.items():
            if name in targets:
                log(f"starting {name} ({extra}) ...")
                daemons[name] = Pgpilot(cluster, binary=args.binary, extra_conf=dict(
                    PGPILOT_CONF, worker_threads=args.workers, sr_check_period=1, **extra))
        if "pgbouncer" in targets:
            log("starting PgBouncer (transaction pooling, default_pool_size=40) ...")
            daemons["pgbouncer"] = PgBouncer(cluster)
            daemons["pgbouncer"].start()
        if "pgpool" in targets:
            log("starting pgpool-II (streaming_replication, load_balance_mode=off) ...")
            daemons["pgpool"] = PgPool(cluster)
            daemons["pgpool"].start()
        if "pgpool-lb" in targets:
            log("starting pgpool-II with load_balance_mode=on (weights 1/1/1) ...")
            daemons["pgpool-lb"] = PgPool(cluster, load_balance=True)
            daemons["pgpool-lb"].start()
        report["versions"] = {k: d.version() for k, d in daemons.items()
                              if hasattr(d, "version")}
        ports = {"direct": p.port, "direct2": p.port,
                 **{k: v.port for k, v in daemons.items()}}

        # Warm the caches (table + index in shared_buffers) before the first measurement.
        log("warm-up: 5 s pgbench -S direct")
        pgbench(p.port, ["-S", "-c", "8", "-j", "2", "-T", "5"], timeout=60)

        # Idle cost: CPU the proxies burn with no client at all (timers, health checks),
        # so a low-tps run's CPU/tx can be read against it.
        idle0 = {k: tree_cpu_seconds(d.pid) for k, d in daemons.items()}
        time.sleep(5)
        report["idle_cpu_pct"] = {k: round(100 * (tree_cpu_seconds(d.pid) - idle0[k]) / 5, 2)
                                  for k, d in daemons.items()}
        log(f"idle proxy CPU over 5 s (% of one core): {report['idle_cpu_pct']}")

        total = sum(1 for m in modes for t in targets
                    if not (t == "pgbouncer" and m == "select-prepared"))
        log(f"{total} runs of {args.duration} s each (~{total * (args.duration + 3) // 60 + 1} min)")
        for mode in modes:
            margs, clients = MODES[mode]
            for target in targets:
                res = {"mode": mode, "target": target, "clients": clients}
                results.append(res)
                if target == "pgbouncer" and mode == "select-prepared":
                    res["skipped"] = "transaction pooling: no prepared statements in 1.18"
                    continue
                if mode == "tpcb":
                    # pgbench's own pre-run vacuum, done directly so no proxy pays for it
                    p.psql("VACUUM pgbench_branches; VACUUM pgbench_tellers; "
                           "TRUNCATE pgbench_history", timeout=120)
                pargs = [*margs, "-c", str(clients), "-j", "2", "-T", str(args.duration)]
                res["pgbench_args"] = pargs
                proxy = daemons.get(target)
                cpu0 = tree_cpu_seconds(proxy.pid) if proxy else None
                busy0 = machine_busy()
                ours0 = cluster_cpu(cluster) + children_cpu() + (
                    tree_cpu_seconds(proxy.pid) if proxy else 0)
                t0 = time.monotonic()
                rc, out, timed_out = pgbench(ports[target], pargs, timeout=args.duration + 60)
                res["wall_s"] = round(time.monotonic() - t0, 2)
                busy1 = machine_busy()
                ours1 = cluster_cpu(cluster) + children_cpu() + (
                    tree_cpu_seconds(proxy.pid) if proxy else 0)
                capacity = (busy1[1] - busy0[1]) / CLK_TCK  # CPU-seconds of all cores
                res["machine_cpu_busy_pct"] = round(
                    100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1)
                # CPU used by processes that are not part of this run (other jobs on the
                # machine, interrupts counted as busy): the noise indicator.
                res["other_cpu_pct"] = round(max(0.0, 100 * ((busy1[0] - busy0[0]) / CLK_TCK
                                                           - (ours1 - ours0)) / capacity), 1)
                res["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
                if proxy:
                    res["proxy_cpu_s"] = round(tree_cpu_seconds(proxy.pid) - cpu0, 3)
                    res["proxy_processes"] = tree_size(proxy.pid)
                res.update(parse_pgbench(out))
                res["pgbench_output_tail"] = out.splitlines()[-25:]
                if timed_out or rc != 0 or not res["tps"]:
                    what = "hung (killed after duration+60 s)" if timed_out else f"rc {rc}"
                    res["error"] = f"pgbench {what}"
                    status = 1
                    print(f"!! {target} {mode}: pgbench {what}\n{out[-3000:]}", file=sys.stderr)
                    if proxy:
                        tails = (proxy.log_tails() if isinstance(proxy, Pgpilot)
                                 else proxy.log_tail())
                        res["proxy_log_tail"] = tails[-6000:]
                        print(tails[-6000:], file=sys.stderr)
                        alive = (proxy.is_running() if isinstance(proxy, Pgpilot)
                                 else proxy.proc.poll() is None)
                        res["proxy_alive_after"] = alive
                    continue
                if proxy and res.get("transactions"):
                    res["cpu_s_per_100k"] = round(res["proxy_cpu_s"] / res["transactions"]
                                                  * 100000, 3)
                log(f"{target:<9} {mode:<15} tps {res['tps']:9.0f}"
                    + (f"  proxy CPU {res['proxy_cpu_s']:.2f}s "
                       f"({res.get('cpu_s_per_100k', 0):.2f} s/100k tx)" if proxy else "")
                    + (f"  FAILED {res['failed']}" if res.get("failed") else ""))
        table = print_table(results, args)
        report["table"] = table
        print()
        print(f"pgpilot benchmark {started:%Y-%m-%d %H:%M %Z}, {args.duration} s per run, "
              f"pgbench -s {args.scale}, {report['machine'].get('cpus')} CPUs "
              f"({report['machine'].get('cpu_model')}), git {report['git']}")
        print(table)
    except Stop as s:
        print(f"\n{s}: stopping", file=sys.stderr)
        status = 130
        report["interrupted"] = str(s)
    except (HarnessError, subprocess.SubprocessError, OSError) as e:
        print(f"bench failed: {e}", file=sys.stderr)
        report["error"] = str(e)
        status = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for pb in list(_running):
            pb.kill()
        for name in ("pgpool", "pgbouncer", "pgpilot", *PGPILOT_VARIANTS):
            d = daemons.get(name)
            if d is None:
                continue
            try:
                d.stop()
            except Exception as e:  # noqa: BLE001 - stop everything, report after
                print(f"stopping {name}: {e}", file=sys.stderr)
                status = status or 1
        if cluster is not None:
            cluster.stop()
        if results:
            os.makedirs(args.results_dir, exist_ok=True)
            path = os.path.join(args.results_dir, f"{started:%Y%m%d-%H%M%S}.json")
            report["finished"] = datetime.datetime.now().astimezone().isoformat(
                timespec="seconds")
            with open(path, "w") as f:
                json.dump(report, f, indent=2)
            print(f"results: {path}")
        log("stopped every proxy and PostgreSQL; temp dirs removed")
    return status


if __name__ == "__main__":
    sys.exit(main())
