"""Reload confirmation: after a HUP, follow the pre-fork server's workers until they are replaced.

gunicorn and uWSGI answer HUP by starting new workers and retiring the old ones; the master
keeps its PID. The reload is confirmed when every child that existed at signal time has
exited and at least one new child runs. A master that dies instead is an error; workers
that are not replaced within the timeout are a warning (the server ignored the signal, or
its new workers keep crashing). This runs on a thread of its own, so it never holds up the
watch's next batch or any other watch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

POLL = 0.05

Children = dict[int, int]  # child PID -> start time in clock ticks (a reused PID differs)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start ticks) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


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
                if st is not None and st[1] == pid:
                    kids.add(int(entry))
    except OSError:
        return {}
    out: Children = {}
    for kid in kids:
        st = _stat(kid)
        if st is not None and st[0] not in ("Z", "X") and st[1] == pid:
            out[kid] = st[2]
    return out


def supported() -> bool:
    return Path("/proc/self/stat").exists()


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
    ) -> None:
        self.name = name
        self.process = process
        self.pid = pid
        self.signame = signame
        self.before = before
        self.timeout = timeout
        self.cancel = threading.Event()
        self._master_start = (_stat(pid) or ("", 0, 0))[2]
        self._thread = threading.Thread(target=self._follow, name=f"watchd-confirm-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _follow(self) -> None:
        started = time.monotonic()
        while not self.cancel.wait(POLL):
            took = time.monotonic() - started
            master = _stat(self.pid)
            if master is None or master[0] in ("Z", "X") or master[2] != self._master_start:
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
            new = [k for k, t in now.items() if self.before.get(k) != t]
            if not old and new:
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
