"""A pgpilot process in front of a harness Cluster, for tests.

    with Cluster() as c, Pgpilot(c, extra_conf={"health_check_period": "1s"}) as p:
        assert p.psql("SELECT 1") == "1"
        conn = p.connect()                # psycopg2 through pgpilot
    # leaving the block: SIGTERM (then SIGKILL), temp dir removed, and SanitizerError if
    # pgpilot's stderr holds an ASan/UBSan/LSan report.

The constructor writes `<tmp>/pgpilot.conf` and (unless start=False) starts
`pgpilot -n -f <conf>` with cwd, stdout (`stdout.log`), stderr (`stderr.log`), log_file
(`pgpilot.log`), pid file and logdir (status file) all in that temp dir, then waits until
its port accepts TCP connections. kill()/start() restart the same process config in place
(the status file survives); stop() is final.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time


from harness import procs
from harness.cluster import (DEFAULT_TIMEOUT, connect_tcp, render_conf, run_psql, tail,
                             wait_until)
from harness.errors import HarnessError, SanitizerError
from harness.ports import free_port, is_addr_in_use, port_accepts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BINARY = os.path.join(REPO, "build", "debug", "src", "pgpilot")
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
START_ATTEMPTS = 5


class _FreePort:
    def __repr__(self):
        return "FREE_PORT"


# Use as an extra_conf value to get a fresh free port (e.g. {"pcp_port": FREE_PORT});
# the chosen number is in Pgpilot.ports[key].
FREE_PORT = _FreePort()


class Pgpilot:
    """pgpilot serving `cluster` on 127.0.0.1:<free port>.

    extra_conf: dict (key -> value, rendered `key = 'value'`, overriding the defaults; a
        value None drops a default key; FREE_PORT picks a port) or raw text appended.
    binary: default $PGPILOT_BIN, else build/debug/src/pgpilot.
    env: extra environment variables for the process (e.g. ASAN_OPTIONS).
    """

    def __init__(self, cluster, extra_conf=None, binary=None, start=True, env=None,
                 timeout=DEFAULT_TIMEOUT):
        self.cluster = cluster
        # Absolute: the process runs with its temp dir as the working directory.
        self.binary = os.path.abspath(binary or os.environ.get("PGPILOT_BIN") or DEFAULT_BINARY)
        self.extra_conf = extra_conf
        self.env = env or {}
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = None
        self.ports = {}
        self.proc = None
        self.returncode = None
        self._stopped = False
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(f"pgpilot binary not found or not executable: {self.binary} "
                               "(build it: ./run build, or set PGPILOT_BIN)")
        self.dir = tempfile.mkdtemp(prefix="pgpilot-proxy-")
        self._reaper = procs.Reaper(self.dir)
        self.conf_path = os.path.join(self.dir, "pgpilot.conf")
        self.log_path = os.path.join(self.dir, "pgpilot.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.pid_file = os.path.join(self.dir, "pgpilot.pid")
        self.port = free_port()
        self.write_conf()
        if start:
            try:
                self.start()
            except BaseException:
                self._cleanup()
                raise

    # ---- config ----
    def settings(self):
        """The effective settings dict (defaults + extra_conf dict), in file order."""
        s = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "pid_file_name": self.pid_file,
            "logdir": self.dir,
            "log_min_messages": "debug1",
            "log_file": self.log_path,
        }
        for n in self.cluster.nodes:
            s[f"backend_hostname{n.index}"] = n.host
            s[f"backend_port{n.index}"] = n.port
            s[f"backend_weight{n.index}"] = 1
            s[f"backend_data_directory{n.index}"] = n.datadir
            s[f"backend_application_name{n.index}"] = n.name
        for key in ("health_check_user", "sr_check_user"):
            s[key] = "postgres"
        if self.cluster.password is not None:
            s["health_check_password"] = self.cluster.password
            s["sr_check_password"] = self.cluster.password
        if isinstance(self.extra_conf, dict):
            for k, v in self.extra_conf.items():
                if v is None:
                    s.pop(k, None)
                    continue
                if v is FREE_PORT:
                    v = self.ports.get(k) or free_port()
                    self.ports[k] = v
                s[k] = v
        return s

    def write_conf(self):
        """(Re)writes pgpilot.conf from the defaults, the cluster's nodes and extra_conf."""
        text = "# pgpilot.conf written by the test harness (tests/harness/pgpilot.py)\n"
        text += render_conf(self.settings())
        if isinstance(self.extra_conf, str):
            text += "\n# ---- extra_conf ----\n" + render_conf(self.extra_conf)
        with open(self.conf_path, "w") as f:
            f.write(text)

    # ---- lifecycle ----
    def __enter__(self):
        if self.proc is None and not self._stopped:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self, timeout=None):
        """Starts `pgpilot -n -f conf` and waits until the port accepts connections.
        On a bind failure picks a new port, rewrites the config and retries."""
        if self.is_running():
            raise HarnessError("pgpilot is already running")
        timeout = timeout or self.timeout
        for attempt in range(START_ATTEMPTS):
            err_before = os.path.getsize(self.stderr_path) if os.path.exists(self.stderr_path) else 0
            log_before = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            self._spawn()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_accepts(self.host, self.port):
                    return self
                time.sleep(0.05)
            exited = self.proc.poll() is not None
            if not exited:
                self.kill(signal.SIGKILL)
                raise HarnessError(f"pgpilot did not accept connections on port {self.port} "
                                   f"within {timeout}s\n{self.log_tails()}")
            self.returncode = self.proc.returncode
            new_output = _read_from(self.stderr_path, err_before) + _read_from(self.log_path,
                                                                               log_before)
            self._check_sanitizer()
            if is_addr_in_use(new_output) and attempt + 1 < START_ATTEMPTS:
                self.port = free_port()
                self.write_conf()
                continue
            raise HarnessError(f"pgpilot exited with status {self.returncode} during start\n"
                               + self.log_tails())
        raise AssertionError("unreachable")

    def _spawn(self):
        env = procs.clean_env(**self.env)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen([self.binary, "-n", "-f", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.dir, env=env, start_new_session=True)
        self.returncode = None

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def send_signal(self, sig):
        """Sends `sig` (e.g. SIGHUP to reload) to the running process."""
        if not self.is_running():
            raise HarnessError("pgpilot is not running\n" + self.log_tails())
        os.kill(self.proc.pid, sig)

    def reload(self):
        self.send_signal(signal.SIGHUP)

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """Sends `sig` and waits (bounded) for the process to exit; keeps the temp dir so
        start() can bring it back with the same config and status file."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Final stop: `sig`, SIGKILL after `timeout` s, kill any children, remove the temp
        dir. Raises SanitizerError if pgpilot ever printed a sanitizer report. Idempotent;
        returns the exit status (negative = killed by that signal)."""
        if self._stopped:
            return self.returncode
        self._stopped = True
        report = None
        try:
            self.kill(sig, timeout)
            report = self._sanitizer_report()
        finally:
            self._cleanup()
        if report:
            raise SanitizerError(report)
        return self.returncode

    def _cleanup(self):
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        procs.sweep(self.dir)
        if os.environ.get("PGPILOT_KEEP_TMP"):
            print(f"PGPILOT_KEEP_TMP: keeping {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self._reaper:
            self._reaper.cancel()
            self._reaper = None

    # ---- sanitizers ----
    def _sanitizer_report(self):
        text = _read_from(self.stderr_path, 0) + _read_from(self.stdout_path, 0)
        hits = [p for p in SANITIZER_PATTERNS if p in text]
        if not hits:
            return None
        first = min(text.find(p) for p in hits)
        start = text.rfind("\n", 0, max(0, first - 2000)) + 1
        return (f"pgpilot reported a sanitizer error ({', '.join(hits)}):\n"
                + text[start:start + 12000])

    def _check_sanitizer(self):
        report = self._sanitizer_report()
        if report:
            raise SanitizerError(report)

    # ---- logs ----
    def log_text(self, which="all"):
        """pgpilot.log ("log"), stderr ("stderr"), stdout ("stdout"), or all three."""
        parts = {"log": self.log_path, "stderr": self.stderr_path, "stdout": self.stdout_path}
        if which != "all":
            return _read_from(parts[which], 0)
        return "".join(_read_from(p, 0) for p in parts.values())

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT, which="all"):
        """Waits until regex `pattern` appears in the logs; returns the match."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log_text(which)), timeout,
                          f"pgpilot log to match {pattern!r}", self.log_tails)

    def log_tails(self, lines=40):
        out = []
        for p in (self.log_path, self.stderr_path, self.stdout_path):
            if os.path.exists(p) and os.path.getsize(p):
                out.append(f"--- {p} (last {lines} lines) ---\n{tail(p, lines)}")
        return "\n".join(out) or "(pgpilot wrote no output)"

    # ---- clients ----
    def dsn(self, user="postgres", db="postgres", **kw):
        """libpq connection string to pgpilot."""
        parts = {"host": self.host, "port": self.port, "user": user, "dbname": db}
        parts.update(kw)
        return " ".join(f"{k}={_dsn_value(v)}" for k, v in parts.items())

    def psql(self, sql, db="postgres", user="postgres", password=None, check=True,
             timeout=DEFAULT_TIMEOUT, extra_args=()):
        """Runs `sql` through pgpilot with /usr/bin/psql -X -A -t -q -v ON_ERROR_STOP=1;
        returns stdout minus the trailing newline. password defaults to the cluster's."""
        return run_psql(sql, self.host, self.port, db=db, user=user,
                        password=password if password is not None else self.cluster.password,
                        check=check, timeout=timeout, what="pgpilot", extra_args=extra_args)

    def connect(self, **kw):
        """psycopg2 connection through pgpilot (user/dbname postgres, cluster password)."""
        return connect_tcp(self.host, self.port, self.cluster.password, **kw)

    # ---- resources ----
    def rss_kb(self):
        """Resident set size in kB (VmRSS)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise HarnessError("no VmRSS in /proc status")

    def cpu_seconds(self):
        """User + system CPU time used so far, in seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state): utime is field 14, stime field 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_from(path, offset):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def _dsn_value(v):
    s = str(v)
    if s and not re.search(r"[\s'\\]", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
