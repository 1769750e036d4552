"""`./run demo` works: demo/demo.py starts a primary + 2 standbys and pgpilot, prints how to
connect, serves SHOW pool_nodes through the printed port, and stops by itself
(--duration), cleaning up."""

import os
import re
import subprocess
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PGPILOT_BIN", os.path.join(REPO, "build/debug/src/pgpilot"))


def test_demo_serves_and_cleans_up():
    proc = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(REPO, "demo/demo.py"), "--binary", BINARY,
         "--duration", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    lines = []
    port = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"psql -h 127\.0\.0\.1 -p (\d+) -U postgres postgres", line)
            if m:
                port = m.group(1)
                break
        assert port, "demo never printed the psql command:\n" + "".join(lines)
        out = subprocess.run(
            ["/usr/bin/psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", port, "-U", "postgres",
             "-c", "SHOW pool_nodes", "postgres"],
            capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        rows = [r.split("|") for r in out.stdout.splitlines() if r]
        assert [r[6] for r in rows] == ["primary", "standby", "standby"]
        # The banner's admin console line works as printed (pgpilotctl on the admin port).
        ctl = None
        while ctl is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            ctl = re.search(r"PGPASSWORD=(\S+) (\S+pgpilotctl) -p (\d+) -U (\S+) status", line)
        assert ctl, "demo never printed the pgpilotctl command:\n" + "".join(lines)
        ctl_bin = os.path.join(os.path.dirname(BINARY), "pgpilotctl")  # the build under test
        out = subprocess.run([ctl_bin, "-p", ctl.group(3), "-U", ctl.group(4), "--json", "status"],
                             capture_output=True, text=True, timeout=30,
                             env=dict(os.environ, PGPASSWORD=ctl.group(1)))
        assert out.returncode == 0, out.stderr
        assert '"primary_node_id": 0' in out.stdout, out.stdout
        # The dashboard and /metrics are served where the banner says.
        dash = None
        while dash is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            dash = re.search(r"(http://127\.0\.0\.1:\d+)/\s*$", line)
        assert dash, "demo never printed the dashboard URL:\n" + "".join(lines)
        with urllib.request.urlopen(dash.group(1) + "/", timeout=10) as r:
            assert r.status == 200 and b"pgpilot dashboard" in r.read()
        with urllib.request.urlopen(dash.group(1) + "/metrics", timeout=10) as r:
            assert b"pgpilot_node_up{node=\"2\"} 1" in r.read()
        rest, _ = proc.communicate(timeout=90)
        lines.append(rest)
        assert proc.returncode == 0, "".join(lines)
        assert "removed temp dirs" in rest
        dirs = re.findall(r"(/tmp/pgpilot-(?:cluster|proxy)-[^/\s]+)", "".join(lines))
        assert dirs, "".join(lines)
        for d in set(dirs):
            assert not os.path.exists(d), f"{d} left behind"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
