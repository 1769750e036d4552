"""COPY through pgpilot: ~100 MB in with COPY FROM STDIN and back out with COPY TO
STDOUT, byte-identical (sha256 of what was sent vs what came back) and checked on the
primary directly (count, sums); a COPY that fails mid-stream commits nothing and leaves
the session usable; psql \\copy round-trips escapes, NULLs and multi-byte text."""

import hashlib
import os
import subprocess

import psycopg2
import pytest

from harness import procs
from harness.cluster import PSQL

ROWS = 600_000  # x ~173 bytes = ~104 MB


def row_line(i):
    # varied content with no characters COPY text format would escape
    h = hashlib.sha256(i.to_bytes(4, "little")).hexdigest()
    return f"{i}\t{h}{h}{h[: i % 64]}|{i * 7919 % 100003}\n"


class Source:
    """A file-like object psycopg2's copy_expert reads from: generates the rows on the
    fly and hashes what it hands out."""

    def __init__(self, rows):
        self.rows = rows
        self.next = 1
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.sum_len = 0
        self.pending = b""

    def read(self, size=65536):
        while len(self.pending) < size and self.next <= self.rows:
            lines = []
            for i in range(self.next, min(self.rows, self.next + 999) + 1):
                line = row_line(i)
                self.sum_len += len(line) - len(str(i)) - 2
                lines.append(line)
            self.next += len(lines)
            self.pending += "".join(lines).encode()
        out, self.pending = self.pending[:size], self.pending[size:]
        self.sha.update(out)
        self.bytes += len(out)
        return out

    readline = read


class Sink:
    def __init__(self):
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sha.update(data)
        self.bytes += len(data)
        return len(data)


@pytest.fixture(scope="module")
def copy_env():
    from harness.cluster import Cluster
    from harness.pgpilot import Pgpilot
    c = Cluster(num_standbys=0)
    c.start()
    try:
        p = Pgpilot(c)
        try:
            yield c, p
        finally:
            p.stop()
    finally:
        c.stop()


def test_copy_100mb_in_and_out(copy_env):
    cluster, pgpilot = copy_env
    cluster.primary.psql("CREATE TABLE copy_big (id int, payload text)")
    src = Source(ROWS)
    conn = pgpilot.connect()
    try:
        cur = conn.cursor()
        cur.copy_expert("COPY copy_big FROM STDIN", src, size=256 * 1024)
        assert cur.rowcount == ROWS
        conn.commit()
        assert src.bytes > 95 * 1024 * 1024, src.bytes

        # on the primary directly
        out = cluster.primary.psql("SELECT count(*), sum(id), sum(length(payload)) "
                                   "FROM copy_big")
        assert out == f"{ROWS}|{ROWS * (ROWS + 1) // 2}|{src.sum_len}"

        # back out through pgpilot, byte for byte
        sink = Sink()
        cur.copy_expert("COPY (SELECT * FROM copy_big ORDER BY id) TO STDOUT", sink,
                        size=256 * 1024)
        assert sink.bytes == src.bytes
        assert sink.sha.hexdigest() == src.sha.hexdigest()
        conn.commit()
        # the session is fine after both COPYs
        cur.execute("SELECT count(*) FROM copy_big")
        assert cur.fetchone() == (ROWS,)
    finally:
        conn.close()


def test_copy_error_mid_stream_commits_nothing(copy_env):
    cluster, pgpilot = copy_env
    cluster.primary.psql("CREATE TABLE copy_bad (id int, v text)")

    class Bad:
        def __init__(self):
            self.n = 0

        def read(self, size=65536):
            self.n += 1
            if self.n <= 50:
                return "".join(f"{self.n * 1000 + i}\tok\n" for i in range(1000)).encode()
            if self.n == 51:
                return b"not-a-number\tboom\n"
            return b""

        readline = read

    conn = pgpilot.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
            cur.copy_expert("COPY copy_bad FROM STDIN", Bad())
        assert cluster.primary.psql("SELECT count(*) FROM copy_bad") == "0"
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        # COPY TO STDOUT of an error: the query fails before any data
        with pytest.raises(psycopg2.errors.DivisionByZero):
            cur.copy_expert("COPY (SELECT 1/0) TO STDOUT", Sink())
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    finally:
        conn.close()
    assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                "WHERE state LIKE 'idle in transaction%'") == "0"


def test_psql_copy_escapes_roundtrip(copy_env, tmp_path):
    cluster, pgpilot = copy_env
    cluster.primary.psql("CREATE TABLE copy_esc (id int, v text, b bytea)")
    lines = [
        "1\ttab\\there\t\\\\x00ff\n",
        "2\tnew\\nline and back\\\\slash\t\\N\n",
        "3\t\\N\t\\\\x\n",
        "4\tÜnïcødé ✓ 日本語\t\\\\x414243\n",
    ]
    data = "".join(lines).encode()
    src = tmp_path / "in.tsv"
    src.write_bytes(data)
    dst = tmp_path / "out.tsv"
    env = procs.clean_env(PGPASSWORD=cluster.password)
    base = [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-h", pgpilot.host, "-p", str(pgpilot.port),
            "-U", "postgres", "-d", "postgres"]
    r = subprocess.run(base + ["-c", f"\\copy copy_esc FROM '{src}'"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "COPY 4" in r.stdout
    r = subprocess.run(base + ["-c", f"\\copy (SELECT * FROM copy_esc ORDER BY id) TO '{dst}'"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert dst.read_bytes() == data
    assert cluster.primary.psql("SELECT id, v IS NULL, b IS NULL, length(v) FROM copy_esc "
                                "ORDER BY id") == "1|f|f|8\n2|f|t|23\n3|t|f|\n4|f|f|13"
    os.unlink(src)
