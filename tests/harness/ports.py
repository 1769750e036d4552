"""Free loopback TCP ports.

The kernel picks an unused port (bind 127.0.0.1:0) and we release it at once, so another
process (a parallel ctest job) can still grab it before our server binds: callers retry
with a new port when a server fails to start with "address already in use".
"""

import socket
import threading

_lock = threading.Lock()
_handed_out = set()  # never hand the same port out twice in one process


def free_port(host="127.0.0.1"):
    """Returns a TCP port on `host` that nobody listens on right now."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("could not find a free port")


def port_accepts(host, port, timeout=0.5):
    """True when a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_addr_in_use(text):
    t = text.lower()
    return "address already in use" in t or "could not bind" in t or "eaddrinuse" in t
