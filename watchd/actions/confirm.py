"""Reload confirmation: after a HUP, follow the pre-fork server's workers until they are replaced.

gunicorn and uWSGI answer HUP by starting new workers and retiring the old ones; the master
keeps its PID. A reload is judged by generations: `snapshot()` takes the master's children (PID
and start time, so a reused PID is never taken for one of them) just before the signal. The
reload is confirmed when none of those children runs any more and the children started after
the signal have each run for SETTLED seconds, as many as the server had workers, or fewer once
they have stayed as they are that long (uWSGI forks them one by one; a reload may lower the
count). How young the old children are does not matter, so a save made while the previous
reload's workers are still starting is confirmed like any other; that new children must stay
SETTLED seconds is what keeps a shell loop's passing `sleep`, or workers that crash as they
start, from being reported as a reload. The time reported is the server's (until the last old
child was gone and the last new one had started), not watchd's SETTLED look after it.

One confirmation at a time per action: a newer signal supersedes the one under way, which ends
quietly (a debug line says so). If its reload was still under way, the newer confirmation takes
over its worker count (the snapshot then mixes retiring and starting workers, or is empty while
uWSGI re-executes itself) and its report covers both signals: the generation that settles after
the last signal is newer than both.

A master that dies instead is an error; workers that are not replaced within the timeout are a
warning that says what was seen (old children still running, new ones, new ones that came and
went). This runs on a thread of its own, so it never holds up the watch's next batch or any
other watch.

Children, start times and the master's state come from `watchd.platform` (/proc on Linux, psutil
on macOS); start times are seconds since boot on the clock of its `uptime()`.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchd import platform

if TYPE_CHECKING:
    from watchd.stats import Tally

log = logging.getLogger(__name__)

POLL = 0.05
SETTLED = 0.5  # seconds a child must have run to count as a worker (a shell loop's sleep does not)

Children = dict[int, float]  # child PID -> its start time (a reused PID has another)


def settled(kids: Children, at: float | None = None) -> Children:
    """The children that had been running for SETTLED seconds at `at` (the platform's uptime();
    default now)."""
    at = platform.current.uptime() if at is None else at
    return {k: t for k, t in kids.items() if at - t >= SETTLED}


def children(pid: int) -> Children:
    """The live (not zombie) children of `pid` with their start times; empty if it is gone."""
    return platform.current.children(pid)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A master's children at one moment: taken just before a signal, they are the generation
    the reload must retire; a child started from `at` on (uptime()) that is not one of them is new."""

    children: Children
    at: float


def snapshot(pid: int) -> Snapshot:
    """The children of `pid` now (the clock is read first: a child forked meanwhile is new)."""
    at = platform.current.uptime()
    return Snapshot(children(pid), at)


def _workers(n: int) -> str:
    return f"{n} new worker" if n == 1 else f"{n} new workers"


