"""Malformed protocol input on raw sockets: pgpilot answers with an ErrorResponse
(SQLSTATE 08P01, or 0A000 for an unsupported protocol) and/or closes the connection,
while a psycopg2 session opened before keeps working, pgpilot stays up and new
connections are served."""

import random
import socket
import struct
import time

import pytest

import pgwire

READ_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def bystander(pgpilot):
    """A session that stays open across all the bad input."""
    conn = pgpilot.connect(application_name="bystander")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    yield conn
    conn.close()


@pytest.fixture(autouse=True)
def still_fine(pgpilot, bystander):
    yield
    assert pgpilot.is_running(), pgpilot.log_tails()
    cur = bystander.cursor()
    cur.execute("SELECT 'bystander ok', count(*) FROM generate_series(1, 1000)")
    assert cur.fetchone() == ("bystander ok", 1000)
    assert pgpilot.psql("SELECT 'new ok'") == "new ok"


def raw(pgpilot):
    s = socket.create_connection((pgpilot.host, pgpilot.port), timeout=READ_TIMEOUT)
    s.settimeout(READ_TIMEOUT)
    return s


def after_startup(pgpilot):
    """A raw socket past authentication (ReadyForQuery received)."""
    c = pgwire.PgWire(pgpilot.host, pgpilot.port, timeout=READ_TIMEOUT).connect()
    assert c.query_value("SELECT 1") == "1"
    return c


def read_to_close(sock, initial=b""):
    """Reads until the peer closes; returns (messages, closed). Fails on a silent peer."""
    data = bytearray(initial)
    closed = False
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        except socket.timeout:
            break
        if not chunk:
            closed = True
            break
        data += chunk
    msgs = []
    pos = 0
    while pos + 5 <= len(data):
        (ln,) = struct.unpack_from("!I", data, pos + 1)
        if ln < 4 or pos + 1 + ln > len(data):
            break
        msgs.append((chr(data[pos]), bytes(data[pos + 5:pos + 1 + ln])))
        pos += 1 + ln
    return msgs, closed


def errors(msgs):
    return [pgwire.error_fields(b) for t, b in msgs if t == "E"]


def expect_rejected(sock, sqlstate="08P01", initial=b""):
    msgs, closed = read_to_close(sock, initial)
    sock.close()
    errs = errors(msgs)
    assert closed, f"connection not closed within {READ_TIMEOUT}s; got {msgs}"
    assert errs, f"no ErrorResponse before the close; got {msgs}"
    assert errs[-1]["C"] == sqlstate, errs
    assert errs[-1]["S"] == "FATAL", errs
    return errs[-1]


# ---- before / during startup --------------------------------------------------------------

def test_startup_length_too_small(pgpilot):
    s = raw(pgpilot)
    s.sendall(struct.pack("!II", 4, pgwire.PROTOCOL_V3))
    expect_rejected(s)


def test_startup_length_huge(pgpilot):
    s = raw(pgpilot)
    s.sendall(struct.pack("!II", 0x7FFFFFFF, pgwire.PROTOCOL_V3) + b"user\0postgres\0\0")
    expect_rejected(s)


def test_startup_garbage_bytes(pgpilot):
    s = raw(pgpilot)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # 'GET ' as a length is huge
    expect_rejected(s)


