"""A real PostgreSQL 15 streaming-replication cluster in a temp dir, for tests.

    c = Cluster(num_standbys=2)          # nothing runs yet
    c.start()                            # or: with Cluster() as c:
    c.primary.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
    c.wait_replay()
    assert c.standbys[0].psql("SELECT v FROM t") == "1"
    c.stop()                             # immediate stop of every node, temp dir removed

Layout: one temp dir (owned by the postgres user when we run as root) holding each node's
data directory (`node0` = the first primary, `standby1`, `standby2`, ...), its server log
(`<name>.log`) and the unix sockets. Nodes listen on 127.0.0.1 at free ports. Standbys are
`pg_basebackup -R -X stream -c fast` copies streaming from the primary with
application_name=standbyN, so `synchronous_standby_names` can name them.

primary_netns (a harness.netns.NetNs) puts node 0 in that network namespace: pg_ctl runs
under `ip netns exec`, the server listens on the namespace's address (node0.host), pg_hba
admits the veth subnet, and the standbys stream from that address, so a fault on the
namespace's link cuts node 0 off from pgpilot and the standbys alike. Unix sockets (what
Node.psql uses) still reach it.

Every wait is bounded (`timeout`, default 30 s) and raises HarnessError with the tail of
the server logs. stop() works after a partial start and is idempotent; a reaper process
cleans up if the test process dies without calling it.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg2

from harness import procs
from harness.errors import HarnessError, PsqlError
from harness.ports import free_port, is_addr_in_use

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL = "/usr/bin/psql"
DEFAULT_TIMEOUT = 30.0
START_ATTEMPTS = 5  # a free port can be taken by a parallel job before we bind it


def _conf_value(v):
    """Renders a value for postgresql.conf: `'text'` with quotes doubled; bools as on/off."""
    if isinstance(v, bool):
        v = "on" if v else "off"
    return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"


def sql_literal(v):
    """A SQL string literal (standard_conforming_strings = on)."""
    return "'" + str(v).replace("'", "''") + "'"


def _conninfo_value(v):
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_conf(settings):
    """dict -> postgresql.conf lines; str -> as is; None -> ''."""
    if settings is None:
        return ""
    if isinstance(settings, str):
        return settings if settings.endswith("\n") else settings + "\n"
    return "".join(f"{k} = {_conf_value(v)}\n" for k, v in settings.items())


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def wait_until(predicate, timeout, what, on_timeout=None, interval=0.1):
    """Polls predicate() until truthy (returned) or raises HarnessError after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - the last error goes in the message
            last_exc = e
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            if last_exc is not None:
                msg += f"\nlast error: {last_exc}"
            if on_timeout is not None:
                msg += "\n" + on_timeout()
            raise HarnessError(msg)
        time.sleep(interval)


