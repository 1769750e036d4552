"""Large results stream through pgpilot without being buffered: a ~1 GB result is relayed
whole while pgpilot's peak RSS barely moves, and a client that reads slowly holds the
server back (backpressure: the backend waits in ClientWrite) instead of making pgpilot
buffer the difference."""

import socket
import struct
import time

import pytest

import pgwire
from harness.cluster import Cluster, wait_until
from harness.pgpilot import Pgpilot

ROWS = 1_000_000
ROW_SQL = f"SELECT repeat('x', 1000) FROM generate_series(1, {ROWS})"
DATA_ROW_BYTES = 1 + 4 + 2 + 4 + 1000  # type, length, column count, column length, value


@pytest.fixture(scope="module")
def env():
    c = Cluster(num_standbys=0)
    c.start()
    try:
        p = Pgpilot(c, extra_conf={"worker_threads": 1})
        try:
            yield c, p
        finally:
            p.stop()
    finally:
        c.stop()


def proc_status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_1gb_result_streams_with_flat_memory(env):
    cluster, pgpilot = env
    with pgwire.PgWire(pgpilot.host, pgpilot.port, timeout=60).connect() as c:
        # warm up the session path (buffers, pool) before taking the baseline
        assert c.query_rows("SELECT repeat('y', 100000)")[0][0] == "y" * 100000
        hwm_before = proc_status_kb(pgpilot.pid, "VmHWM")
        started = time.monotonic()
        rows, row_bytes, total = c.stream_query(ROW_SQL)
        elapsed = time.monotonic() - started
        hwm_after = proc_status_kb(pgpilot.pid, "VmHWM")
        assert rows == ROWS
        assert row_bytes == ROWS * DATA_ROW_BYTES
        assert total > 1_000_000_000
        assert total - row_bytes < 200  # RowDescription, CommandComplete, ReadyForQuery
        grown_mb = (hwm_after - hwm_before) / 1024
        assert grown_mb < 100, (f"pgpilot peak RSS grew by {grown_mb:.0f} MB while relaying "
                                f"{total / 1e9:.2f} GB in {elapsed:.1f}s")
        # the session goes on normally
        assert c.query_value("SELECT 'after'") == "after"
        print(f"1 GB relayed in {elapsed:.1f}s, VmHWM +{grown_mb:.1f} MB")


def test_slow_reader_backpressure(env):
    cluster, pgpilot = env
    app = "stream_slow_reader"
    c = pgwire.PgWire(pgpilot.host, pgpilot.port, timeout=60, application_name=app)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.sock.settimeout(60)
    c.sock.connect((pgpilot.host, pgpilot.port))
    c.connect()
    try:
        c.query_rows("SELECT 1")
        rss_before = proc_status_kb(pgpilot.pid, "VmRSS")
        hwm_before = proc_status_kb(pgpilot.pid, "VmHWM")
        consumed = [0]
        samples = []

        def slow(total):
            consumed[0] = total
            samples.append(proc_status_kb(pgpilot.pid, "VmRSS"))
            time.sleep(0.02)
            if total > 4 * 1024 * 1024:
                raise StopIteration  # enough: ~4 MB read slowly out of ~1 GB

        with pytest.raises(StopIteration):
            c.stream_query(ROW_SQL, chunk=32 * 1024, on_chunk=slow)

        # the server is held back by pgpilot not reading: its backend waits to write
        def backend_blocked():
            out = cluster.primary.psql("SELECT state, wait_event FROM pg_stat_activity "
                                       f"WHERE application_name = '{app}'")
            return out == "active|ClientWrite"

        wait_until(backend_blocked, 15, "the server backend to block in ClientWrite")
        time.sleep(1.0)
        rss_now = proc_status_kb(pgpilot.pid, "VmRSS")
        grown_mb = (max(samples + [rss_now]) - rss_before) / 1024
        hwm_grown_mb = (proc_status_kb(pgpilot.pid, "VmHWM") - hwm_before) / 1024
        assert grown_mb < 30, f"pgpilot RSS grew by {grown_mb:.0f} MB behind a slow reader"
        assert hwm_grown_mb < 30, hwm_grown_mb
        assert consumed[0] < 20 * 1024 * 1024
    finally:
        c.abort()  # leave mid-result: pgpilot must cancel the query and clean up
    # the abandoned query is cancelled and the server connection ends up idle (or closed)
    wait_until(lambda: cluster.primary.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
        f"AND application_name = '{app}'") == "0", 30,
        "the abandoned query to stop on the server")
    assert pgpilot.psql("SELECT 'still serving'") == "still serving"


def test_stream_query_frames_headers_split_across_short_reads():
    """The test client itself (no server): a message header split across two reads that
    are shorter than its buffer is framed from this read's bytes only. Before the fix it
    took the missing header bytes from an older read left in the buffer, lost the framing
    and waited for a ReadyForQuery it had already passed (a CI hang of the 1 GB test)."""
    rows = [pgwire.msg("D", struct.pack("!hI", 1, 100) + bytes([65 + i % 26]) * 100)
            for i in range(30)]
    head = pgwire.msg("T", b"\x00\x01" + b"c\x00" + b"\x00" * 18)
    reply = head + b"".join(rows) + pgwire.msg("C", b"SELECT 30\x00") + pgwire.msg("Z", b"I")
    # Each read ends inside a DataRow header; every read is shorter than the last, so
    # what lies past its end in the buffer is the previous read's data.
    row_at = [len(head) + sum(len(r) for r in rows[:i]) for i in range(len(rows))]
    cuts = [row_at[20] + 3, row_at[25] + 3, row_at[27] + 2]
    assert cuts[0] > cuts[1] - cuts[0] > cuts[2] - cuts[1] > 0
    chunks = [reply[a:b] for a, b in zip([0] + cuts, cuts + [len(reply)])]
    ours, theirs = socket.socketpair()
    try:
        c = pgwire.PgWire("unused", 0, timeout=5)
        c.sock = ours
        ours.settimeout(5)
        theirs.sendall(chunks[0])
        sent = [1]

        def next_chunk(total):  # one chunk per read: the next goes out after this one is read
            if sent[0] < len(chunks):
                theirs.sendall(chunks[sent[0]])
                sent[0] += 1

        got_rows, row_bytes, total = c.stream_query("SELECT", chunk=4096, on_chunk=next_chunk)
        assert (got_rows, row_bytes, total) == (30, sum(len(r) for r in rows), len(reply))
        assert c.tx_status == "I"
    finally:
        ours.close()
        theirs.close()
