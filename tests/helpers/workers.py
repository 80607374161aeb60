"""A master with two sleeping workers that replaces them on SIGUSR1, for reload-confirmation tests.

Usage: python workers.py PIDS_FILE [GAP [COUNT]]

GAP: seconds between one worker's fork and the next after a reload (uWSGI forks them one by one;
default 0). COUNT: how many workers a reload starts (default 2, as at start).

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
    gap = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    count = int(sys.argv[3]) if len(sys.argv) > 3 else WORKERS
    master = os.getpid()
    handled = {signal.SIGUSR1, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)  # taken with sigwait, one at a time

    def spawn(n: int, pause: float) -> list[int]:
        kids: list[int] = []
        for _ in range(n):
            if kids:
                time.sleep(pause)
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

    kids = spawn(WORKERS, 0.0)
    while True:
        sig = signal.sigwait(handled)
        retire(kids)
        if sig == signal.SIGTERM:
            return 0
        kids = spawn(count, gap)


if __name__ == "__main__":
    sys.exit(main())
