"""Reload confirmation: after a HUP, follow the pre-fork server's workers until they are replaced.

gunicorn and uWSGI answer HUP by starting new workers and retiring the old ones; the master
keeps its PID. The reload is confirmed when every worker that had been running for a while
before the signal (SETTLED seconds: workers, not a shell loop's passing `sleep`) has exited and
as many children started after the signal run as there were workers (or, for a server that
now runs fewer, the new ones have stayed as they are for SETTLED seconds: uWSGI forks them one
by one). A master that dies instead is an error; workers that are not replaced within the
timeout are a warning (the server ignored the signal, or its new workers keep crashing). A
target whose children are all younger cannot be confirmed, and the log says so. This runs on a
thread of its own, so it never holds up the watch's next batch or any other watch.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time

from watchd import procfs

log = logging.getLogger(__name__)

POLL = 0.05
SETTLED = 0.5  # seconds a child must have run before the signal to count as a worker

Children = dict[int, int]  # child PID -> start time in clock ticks (a reused PID differs)


def _stat(pid: int) -> procfs.ProcStat | None:
    """As procfs.read_stat, with an unreadable process taken as gone (for children)."""
    try:
        return procfs.read_stat(pid)
    except OSError:
        return None


def ticks_now() -> int:
    """Now, in the clock ticks since boot that /proc's start times use."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def settled(kids: Children, at: int | None = None) -> Children:
    """The children that had been running for SETTLED seconds at `at` (ticks; default now)."""
    at = ticks_now() if at is None else at
    least = SETTLED * os.sysconf("SC_CLK_TCK")
    return {k: t for k, t in kids.items() if at - t >= least}


def children(pid: int) -> Children:
    """Live (non-zombie) children of `pid`, from /proc/PID/task/*/children or a /proc scan."""
    kids: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
    except FileNotFoundError:
        kids = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                st = _stat(int(entry))
                if st is not None and st.ppid == pid:
                    kids.add(int(entry))
    except OSError:
        return {}
    out: Children = {}
    for kid in kids:
        st = _stat(kid)
        if st is not None and not st.exited and st.ppid == pid:
            out[kid] = st.start_ticks
    return out


class Confirmation:
    """One reload being followed. `cancel` supersedes it (a newer signal) or ends it (shutdown)."""

    def __init__(
        self,
        name: str,
        *,
        process: str,
        pid: int,
        signame: str,
        before: Children,
        timeout: float,
        pidfd: int | None = None,
    ) -> None:
        self.name = name
        self.process = process
        self.pid = pid
        self.signame = signame
        self.before = before
        self.timeout = timeout
        self.cancel = threading.Event()
        self._pidfd = pidfd  # the master, held since before the signal: its exit is certain news
        master = _stat(pid)
        self._master_start = master.start_ticks if master is not None else 0
        self._signalled = ticks_now() - 1  # a child started from now on is a new one (1 tick slack)
        self._thread = threading.Thread(target=self._follow, name=f"watchd-confirm-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _follow(self) -> None:
        try:
            self._follow_master()
        finally:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def _master_gone(self) -> bool:
        """Through the pidfd where there is one: it turns readable when that very process exits."""
        if self._pidfd is None:
            return False
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        return bool(poller.poll(0))

    def _follow_master(self) -> None:
        started = time.monotonic()
        seen: list[int] = []
        steady = started  # when the set of new workers last changed
        while not self.cancel.wait(POLL):
            took = time.monotonic() - started
            try:
                master = procfs.read_stat(self.pid)
            except PermissionError:  # hidepid, or another user's: unknown is not "exited"
                log.warning(
                    "%s: %s sent to %d; cannot confirm the reload: permission denied reading /proc/%d",
                    self.name,
                    self.signame,
                    self.pid,
                    self.pid,
                )
                return
            except OSError:
                master = None
            gone = self._master_gone() or master is None or master.exited
            if gone or master is None or master.start_ticks != self._master_start:
                log.error(
                    "%s: %s (pid %d) exited %.2f s after %s instead of reloading (crashing on the new code?)",
                    self.name,
                    self.process,
                    self.pid,
                    took,
                    self.signame,
                )
                return
            now = children(self.pid)
            old = [k for k, t in self.before.items() if now.get(k) == t]
            new = sorted(k for k, t in now.items() if t >= self._signalled and self.before.get(k) != t)
            if new != seen:
                seen, steady = new, time.monotonic()
            # uWSGI forks its workers one by one: all of them, or a count that has stopped growing
            complete = len(new) >= len(self.before) or time.monotonic() - steady >= SETTLED
            if not old and new and complete:
                log.info(
                    "%s: %s (pid %d) reloaded: %d new %s in %.2f s",
                    self.name,
                    self.process,
                    self.pid,
                    len(new),
                    "worker" if len(new) == 1 else "workers",
                    took,
                )
                return
            if took >= self.timeout:
                log.warning(
                    "%s: %s sent to %d but its workers were not replaced (%d of %d old still running, "
                    "%d new after %.1f s)",
                    self.name,
                    self.signame,
                    self.pid,
                    len(old),
                    len(self.before),
                    len(new),
                    took,
                )
                return