class Confirmation:
    """One reload being followed. `cancel` ends it quietly (shutdown); `supersede()` ends it for a
    newer signal's confirmation.

    `workers` is how many workers the server ran before the reload (by default the snapshot's
    children); `signals` how many signals this confirmation answers for (more than one when it
    took over from confirmations it superseded)."""

    def __init__(
        self,
        name: str,
        *,
        process: str,
        pid: int,
        signame: str,
        before: Snapshot,
        timeout: float,
        workers: int | None = None,
        signals: int = 1,
        pidfd: int | None = None,
        on_result: Callable[[bool], None] | None = None,
    ) -> None:
        self.name = name
        self.process = process
        self.pid = pid
        self.signame = signame
        self.before = before
        self.workers = len(before.children) if workers is None else workers
        self.signals = signals
        self.timeout = timeout
        self.cancel = threading.Event()
        self._pidfd = pidfd  # the master, held since before the signal: its exit is certain news
        self._on_result = on_result  # told whether the reload was confirmed (the watch's tally)
        self._side = platform.current  # one side for the whole confirmation: its clock is its own
        try:
            master = self._side.process_info(pid)
        except OSError:
            master = None
        self.master_start = master.started if master is not None else 0.0
        self._started = time.monotonic()
        # one report at most, and none once superseded: the lock orders the two
        self._lock = threading.Lock()
        self._ended = False
        self._thread = threading.Thread(target=self._follow, name=f"watchd-confirm-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def supersede(self) -> bool:
        """End this confirmation for a newer signal's; whether its reload was still under way
        (False: it had already reported, and the newer one starts afresh)."""
        with self._lock:
            if self._ended:
                return False
            self._ended = True
        self.cancel.set()
        log.debug(
            "%s: confirmation of the %s sent %.2f s ago superseded by the next %s's",
            self.name,
            self.signame,
            time.monotonic() - self._started,
            self.signame,
        )
        return True

    def _report(self, level: int, msg: str, *args: object) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            confirmed = level == logging.INFO  # the one report at INFO is the confirmation
            result = "confirmed" if confirmed else "not_confirmed"
            log.log(level, msg, *args, extra={"watchd": {"event": "confirm", "result": result}})
        if self._on_result is not None:
            self._on_result(confirmed)

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
        started = self._started
        before = self.before.children
        current: Children = {}  # the new children at the last look
        steady = started  # when `current` last changed (a child started, or one exited)
        retired: float | None = None  # when no old child was seen running any more
        seen: set[tuple[int, float]] = set()  # every new child seen, to count those that went
        several = f"the last of {self.signals} {self.signame}s" if self.signals > 1 else ""
        slack = self._side.start_resolution()
        while not self.cancel.wait(POLL):
            now = time.monotonic()
            took = now - started
            try:
                master = self._side.process_info(self.pid)
            except PermissionError as exc:  # hidepid, or another user's: unknown is not "exited"
                self._report(
                    logging.WARNING,
                    "%s: %s sent to %d; cannot confirm the reload: permission denied reading %s",
                    self.name,
                    self.signame,
                    self.pid,
                    exc.filename or f"PID {self.pid}",
                )
                return
            except OSError:
                master = None
            gone = self._master_gone() or master is None or master.exited
            if gone or master is None or master.started != self.master_start:
                self._report(
                    logging.ERROR,
                    "%s: %s (pid %d) exited %.2f s after %s instead of reloading (crashing on the new code?)",
                    self.name,
                    self.process,
                    self.pid,
                    took,
                    self.signame,
                )
                return
            kids = self._side.children(self.pid)
            old = [k for k, t in before.items() if kids.get(k) == t]
            # slack of one step of the start times' resolution (Linux: both truncated to ticks)
            new = {k: t for k, t in kids.items() if t >= self.before.at - slack and before.get(k) != t}
            if new != current:
                current, steady = new, now
            if old:
                retired = None
            elif retired is None:
                retired = now
            seen.update(new.items())
            # workers, not passers-by: each has run SETTLED s, and they are all there is to come
            stayed = len(settled(new, self._side.uptime())) == len(new)
            whole = len(new) >= self.workers or now - steady >= SETTLED
            if retired is not None and new and stayed and whole:
                self._report(
                    logging.INFO,
                    "%s: %s (pid %d) reloaded: %s in %.2f s%s",
                    self.name,
                    self.process,
                    self.pid,
                    _workers(len(new)),
                    max(steady, retired) - started,  # the server's time, not the SETTLED look after it
                    f" ({several})" if several else "",
                )
                return
            if took >= self.timeout:
                went = len(seen - set(new.items()))
                self._report(
                    logging.WARNING,
                    "%s: %s sent to %d but its workers were not replaced (%d of %d old still running, "
                    "%d new after %.1f s%s%s)",
                    self.name,
                    self.signame,
                    self.pid,
                    len(old),
                    len(before),
                    len(new),
                    took,
                    f"; {went} more started and exited: its children come and go (a shell loop's, "
                    "or workers crashing as they start?)"
                    if went
                    else "",
                    f"; {several}" if several else "",
                )
                return


class Confirmations:
    """One action's reload confirmations (a signal action's, a `run` watch's that reloads its app):
    one at a time, a newer signal's superseding the one under way (see the module's docstring);
    each result counted in the watch's tally."""

    def __init__(self, name: str, tally: Tally | None) -> None:
        self.name = name
        self._on_result = tally.confirmed if tally is not None else None
        self._current: Confirmation | None = None

    def _supersede(self, pid: int, started: float) -> Confirmation | None:
        """End the confirmation of the previous signal, if any; return it if its reload was still
        under way in this same master (same PID and start time), for the next one to take over."""
        previous, self._current = self._current, None
        if previous is None or not previous.supersede():
            return None
        return previous if (previous.pid, previous.master_start) == (pid, started) else None

    def follow(
        self,
        pid: int,
        started: float,
        *,
        process: str,
        signame: str,
        before: Snapshot | None,
        timeout: float,
        pidfd: int | None = None,
    ) -> str:
        """`signame` was just sent to `pid` (start time `started`; `before`: its children just
        before, None for no confirmation): follow its reload on a thread of its own if it had
        workers. Takes `pidfd` (closed, or handed to the confirmation). Returns what the signal's
        log line adds ("; waiting for its 2 workers to be replaced"), or ""."""
        under_way = self._supersede(pid, started)
        workers = len(before.children) if before is not None else 0
        if under_way is not None:
            workers = under_way.workers
        if before is None or not workers:
            if pidfd is not None:
                os.close(pidfd)
            return ""
        waiting = f"; waiting for its {workers} {'worker' if workers == 1 else 'workers'} to be replaced"
        if under_way is not None:
            waiting += f" (the previous {signame}'s reload still under way: this covers both)"
        self._current = Confirmation(
            self.name,
            process=process,
            pid=pid,
            signame=signame,
            before=before,
            timeout=timeout,
            workers=workers,
            signals=under_way.signals + 1 if under_way is not None else 1,
            pidfd=pidfd,  # it follows the same process, and closes the pidfd
            on_result=self._on_result,
        )
        self._current.start()
        return waiting

    def close(self, deadline: float) -> None:
        """End the confirmation under way, if any, quietly (shutdown, the watch removed)."""
        if self._current is not None:
            self._current.cancel.set()
            self._current.join(max(0.0, deadline - time.monotonic()))
