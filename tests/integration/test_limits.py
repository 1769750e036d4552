"""Client limits: max_client_connections refuses the client over the limit with SQLSTATE
53300 while the others keep working; client_idle_limit (pgpool) disconnects a client idle
outside a transaction with 57P05, and leaves a client inside a transaction alone."""

import time

import psycopg2
import pytest


def test_max_client_connections(make_pgpilot, cluster):
    p = make_pgpilot(cluster, extra_conf={"max_client_connections": 3})
    held = [p.connect() for _ in range(3)]
    try:
        with pytest.raises(psycopg2.OperationalError) as err:
            p.connect()
        assert "too many clients" in str(err.value)
        for c in held:
            with c.cursor() as cur:
                cur.execute("SELECT 1")
                assert cur.fetchone() == (1,)
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the slot frees once pgpilot has seen the disconnect
            try:
                c = p.connect()
                break
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, "slot never freed"
                time.sleep(0.1)
        held.append(c)
    finally:
        for c in held:
            c.close()


def test_client_idle_limit(make_pgpilot, cluster):
    p = make_pgpilot(cluster, extra_conf={"client_idle_limit": 1})
    idle = p.connect()
    idle.autocommit = True
    in_tx = p.connect()
    try:
        with in_tx.cursor() as cur:
            cur.execute("SELECT 1")  # psycopg2 opens a transaction: BEGIN was sent
        time.sleep(2.5)
        with pytest.raises(psycopg2.Error) as err:
            with idle.cursor() as cur:
                cur.execute("SELECT 1")
        assert "client_idle_limit" in str(err.value) or idle.closed
        with in_tx.cursor() as cur:  # inside a transaction: left alone
            cur.execute("SELECT 2")
            assert cur.fetchone() == (2,)
        in_tx.commit()
        # The server connection of the dropped client went back to the pool and serves again.
        fresh = p.connect()
        with fresh.cursor() as cur:
            cur.execute("SELECT 3")
            assert cur.fetchone() == (3,)
        fresh.close()
    finally:
        idle.close()
        in_tx.close()