class Node:
    """One PostgreSQL server of a Cluster. `cluster.node(i)`; 0 is the initial primary."""

    def __init__(self, cluster, index, name):
        self.cluster = cluster
        self.index = index
        self.name = name  # also its application_name when streaming
        self.host = "127.0.0.1"
        self.netns = None  # a harness.netns.NetNs when the node runs in one
        self.port = None
        self.datadir = os.path.join(cluster.dir, name)
        self.logfile = os.path.join(cluster.dir, f"{name}.log")
        self.socket_dir = cluster.dir

    def __repr__(self):
        return f"<Node {self.name} port={self.port} pid={self.pid()}>"

    # ---- processes ----
    def pid(self):
        """The postmaster's pid, or None when it is not running."""
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        return pid if procs.alive(pid) else None

    def is_running(self):
        return self.pid() is not None

    def pids(self):
        """Every live process of this node (postmaster and all its children)."""
        return procs.pids_under(self.datadir)

    def kill(self, sig=signal.SIGKILL, wait=True, timeout=DEFAULT_TIMEOUT):
        """Sends `sig` to the postmaster. With SIGKILL and wait=True, returns once the
        postmaster is gone (its children die on their own soon after)."""
        pid = self.pid()
        if pid is None:
            raise HarnessError(f"{self.name} is not running")
        os.kill(pid, sig)
        if wait and sig == signal.SIGKILL:
            if procs.wait_gone([pid], timeout):
                raise HarnessError(f"{self.name}: postmaster {pid} survived SIGKILL")
            procs.wait_reaped(pid, timeout)
        return pid

    def _stale_pid(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def signal_all(self, sig):
        """Sends `sig` to every process of the node (e.g. SIGSTOP/SIGCONT to hang it)."""
        pids = self.pids()
        procs.signal_pids(pids, sig)
        return pids

    def _pg_ctl(self, *args, timeout=DEFAULT_TIMEOUT):
        try:
            return self.cluster._run_pg([f"{PG_BIN}/pg_ctl", "-D", self.datadir, *args],
                                        timeout=timeout + 15, netns=self.netns)
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"{self.name}: pg_ctl {' '.join(args)} hung\n"
                               + self.log_tail()) from e

    def start(self, timeout=DEFAULT_TIMEOUT):
        """pg_ctl start -w. On 'address already in use' picks a new port and retries."""
        stale = self._stale_pid()
        if stale and not procs.alive(stale):
            procs.wait_reaped(stale, 5)  # a zombie postmaster still "holds" the lock file
        for attempt in range(START_ATTEMPTS):
            size_before = os.path.getsize(self.logfile) if os.path.exists(self.logfile) else 0
            r = self._pg_ctl("-l", self.logfile, "-w", "-t", str(int(timeout)), "start",
                             timeout=timeout)
            if r.returncode == 0:
                self.wait_ready(timeout)
                return self
            with open(self.logfile, errors="replace") as f:
                f.seek(size_before)
                new_log = f.read()
            if is_addr_in_use(new_log + r.stdout + r.stderr) and attempt + 1 < START_ATTEMPTS:
                procs.sweep(self.datadir)
                self.set_port(free_port())
                continue
            raise HarnessError(f"{self.name}: pg_ctl start failed (rc {r.returncode})\n"
                               f"{r.stdout}{r.stderr}\n{self.log_tail()}")
        raise AssertionError("unreachable")

    def stop(self, mode="fast", timeout=DEFAULT_TIMEOUT):
        """pg_ctl stop -m mode (smart|fast|immediate); a no-op when not running."""
        if self.pid() is None:
            return
        self.signal_all(signal.SIGCONT)  # a SIGSTOPped node cannot shut down
        r = self._pg_ctl("-m", mode, "-w", "-t", str(int(timeout)), "stop", timeout=timeout)
        if r.returncode != 0 and self.pid() is not None:
            raise HarnessError(f"{self.name}: pg_ctl stop -m {mode} failed\n{r.stderr}\n"
                               + self.log_tail())

    def restart(self, mode="fast", timeout=DEFAULT_TIMEOUT):
        self.stop(mode, timeout)
        return self.start(timeout)

    def promote(self, timeout=DEFAULT_TIMEOUT):
        """pg_ctl promote -w; waits until the node leaves recovery and makes it the
        cluster's `primary`."""
        r = self._pg_ctl("-w", "-t", str(int(timeout)), "promote", timeout=timeout)
        if r.returncode != 0:
            raise HarnessError(f"{self.name}: pg_ctl promote failed\n{r.stdout}{r.stderr}\n"
                               + self.log_tail())
        wait_until(lambda: not self.is_in_recovery(), timeout, f"{self.name} to leave recovery",
                   self.log_tail)
        self.cluster.primary_index = self.index
        return self

    def wait_ready(self, timeout=DEFAULT_TIMEOUT):
        """Waits until the node answers SELECT 1."""
        wait_until(lambda: self.psql("SELECT 1", timeout=5) == "1", timeout,
                   f"{self.name} to accept connections", self.log_tail)

    # ---- configuration ----
    def conf_path(self):
        return os.path.join(self.datadir, "postgresql.conf")

    def append_conf(self, settings):
        """Appends settings (dict or raw text) to postgresql.conf (last value wins).
        Reload or restart the node for them to take effect."""
        with open(self.conf_path(), "a") as f:
            f.write(render_conf(settings))

    def set_port(self, port):
        self.port = port
        self.append_conf({"port": port})

    def reload(self):
        self.psql("SELECT pg_reload_conf()")

    # ---- SQL ----
    def psql(self, sql, db="postgres", user="postgres", host=None, password=None,
             check=True, timeout=DEFAULT_TIMEOUT):
        """Runs `sql` with /usr/bin/psql -X -A -t -q -v ON_ERROR_STOP=1 and returns stdout
        without the trailing newline (rows on lines, columns joined by '|').
        Connects over the unix socket (local trust) unless `host` is given (e.g.
        "127.0.0.1", then the cluster's auth applies and its password is used).
        Raises PsqlError when psql fails and check=True."""
        return run_psql(sql, host or self.socket_dir, self.port, db=db, user=user,
                        password=password if password is not None else self.cluster.password,
                        check=check, timeout=timeout, what=self.name)

    def connect(self, **kw):
        """A psycopg2 connection over TCP (autocommit off, as psycopg2 defaults)."""
        return connect_tcp(self.host, self.port, self.cluster.password, **kw)

    def is_in_recovery(self):
        return self.psql("SELECT pg_is_in_recovery()", timeout=10) == "t"

    def log_tail(self, lines=40):
        return f"--- {self.logfile} (last {lines} lines) ---\n{tail(self.logfile, lines)}"


