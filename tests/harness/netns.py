"""A network namespace joined to the host by a veth pair, for network-fault tests
(FAULTS.md 13-16). Needs root, iproute2 and nft.

    with NetNs() as ns:                  # namespace pgptXXXX, veth pgptXXXXh <-> pgptXXXXn
        ns.inner_addr                    # 10.201.X.2, inside; the host side is 10.201.X.1
        ns.drop_both(); ns.heal()        # nft DROP on the inner veth, both ways; undo
        ns.drop_out()                    # only packets leaving the namespace
        ns.link_down(); ns.link_up()     # "cable pulled": the inner end goes down

The namespace has a private /30 and no default route, so the host (and anything on it,
PostgreSQL standbys, pgpilot) reaches it only through the veth. Faults are nft rules in the
namespace's own ruleset (table inet pgpilot_fault), matched on the inner veth, so its
loopback keeps working.

link_down() downs the inner end, not the host end: the host end then has NO-CARRIER, its
route stays (flagged linkdown) and packets to the namespace are dropped, as with a pulled
cable. Downing the host end would remove the route instead, and packets to 10.201.X.2 would
follow the default route (on the test VM its gateway answers SYNs for any address).

close() (or leaving the `with` block) deletes the veth pair and the namespace; it is
idempotent. A watchdog process does the same if the test process dies first. Stop the
processes running inside (e.g. Cluster.stop()) before close(): a namespace lives on while a
process is in it.
"""

import os
import random
import shutil
import subprocess

from harness import procs
from harness.errors import HarnessError

TABLE = "pgpilot_fault"


def unavailable_reason():
    """Why network namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, nftables, util-linux)"
    return None


def _run(*cmd, check=True, timeout=15):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed (rc {r.returncode}): {r.stderr.strip()}")
    return r


def _subnets_in_use():
    out = _run("ip", "-4", "-o", "addr", "show").stdout
    return {int(p.split(".")[2]) for p in out.split() if p.startswith("10.201.")}


class NetNs:
    def __init__(self):
        reason = unavailable_reason()
        if reason:
            raise HarnessError(reason)
        tag = "%04x" % random.randrange(0x10000)
        self.name = f"pgpt{tag}"
        self.host_if = f"pgpt{tag}h"
        self.inner_if = f"pgpt{tag}n"
        free = sorted(set(range(1, 255)) - _subnets_in_use())
        if not free:
            raise HarnessError("no free 10.201.X.0/30 subnet")
        x = random.choice(free)
        self.host_addr = f"10.201.{x}.1"
        self.inner_addr = f"10.201.{x}.2"
        self.subnet = f"10.201.{x}.0/30"
        self._closed = False
        self._watchdog = None
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def __repr__(self):
        return f"<NetNs {self.name} {self.inner_addr}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- setup / teardown ----
    def _create(self):
        _run("ip", "netns", "add", self.name)
        self._watchdog = procs.Watchdog(["-c", _WATCHDOG], self.name, self.host_if)
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.inner_if)
        _run("ip", "link", "set", self.inner_if, "netns", self.name)
        _run("ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        self.exec("ip", "addr", "add", f"{self.inner_addr}/30", "dev", self.inner_if)
        self.exec("ip", "link", "set", self.inner_if, "up")
        self.exec("ip", "link", "set", "lo", "up")
        ruleset = (f"table inet {TABLE} {{\n"
                   "  chain input { type filter hook input priority 0; policy accept; }\n"
                   "  chain output { type filter hook output priority 0; policy accept; }\n"
                   "}\n")
        r = subprocess.run(["ip", "netns", "exec", self.name, "nft", "-f", "-"], input=ruleset,
                           capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            raise HarnessError(f"nft in {self.name} failed: {r.stderr.strip()}")

    def close(self):
        """Deletes the veth pair and the namespace. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _run("ip", "link", "del", self.host_if, check=False)
        _run("ip", "netns", "del", self.name, check=False)
        if self._watchdog:
            self._watchdog.cancel()
            self._watchdog = None

    # ---- running things inside ----
    def exec_prefix(self):
        """Prefix that runs a command inside the namespace (as root)."""
        return ["ip", "netns", "exec", self.name]

    def exec(self, *cmd, check=True):
        return _run(*self.exec_prefix(), *cmd, check=check)

    # ---- faults ----
    def _nft(self, *args):
        self.exec("nft", *args)

    def drop_both(self):
        """Every packet into or out of the namespace is dropped (silently: no RST, no ICMP)."""
        self._nft("add", "rule", "inet", TABLE, "input", "iifname", self.inner_if, "drop")
        self._nft("add", "rule", "inet", TABLE, "output", "oifname", self.inner_if, "drop")

    def drop_out(self):
        """Only packets leaving the namespace are dropped: requests arrive, nothing answers."""
        self._nft("add", "rule", "inet", TABLE, "output", "oifname", self.inner_if, "drop")

    def drop_in(self):
        """Only packets entering the namespace are dropped."""
        self._nft("add", "rule", "inet", TABLE, "input", "iifname", self.inner_if, "drop")

    def heal(self):
        """Removes every drop rule and brings the link up."""
        self._nft("flush", "chain", "inet", TABLE, "input")
        self._nft("flush", "chain", "inet", TABLE, "output")
        self.link_up()

    def link_down(self):
        self.exec("ip", "link", "set", self.inner_if, "down")

    def link_up(self):
        self.exec("ip", "link", "set", self.inner_if, "up")

    def rules(self):
        return self.exec("nft", "list", "table", "inet", TABLE).stdout


_WATCHDOG = """
import os, subprocess, sys, time
parent, ns, veth = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while os.getppid() == parent:
    time.sleep(0.5)
time.sleep(2)  # let the cluster reaper kill the processes inside first
for cmd in (["ip", "link", "del", veth], ["ip", "netns", "del", ns]):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""
