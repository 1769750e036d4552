"""TLS through pgpilot: towards clients (ssl=on, hostssl rules) and towards servers
(backend_sslmode), with a self-signed certificate made by the openssl CLI."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile

import psycopg2
import pytest

from harness import procs
from harness.cluster import PSQL, Cluster
from harness.errors import HarnessError
from harness.pgpilot import Pgpilot


@pytest.fixture(scope="module")
def certs():
    """A temp dir (readable by the postgres user) with cert.pem/key.pem: self-signed, EC."""
    d = tempfile.mkdtemp(prefix="pgpilot-tls-")
    try:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        # PostgreSQL wants its key owned by itself with mode 0600 (or less).
        uid, gid = procs.pg_user_ids()
        os.chmod(d, 0o755)
        for f in (cert, key):
            os.chown(f, uid, gid)
        os.chmod(key, 0o600)
        yield {"dir": d, "cert": cert, "key": key}
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_cluster(certs):
    """One primary with ssl=on (plain connections still allowed by pg_hba `host`)."""
    c = Cluster(num_standbys=0, extra_conf={"ssl": True, "ssl_cert_file": certs["cert"],
                                            "ssl_key_file": certs["key"]})
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def tls_pilot(tls_cluster, certs):
    p = Pgpilot(tls_cluster, extra_conf={"ssl": True, "ssl_cert": certs["cert"],
                                          "ssl_key": certs["key"]})
    try:
        yield p
    finally:
        p.stop()


def psql(port, sql, sslmode, user="postgres", timeout=20):
    """psql with a conninfo string (sslmode); returns (rc, stdout, stderr)."""
    conninfo = (f"host=127.0.0.1 port={port} user={user} dbname=postgres sslmode={sslmode} "
                "connect_timeout=10")
    r = subprocess.run([PSQL, "-X", "-A", "-t", "-w", "-d", conninfo, "-c", sql],
                       capture_output=True, text=True, env=procs.clean_env(), timeout=timeout)
    return r.returncode, r.stdout.strip(), r.stderr


def test_psql_sslmode_require(tls_pilot):
    rc, out, err = psql(tls_pilot.port, "SELECT 40 + 2", "require")
    assert (rc, out) == (0, "42"), err
    # \conninfo tells whether the client side of this connection is encrypted.
    rc, out, err = psql(tls_pilot.port, "\\conninfo", "require")
    assert rc == 0, err
    assert "SSL connection (protocol: TLS" in out, out


def test_psycopg2_ssl_in_use(tls_pilot):
    conn = tls_pilot.connect(sslmode="require")
    try:
        assert conn.info.ssl_in_use is True
        assert conn.info.ssl_attribute("protocol").startswith("TLSv1.")
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == ("postgres",)
    finally:
        conn.close()


def test_sslmode_disable_still_works(tls_pilot):
    conn = tls_pilot.connect(sslmode="disable")
    try:
        assert conn.info.ssl_in_use is False
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()
    rc, out, err = psql(tls_pilot.port, "\\conninfo", "disable")
    assert rc == 0, err
    assert "SSL connection" not in out, out


def test_hostssl_rule_rejects_plain_and_accepts_tls(make_pgpilot, tls_cluster, certs):
    p = make_pgpilot(tls_cluster, start=False, extra_conf={
        "ssl": True, "ssl_cert": certs["cert"], "ssl_key": certs["key"],
        "enable_pool_hba": True, "pool_hba_file": "pool_hba.conf"})
    with open(os.path.join(p.dir, "pool_hba.conf"), "w") as f:
        f.write("hostnossl all plainuser 127.0.0.1/32 trust\n"
                "hostssl all postgres 127.0.0.1/32 trust\n")
    p.start()
    rc, out, err = psql(p.port, "SELECT 1", "disable")
    assert rc != 0, out
    assert "rejects connection" in err and "no encryption" in err, err
    with pytest.raises(psycopg2.OperationalError, match="rejects connection"):
        p.connect(sslmode="disable").close()
    conn = p.connect(sslmode="require")
    try:
        assert conn.info.ssl_in_use is True
    finally:
        conn.close()
    rc, out, err = psql(p.port, "SELECT 1", "require")
    assert (rc, out) == (0, "1"), err
    # hostnossl: plainuser gets in without TLS (the role does not exist on the server, so
    # the server's error proves pgpilot let it through) and matches no line over TLS.
    rc, _, err = psql(p.port, "SELECT 1", "disable", user="plainuser")
    assert 'role "plainuser" does not exist' in err, err
    rc, _, err = psql(p.port, "SELECT 1", "require", user="plainuser")
    assert rc != 0 and "rejects connection" in err and "SSL on" in err, err


def test_no_tls_over_a_unix_socket(make_pgpilot, tls_cluster, certs, tmp_path):
    """As PostgreSQL: SSLRequest is answered 'N' on the Unix socket, 'S' over TCP."""
    p = make_pgpilot(tls_cluster, extra_conf={"ssl": True, "ssl_cert": certs["cert"],
                                              "ssl_key": certs["key"],
                                              "unix_socket_directories": str(tmp_path)})
    path = os.path.join(str(tmp_path), f".s.PGSQL.{p.port}")
    ssl_request = struct.pack("!ii", 8, 80877103)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(ssl_request)
        assert s.recv(1) == b"N"
    with socket.create_connection((p.host, p.port), timeout=10) as s:
        s.sendall(ssl_request)
        assert s.recv(1) == b"S"


def test_missing_key_file_refuses_to_start(make_pgpilot, tls_cluster, certs):
    missing = os.path.join(certs["dir"], "no-such-key.pem")
    p = make_pgpilot(tls_cluster, start=False, extra_conf={
        "ssl": True, "ssl_cert": certs["cert"], "ssl_key": missing})
    with pytest.raises(HarnessError, match="exited with status 1"):
        p.start(timeout=20)
    assert p.returncode == 1
    err = p.log_text("stderr")
    assert "FATAL" in err and missing in err, err


def test_backend_sslmode_require_uses_tls_to_server(make_pgpilot, tls_cluster):
    p = make_pgpilot(tls_cluster, extra_conf={"backend_sslmode": "require"})
    conn = p.connect(sslmode="disable")
    try:
        with conn.cursor() as cur:
            # pg_stat_ssl on the server, for the server backend serving this session.
            cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ssl, version = cur.fetchone()
            assert ssl is True
            assert version.startswith("TLSv1.")
            cur.execute("SELECT pg_backend_pid()")
            server_pid = cur.fetchone()[0]
        # Seen from outside, over the unix socket (not through pgpilot).
        assert tls_cluster.primary.psql(
            f"SELECT ssl FROM pg_stat_ssl WHERE pid = {server_pid}") == "t"
    finally:
        conn.close()
    # Without backend_sslmode the same server is reached in plain text.
    p2 = make_pgpilot(tls_cluster)
    conn = p2.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (False,)
    finally:
        conn.close()


def test_backend_sslmode_require_against_plain_server_fails_clearly(make_pgpilot, make_cluster):
    plain = make_cluster(num_standbys=0)
    p = make_pgpilot(plain, extra_conf={"backend_sslmode": "require"})
    with pytest.raises(psycopg2.OperationalError, match="does not support SSL"):
        p.connect(connect_timeout=20).close()
    rc, _, err = psql(p.port, "SELECT 1", "disable")
    assert rc != 0 and "does not support SSL" in err, err
    # prefer falls back to plain text.
    p2 = make_pgpilot(plain, extra_conf={"backend_sslmode": "prefer"})
    conn = p2.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (False,)
    finally:
        conn.close()
