"""Structure-aware fuzzing of whole sessions through a live pgpilot.

Each session sends a random sequence of well-framed frontend messages of every type
(simple and extended query, COPY, function call, flush and sync, in any order and state),
some with mutated bodies, then ends what it left open (CopyFail, Sync, ROLLBACK) and sends
a probe query. Whatever the sequence did, the
session must either answer the probe or be closed (after a FATAL ErrorResponse, or
because it broke the protocol); it must never hang. pgpilot must stay up with no
sanitizer report (the fixture checks at teardown), a session opened before the fuzzing
must keep working, and every server connection must come back clean: no backend left
busy or inside a transaction, and a fresh session sees no prepared statement, cursor or
setting left behind by a fuzzed one.

Runs once with routing off and once with load balancing on (statements classified,
settings replayed on every node a session uses). The seed is fixed so a failure
replays; PGPILOT_FUZZ_SESSIONS and PGPILOT_FUZZ_SEED run it longer or differently.
"""

import os
import random
import socket
import struct

import pytest

import pgwire
from harness.cluster import wait_until
from harness.pgpilot import Pgpilot

SESSIONS = int(os.environ.get("PGPILOT_FUZZ_SESSIONS", "150"))
SEED = int(os.environ.get("PGPILOT_FUZZ_SEED", "20261205"))
PROBE_TIMEOUT = 15.0

SQL = [
    "SELECT 1",
    "SELECT $1::int + 1",
    "SELECT $1::text, $2::int",
    "SELECT * FROM fuzz_t ORDER BY id LIMIT 3",
    "SELECT pg_sleep(0.01)",
    "INSERT INTO fuzz_t (v) VALUES ($1)",
    "INSERT INTO fuzz_t (v) VALUES ('q') RETURNING id",
    "UPDATE fuzz_t SET v = v WHERE id < 0",
    "BEGIN",
    "BEGIN READ ONLY",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT sp",
    "ROLLBACK TO SAVEPOINT sp",
    "SET statement_timeout = '7s'",
    "SET search_path = fuzz_nowhere, public",
    "SET LOCAL work_mem = '2MB'",
    "RESET ALL",
    "PREPARE fz AS SELECT 2",
    "EXECUTE fz",
    "DEALLOCATE ALL",
    "DECLARE fc CURSOR WITH HOLD FOR SELECT generate_series(1, 5)",
    "FETCH 2 FROM fc",
    "CLOSE fc",
    "LISTEN fuzz_channel",
    "NOTIFY fuzz_channel, 'x'",
    "UNLISTEN *",
    "COPY fuzz_t (v) FROM STDIN",
    "COPY (SELECT generate_series(1, 50)) TO STDOUT",
    "SELECT 1; SELECT 2; SELECT * FROM no_such_table",
    "SELECT 1/0",
    "SELEC broken syntax",
    "SELECT '",
    "/* only a comment */",
    "",
    "DISCARD ALL",
    "SELECT pg_advisory_lock(4242)",
    "SELECT pg_advisory_unlock_all()",
    "CREATE TEMP TABLE IF NOT EXISTS fuzz_tmp (x int)",
    "SELECT pg_is_in_recovery()",
]
NAMES = ["", "s1", "s2", "fz"]


def rand_text(rng):
    choices = [b"", b"x", b"42", b"-1", b"\xff\xfe", b"a" * rng.randint(1, 300),
               bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))]
    return rng.choice(choices)


