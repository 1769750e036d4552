#!/usr/bin/python3
"""Where pgpilot's CPU time goes under pgbench -S (called by bench/profile.sh).

    bench/profile.sh [--duration 10] [--mode simple|prepared] [--clients 32] [--tool auto]

Starts a PostgreSQL 15 primary (harness Cluster, no standbys), `pgbench -i -s 1`, pgpilot
(release build, log_min_messages=warning) and `pgbench -S` through it, then:

  perf (default when `perf record` works here): `perf record -F 999 --call-graph dwarf`
      attached to the running pgpilot for --duration seconds, then prints the top
      functions by self time and by inclusive (children) time.
  callgrind (fallback, or --tool callgrind): pgpilot runs under valgrind --tool=callgrind
      for a fixed `pgbench -S -t 2000 -c 4`; prints callgrind_annotate's top functions.

The raw profile is kept in bench/results/profile-<timestamp>.{perf.data,callgrind.out}.
Bounded in time; everything started is stopped on exit, Ctrl-C or error.
"""

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from harness import procs  # noqa: E402
from harness.cluster import Cluster  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.pgpilot import Pgpilot  # noqa: E402

PGBENCH = "/usr/bin/pgbench"


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def perf_works():
    try:
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run(["perf", "record", "-o", os.path.join(d, "p.data"), "-g", "--",
                                "true"], capture_output=True, text=True, timeout=30)
            return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_pgbench(port, mode, clients, extra):
    cmd = [PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", "-S",
           "-M", mode, "-c", str(clients), "-j", "2", *extra, "postgres"]
    log(" ".join(cmd))
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=procs.clean_env(),
                            start_new_session=True)


def finish_pgbench(pb, timeout):
    try:
        out, _ = pb.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pb.kill()
        out, _ = pb.communicate(timeout=10)
        raise HarnessError("pgbench hung through pgpilot:\n" + (out or "")[-3000:])
    if pb.returncode != 0:
        raise HarnessError(f"pgbench failed (rc {pb.returncode}):\n{out[-3000:]}")
    return out


