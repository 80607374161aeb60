"""A master with two sleeping workers that replaces them on SIGUSR1, for reload-confirmation tests.

Usage: python workers.py PIDS_FILE

Each time it (re)starts its workers it appends their PIDs to PIDS_FILE as one line
("PID PID"), after they have been forked, so a test knows exactly which children to expect.
SIGUSR1: kill and reap the current workers, then fork two new ones.
SIGTERM: kill the workers and exit. The workers exit by themselves when the master is gone.
"""

from __future__ import annotations

import os
import signal
import sys
import time

WORKERS = 2


def main() -> int:
    pids_file = sys.argv[1]
    master = os.getpid()
    handled = {signal.SIGUSR1, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)  # taken with sigwait, one at a time

    def spawn() -> list[int]:
        kids = []
        for _ in range(WORKERS):
            pid = os.fork()
            if pid == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
                while os.getppid() == master:
                    time.sleep(0.05)
                os._exit(0)
            kids.append(pid)
        with open(pids_file, "a") as f:
            f.write(" ".join(map(str, kids)) + "\n")
        return kids

    def retire(kids: list[int]) -> None:
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        for pid in kids:
            os.waitpid(pid, 0)

    kids = spawn()
    while True:
        sig = signal.sigwait(handled)
        retire(kids)
        if sig == signal.SIGTERM:
            return 0
        kids = spawn()


if __name__ == "__main__":
    sys.exit(main())
