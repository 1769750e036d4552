"""Watchdog run by harness.procs.Reaper: `reaper.py PARENT_PID DIR`.

Waits until PARENT_PID is gone (this process gets reparented), then kills every process
whose cwd is under DIR and removes DIR. Exits quietly when DIR disappears (normal cleanup)
or on SIGTERM (the parent cancelled it).
"""

import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.procs import sweep  # noqa: E402


def main():
    parent, path = int(sys.argv[1]), sys.argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while os.getppid() == parent:
        if not os.path.exists(path):
            return
        time.sleep(0.5)
    if os.path.exists(path):
        sweep(path, timeout=20)
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