def test_startup_truncated_then_eof(pgpilot):
    s = raw(pgpilot)
    pkt = pgwire.startup_packet()
    s.sendall(pkt[:len(pkt) // 2])
    s.shutdown(socket.SHUT_WR)
    msgs, closed = read_to_close(s)
    s.close()
    assert closed, "pgpilot kept a half-closed truncated startup open"
    assert all(e["C"] == "08P01" for e in errors(msgs)), msgs


def test_startup_bad_layout(pgpilot):
    s = raw(pgpilot)
    body = struct.pack("!I", pgwire.PROTOCOL_V3) + b"user\0postgres"  # no terminators
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    expect_rejected(s)


def test_startup_unsupported_protocol(pgpilot):
    s = raw(pgpilot)
    body = struct.pack("!I", 2 << 16) + b"user\0postgres\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    expect_rejected(s, sqlstate="0A000")


def test_startup_without_user(pgpilot):
    s = raw(pgpilot)
    body = struct.pack("!I", pgwire.PROTOCOL_V3) + b"database\0postgres\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    expect_rejected(s, sqlstate="28000")


def test_data_after_ssl_request_is_refused(pgpilot):
    s = raw(pgpilot)
    # SSLRequest and a startup packet in one segment (CVE-2021-23214 style injection)
    s.sendall(struct.pack("!II", 8, pgwire.SSL_CODE) + pgwire.startup_packet())
    first = s.recv(1)
    assert first in (b"N", b"S", b"E", b""), first
    if first in (b"N", b"S"):
        expect_rejected(s)
    else:
        expect_rejected(s, initial=first)


def test_cancel_request_with_extra_bytes(pgpilot):
    s = raw(pgpilot)
    s.sendall(struct.pack("!IIii", 20, pgwire.CANCEL_CODE, 1, 2) + b"xxxx")
    msgs, closed = read_to_close(s)
    s.close()
    assert closed


# ---- after startup ------------------------------------------------------------------------

def test_message_length_below_four(pgpilot):
    c = after_startup(pgpilot)
    c.sock.sendall(b"Q" + struct.pack("!I", 2))
    expect_rejected(c.sock)


def test_message_length_huge(pgpilot):
    c = after_startup(pgpilot)
    c.sock.sendall(b"Q" + struct.pack("!I", 0xFFFFFFF0) + b"SELECT 1\0")
    expect_rejected(c.sock)


def test_huge_length_unbuffered_type(pgpilot):
    c = after_startup(pgpilot)
    c.sock.sendall(b"d" + struct.pack("!I", 0x7FFFFFFF) + b"abc")
    expect_rejected(c.sock)


def test_garbage_message_type(pgpilot):
    c = after_startup(pgpilot)
    c.sock.sendall(b"z" + struct.pack("!I", 8) + b"\1\2\3\4")
    err = expect_rejected(c.sock)  # FATAL, as from PostgreSQL itself
    assert err["M"] == "invalid frontend message type 122", err


def test_bind_with_truncated_body(pgpilot):
    c = after_startup(pgpilot)
    bad = b"\0\0" + struct.pack("!HH", 0, 5)  # says 5 parameters, carries none
    c.send(pgwire.parse("", "SELECT $1::int"), pgwire.msg("B", bad), pgwire.execute(""),
           pgwire.sync())
    msgs = c.read_until_ready()
    errs = errors(msgs)
    assert errs and errs[0]["C"] == "08P01", msgs
    assert c.query_value("SELECT 'same session'") == "same session"
    c.close()


def test_random_garbage_after_startup(pgpilot):
    rng = random.Random(20240601)
    for _ in range(30):
        c = after_startup(pgpilot)
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        c.sock.sendall(blob)
        c.abort(rst=rng.random() < 0.5)


def test_many_new_connections_after_bad_input(pgpilot):
    for i in range(20):
        c = after_startup(pgpilot)
        assert c.query_value(f"SELECT {i}") == str(i)
        c.close()


def rss_mb(pgpilot):
    return pgpilot.rss_kb() / 1024


def test_huge_declared_query_does_not_allocate_upfront(pgpilot):
    # A Query that announces ~1 GB (within the protocol limit) but sends a few bytes must
    # not make pgpilot commit that memory: a few such clients would exhaust the proxy,
    # which all clients share.
    before = rss_mb(pgpilot)
    conns = []
    try:
        for _ in range(3):
            c = after_startup(pgpilot)
            c.sock.sendall(b"Q" + struct.pack("!I", 0x3FFFFFF0) + b"SELECT 1")
            conns.append(c)
        time.sleep(1.0)
        grown = rss_mb(pgpilot) - before
        assert grown < 100, f"pgpilot RSS grew by {grown:.0f} MB for 3 unsent huge queries"
    finally:
        for c in conns:
            c.abort()


def test_large_valid_query_is_relayed(pgpilot):
    c = after_startup(pgpilot)
    big = "x" * (24 * 1024 * 1024)
    assert c.query_value(f"SELECT length('{big}')") == str(len(big))
    c.close()
