"""A stand-in server for end-to-end tests: writes its PID to a pidfile and records signals.

Usage: python sigrecorder.py PIDFILE RECORD

Each received HUP, USR1, USR2 or INT is appended to RECORD as one line: its name and the
wall-clock time it arrived. TERM exits 0.
The pidfile is written atomically after the handlers are installed, so a test that sees the
pidfile can signal at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> int:
    pidfile, record = sys.argv[1], sys.argv[2]

    def note(signum: int, frame: object) -> None:
        with open(record, "a") as f:
            f.write(f"{signal.Signals(signum).name} {time.time():.6f}\n")

    for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT):
        signal.signal(s, note)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    open(record, "a").close()
    tmp = f"{pidfile}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, pidfile)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
