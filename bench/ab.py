#!/usr/bin/python3
"""Interleaved A/B rounds: short pgbench -S runs against several proxies in turn, medians.

    bench/ab.py --rounds 5 --duration 6 \\
        off=build/release/src/pgpilot \\
        'route=build/release/src/pgpilot:load_balance_mode=on;backend_weight1=0;backend_weight2=0' \\
        bouncer=pgbouncer

Each target is NAME=BINARY[:key=value;key=value] (a pgpilot binary with extra settings on
top of bench.py's PGPILOT_CONF), NAME=pgbouncer or NAME=direct (pgbench straight to the
primary). With --unix, pgbench reaches every target over its Unix-domain socket and the
proxies reach PostgreSQL over the cluster's socket directory. One cluster (primary + 2 standbys,
pgbench -s 10) serves every target; each round runs `pgbench -S -M simple -c 32 -j 2`
(`--mode tpcb`: the TPC-B-like script with -c 16) for `--duration` seconds against every target in turn, and the medians of tps and of
proxy CPU seconds per 100k transactions are printed at the end, and for every target
after the first the median of its per-round ratios to the first. On a machine whose speed
drifts between runs (docs/benchmarks.md), round-robin medians compare builds and settings
far better than one run each. Each line also splits the proxy's CPU into user and system time, gives
its context switches per transaction (voluntary: it waited for events; involuntary: it was
preempted) and how busy the whole machine was (all CPUs, not idle, /proc/stat). Not part of CI; needs what bench/run_bench.sh needs.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "bench"))

import bench  # noqa: E402
from harness import procs  # noqa: E402
from harness.cluster import Cluster  # noqa: E402
from harness.pgpilot import Pgpilot  # noqa: E402


class Direct:
    """pgbench straight to the primary (no proxy: no proxy CPU)."""

    def __init__(self, cluster, unix):
        self.port = cluster.primary.port
        self.pid = None
        self.socket_dir = cluster.dir if unix else None

    def stop(self):
        pass


def start(cluster, spec, unix):
    if spec == "direct":
        return Direct(cluster, unix)
    if spec == "pgbouncer":
        d = bench.PgBouncer(cluster, unix=unix)
        d.start()
        return d
    binary, _, settings = spec.partition(":")
    if "debug" in os.path.realpath(binary).split(os.sep):
        raise SystemExit("refusing to benchmark a debug (ASan) build")
    extra = dict(kv.split("=", 1) for kv in settings.split(";") if kv)
    socket_dir = None
    if unix:
        socket_dir = tempfile.mkdtemp(prefix="pgpilot-ab-")
        extra["unix_socket_directories"] = socket_dir
        for n in cluster.nodes:
            extra[f"backend_hostname{n.index}"] = cluster.dir
    p = Pgpilot(cluster, binary=os.path.abspath(binary),
                extra_conf=dict(bench.PGPILOT_CONF, **extra))
    p.socket_dir = socket_dir
    return p


def cpu_seconds(d):
    """(user, system) CPU seconds of the proxy."""
    return bench.tree_cpu_seconds(d.pid, split=True) if d.pid else (0.0, 0.0)


def machine_idle():
    """(idle + iowait, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[3] + v[4], sum(v)


def switches(d):
    """(voluntary, involuntary) context switches of the proxy's threads so far."""
    vol = invol = 0
    if not d.pid:
        return vol, invol
    task_dir = f"/proc/{d.pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return vol, invol


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=6, help="seconds per pgbench run")
    ap.add_argument("--mode", choices=["select", "tpcb"], default="select",
                    help="select: pgbench -S -c 32; tpcb: the TPC-B-like script, -c 16")
    ap.add_argument("--unix", action="store_true",
                    help="pgbench reaches every target over its Unix socket, and the proxies "
                         "reach PostgreSQL over the cluster's socket directory")
    ap.add_argument("targets", nargs="+",
                    help="NAME=BINARY[:k=v;k=v], NAME=pgbouncer or NAME=direct")
    args = ap.parse_args()
    targets = [t.split("=", 1) for t in args.targets]
    cluster = Cluster(num_standbys=2, extra_conf=bench.CLUSTER_CONF)
    daemons = {}
    try:
        cluster.start()
        subprocess.run([bench.PGBENCH, "-i", "-s", "10", "-q", "-h", "127.0.0.1", "-p",
                        str(cluster.primary.port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True, timeout=300, env=procs.clean_env())
        cluster.wait_replay(timeout=120)
        for name, spec in targets:
            daemons[name] = start(cluster, spec, args.unix)
        bench.pgbench(cluster.primary.port, ["-S", "-c", "8", "-j", "2", "-T", "4"], timeout=60)
        results = {name: [] for name, _ in targets}
        for r in range(args.rounds):
            for name, _ in targets:
                d = daemons[name]
                cpu0, sw0, busy0 = cpu_seconds(d), switches(d), machine_idle()
                load = ["-S", "-c", "32"] if args.mode == "select" else ["-c", "16"]
                rc, out, _ = bench.pgbench(d.port, [*load, "-M", "simple", "-j", "2",
                                                    "-T", str(args.duration)],
                                           timeout=args.duration + 60,
                                           host=d.socket_dir or "127.0.0.1")
                cpu1, sw1, busy1 = cpu_seconds(d), switches(d), machine_idle()
                user, cpu = cpu1[0] - cpu0[0], sum(cpu1) - sum(cpu0)
                busy = 100 - 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
                p = bench.parse_pgbench(out)
                if rc != 0 or not p.get("transactions"):
                    raise SystemExit(f"{name}: pgbench failed:\n{out[-2000:]}")
                per100k = 1e5 * cpu / p["transactions"]
                user100k = 1e5 * user / p["transactions"]
                vol, invol = ((b - a) / p["transactions"] for a, b in zip(sw0, sw1))
                results[name].append((p["tps"], per100k, vol, invol, user100k, busy))
                print(f"round {r} {name:<12} tps {p['tps']:8.0f}  CPU s/100k tx {per100k:5.2f}"
                      f" (user {user100k:4.2f})  switches/tx {vol:.3f} vol {invol:.3f} invol"
                      f"  machine busy {busy:3.0f}%", flush=True)
        print("---- medians")
        base = targets[0][0]
        for name, v in results.items():
            med = [statistics.median(x[i] for x in v) for i in range(6)]
            line = (f"{name:<12} tps {med[0]:8.0f}  CPU s/100k tx {med[1]:5.2f} (user {med[4]:4.2f})"
                    f"  switches/tx {med[2]:.3f} vol {med[3]:.3f} invol  machine busy {med[5]:3.0f}%")
            if name != base:
                # Paired by round: the drift of the machine hits both runs of a round alike.
                b = results[base]
                tps_r = statistics.median(x[0] / y[0] for x, y in zip(v, b))
                line += f"   per round vs {base}: tps x{tps_r:.3f}"
                if all(y[1] > 0 for y in b):  # no CPU ratio against `direct`
                    cpu_r = statistics.median(x[1] / y[1] for x, y in zip(v, b))
                    line += f", CPU/tx x{cpu_r:.3f}"
            print(line)
    finally:
        for d in daemons.values():
            try:
                d.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                print(f"stop: {e}", file=sys.stderr)
            if isinstance(d, Pgpilot) and d.socket_dir:
                shutil.rmtree(d.socket_dir, ignore_errors=True)
        cluster.stop()


if __name__ == "__main__":
    main()
