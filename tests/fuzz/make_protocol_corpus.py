#!/usr/bin/env python3
"""Writes the seed corpus of protocol_fuzz (tests/fuzz/corpus/protocol_fuzz/).

The messages are encoded here, independently of the C++ builders, straight from the
PostgreSQL docs ("Message Formats"): valid messages of every kind, streams of several
messages, truncated messages and bad length words. Re-run after changing it:

    python3 tests/fuzz/make_protocol_corpus.py
"""
import os
import shutil
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "protocol_fuzz")


def i8(v):
    return struct.pack("!b", v)


def i16(v):
    return struct.pack("!h", v)


def i32(v):
    return struct.pack("!i", v)


def u32(v):
    return struct.pack("!I", v)


def cstr(s):
    return s.encode() + b"\0"


def msg(kind, body=b""):
    return kind.encode() + i32(len(body) + 4) + body


def untyped(body):
    return i32(len(body) + 4) + body


def value(v):
    return i32(-1) if v is None else i32(len(v)) + v


def values(vs):
    return i16(len(vs)) + b"".join(value(v) for v in vs)


def startup(params, version=196608):
    body = i32(version) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return untyped(body)


def error(kind, fields):
    return msg(kind, b"".join(k.encode() + cstr(v) for k, v in fields) + b"\0")


def row_description(fields):
    body = i16(len(fields))
    for name, table, col, typ, size, mod, fmt in fields:
        body += cstr(name) + u32(table) + i16(col) + u32(typ) + i16(size) + i32(mod) + i16(fmt)
    return msg("T", body)


SSL = untyped(i32(80877103))
GSSENC = untyped(i32(80877104))
CANCEL = untyped(i32(80877102) + i32(4242) + i32(-99))
STARTUP = startup([("user", "alice"), ("database", "app"), ("application_name", "psql")])
QUERY = msg("Q", cstr("SELECT 1"))
PARSE = msg("P", cstr("s1") + cstr("SELECT $1::int, $2") + i16(2) + u32(23) + u32(0))
BIND = msg("B", cstr("") + cstr("s1") + i16(1) + i16(0) + values([b"42", None]) + i16(1) + i16(1))
DESCRIBE = msg("D", b"P" + cstr(""))
EXECUTE = msg("E", cstr("") + i32(0))
SYNC = msg("S")
ERROR = error("E", [("S", "ERROR"), ("V", "ERROR"), ("C", "42P01"),
                    ("M", 'relation "t" does not exist'), ("P", "15"), ("F", "parse_relation.c"),
                    ("L", "1392"), ("R", "parserOpenTable")])

SEEDS = {
    # startup phase (untyped)
    "startup": STARTUP,
    "startup_empty_params": startup([]),
    "startup_v3_2": startup([("user", "u")], version=(3 << 16) | 2),
    "startup_v2_unsupported": untyped(i32(2 << 16) + b"user\0u\0\0"),
    "ssl_request": SSL,
    "gssenc_request": GSSENC,
    "cancel_request": CANCEL,
    "ssl_then_startup_then_query": SSL + STARTUP + QUERY,
    "startup_length_7": i32(7) + b"\0\0\0\0",
    "startup_length_10001": i32(10001) + i32(196608),
    "startup_missing_terminator": untyped(i32(196608) + cstr("user") + cstr("bob")),
    "cancel_too_long": untyped(i32(80877102) + i32(1) + i32(2) + b"x"),
    # frontend
    "query": QUERY,
    "extended_query": PARSE + BIND + DESCRIBE + EXECUTE + SYNC,
    "close_flush": msg("C", b"S" + cstr("s1")) + msg("H") + msg("X"),
    "copy_from_client": msg("d", b"1\tbob\n") + msg("d", b"2\t\\N\n") + msg("c"),
    "copy_fail": msg("f", cstr("client cancelled")),
    "function_call": msg("F", u32(1598) + i16(1) + i16(1) + values([b"\x00\x01", None]) + i16(1)),
    "password": msg("p", cstr("md5a3556571e93b0d20722ba62be61e8c2d")),
    "sasl_initial_response": msg("p", cstr("SCRAM-SHA-256") + i32(18) + b"n,,n=,r=rOprNGfwEb"),
    "sasl_initial_no_data": msg("p", cstr("SCRAM-SHA-256") + i32(-1)),
    "sasl_response": msg("p", b"c=biws,r=rOprNGfwEb,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
    # backend
    "auth_ok_and_params": msg("R", i32(0)) + msg("S", cstr("server_version") + cstr("15.4"))
    + msg("K", i32(31337) + i32(-5)) + msg("Z", b"I"),
    "auth_cleartext": msg("R", i32(3)),
    "auth_md5": msg("R", i32(5) + b"\x01\x02\x03\x04"),
    "auth_sasl": msg("R", i32(10) + cstr("SCRAM-SHA-256-PLUS") + cstr("SCRAM-SHA-256") + b"\0"),
    "auth_sasl_continue_final": msg("R", i32(11) + b"r=abc,s=c2FsdA==,i=4096")
    + msg("R", i32(12) + b"v=c2lnbmF0dXJl"),
    "auth_gss_unsupported": msg("R", i32(7)),
    "select_result": row_description([("id", 16384, 1, 23, 4, -1, 0), ("name", 0, 0, 25, -1, -1, 0)])
    + msg("D", values([b"1", None])) + msg("D", values([b"22", b""]))
    + msg("C", cstr("SELECT 2")) + msg("Z", b"T"),
    "error_response": ERROR,
    "notice_response": error("N", [("S", "NOTICE"), ("V", "NOTICE"), ("C", "00000"),
                                   ("M", "hello"), ("D", "detail"), ("H", "hint")]),
    "extended_responses": msg("1") + msg("t", i16(2) + u32(23) + u32(25)) + msg("n") + msg("2")
    + msg("s") + msg("3") + msg("I"),
    "copy_responses": msg("G", i8(0) + i16(2) + i16(0) + i16(0)) + msg("H", i8(1) + i16(1) + i16(1))
    + msg("W", i8(0) + i16(0)),
    "notification": msg("A", i32(1234) + cstr("jobs") + cstr('{"id":1}')),
    "negotiate_protocol_version": msg("v", i32(0) + i32(2) + cstr("_pq_.a") + cstr("_pq_.b")),
    "function_call_response": msg("V", value(b"result")) + msg("V", value(None)),
    # broken framing and bodies
    "truncated_query": QUERY[:-3],
    "truncated_header": QUERY[:3],
    "length_3": b"Q" + i32(3) + b"abc",
    "length_negative": b"D" + i32(-1) + b"xxxx",
    "length_oversized": b"d" + u32((1 << 30) + 1) + b"xxxx",
    "valid_then_bad_length": QUERY + b"Q" + i32(2),
    "bind_bad_value_length": msg("B", cstr("") + cstr("") + i16(0) + i16(1) + i32(-2) + i16(0)),
    "bind_format_mismatch": msg("B", cstr("") + cstr("") + i16(2) + i16(0) + i16(1)
                                + values([b"a", b"b", b"c"]) + i16(0)),
    "truncated_bind_in_stream": PARSE + BIND[:-4] ,
    "describe_bad_kind": msg("D", b"X" + cstr("x")),
    "error_missing_terminator": ERROR[:-1],
    "data_row_value_past_end": msg("D", i16(1) + i32(100) + b"abc"),
    "row_description_huge_count": msg("T", i16(32767)),
    "negotiate_huge_count": msg("v", i32(0) + i32(0x7FFFFFFF)),
    "ready_bad_status": msg("Z", b"Q"),
}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