def bind_msg(rng):
    n = rng.randint(0, 3)
    params = [None if rng.random() < 0.2 else rand_text(rng) for _ in range(n)]
    body = pgwire.cstr(rng.choice(NAMES)) + pgwire.cstr(rng.choice(NAMES))
    fmts = [rng.choice([0, 1, 7]) for _ in range(rng.randint(0, 2))]
    body += struct.pack("!h", len(fmts)) + b"".join(struct.pack("!h", f) for f in fmts)
    body += struct.pack("!h", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    rfmts = [rng.choice([0, 1, 3]) for _ in range(rng.randint(0, 2))]
    body += struct.pack("!h", len(rfmts)) + b"".join(struct.pack("!h", f) for f in rfmts)
    return pgwire.msg("B", body)


def function_call(rng):
    # FunctionCall (F): pg_backend_pid() has oid 2026; arguments are random.
    body = struct.pack("!ihh", rng.choice([2026, 0, 1]), 0, rng.randint(0, 1))
    if body[-1]:
        body += struct.pack("!i", 1) + b"7"
    body += struct.pack("!h", 0)
    return pgwire.msg("F", body)


def one_message(rng):
    k = rng.randrange(100)
    if k < 18:
        return pgwire.query(rng.choice(SQL))
    if k < 30:
        types = [rng.choice([0, 23, 25, 999999]) for _ in range(rng.randint(0, 2))]
        return pgwire.parse(rng.choice(NAMES), rng.choice(SQL), types)
    if k < 42:
        return bind_msg(rng)
    if k < 48:
        return pgwire.describe(rng.choice("SPX"), rng.choice(NAMES))
    if k < 58:
        return pgwire.execute(rng.choice(NAMES), rng.choice([0, 0, 1, 2]))
    if k < 62:
        return pgwire.close_msg(rng.choice("SPX"), rng.choice(NAMES))
    if k < 72:
        return pgwire.sync()
    if k < 77:
        return pgwire.flush()
    if k < 84:
        return pgwire.copy_data(rand_text(rng) + b"\n")
    if k < 88:
        return pgwire.copy_done()
    if k < 91:
        return pgwire.msg("f", pgwire.cstr("fuzz says no"))  # CopyFail
    if k < 94:
        return function_call(rng)
    # A message type no client may send after startup, with a plausible body.
    return pgwire.msg(rng.choice("pAKGRxz"), rand_text(rng))


def mutate(rng, m):
    """Changes a framed message's body but keeps its length field true."""
    body = bytearray(m[5:])
    if body and rng.random() < 0.5:
        body[rng.randrange(len(body))] = rng.getrandbits(8)
    elif body:
        del body[rng.randrange(len(body)):]
    return m[:1] + struct.pack("!I", len(body) + 4) + bytes(body)


def busy_backends(cluster):
    """What every node's client backends other than idle ones are doing (for a hang)."""
    return {n.name: n.psql("SELECT pid, state, wait_event_type, wait_event, "
                           "left(query, 60) FROM pg_stat_activity WHERE backend_type = "
                           "'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'")
            for n in cluster.nodes}


def fuzz_session(cluster, pgpilot, rng, index):
    """Runs one fuzzed session; returns 'answered' or 'closed'."""
    c = pgwire.PgWire(pgpilot.host, pgpilot.port, timeout=PROBE_TIMEOUT,
                      application_name="fuzzed").connect()
    try:
        out = []
        for _ in range(rng.randint(1, 25)):
            m = one_message(rng)
            out.append(mutate(rng, m) if rng.random() < 0.15 else m)
        # End whatever the sequence left open, as a client would: a copy-in (CopyFail; the
        # server ignores it otherwise), an extended batch (Sync), a transaction (ROLLBACK).
        probe = f"probe {index}"
        out += [pgwire.msg("f", pgwire.cstr("fuzz: end of sequence")), pgwire.sync(),
                pgwire.query("ROLLBACK"), pgwire.query(f"SELECT '{probe}'")]
        try:
            c.send(*out)
        except OSError:
            return "closed"  # closed while we were still sending
        while True:
            try:
                t, body = c.read_message()
            except (ConnectionError, OSError) as e:
                if isinstance(e, (socket.timeout, TimeoutError)):
                    raise AssertionError(f"session {index} hung: no probe answer and no "
                                         f"close within {PROBE_TIMEOUT}s (seed {SEED}); "
                                         f"busy server backends: {busy_backends(cluster)}")
                return "closed"
            if t == "E":
                f = pgwire.error_fields(body)
                code = f.get("C", "")
                assert len(code) == 5 and code.isalnum(), (index, f)
                if f.get("S") == "FATAL":
                    continue  # the close follows
            if t == "D" and probe.encode() in body:
                t, body = c.read_message()
                assert t == "C", (index, t, body)
                # a COPY left open swallows nothing: the probe's ReadyForQuery follows
                t, body = c.read_message()
                assert t == "Z", (index, t, body)
                return "answered"
    finally:
        c.abort(rst=rng.random() < 0.3)


def run_fuzz(cluster, pgpilot):
    cluster.primary.psql("CREATE TABLE IF NOT EXISTS fuzz_t (id serial PRIMARY KEY, v text)")
    wait_until(lambda: all(s.psql("SELECT to_regclass('fuzz_t') IS NOT NULL") == "t"
                           for s in cluster.standbys), 30, "fuzz_t on the standbys")
    bystander = pgpilot.connect(application_name="bystander")
    bystander.autocommit = True
    rng = random.Random(SEED)
    outcomes = {"answered": 0, "closed": 0}
    try:
        for i in range(SESSIONS):
            outcomes[fuzz_session(cluster, pgpilot, rng, i)] += 1
            if i % 25 == 0:
                cur = bystander.cursor()
                cur.execute("SELECT 'bystander', count(*) FROM generate_series(1, 100)")
                assert cur.fetchone() == ("bystander", 100)
        assert pgpilot.is_running(), pgpilot.log_tails()
        # Most sequences are answered; the rest broke the protocol and were closed.
        assert outcomes["answered"] > SESSIONS // 4, outcomes
        cur = bystander.cursor()
        cur.execute("SELECT 'still here'")
        assert cur.fetchone() == ("still here",)
    finally:
        bystander.close()

    # Every server connection comes back: nothing busy or inside a transaction.
    def servers_settled():
        return all(n.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                          "'client backend' AND pid <> pg_backend_pid() AND "
                          "(state <> 'idle' OR xact_start IS NOT NULL)") == "0"
                   for n in cluster.nodes)
    wait_until(servers_settled, 30, "every server connection idle outside a transaction")

    # Fresh sessions (reusing the pooled connections) inherit nothing.
    for _ in range(8):
        with pgwire.PgWire(pgpilot.host, pgpilot.port, timeout=10).connect() as c:
            assert c.tx_status == "I"
            row = c.query_rows(
                "SELECT (SELECT count(*) FROM pg_prepared_statements), "
                "(SELECT count(*) FROM pg_cursors), current_setting('statement_timeout'), "
                "current_setting('search_path'), pg_try_advisory_lock(4242), "
                "pg_advisory_unlock(4242)")[0]
            assert row == ["0", "0", "0", '"$user", public', "t", "t"], row
    print(f"seed {SEED}: {SESSIONS} fuzzed sessions, {outcomes}")


