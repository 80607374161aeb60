"""One worker thread per watch, so a slow command never delays another watch's signal.

The thread owns the watch's action: it runs `start`, every `execute`, the jobs the action
posts to itself (an app's exit, a backoff timer) and finally `close`, one at a time, in order.

The busy policy decides what happens to batches that arrive while an action runs:
queue (merge them, run once more afterwards), ignore (drop them), restart (stop the run and
start again with everything, old and new).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from watchd import logformat
from watchd.actions import Action, Job
from watchd.changes import Batch
from watchd.errors import WatchFailed, one_line
from watchd.logtext import ignore_hint
from watchd.model import OnBusy
from watchd.outcome import Outcome, Result
from watchd.stats import Tally

log = logging.getLogger(__name__)

LOOP_RUNS = 10  # this many runs in a row, each set off right after the one before: a loop


class WatchWorker:
    def __init__(
        self,
        name: str,
        *,
        on_done: Callable[[str, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet: float = 0.0,
        command_line: bool = False,
        tally: Tally | None = None,
    ) -> None:
        self.name = name
        self.tally = tally if tally is not None else Tally(clock)  # each action counted here
        self.quiet = quiet  # the watch's debounce: a batch that began this soon after a run is its echo
        self.command_line = command_line  # a one-liner's watch: hints say -i, not ignore:
        self._last_end: float | None = None
        self._streak = 0
        self._warned_loop = False
        self.on_done = on_done
        self.action: Action | None = None
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: Batch | None = None
        self._current: Batch | None = None
        self._jobs: deque[Job] = deque()
        self._timers: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._cancel = threading.Event()
        self._closing: float | None = None  # the close deadline, once closing
        self._closing_event = threading.Event()  # set with it: interrupts a `prepare`
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watchd-{name}", daemon=True)

    def attach(self, action: Action) -> None:
        self.action = action

    @property
    def grace(self) -> float:
        """The longest closing may take."""
        return self.action.grace if self.action is not None else 0.0

    @property
    def on_busy(self) -> OnBusy:
        return self.action.on_busy if self.action is not None else OnBusy.QUEUE

    def start(self) -> None:
        """Start the action (an app starts now: the caller knows the watches are live), then the
        thread. Raises WatchFailed, naming the watch, if the action raised (a bug, or a call this
        platform lacks): the thread is not started, and the caller closes the worker."""
        assert self.action is not None
        try:
            self.action.start()
        except Exception as exc:
            log.debug("%s: could not start", self.name, exc_info=exc)  # the traceback, with -v
            raise WatchFailed(f"{self.name}: could not start: {one_line(exc)}") from exc
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.is_alive() or self._closed.is_set()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._current is not None or self._pending is not None

    def give_way(self, batch: Batch) -> bool:
        """If a newer batch waits (files changed again), carry `batch` into it and say so: the
        action then leaves `batch` to it instead of finishing it."""
        with self._cond:
            if self._pending is None:
                return False
            self._pending = batch.merged(self._pending)
            return True

    # -------------------------------------------------------------- from other threads

    def submit(self, batch: Batch) -> None:
        with self._cond:
            if self._closing is not None:
                return
            if self._current is not None:
                if self.on_busy is OnBusy.IGNORE:
                    log.info("%s: still running; ignoring %s", self.name, batch.summary())
                    return
                if self.on_busy is OnBusy.RESTART and not self._cancel.is_set():
                    log.info("%s: %s; restarting the running command", self.name, batch.what())
                    # the interrupted run's changes are carried into the next one
                    self._pending = self._current if self._pending is None else self._pending
                    self._cancel.set()
            self._pending = batch if self._pending is None else self._pending.merged(batch)
            if self._current is not None and log.isEnabledFor(logging.DEBUG):  # -v: why nothing runs yet
                log.debug("%s: still running; %s will run after it", self.name, self._pending.what())
            self._cond.notify()

    def prepare(self, batch: Batch) -> None:
        """A batch is forming: let the action get ready for it, on this watch's thread."""
        action = self.action
        if action is not None:
            self.post(lambda: action.prepare(batch, self._closing_event))

    def forget(self) -> None:
        """The batch `prepare` saw will not be carried out after all (its content was as it was)."""
        action = self.action
        if action is not None:
            self.post(action.forget)

    def post(self, job: Job) -> None:
        """Run `job` on this watch's thread, before any pending batch."""
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()

    def post_later(self, delay: float, job: Job) -> None:
        """Run `job` on this watch's thread once `delay` seconds have passed."""
        with self._cond:
            heapq.heappush(self._timers, (self._clock() + delay, next(self._seq), job))
            self._cond.notify()

    # -------------------------------------------------------------- the thread

    def _next(self) -> Job | Batch | None:
        """The next thing to do (None: close), waiting for it."""
        with self._cond:
            while True:
                if self._closing is not None:
                    return None
                now = self._clock()
                while self._timers and self._timers[0][0] <= now:
                    self._jobs.append(heapq.heappop(self._timers)[2])
                if self._jobs:
                    return self._jobs.popleft()
                if self._pending is not None:
                    batch, self._pending = self._pending, None
                    self._current = batch
                    self._cancel.clear()
                    return batch
                self._cond.wait(self._timers[0][0] - now if self._timers else None)

    def _loop(self) -> None:
        assert self.action is not None
        logformat.bind_thread(self.name)
        while True:
            work = self._next()
            if work is None:
                break
            if not isinstance(work, Batch):
                try:
                    work()
                except Exception as exc:
                    self._unexpected("internal error", exc)
                continue
            self._note_loop(work)
            outcome: str | None = None
            started = self._clock()
            try:
                with logformat.acting(work, started):
                    outcome = self.action.execute(work, self._cancel)
            except Exception as exc:  # an action bug must not kill the watch
                self._unexpected("the action failed unexpectedly", exc)
                outcome = Outcome("failed unexpectedly (see the log)", Result.FAILED)
            finally:
                self._last_end = self._clock()
                with self._cond:
                    self._current = None
                    self._cond.notify_all()
            if outcome:  # None: nothing was done (stopped before it began)
                self.tally.acted(outcome, self._last_end - started, work.trigger)
            if self.on_done is not None:
                self.on_done(self.name, outcome)
        self._close_action()

    def _unexpected(self, what: str, exc: Exception) -> None:
        """An exception no action handled: one error line, "<watch>: <what>: <exception>"; the
        traceback only with -v (a bug report needs it, a user's log does not). The watch goes on."""
        debug = log.isEnabledFor(logging.DEBUG)
        log.error("%s: %s: %s", self.name, what, one_line(exc), exc_info=exc if debug else None)

    def _note_loop(self, batch: Batch) -> None:
        """Warn once when the action seems to change its own inputs (`date >> src/out.txt`):
        LOOP_RUNS runs in a row, each set off within the quiet period after the previous one ended."""
        if self._last_end is not None and batch.first_at - self._last_end <= self.quiet:
            self._streak += 1
        else:
            self._streak = 0
        if self._streak < LOOP_RUNS or self._warned_loop:
            return
        self._warned_loop = True
        names = sorted({os.path.basename(p) for p in batch.paths if p})[:3]
        log.warning(
            "%s: the last %d runs were each set off by changes made right after the run before ended "
            "(%s): does the action write into what it watches? If so, add %s",
            self.name,
            LOOP_RUNS,
            batch.summary(),
            ignore_hint(names, command_line=self.command_line)
            + ("" if self.command_line else " to the watch"),
        )

    def _close_action(self) -> None:
        assert self.action is not None and self._closing is not None
        try:
            self.action.close(self._closing)
        except Exception as exc:
            self._unexpected("could not close the action", exc)
        finally:
            self._closed.set()

    # -------------------------------------------------------------- closing

    def request_close(self, deadline: float) -> None:
        """Start closing without waiting: drop pending work, tell a running action to end, and
        have the thread close the action by `deadline`.

        Closing many workers: request all first, then `join` each, so their processes' stop
        timeouts run in parallel rather than one after the other.
        """
        with self._cond:
            if self._closing is not None:
                return
            self._closing = deadline
            self._closing_event.set()
            self._pending = None
            self._jobs.clear()
            self._timers.clear()
            self._cancel.set()
            self._cond.notify_all()
        if not self._thread.is_alive() and not self._thread.ident:
            self._close_action()  # never started: close here

    def join(self, deadline: float) -> bool:
        """Wait until the action is closed, at most until `deadline`; return whether it is."""
        return self._closed.wait(max(0.0, deadline - self._clock()))

    def close(self, deadline: float) -> bool:
        self.request_close(deadline)
        return self.join(deadline + 0.5)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing runs or is pending (used by tests and --once style callers)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._current is None and self._pending is None, timeout)
