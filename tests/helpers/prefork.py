"""A pre-fork stand-in: a master with two sleeping children, for reload-confirmation tests.

Usage: python prefork.py PIDFILE MODE

MODE "ignore": the master ignores HUP (its workers are never replaced).
MODE "die": HUP kills the master (default action) and its children follow.
SIGTERM stops the master and its children.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> int:
    pidfile, mode = sys.argv[1], sys.argv[2]
    children = []
    master = os.getpid()
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            while os.getppid() == master:  # exit when the master is gone
                time.sleep(0.05)
            os._exit(0)
        children.append(pid)

    def stop(*_: object) -> None:
        for c in children:
            os.kill(c, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    # explicit both ways: under nohup (or any parent that ignores HUP) the default is inherited away
    signal.signal(signal.SIGHUP, signal.SIG_IGN if mode == "ignore" else signal.SIG_DFL)
    tmp = f"{pidfile}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, pidfile)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