def report_perf(data, top):
    base = ["perf", "report", "-i", data, "--stdio",
            "--percent-limit", "0.7", "-g", "none", "--sort", "symbol"]
    for title, extra in (("self time (--no-children): where the CPU is spent", ["--no-children"]),
                         ("inclusive time (--children): which code paths cost the most",
                          ["--children"])):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=600)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        header = [ln for ln in r.stdout.splitlines() if ln.startswith("# Samples")
                  or ln.startswith("# Event count")]
        print(f"\n==== perf: top {top} by {title} ====")
        for ln in header:
            print(ln)
        for ln in lines[:top]:
            print(ln[:160])
        if "--children" in extra:
            # The asio/std frames above are the same for every handler; pgpilot's own
            # functions say which part of a session the time belongs to.
            own = [ln for ln in lines if "pgpilot::" in ln]
            print(f"\n---- pgpilot's own functions, inclusive ----")
            for ln in own[:15]:
                print(ln[:160])
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                        "--sort", "dso", "--percent-limit", "0.3"],
                       capture_output=True, text=True, timeout=600)
    print("\n==== perf: self time by library (dso) ====")
    for ln in [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")][:15]:
        print(ln[:160])


def syscalls_per_tx(pid, port, mode, clients=8, per_client=1000):
    """strace -f -c on pgpilot during a fixed `pgbench -S -t` (exact transaction count).
    strace slows pgpilot down, but the number of calls per transaction stays the same.
    (perf trace -s was tried first: it lost about half of the events here.)"""
    st = subprocess.Popen(["strace", "-f", "-c", "-p", str(pid)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1)  # let strace attach to every thread
        pb = start_pgbench(port, mode, clients, ["-t", str(per_client)])
        finish_pgbench(pb, 300)
        time.sleep(0.5)
    finally:
        st.send_signal(signal.SIGINT)
        out, _ = st.communicate(timeout=60)
    tx = clients * per_client
    print(f"\n==== syscalls of pgpilot (strace -f -c, pgbench -S -M {mode} -c {clients} "
          f"-t {per_client}: {tx} transactions, {clients} connections) ====")
    rows = []
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls = int(f[3])
            errors = int(f[4]) if len(f) == 6 else 0
            rows.append((f[-1], calls, errors))
    if not rows:
        print(out[-1500:])
        return
    print(f"{'syscall':<16} {'calls':>9} {'errors':>7} {'per tx':>7}")
    for name, calls, errors in sorted(rows, key=lambda r: -r[1])[:10]:
        print(f"{name:<16} {calls:>9} {errors:>7} {calls / tx:>7.2f}")
    print(f"{'total':<16} {sum(r[1] for r in rows):>9} {'':>7} "
          f"{sum(r[1] for r in rows) / tx:>7.2f}   (errors: EAGAIN on speculative reads)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "build/release/src/pgpilot"))
    ap.add_argument("--duration", type=int, default=10, help="seconds of perf sampling")
    ap.add_argument("--mode", default="simple", choices=["simple", "prepared"])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--tool", default="auto", choices=["auto", "perf", "callgrind"])
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--results-dir", default=os.path.join(REPO, "bench", "results"))
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if "debug" in os.path.realpath(args.binary).split(os.sep):
        ap.error("refusing to profile a debug (ASan) build")
    tool = args.tool
    if tool == "auto":
        tool = "perf" if perf_works() else "callgrind"
        if tool == "callgrind":
            log("perf record does not work here; falling back to valgrind --tool=callgrind")
    os.makedirs(args.results_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(900)
    cluster = proxy = pb = perf = None
    wrapper_dir = None
    status = 0
    try:
        log("starting PostgreSQL 15 primary ...")
        cluster = Cluster(num_standbys=0, extra_conf={"max_connections": 100,
                                                      "shared_buffers": "64MB"})
        cluster.start()
        p = cluster.primary
        subprocess.run([PGBENCH, "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(p.port),
                        "-U", "postgres", "postgres"], check=True, capture_output=True,
                       timeout=120, env=procs.clean_env())
        conf = {"log_min_messages": "warning"}
        if tool == "perf":
            proxy = Pgpilot(cluster, extra_conf=conf, binary=args.binary)
            log(f"pgpilot pid {proxy.pid}; warming up 2 s")
            pb = start_pgbench(proxy.port, args.mode, args.clients,
                               ["-T", str(args.duration + 4)])
            time.sleep(2)
            data = os.path.join(args.results_dir, f"profile-{stamp}.perf.data")
            cmd = ["perf", "record", "-F", "999", "--call-graph", "dwarf,8192", "-p",
                   str(proxy.pid), "-o", data, "--", "sleep", str(args.duration)]
            log(" ".join(cmd))
            perf = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            perf_out, _ = perf.communicate(timeout=args.duration + 120)
            if perf.returncode != 0:
                raise HarnessError(f"perf record failed:\n{perf_out}")
            out = finish_pgbench(pb, args.duration + 60)
            pb = None
            print("\n" + "\n".join(ln for ln in out.splitlines()
                                   if ln.startswith(("tps", "number of", "latency"))))
            log(f"perf data: {data}; reporting ...")
            report_perf(data, args.top)
            if shutil.which("strace"):
                syscalls_per_tx(proxy.pid, proxy.port, args.mode)
        else:
            out_file = os.path.join(args.results_dir, f"profile-{stamp}.callgrind.out")
            wrapper_dir = tempfile.mkdtemp(prefix="pgpilot-bench-vg-")
            wrapper = os.path.join(wrapper_dir, "pgpilot-callgrind")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec valgrind --tool=callgrind --quiet "
                        f"--callgrind-out-file={out_file} {args.binary} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            proxy = Pgpilot(cluster, extra_conf=conf, binary=wrapper, timeout=120)
            pb = start_pgbench(proxy.port, args.mode, 4, ["-t", "2000"])
            out = finish_pgbench(pb, 600)
            pb = None
            print("\n" + "\n".join(ln for ln in out.splitlines()
                                   if ln.startswith(("tps", "number of", "latency"))))
            proxy.stop(timeout=60)  # callgrind writes its output at exit
            r = subprocess.run(["callgrind_annotate", "--inclusive=no", out_file],
                               capture_output=True, text=True, timeout=300)
            print(f"\n==== callgrind: top {args.top} functions by self instructions ====")
            print("\n".join(r.stdout.splitlines()[:args.top + 20]))
    except Stop as s:
        print(f"\n{s}: stopping", file=sys.stderr)
        status = 130
    except (HarnessError, subprocess.SubprocessError, OSError) as e:
        print(f"profile failed: {e}", file=sys.stderr)
        if proxy is not None:
            print(proxy.log_tails(), file=sys.stderr)
        status = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in (perf, pb):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if proxy is not None:
            try:
                proxy.stop(timeout=30)
            except HarnessError as e:
                print(f"pgpilot: {e}", file=sys.stderr)
                status = status or 1
        if cluster is not None:
            cluster.stop()
        if wrapper_dir:
            subprocess.run(["rm", "-rf", wrapper_dir], check=False)
    return status


if __name__ == "__main__":
    sys.exit(main())
