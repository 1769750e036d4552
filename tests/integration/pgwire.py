"""A small raw PostgreSQL protocol 3.0 client for tests that need to see the wire.

    c = PgWire(host, port).connect()          # startup; trust, cleartext or md5 auth
    rows = c.query_rows("SELECT 1")           # simple protocol -> [['1']]
    c.send(parse("s1", "SELECT $1::int"), bind("", "s1", ["5"]), describe("P", ""),
           execute(""), sync())               # many messages, one Sync, one send
    msgs = c.read_until_ready()               # [(type, body), ...] up to ReadyForQuery
    n = c.stream_query("SELECT ...")          # counts DataRow bytes without keeping them
    c.close()

Builders (startup_packet, query, parse, bind, ...) return bytes, so a test can also cut
or corrupt them and send them on a plain socket. Every read has a timeout (socket
timeout), so a test never hangs on a silent peer.
"""

import hashlib
import socket
import struct
import time

PROTOCOL_V3 = 196608
CANCEL_CODE = 80877102
SSL_CODE = 80877103
# What a simple Query can get back (stream_query): RowDescription, DataRow, CommandComplete,
# ReadyForQuery, ErrorResponse, NoticeResponse, ParameterStatus, NotificationResponse,
# EmptyQueryResponse.
STREAM_REPLY_TYPES = frozenset("TDCZENSAI")


class ProtocolError(Exception):
    pass