def connect_tcp(host, port, default_password=None, **kw):
    """psycopg2 connection as postgres to the postgres database over TCP; kw (including
    password) overrides the defaults."""
    args = {"host": host, "port": port, "user": "postgres", "dbname": "postgres",
            "connect_timeout": 10}
    if default_password is not None:
        args["password"] = default_password
    args.update(kw)
    return psycopg2.connect(**args)


def run_psql(sql, host, port, db="postgres", user="postgres", password=None, check=True,
             timeout=DEFAULT_TIMEOUT, what="psql", extra_args=()):
    """Runs /usr/bin/psql -X -A -t -q -v ON_ERROR_STOP=1 with `sql` on stdin; returns
    stdout minus the trailing newline."""
    cmd = [PSQL, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(host),
           "-p", str(port), "-U", user, "-d", db, *extra_args, "-f", "-"]
    env = procs.clean_env(PGPASSWORD=password, PGCONNECT_TIMEOUT=min(10, int(timeout) or 1))
    try:
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, env=env,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise PsqlError(f"{what}: psql timed out after {timeout}s: {sql!r}") from e
    if check and r.returncode != 0:
        raise PsqlError(f"{what}: psql failed (rc {r.returncode}) on {sql!r}:\n{r.stderr}",
                        r.returncode, r.stdout, r.stderr)
    return r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout


