"""Client and server authentication through pgpilot, against real PostgreSQL 15 servers.

Client side (pgpilot's pool_hba + pool_passwd): every method (trust, password, md5,
scram-sha-256, reject) against every pool_passwd format (plain, TEXT, md5, SCRAM
verifier), with psycopg2, psql and a raw protocol client that sees the exact SQLSTATE and
the authentication request pgpilot chose. Server side: a cluster whose pg_hba asks for
scram-sha-256 (and md5 for md5 roles) reached with pool_passwd secrets and with SCRAM
pass-through (pool_passwd holds only the verifier from pg_authid).
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import subprocess
import time

import psycopg2
import pytest

from harness import procs
from harness.cluster import PSQL, Cluster, sql_literal
from harness.errors import PsqlError
from harness.pgpilot import Pgpilot

LOOPBACK = "127.0.0.1/32"


# ---- a raw protocol client: sees SQLSTATEs and the auth requests --------------------------

class WireError(Exception):
    """An ErrorResponse during connection; .fields maps 'S', 'C', 'M', ... to values."""

    def __init__(self, fields, auth_codes):
        self.fields = fields
        self.auth_codes = auth_codes
        super().__init__(f"{fields.get('S')} {fields.get('C')}: {fields.get('M')}")

    @property
    def sqlstate(self):
        return self.fields.get("C")


def _msg(type_, body):
    return type_ + struct.pack("!I", len(body) + 4) + body


def _recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"server closed the connection ({len(out)} of {n} bytes)")
        out += chunk
    return out


def _read_msg(sock):
    head = _recv_exact(sock, 5)
    length = struct.unpack("!I", head[1:])[0]
    return head[:1], _recv_exact(sock, length - 4)


def _error_fields(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[:1].decode()] = part[1:].decode(errors="replace")
    return fields


def _scram_keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return client_key, hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password, iterations=4096):
    """The SCRAM-SHA-256 secret PostgreSQL would store for `password`."""
    salt = os.urandom(16)
    _, stored, server = _scram_keys(password, salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def md5_secret(password, user):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def wire_connect(port, user, password=None, database="postgres", timeout=10.0):
    """Connects to 127.0.0.1:port with protocol 3.0 and answers cleartext, md5 and
    SCRAM-SHA-256 requests. Returns the list of authentication request codes seen (3
    cleartext, 5 md5, 10 SASL, ...) once ReadyForQuery arrives; raises WireError on an
    ErrorResponse."""
    codes = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        body = struct.pack("!I", 196608)
        for k, v in (("user", user), ("database", database)):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        sock.sendall(struct.pack("!I", len(body) + 4) + body)
        scram = None
        while True:
            t, body = _read_msg(sock)
            if t == b"E":
                raise WireError(_error_fields(body), codes)
            if t == b"Z":
                sock.sendall(_msg(b"X", b""))
                return codes
            if t != b"R":
                continue
            code = struct.unpack("!I", body[:4])[0]
            data = body[4:]
            if code != 0:
                codes.append(code)
            if code in (3, 5, 10) and password is None:
                raise AssertionError(f"server asked for a password (code {code}), none given")
            if code == 3:
                sock.sendall(_msg(b"p", password.encode() + b"\0"))
            elif code == 5:
                inner = md5_secret(password, user)[3:]
                resp = "md5" + hashlib.md5(inner.encode() + data[:4]).hexdigest()
                sock.sendall(_msg(b"p", resp.encode() + b"\0"))
            elif code == 10:
                mechs = [m for m in data.split(b"\0") if m]
                assert b"SCRAM-SHA-256" in mechs, mechs
                nonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = f"n=,r={nonce}"
                first = ("n,," + first_bare).encode()
                sock.sendall(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first))
                                  + first))
                scram = (first_bare, nonce)
            elif code == 11:
                first_bare, nonce = scram
                server_first = data.decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                assert attrs["r"].startswith(nonce)
                client_key, stored, server_key = _scram_keys(
                    password, base64.b64decode(attrs["s"]), int(attrs["i"]))
                without_proof = f"c=biws,r={attrs['r']}"
                auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
                sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
                proof = bytes(a ^ b for a, b in zip(client_key, sig))
                scram = (auth_msg, server_key)
                sock.sendall(_msg(b"p", (without_proof + ",p="
                                         + base64.b64encode(proof).decode()).encode()))
            elif code == 12:
                auth_msg, server_key = scram
                want = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
                assert data.decode() == "v=" + base64.b64encode(want).decode(), \
                    "pgpilot sent a wrong SCRAM server signature"


def psql_conninfo(port, user, password, sql="SELECT current_user", timeout=15):
    """psql through pgpilot; returns (returncode, stdout, stderr)."""
    env = procs.clean_env(PGPASSWORD=password, PGCONNECT_TIMEOUT=10)
    if password is None:
        env.pop("PGPASSWORD", None)
    r = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-w", "-h", "127.0.0.1", "-p", str(port),
                        "-U", user, "-d", "postgres", "-c", sql],
                       capture_output=True, text=True, env=env, timeout=timeout)
    return r.returncode, r.stdout.strip(), r.stderr


def start_pilot(cluster, hba_lines, passwd_lines, extra=None, factory=None):
    """A Pgpilot with enable_pool_hba and the given pool_hba.conf / pool_passwd lines."""
    conf = {"enable_pool_hba": True, "pool_hba_file": "pool_hba.conf",
            "pool_passwd": "pool_passwd", "pool_wait_timeout": "5s"}
    conf.update(extra or {})
    make = factory or (lambda **kw: Pgpilot(cluster, **kw))
    p = make(extra_conf=conf, start=False)
    with open(os.path.join(p.dir, "pool_hba.conf"), "w") as f:
        f.write("\n".join(hba_lines) + "\n")
    with open(os.path.join(p.dir, "pool_passwd"), "w") as f:
        f.write("\n".join(passwd_lines) + "\n")
    p.start()
    return p


# ---- client authentication matrix ----------------------------------------------------------

METHODS = {"clear": "password", "md5": "md5", "scram": "scram-sha-256"}
FORMATS = ("plain", "text", "md5", "scram")
MATRIX = [(m, f) for m in METHODS for f in FORMATS]


def user_for(method, fmt):
    return f"{method}_{fmt}"


def password_for(user):
    return f"pw-{user}"


def passwd_line(user, fmt):
    pw = password_for(user)
    secret = {"plain": pw, "text": "TEXT" + pw, "md5": md5_secret(pw, user),
              "scram": scram_verifier(pw)}[fmt]
    return f"{user}:{secret}"


def expected_request(method, fmt):
    """The authentication request code pgpilot must send (as PostgreSQL would)."""
    if method == "clear":
        return 3
    if method == "md5":
        return 10 if fmt == "scram" else 5  # md5 rule + SCRAM secret -> SCRAM
    return 10


@pytest.fixture(scope="module")
def plain_cluster():
    c = Cluster(num_standbys=0)
    try:
        c.start()
        roles = [user_for(m, f) for m, f in MATRIX] + [
            "u_trust", "u_reject", "first_reject", "first_trust"]
        c.primary.psql("".join(f"CREATE ROLE {r} LOGIN;" for r in roles))
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def client_pilot(plain_cluster):
    hba = [
        f"host authdb2 u_trust {LOOPBACK} reject",  # database column; before the trust line
        f"host all u_trust {LOOPBACK} trust",
        f"host all u_reject {LOOPBACK} reject",
        f"host all ghost {LOOPBACK} trust",  # not a role on the server
        f"host all first_reject {LOOPBACK} reject",
        f"host all first_reject {LOOPBACK} trust",
        f"host all first_trust {LOOPBACK} trust",
        f"host all first_trust {LOOPBACK} reject",
    ]
    hba += [f"host all {user_for(m, f)} {LOOPBACK} {METHODS[m]}" for m, f in MATRIX]
    hba.append(f"host all all {LOOPBACK} scram-sha-256")
    passwd = [passwd_line(user_for(m, f), f) for m, f in MATRIX]
    passwd.append("first_reject:pw-first_reject")
    p = start_pilot(plain_cluster, hba, passwd)
    try:
        yield p
    finally:
        p.stop()


@pytest.mark.parametrize("method,fmt", MATRIX, ids=[f"{m}-{f}" for m, f in MATRIX])
def test_password_methods(client_pilot, method, fmt):
    p = client_pilot
    user = user_for(method, fmt)
    pw = password_for(user)
    if method == "scram" and fmt == "md5":
        # As in PostgreSQL: an md5 hash cannot answer a SCRAM exchange; every login fails.
        with pytest.raises(WireError) as e:
            wire_connect(p.port, user, pw)
        assert e.value.sqlstate == "28P01", e.value.fields
        assert f'password authentication failed for user "{user}"' in e.value.fields["M"]
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            p.connect(user=user, password=pw).close()
        return

    # Right password: raw client (and the request pgpilot chose), psycopg2, psql.
    codes = wire_connect(p.port, user, pw)
    want = expected_request(method, fmt)
    assert codes == ([10, 11, 12] if want == 10 else [want]), codes
    conn = p.connect(user=user, password=pw)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, 6 * 7")
            assert cur.fetchone() == (user, 42)
    finally:
        conn.close()
    rc, out, err = psql_conninfo(p.port, user, pw)
    assert (rc, out) == (0, user), err

    # Wrong password: 28P01 with PostgreSQL's message, from every client.
    with pytest.raises(WireError) as e:
        wire_connect(p.port, user, pw + "x")
    assert e.value.sqlstate == "28P01", e.value.fields
    assert e.value.fields["S"] == "FATAL"
    assert f'password authentication failed for user "{user}"' in e.value.fields["M"]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        p.connect(user=user, password=pw + "x").close()
    rc, out, err = psql_conninfo(p.port, user, "wrong")
    assert rc != 0 and "password authentication failed" in err, (rc, out, err)


def test_trust_needs_no_password(client_pilot):
    p = client_pilot
    assert wire_connect(p.port, "u_trust") == []  # AuthenticationOk, nothing asked
    conn = p.connect(user="u_trust", password="anything")
    conn.close()
    rc, out, err = psql_conninfo(p.port, "u_trust", None)
    assert (rc, out) == (0, "u_trust"), err


def test_reject_gives_28000(client_pilot):
    p = client_pilot
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "u_reject", "whatever")
    assert e.value.sqlstate == "28000", e.value.fields
    assert e.value.auth_codes == []  # rejected before any password exchange
    assert "u_reject" in e.value.fields["M"]
    with pytest.raises(psycopg2.OperationalError, match="rejects connection"):
        p.connect(user="u_reject").close()
    rc, _, err = psql_conninfo(p.port, "u_reject", None)
    assert rc != 0 and "rejects connection" in err, err


def test_first_matching_line_wins(client_pilot):
    p = client_pilot
    # reject before trust: rejected although a later line would trust.
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "first_reject", "pw-first_reject")
    assert e.value.sqlstate == "28000", e.value.fields
    # trust before reject: trusted.
    assert wire_connect(p.port, "first_trust") == []
    # The database column: u_trust is rejected for authdb2 only (that line comes first).
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "u_trust", database="authdb2")
    assert e.value.sqlstate == "28000", e.value.fields
    assert wire_connect(p.port, "u_trust", database="postgres") == []


def test_unknown_user_fails(client_pilot):
    p = client_pilot
    # No pool_passwd entry: fails like a wrong password, without revealing that the user
    # does not exist (no SCRAM exchange that could be told apart).
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "nobody", "pw")
    assert e.value.sqlstate == "28P01", e.value.fields
    assert 'password authentication failed for user "nobody"' in e.value.fields["M"]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        p.connect(user="nobody", password="pw").close()
    # Trusted by pgpilot but not a role on the server: the server's error reaches the client.
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "ghost")
    assert e.value.sqlstate == "28000", e.value.fields
    assert 'role "ghost" does not exist' in e.value.fields["M"]
    rc, _, err = psql_conninfo(p.port, "ghost", None)
    assert rc != 0 and 'role "ghost" does not exist' in err, err


def test_pgpilot_still_serves_after_failed_logins(client_pilot):
    # Many failures in a row must not wedge a worker or leak pool slots.
    p = client_pilot
    for _ in range(20):
        with pytest.raises(WireError):
            wire_connect(p.port, "md5_plain", "bad")
    assert wire_connect(p.port, "md5_plain", "pw-md5_plain") == [5]


# ---- authentication towards the servers ---------------------------------------------------

SERVER_ROLES = {
    # role: (password_encryption on the server, server pg_hba method)
    "srv_plain": ("scram-sha-256", "scram-sha-256"),
    "srv_pt": ("scram-sha-256", "scram-sha-256"),
    "srv_pt_clear": ("scram-sha-256", "scram-sha-256"),
    "srv_md5": ("md5", "md5"),
    "srv_md5plain": ("md5", "md5"),
    "srv_bad": ("scram-sha-256", "scram-sha-256"),
    "srv_md5_vs_scram": ("scram-sha-256", "scram-sha-256"),
    "srv_nosecret": ("scram-sha-256", "scram-sha-256"),
}


@pytest.fixture(scope="module")
def scram_cluster():
    c = Cluster(num_standbys=0, auth="scram-sha-256", password="postgres")
    try:
        c.start()
        node = c.primary
        for role, (enc, _) in SERVER_ROLES.items():
            node.psql(f"SET password_encryption = '{enc}'; CREATE ROLE {role} LOGIN PASSWORD "
                      + sql_literal(password_for(role)))
        # md5 roles need an md5 line in the server's pg_hba (scram-sha-256 refuses md5 hashes).
        hba = os.path.join(node.datadir, "pg_hba.conf")
        with open(hba) as f:
            text = f.read()
        md5_lines = "".join(f"host all {r} {LOOPBACK} md5\n"
                            for r, (_, m) in SERVER_ROLES.items() if m == "md5")
        with open(hba, "w") as f:
            f.write(md5_lines + text)
        node.reload()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def server_pilot(scram_cluster):
    node = scram_cluster.primary

    def authid(role):
        return node.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")

    verifier = authid("srv_pt")
    assert verifier.startswith("SCRAM-SHA-256$"), verifier
    assert authid("srv_md5").startswith("md5")
    passwd = [
        "srv_plain:" + password_for("srv_plain"),
        "srv_pt:" + verifier,  # only the verifier: SCRAM pass-through
        "srv_pt_clear:" + authid("srv_pt_clear"),
        "srv_md5:" + authid("srv_md5"),  # the md5 hash from pg_authid
        "srv_md5plain:TEXT" + password_for("srv_md5plain"),
        "srv_bad:wrong-secret",  # not the server's password
        "srv_md5_vs_scram:" + md5_secret(password_for("srv_md5_vs_scram"), "srv_md5_vs_scram"),
    ]
    hba = [
        f"host all srv_plain {LOOPBACK} scram-sha-256",
        f"host all srv_pt {LOOPBACK} scram-sha-256",
        f"host all srv_pt_clear {LOOPBACK} password",
        f"host all srv_md5 {LOOPBACK} md5",
        f"host all srv_md5plain {LOOPBACK} md5",
        f"host all srv_bad {LOOPBACK} password",
        f"host all srv_md5_vs_scram {LOOPBACK} md5",
        f"host all srv_nosecret {LOOPBACK} trust",
    ]
    p = start_pilot(scram_cluster, hba, passwd)
    try:
        yield p
    finally:
        p.stop()


def _server_side_check(p, user, password):
    conn = p.connect(user=user, password=password)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, (SELECT count(*) FROM pg_stat_activity "
                        "WHERE pid = pg_backend_pid() AND client_addr IS NOT NULL)")
            assert cur.fetchone() == (user, 1)  # a TCP session on the server, as `user`
    finally:
        conn.close()
    rc, out, err = psql_conninfo(p.port, user, password)
    assert (rc, out) == (0, user), err


@pytest.mark.parametrize("user,client_code", [
    ("srv_plain", 10),      # plain pool_passwd secret answers the server's SCRAM
    ("srv_md5", 5),         # md5 hash answers the server's md5 request
    ("srv_md5plain", 5),    # TEXT secret answers the server's md5 request
    ("srv_pt", 10),         # SCRAM pass-through: only the verifier is stored
    ("srv_pt_clear", 3),    # verifier + cleartext from the client -> SCRAM to the server
])
def test_server_auth_with_pool_passwd(server_pilot, scram_cluster, user, client_code):
    p = server_pilot
    codes = wire_connect(p.port, user, password_for(user))
    assert codes == ([10, 11, 12] if client_code == 10 else [client_code]), codes
    _server_side_check(p, user, password_for(user))


def test_scram_pass_through_needs_the_right_client_proof(server_pilot):
    p = server_pilot
    with pytest.raises(WireError) as e:
        wire_connect(p.port, "srv_pt", "not-the-password")
    assert e.value.sqlstate == "28P01", e.value.fields


def _assert_quick_error(p, user, password, sqlstate, text):
    t0 = time.monotonic()
    with pytest.raises(WireError) as e:
        wire_connect(p.port, user, password, timeout=20)
    elapsed = time.monotonic() - t0
    assert e.value.sqlstate == sqlstate, e.value.fields
    assert text in e.value.fields["M"], e.value.fields
    assert elapsed < 10, f"the error took {elapsed:.1f}s"
    t0 = time.monotonic()
    with pytest.raises(psycopg2.OperationalError, match=text):
        p.connect(user=user, password=password).close()
    assert time.monotonic() - t0 < 10
    rc, _, err = psql_conninfo(p.port, user, password)
    assert rc != 0 and text in err, err


def test_wrong_server_secret_gives_clear_error(server_pilot):
    # The client knows pgpilot's (wrong) secret; the server refuses it.
    _assert_quick_error(server_pilot, "srv_bad", "wrong-secret", "28P01",
                        'password authentication failed for user "srv_bad"')


def test_md5_secret_cannot_answer_server_scram(server_pilot):
    _assert_quick_error(server_pilot, "srv_md5_vs_scram", password_for("srv_md5_vs_scram"),
                        "28000", "no usable password")


def test_no_secret_for_server_gives_clear_error(server_pilot):
    _assert_quick_error(server_pilot, "srv_nosecret", None, "28000", "no usable password")


def test_server_auth_failures_do_not_leak_pool_slots(server_pilot):
    p = server_pilot
    for _ in range(5):
        with pytest.raises(WireError):
            wire_connect(p.port, "srv_bad", "wrong-secret")
    assert wire_connect(p.port, "srv_plain", password_for("srv_plain")) == [10, 11, 12]
    out = p.psql("SELECT 1", user="srv_plain", password=password_for("srv_plain"))
    assert out == "1"


def test_psql_error_surface(server_pilot):
    # p.psql raises PsqlError with the server's message on a failed login.
    with pytest.raises(PsqlError) as e:
        server_pilot.psql("SELECT 1", user="srv_plain", password="nope")
    assert "password authentication failed" in e.value.stderr