class ServerError(Exception):
    """An ErrorResponse; .fields maps field codes ('S', 'C', 'M', ...) to values."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__(f"{fields.get('S')} {fields.get('C')}: {fields.get('M')}")

    @property
    def sqlstate(self):
        return self.fields.get("C")


# ---- message builders (frontend) ------------------------------------------------------

def msg(type_, body=b""):
    return type_.encode() + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def startup_packet(user="postgres", database="postgres", **params):
    body = struct.pack("!I", PROTOCOL_V3) + cstr("user") + cstr(user)
    body += cstr("database") + cstr(database)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def cancel_request(pid, key):
    return struct.pack("!IIii", 16, CANCEL_CODE, pid, key)


def query(sql):
    return msg("Q", cstr(sql))


def parse(name, sql, param_types=()):
    body = cstr(name) + cstr(sql) + struct.pack("!H", len(param_types))
    body += b"".join(struct.pack("!I", t) for t in param_types)
    return msg("P", body)


def bind(portal, stmt, params=(), result_formats=()):
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", 0)  # all parameters text
    body += struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            b = p.encode() if isinstance(p, str) else p
            body += struct.pack("!i", len(b)) + b
    body += struct.pack("!H", len(result_formats))
    body += b"".join(struct.pack("!H", f) for f in result_formats)
    return msg("B", body)


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def execute(portal, max_rows=0):
    return msg("E", cstr(portal) + struct.pack("!I", max_rows))


def close_msg(kind, name):
    return msg("C", kind.encode() + cstr(name))


def sync():
    return msg("S")


def flush():
    return msg("H")


def terminate():
    return msg("X")


def copy_data(data):
    return msg("d", data)


def copy_done():
    return msg("c")


# ---- message parsers (backend) --------------------------------------------------------

def error_fields(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def data_row(body):
    (n,) = struct.unpack_from("!H", body, 0)
    pos = 2
    cols = []
    for _ in range(n):
        (ln,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if ln < 0:
            cols.append(None)
        else:
            cols.append(body[pos:pos + ln].decode())
            pos += ln
    return cols


def row_description(body):
    (n,) = struct.unpack_from("!H", body, 0)
    pos = 2
    names = []
    for _ in range(n):
        end = body.index(b"\0", pos)
        names.append(body[pos:end].decode())
        pos = end + 1 + 18
    return names


def command_tag(body):
    return body.rstrip(b"\0").decode()


class PgWire:
    """One raw protocol connection. Attributes after connect(): params (ParameterStatus),
    pid/key (BackendKeyData), tx_status (last ReadyForQuery), notices (NoticeResponse
    field dicts), notifications ((pid, channel, payload))."""

    def __init__(self, host, port, user="postgres", database="postgres", password=None,
                 timeout=30.0, **startup_params):
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.password = password
        self.timeout = timeout
        self.startup_params = startup_params
        self.sock = None
        self.buf = bytearray()
        self.params = {}
        self.pid = None
        self.key = None
        self.tx_status = None
        self.notices = []
        self.notifications = []

    # ---- transport ----
    def open(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.settimeout(self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def send(self, *chunks):
        self.sock.sendall(b"".join(chunks))

    def _fill(self, need):
        while len(self.buf) < need:
            chunk = self.sock.recv(max(65536, need - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed by peer")
            self.buf += chunk

    def read_message(self):
        """Next backend message as (type char, body bytes)."""
        self._fill(5)
        type_ = chr(self.buf[0])
        (length,) = struct.unpack_from("!I", self.buf, 1)
        if length < 4:
            raise ProtocolError(f"bad length {length} for message {type_!r}")
        self._fill(1 + length)
        body = bytes(self.buf[5:1 + length])
        del self.buf[:1 + length]
        return type_, body

    def read_byte(self):
        self._fill(1)
        b = chr(self.buf[0])
        del self.buf[:1]
        return b

    def close(self):
        if self.sock is not None:
            try:
                self.sock.sendall(terminate())
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def abort(self, rst=True):
        """Closes without Terminate; rst=True sends a TCP RST (SO_LINGER 0)."""
        if self.sock is None:
            return
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- startup ----
    def connect(self):
        if self.sock is None:
            self.open()
        self.send(startup_packet(self.user, self.database, **self.startup_params))
        while True:
            t, body = self.read_message()
            if t == "R":
                (code,) = struct.unpack_from("!I", body, 0)
                if code == 0:
                    continue
                if code == 3:  # cleartext
                    self.send(msg("p", cstr(self.password or "")))
                elif code == 5:  # md5
                    salt = body[4:8]
                    inner = hashlib.md5((self.password or "").encode()
                                        + self.user.encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(msg("p", cstr("md5" + outer)))
                else:
                    raise ProtocolError(f"unsupported authentication request {code}")
            elif t == "S":
                k, v, _ = body.split(b"\0", 2)
                self.params[k.decode()] = v.decode()
            elif t == "K":
                self.pid, self.key = struct.unpack("!ii", body)
            elif t == "E":
                raise ServerError(error_fields(body))
            elif t == "N":
                self.notices.append(error_fields(body))
            elif t == "v":
                continue  # NegotiateProtocolVersion
            elif t == "Z":
                self.tx_status = body.decode()
                return self
            else:
                raise ProtocolError(f"unexpected message {t!r} during startup")

    # ---- reading replies ----
    def read_until_ready(self):
        """All messages up to and including ReadyForQuery. NoticeResponse/
        NotificationResponse/ParameterStatus are recorded and also returned."""
        out = []
        while True:
            t, body = self.read_message()
            self._note(t, body)
            out.append((t, body))
            if t == "Z":
                self.tx_status = body.decode()
                return out

    def _note(self, t, body):
        if t == "N":
            self.notices.append(error_fields(body))
        elif t == "A":
            (pid,) = struct.unpack_from("!i", body, 0)
            channel, payload, _ = body[4:].split(b"\0", 2)
            self.notifications.append((pid, channel.decode(), payload.decode()))
        elif t == "S":
            k, v, _ = body.split(b"\0", 2)
            self.params[k.decode()] = v.decode()

    def query_rows(self, sql):
        """Simple-protocol query; returns the DataRows of all results as lists of str/None.
        Raises ServerError on an ErrorResponse (after ReadyForQuery was read)."""
        self.send(query(sql))
        rows, err = [], None
        for t, body in self.read_until_ready():
            if t == "D":
                rows.append(data_row(body))
            elif t == "E" and err is None:
                err = error_fields(body)
        if err is not None:
            raise ServerError(err)
        return rows

    def query_value(self, sql):
        rows = self.query_rows(sql)
        return rows[0][0]

    def stream_query(self, sql, chunk=1 << 20, on_chunk=None):
        """Sends a simple Query and consumes the reply without keeping it: returns
        (data_rows, data_row_bytes, total_bytes). Frames messages across reads with a
        skip counter, so memory stays at one read buffer. on_chunk(total_bytes) is called
        after every read (e.g. to sleep or sample memory)."""
        self.send(query(sql))
        rows = row_bytes = total = 0
        buf = bytearray(chunk)
        view = memoryview(buf)
        skip = 0          # body bytes of the current message still to pass over
        header = b""      # partial header carried between reads
        error = None
        pending_body = None  # (type, length, collected) for small messages we parse
        while True:
            n = self.sock.recv_into(view)
            if n == 0:
                raise ConnectionError(f"connection closed after {total} bytes")
            total += n
            pos = 0
            while pos < n:
                if skip:
                    take = min(skip, n - pos)
                    if pending_body is not None:
                        pending_body[2].extend(view[pos:pos + take])
                    skip -= take
                    pos += take
                    if skip == 0 and pending_body is not None:
                        t, _, body = pending_body
                        pending_body = None
                        if t == "E":
                            error = error_fields(bytes(body))
                        elif t == "Z":
                            self.tx_status = bytes(body).decode()
                            if error:
                                raise ServerError(error)
                            if pos != n:
                                raise ProtocolError("bytes after ReadyForQuery")
                            return rows, row_bytes, total
                    continue
                # Only the bytes of this read: past `n` the buffer holds an older read.
                take = min(5 - len(header), n - pos)
                header += bytes(view[pos:pos + take])
                pos += take
                if len(header) < 5:
                    continue
                t = chr(header[0])
                (length,) = struct.unpack_from("!I", header, 1)
                if t not in STREAM_REPLY_TYPES or length < 4 or length > 1 << 30:
                    # Framing lost: fail here, not in a read that waits for a lost end.
                    raise ProtocolError(f"message {header!r} at byte {total - n + pos - 5}")
                header = b""
                skip = length - 4
                if t == "D":
                    rows += 1
                    row_bytes += length + 1
                elif t in ("E", "Z"):
                    pending_body = (t, length, bytearray())
                if skip == 0 and t == "Z":
                    raise ProtocolError("ReadyForQuery without body")
            if on_chunk is not None:
                on_chunk(total)


def types(messages):
    """The type chars of a message list, as a string ('1', '2', 'T', 'D', 'C', 'Z')."""
    return "".join(t for t, _ in messages)


def send_cancel(host, port, pid, key, timeout=10.0):
    """Sends a CancelRequest on a new connection and waits for the proxy to close it."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cancel_request(pid, key))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not s.recv(1024):
                    return
            except (ConnectionResetError, socket.timeout):
                return