class Cluster:
    """Primary + `num_standbys` streaming hot standbys on loopback.

    sync_standby_names: set as the primary's synchronous_standby_names after the standbys
        exist (e.g. 'FIRST 1 (standby1)'); standbys do not inherit it.
    extra_conf: dict or raw text appended to every node's postgresql.conf before start.
    auth: the --auth-host method for TCP connections (trust, md5, scram-sha-256,
        password); unix-socket connections are always trust, replication on 127.0.0.1 is
        trust. password: the `postgres` superuser's password (default 'postgres' when auth
        is not trust).
    """

    def __init__(self, num_standbys=2, sync_standby_names=None, extra_conf=None, auth="trust",
                 password=None, timeout=DEFAULT_TIMEOUT, primary_netns=None):
        self.num_standbys = num_standbys
        self.sync_standby_names = sync_standby_names
        self.extra_conf = extra_conf
        self.auth = auth
        self.password = password if password is not None or auth == "trust" else "postgres"
        self.timeout = timeout
        self.primary_netns = primary_netns
        self.dir = None
        self.nodes = []
        self.primary_index = 0
        self._reaper = None
        self._state = "new"  # new -> started -> stopped

    # ---- lifecycle ----
    def __enter__(self):
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Creates and starts the whole cluster; on any failure cleans up and raises."""
        if self._state != "new":
            raise HarnessError("Cluster.start() called twice")
        self._state = "started"
        try:
            self._make_dir()
            self._init_primary()
            for i in range(1, self.num_standbys + 1):
                self._add_standby(i)
            if self.sync_standby_names:
                self.primary.psql("ALTER SYSTEM SET synchronous_standby_names = "
                                  + sql_literal(self.sync_standby_names)
                                  + "; SELECT pg_reload_conf();")
            self.wait_streaming()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Immediate stop of every node, kill leftovers, remove the temp dir. Idempotent."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        if self.dir and os.path.isdir(self.dir):
            for node in self.nodes:
                if node.pid() is not None:
                    try:
                        node.stop("immediate", timeout=10)
                    except Exception:  # noqa: BLE001 - the sweep below finishes the job
                        pass
            left = procs.sweep(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            if left:
                raise HarnessError(f"processes {left} under {self.dir} survived SIGKILL")
        if self._reaper:
            self._reaper.cancel()
            self._reaper = None

    # ---- access ----
    def node(self, i):
        return self.nodes[i]

    @property
    def primary(self):
        """The node the harness knows as primary: node 0, or the last one promote()d."""
        return self.nodes[self.primary_index]

    @property
    def standbys(self):
        return [n for n in self.nodes if n.index != self.primary_index]

    def log_tails(self, lines=30):
        return "\n".join(n.log_tail(lines) for n in self.nodes)

    # ---- waits ----
    def wait_streaming(self, timeout=None, names=None):
        """Waits until pg_stat_replication on the primary shows every standby (or `names`)
        in state 'streaming'."""
        want = set(names if names is not None else (n.name for n in self.standbys))

        def streaming():
            out = self.primary.psql("SELECT application_name, state FROM pg_stat_replication",
                                    timeout=10)
            rows = [line.split("|") for line in out.splitlines() if line]
            return want <= {name for name, state in rows if state == "streaming"}

        wait_until(streaming, timeout or self.timeout, f"standbys {sorted(want)} to stream",
                   self.log_tails)

    def wait_replay(self, timeout=None, nodes=None):
        """Waits until every standby (or `nodes`) has replayed the primary's current LSN."""
        lsn = self.primary.psql("SELECT pg_current_wal_lsn()")
        for n in nodes if nodes is not None else self.standbys:
            wait_until(lambda n=n: n.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn",
                                          timeout=10) == "t",
                       timeout or self.timeout, f"{n.name} to replay {lsn}", self.log_tails)
        return lsn

    # ---- internals ----
    def _run_pg(self, cmd, timeout, check=False, netns=None):
        """Runs a PostgreSQL program as the postgres user (we may be root); inside `netns`
        (root only) when given."""
        user = procs.as_pg_user_kwargs()
        if netns is not None:
            uid, gid = procs.pg_user_ids()
            cmd = [*netns.exec_prefix(), "setpriv", f"--reuid={uid}", f"--regid={gid}",
                   "--clear-groups", "--", *cmd]
            user = {}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir, stdin=subprocess.DEVNULL,
                              env=procs.clean_env(HOME=self.dir, LC_ALL="C.UTF-8"),
                              check=check, **user)

    def _make_dir(self):
        procs.become_subreaper()
        self.dir = tempfile.mkdtemp(prefix="pgpilot-cluster-")
        uid, gid = procs.pg_user_ids()
        os.chown(self.dir, uid, gid)
        os.chmod(self.dir, 0o700)
        self._reaper = procs.Reaper(self.dir)

    def _init_primary(self):
        node = Node(self, 0, "node0")
        self.nodes.append(node)
        ns = self.primary_netns
        if ns is not None:
            node.netns = ns
            node.host = ns.inner_addr
        cmd = [f"{PG_BIN}/initdb", "-D", node.datadir, "-E", "UTF8", "--locale=C.UTF-8",
               "-U", "postgres", "--auth-local=trust", f"--auth-host={self.auth}", "-N"]
        pwfile = None
        if self.password is not None:
            pwfile = os.path.join(self.dir, "pwfile")
            with open(pwfile, "w") as f:
                f.write(self.password + "\n")
            os.chown(pwfile, *procs.pg_user_ids())
            cmd.append(f"--pwfile={pwfile}")
        r = self._run_pg(cmd, timeout=120)
        if pwfile:
            os.unlink(pwfile)
        if r.returncode != 0:
            raise HarnessError(f"initdb failed (rc {r.returncode}):\n{r.stdout}\n{r.stderr}")
        hba = os.path.join(node.datadir, "pg_hba.conf")
        with open(hba) as f:
            original = f.read()
        with open(hba, "w") as f:
            f.write("# pgpilot test harness: replication from loopback needs no password\n"
                    "host replication all 127.0.0.1/32 trust\n")
            if ns is not None:
                f.write(f"host replication all {ns.subnet} trust\n"
                        f"host all all {ns.subnet} {self.auth}\n")
            f.write(original)
        node.append_conf(self._base_conf())
        if ns is not None:
            node.append_conf({"listen_addresses": node.host})
        node.append_conf(self.extra_conf)
        node.set_port(free_port())
        node.start(self.timeout)
        if self.auth == "md5" and self.password is not None:
            # initdb stored a SCRAM verifier; md5 auth to clients needs an md5 one.
            node.psql("SET password_encryption = 'md5'; ALTER USER postgres PASSWORD "
                      + sql_literal(self.password))

    def _base_conf(self):
        return ("\n# ---- pgpilot test harness ----\n" + render_conf({
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": self.dir,
            "wal_level": "replica",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "hot_standby": True,
            "hot_standby_feedback": True,
            "wal_keep_size": "128MB",
            "wal_log_hints": True,  # lets pg_rewind work after a failover
            "wal_receiver_status_interval": "1s",
            "fsync": False,
            "synchronous_commit": "on",
            "shared_buffers": "16MB",
            "max_connections": 150,
            "logging_collector": False,
            "log_line_prefix": "%m [%p] %q%a@%d ",
        }))

    def _add_standby(self, i):
        node = Node(self, i, f"standby{i}")
        self.nodes.append(node)
        p = self.nodes[0]
        conninfo = (f"host={p.host} port={p.port} user=postgres "
                    f"application_name={node.name}")
        if self.password is not None:
            conninfo += f" password={_conninfo_value(self.password)}"
        cmd = [f"{PG_BIN}/pg_basebackup", "-D", node.datadir, "-d", conninfo, "-R",
               "-X", "stream", "-c", "fast", "-N"]
        try:
            r = self._run_pg(cmd, timeout=self.timeout * 4)
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"pg_basebackup for {node.name} hung\n{p.log_tail()}") from e
        if r.returncode != 0:
            raise HarnessError(f"pg_basebackup for {node.name} failed:\n{r.stderr}\n"
                               + p.log_tail())
        # -R wrote primary_conninfo; make sure it carries our application_name.
        auto = os.path.join(node.datadir, "postgresql.auto.conf")
        with open(auto) as f:
            text = re.sub(r"(?m)^primary_conninfo\s*=.*\n", "", f.read())
        with open(auto, "w") as f:
            f.write(text + f"primary_conninfo = {_conf_value(conninfo)}\n")
        if p.netns is not None:  # the copied postgresql.conf listens on the namespace's address
            node.append_conf({"listen_addresses": node.host})
        node.set_port(free_port())
        node.start(self.timeout)
