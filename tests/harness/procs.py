"""Process helpers: find, signal and reap the processes a harness object started.

Every process the harness starts (postmaster, its backends, pg_basebackup, pgpilot) runs
with its working directory inside the object's temp dir, so "every process whose cwd is
under DIR" finds them all, including orphans of a SIGKILLed postmaster, without tracking
pids or matching names.
"""

import os
import pwd
import signal
import ctypes
import subprocess
import sys
import threading
import time

PG_USER = "postgres"


_PR_SET_CHILD_SUBREAPER = 36
_reaper_thread = None
_reaper_lock = threading.Lock()


def become_subreaper():
    """Makes this process the reaper of orphaned descendants, and starts a thread that
    reaps the ones named "postgres".

    pg_ctl start detaches the postmaster, so it is nobody's child but init's; if init is
    slow to reap (or never does, as in some containers), a SIGKILLed postmaster lingers as
    a zombie whose pid still answers kill(pid, 0), and the next `pg_ctl start` on that data
    directory fails with 'lock file "postmaster.pid" already exists'. As subreaper we reap
    them ourselves. Only zombies whose comm is "postgres" are reaped, so subprocess.Popen
    objects (pgpilot, pgbench, ...) keep their exit statuses."""
    global _reaper_thread
    with _reaper_lock:
        if _reaper_thread is not None:
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        _reaper_thread = threading.Thread(target=_reap_loop, name="harness-reaper",
                                          daemon=True)
        _reaper_thread.start()


def _reap_loop():
    while True:
        reap_postgres_zombies()
        time.sleep(0.1)


def reap_postgres_zombies():
    """waitpid()s our zombie children named postgres (orphans we inherited)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            if fields[0] != "Z" or int(fields[1]) != me:
                continue
            if head.split("(", 1)[1] not in ("postgres", "postmaster"):
                continue
            os.waitpid(int(entry), os.WNOHANG)
        except (OSError, IndexError, ValueError, ChildProcessError):
            continue


def alive(pid):
    """True when pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_reaped(pid, timeout=10.0):
    """Waits until pid no longer exists at all (not even as a zombie)."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        reap_postgres_zombies()
        time.sleep(0.02)
    return True


def pids_under(path):
    """Pids (not ours, not zombies) whose current directory is `path` or below it."""
    path = os.path.realpath(path)
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == path or cwd.startswith(path + "/"):
            if alive(int(entry)):
                out.append(int(entry))
    return out


def children(pid):
    """Direct children of pid (scans /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def signal_pids(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_gone(pids, timeout):
    """Waits until none of pids is alive; returns the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def sweep(path, timeout=10.0):
    """SIGCONT + SIGKILL every process under `path` until none is left (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_under(path)
        if not pids:
            return []
        signal_pids(pids, signal.SIGCONT)
        signal_pids(pids, signal.SIGKILL)
        wait_gone(pids, 0.5)
        if time.monotonic() > deadline:
            return pids_under(path)


def pg_user_ids():
    """(uid, gid) to run PostgreSQL as: the `postgres` user when we are root (created if
    missing), else ourselves."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", PG_USER], check=True)
        pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid


def as_pg_user_kwargs():
    """subprocess kwargs that run the child as the PostgreSQL user."""
    if os.geteuid() != 0:
        return {}
    uid, gid = pg_user_ids()
    return {"user": uid, "group": gid, "extra_groups": []}


def clean_env(**extra):
    """os.environ without libpq's PG* variables (they would redirect our clients), plus
    `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


class Watchdog:
    """A detached python helper, `python3 ARGS... ` with this (test) process's pid inserted
    after the script: it watches that pid and cleans up after it if it dies without doing
    so itself (e.g. ctest kills it on timeout). cancel() stops it once cleanup happened."""

    def __init__(self, script, *args):
        head = list(script) if isinstance(script, (list, tuple)) else [script]
        self.proc = subprocess.Popen(
            [sys.executable, *head, str(os.getpid()), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, cwd="/")

    def cancel(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Reaper(Watchdog):
    """SIGKILLs every process under `path` and removes it if this process dies first."""

    def __init__(self, path):
        super().__init__(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reaper.py"),
                         path)
