"""FAULTS.md 3, 4, 5: a hung primary (SIGSTOP) is failed over only when it stays hung
longer than the health-check budget, exactly once, and never gets writes again; a primary
that is merely busy (100% CPU) is never failed over. health_check_period 1 s and
health_check_timeout 2 s throughout — the values with which pgpool-II 4.3 detaches a live,
loaded primary."""

import multiprocessing
import os
import signal
import subprocess
import time

from harness.cluster import PG_BIN, Cluster
from harness.pgpilot import Pgpilot

from faultlib import (Writer, conf, events, ids_on, own_ids, pool_nodes, primary_of,
                      read_only_errors, report, setup_table, wait_for)


def _burn(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


def test_short_hang_no_failover_long_hang_fails_over_once():
    with Cluster(num_standbys=2, sync_standby_names="FIRST 1 (standby1, standby2)") as c, \
            Pgpilot(c, extra_conf=conf()) as p:
        setup_table(c.primary)
        # Shorter than the budget (a timed-out check is always retried once: 2 x 2 s).
        with Writer(p) as w:
            w.wait_acks(30)
            pids = c.node(0).signal_all(signal.SIGSTOP)
            time.sleep(1.5)
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            time.sleep(5)
            w.wait_acks(30)
        assert primary_of(p) == 0
        assert not events(p, "failover"), events(p, "failover")
        assert not w.failures, w.failures
        report("SIGSTOP primary 1.5 s", failovers=0, failed_statements=len(w.failures),
               max_commit_gap_s=round(w.max_gap(), 2))

        # Longer than the budget: one failover; the old primary, resumed, gets nothing.
        with Writer(p) as w:
            w.wait_acks(30)
            # Stopping every process takes a /proc scan (tens of ms on a busy box) while
            # writes go on: the hang starts when it is done.
            pids = c.node(0).signal_all(signal.SIGSTOP)
            t_stop = time.monotonic()
            try:
                new = wait_for(lambda: (primary_of(p) or 0) or None, 30, "failover")
                t_new = time.monotonic()
            finally:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
            w.wait_acks(50, timeout=30)
            time.sleep(3)  # the old primary is running again meanwhile
        # An acknowledgement already on its way can still be recorded after t_stop: the
        # window is the longest pause between acknowledgements around the hang.
        _, failed_after = w.window_after(t_stop)
        report("SIGSTOP primary until failover", detection_and_promotion_s=round(t_new - t_stop, 2),
               write_unavailable_s=round(w.max_gap(t_stop), 2),
               failed_statements=len(failed_after))
        assert new in (1, 2)
        assert len(events(p, "failover done")) == 1
        nodes = pool_nodes(p)
        assert nodes[0]["status"] == "down"
        assert not read_only_errors(w)
        missing = w.acked_ids() - ids_on(c.node(new))
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
        # The writer's ids increase: every row the old primary holds comes before the first
        # one written on the new primary, and nothing acknowledged after the failover is on it.
        old_rows = ids_on(c.node(0))
        assert max(old_rows) < min(own_ids(c.node(new))), "the old primary took writes"
        assert not ({i for i, t in w.acked if t > t_new} & old_rows)


def test_primary_under_full_cpu_load_is_not_failed_over():
    with Cluster(num_standbys=1) as c, Pgpilot(c, extra_conf=conf()) as p:
        primary = c.node(0)
        subprocess.run([f"{PG_BIN}/pgbench", "-i", "-s", "2", "-q", "-h", "127.0.0.1", "-p",
                        str(primary.port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True, timeout=120)
        burners = [multiprocessing.Process(target=_burn, args=(25,)) for _ in range(4)]
        for b in burners:
            b.start()
        try:
            # 16 clients straight at the primary and 8 through pgpilot saturate both cores.
            direct = subprocess.Popen(
                [f"{PG_BIN}/pgbench", "-n", "-c", "16", "-j", "2", "-T", "20", "-h",
                 "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "postgres"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            via = subprocess.run(
                [f"{PG_BIN}/pgbench", "-n", "-c", "8", "-j", "2", "-T", "20", "-h", p.host,
                 "-p", str(p.port), "-U", "postgres", "postgres"],
                capture_output=True, text=True, timeout=120)
            direct.communicate(timeout=120)
        finally:
            for b in burners:
                b.join(timeout=60)
        assert via.returncode == 0, via.stderr[-2000:]
        assert "number of failed transactions: 0" in via.stdout or \
            "failed" not in via.stdout, via.stdout
        assert primary_of(p) == 0
        assert pool_nodes(p)[0]["status"] == "up"
        assert not events(p, "failover"), events(p, "failover")
        assert not events(p, "detach"), events(p, "detach")
        slow = [ln for ln in p.log_text().splitlines() if "health check of node" in ln]
        report("primary at 100% CPU", failovers=0, slow_health_checks=len(slow))