@pytest.mark.parametrize("routing", ["off", "on"])
def test_fuzzed_sessions_never_hang_crash_or_leak_state(cluster, routing):
    with Pgpilot(cluster, extra_conf={"load_balance_mode": routing,
                                      "worker_threads": 2}) as p:
        run_fuzz(cluster, p)


# ---- what the fuzzing found, as fixed cases -------------------------------------------

def reply_types(c, until_probe):
    """Message types read until the DataRow holding `until_probe` and its C and Z, or
    until the server closes ("|closed")."""
    got = []
    try:
        while True:
            t, body = c.read_message()
            got.append(t)
            if t == "D" and until_probe.encode() in body:
                got += [c.read_message()[0], c.read_message()[0]]
                return "".join(got)
    except ConnectionError:
        return "".join(got) + "|closed"


FOUND = {
    # libpq's PQexecParams("COPY ... FROM STDIN") and PQputCopyEnd: the Sync sent with the
    # Execute reaches a server in copy-in, which ignores it; then an admin statement.
    "extended_copy_then_admin": (
        [pgwire.parse("", "COPY fuzz_t (v) FROM STDIN"), pgwire.bind("", ""),
         pgwire.describe("P", ""), pgwire.execute(""), pgwire.sync()],
        [pgwire.copy_data(b"from extended copy\n"), pgwire.copy_done(), pgwire.sync(),
         pgwire.query("SHOW pool_version")]),
    # A Bind that fails, then a Query before the Sync: the server discards the Query.
    "query_after_failed_bind": (
        [pgwire.bind("", "no_such_statement"), pgwire.query("SELECT 'discarded'"),
         pgwire.sync()], []),
    # A Query during a simple COPY FROM STDIN: PostgreSQL ends the copy with an error,
    # then the session with FATAL "protocol synchronization was lost".
    "query_during_copy_in": (
        [pgwire.query("COPY fuzz_t (v) FROM STDIN"), pgwire.sync(),
         pgwire.query("SELECT 'consumed'")], []),
    # A message type no client may send, then a BEGIN that pgpilot (routing on) answers
    # itself: FATAL "invalid frontend message type", as from PostgreSQL. It used to be
    # dropped unsent and the session hung.
    "invalid_type_before_begin": (
        [pgwire.msg("R", b"\x96\xf2z"), pgwire.query("BEGIN READ ONLY"),
         pgwire.query("SELECT 1")], []),
}
# Direct PostgreSQL's reply, message types in order ("|closed": it ended the session).
DIRECT = {
    "extended_copy_then_admin": "12nGCZTDCZ",
    "query_after_failed_bind": "EZTDCZ",
    "query_during_copy_in": "GEE|closed",
    "invalid_type_before_begin": "E|closed",
}


@pytest.mark.parametrize("case", sorted(FOUND))
@pytest.mark.parametrize("routing", ["off", "on"])
def test_found_by_fuzzing_answers_like_postgresql(cluster, routing, case):
    first, second = FOUND[case]
    cluster.primary.psql("CREATE TABLE IF NOT EXISTS fuzz_t (id serial PRIMARY KEY, v text)")
    probe = [pgwire.query("SELECT 'probe'")]

    def exchange(host, port, admin):
        with pgwire.PgWire(host, port, timeout=10).connect() as c:
            c.send(*first)
            got = ""
            if second:
                while not got.endswith("G"):
                    got += c.read_message()[0]
                c.send(*(second if admin else second[:-1]), *probe)
            else:
                c.send(*probe)
            return got + reply_types(c, "probe")

    with Pgpilot(cluster, extra_conf={"load_balance_mode": routing}) as p:
        direct = exchange(cluster.primary.host, cluster.primary.port, admin=False)
        through = exchange(p.host, p.port, admin=True)
    assert direct == DIRECT[case], direct
    if case == "extended_copy_then_admin":
        # pgpilot answers SHOW pool_version itself (T D C Z) before the probe.
        assert through == "12nGCZTDCZTDCZ", through
    else:
        assert through == direct, (through, direct)
