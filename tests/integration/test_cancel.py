"""Query cancellation through pgpilot: the client's CancelRequest (carrying pgpilot's own
BackendKeyData) reaches the server running its query, fast; the session stays usable; a
CancelRequest with a wrong key or pid cancels nothing."""

import threading
import time

import psycopg2
import pytest

import pgwire
from harness.cluster import wait_until

CANCEL_BOUND = 1.0  # seconds from cancel() to the QueryCanceled error


def wait_sleeping(cluster, app):
    wait_until(lambda: cluster.primary.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        f"AND application_name = '{app}' AND query LIKE 'SELECT pg_sleep%'") == "1",
        15, f"the pg_sleep of {app} to run on the primary")


@pytest.mark.parametrize("round_", range(4))  # several rounds: sessions land on any worker
def test_cancel_returns_query_canceled_fast(cluster, pgpilot, round_):
    app = f"cancel_fast_{round_}"
    conn = pgpilot.connect(application_name=app)
    try:
        conn.autocommit = True
        result = {}

        def run():
            cur = conn.cursor()
            try:
                cur.execute("SELECT pg_sleep(30)")
                result["outcome"] = "completed"
            except psycopg2.Error as e:
                result["outcome"] = e
            result["at"] = time.monotonic()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_sleeping(cluster, app)
        cancelled_at = time.monotonic()
        conn.cancel()
        t.join(10)
        assert not t.is_alive(), "the query was not cancelled within 10 s"
        err = result["outcome"]
        assert isinstance(err, psycopg2.errors.QueryCanceled), err
        assert err.pgcode == "57014"
        took = result["at"] - cancelled_at
        assert took < CANCEL_BOUND, f"cancel took {took:.2f}s"
        # the session is usable and is the same one
        cur = conn.cursor()
        cur.execute("SELECT 'usable', current_setting('application_name')")
        assert cur.fetchone() == ("usable", app)
        assert cluster.primary.psql("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE query LIKE 'SELECT pg_sleep(30)%' "
                                    "AND state = 'active'") == "0"
    finally:
        conn.close()


def test_cancel_inside_transaction_aborts_it(cluster, pgpilot):
    app = "cancel_tx"
    conn = pgpilot.connect(application_name=app)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")  # psycopg2 opened a transaction
        errors = []

        def run():
            try:
                cur.execute("SELECT pg_sleep(30)")
            except psycopg2.Error as e:
                errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_sleeping(cluster, app)
        conn.cancel()
        t.join(10)
        assert errors and isinstance(errors[0], psycopg2.errors.QueryCanceled), errors
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR
        conn.rollback()
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
        conn.commit()
    finally:
        conn.close()


def test_wrong_key_cancels_nothing(cluster, pgpilot):
    app = "cancel_wrong_key"
    with pgwire.PgWire(pgpilot.host, pgpilot.port, application_name=app).connect() as c:
        assert c.pid is not None and c.key is not None
        c.send(pgwire.query("SELECT pg_sleep(2), 'done'"))
        wait_sleeping(cluster, app)
        started = time.monotonic()
        pgwire.send_cancel(pgpilot.host, pgpilot.port, c.pid, c.key ^ 0x5A5A)  # wrong key
        pgwire.send_cancel(pgpilot.host, pgpilot.port, c.pid ^ 1, c.key)      # wrong pid
        pgwire.send_cancel(pgpilot.host, pgpilot.port, c.pid + (1 << 28), c.key)
        msgs = c.read_until_ready()
        assert pgwire.types(msgs) == "TDCZ", [e for t, e in msgs if t == "E"]
        assert pgwire.data_row(msgs[1][1]) == ["", "done"]
        assert time.monotonic() - started > 0.5  # it really slept on

        # the right key does cancel, through the raw client too
        c.send(pgwire.query("SELECT pg_sleep(30)"))
        wait_sleeping(cluster, app)
        started = time.monotonic()
        pgwire.send_cancel(pgpilot.host, pgpilot.port, c.pid, c.key)
        msgs = c.read_until_ready()
        took = time.monotonic() - started
        errs = [pgwire.error_fields(b) for t, b in msgs if t == "E"]
        assert errs and errs[0]["C"] == "57014", msgs
        assert took < CANCEL_BOUND + 1.0
        assert c.query_value("SELECT 'ok'") == "ok"


def test_cancel_when_idle_is_harmless(pgpilot):
    conn = pgpilot.connect()
    try:
        conn.autocommit = True
        conn.cancel()
        time.sleep(0.5)  # let the forwarded cancel reach the (idle) server
        cur = conn.cursor()
        cur.execute("SELECT pg_sleep(0.3), 'fine'")
        assert cur.fetchone() == ("", "fine")
    finally:
        conn.close()
