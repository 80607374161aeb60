"""What each watch has done, counted in one place.

One `Tally` per watch (kept across config reloads while the watch keeps its name) is fed by the
daemon's loop (changes and batches), by the watch's worker (each action: its result, how long it
took) and by the action (a reload confirmed or not, the app of a `run` watch starting and
exiting). `watchd status`, /metrics, /healthz and systemd's STATUS line all read the `Report`s the
daemon makes from it, so they never disagree.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from watchd.changes import Batch
from watchd.outcome import Result, result_of

# The upper bounds of the action-duration histogram (seconds): a signal takes milliseconds, a
# command or a restart up to a minute.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# An app that exited this many times in a row, each soon after it started (the restart backoff
# did not reset), is crash-looping: /healthz says 503 until it stays up or a change restarts it.
CRASH_LOOP = 3


@dataclass(frozen=True, slots=True)
class LastChange:
    at: float  # time.time()
    first: str  # the first path of the batch
    count: int  # how many paths the batch named


@dataclass(frozen=True, slots=True)
class LastAction:
    at: float  # time.time() when it ended
    what: str  # its outcome, as status displays show it
    result: str  # a Result's value
    duration: float  # seconds
    trigger: str  # "change", "manual" or "start"


@dataclass(frozen=True, slots=True)
class App:
    """The app of a `run` watch."""

    pid: int | None  # None while it is not running
    started: float | None  # time.time() of its start, while running
    exits: int  # exits in a row soon after starting (the restart backoff's streak)
    last_exit: str | None  # "exit status 1", while it is not running
    crash_looping: bool


@dataclass(frozen=True, slots=True)
class Counts:
    """A tally at one moment."""

    events: int = 0  # changes received
    batches: int = 0
    actions: dict[str, int] = field(default_factory=dict)  # by Result value
    confirmations: dict[str, int] = field(default_factory=dict)  # confirmed / not_confirmed
    restarts: int = 0  # the app restarted after exiting by itself
    overflows: int = 0  # events were lost (queue overflow, FSEvents' dropped events): acted on as a rescan
    duration_buckets: tuple[int, ...] = ()  # per DURATION_BUCKETS bound, then +Inf (not cumulative)
    duration_sum: float = 0.0
    last_change: LastChange | None = None
    last_action: LastAction | None = None
    app: App | None = None


class Tally:
    """One watch's counters. Thread-safe: the loop, the worker and the action's threads feed it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events = 0
        self._batches = 0
        self._overflows = 0
        self._actions = dict.fromkeys((r.value for r in Result), 0)
        self._confirmations = {"confirmed": 0, "not_confirmed": 0}
        self._restarts = 0
        self._buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self._sum = 0.0
        self._last_change: LastChange | None = None
        self._last_action: LastAction | None = None
        # the app: pid, start (monotonic and wall clock), exits in a row, last exit
        self._app = False
        self._pid: int | None = None
        self._started: tuple[float, float] | None = None
        self._exits = 0
        self._last_exit: str | None = None
        self._reset_after = 10.0

    # ------------------------------------------------------------------ the daemon's loop

    def changed(self, *, rescan: bool = False) -> None:
        with self._lock:
            self._events += 1
            self._overflows += rescan

    def batched(self, batch: Batch) -> None:
        """A batch went to the worker (or was held while paused)."""
        paths = batch.paths
        with self._lock:
            self._batches += 1
            if paths:
                self._last_change = LastChange(time.time(), paths[0], len(paths))

    # ------------------------------------------------------------------ the worker

    def acted(self, outcome: str, took: float, trigger: str) -> None:
        result = result_of(outcome)
        with self._lock:
            self._actions[result.value] += 1
            self._buckets[bisect.bisect_left(DURATION_BUCKETS, took)] += 1
            self._sum += took
            self._last_action = LastAction(time.time(), str(outcome), result.value, took, trigger)

    # ------------------------------------------------------------------ the action

    def confirmed(self, ok: bool) -> None:
        """A signal's reload was confirmed (the workers were replaced), or not."""
        with self._lock:
            self._confirmations["confirmed" if ok else "not_confirmed"] += 1

    def app_started(self, pid: int, exits: int, reset_after: float) -> None:
        """The app started; `exits` is how many times in a row it had exited soon after its
        start (0 when a change started it), `reset_after` how long it must run to clear that."""
        with self._lock:
            self._app = True
            self._pid = pid
            self._started = (self._clock(), time.time())
            self._exits = exits
            self._reset_after = reset_after
            self._last_exit = None

    def app_exited(self, status: str, exits: int, *, restarting: bool) -> None:
        """The app exited by itself: `status` as people read it, `exits` in a row so far."""
        with self._lock:
            self._app = True
            self._pid = None
            self._started = None
            self._exits = exits
            self._last_exit = status
            self._restarts += restarting

    # ------------------------------------------------------------------ reading

    def counts(self) -> Counts:
        with self._lock:
            app = None
            if self._app:
                up = self._clock() - self._started[0] if self._started is not None else None
                looping = self._exits >= CRASH_LOOP and (up is None or up < self._reset_after)
                app = App(
                    self._pid,
                    self._started[1] if self._started is not None else None,
                    self._exits,
                    self._last_exit,
                    looping,
                )
            return Counts(
                events=self._events,
                batches=self._batches,
                actions=dict(self._actions),
                confirmations=dict(self._confirmations),
                restarts=self._restarts,
                overflows=self._overflows,
                duration_buckets=tuple(self._buckets),
                duration_sum=self._sum,
                last_change=self._last_change,
                last_action=self._last_action,
                app=app,
            )


@dataclass(frozen=True, slots=True)
class Report:
    """One watch as `watchd status`, /metrics and /healthz show it."""

    name: str
    action: str  # its kind: pidfile, command, run, post
    state: str  # watching, paused, polling (degraded), waiting (a root not there yet), failed
    problem: str | None  # why /healthz answers 503 for it; None: healthy
    roots: tuple[str, ...]
    missing: tuple[str, ...]  # roots not there
    directories: int
    polled: int  # roots polled because native watching was impossible
    paused_until: float | None  # time.time() when a `pause --for` ends; None: not paused, or until resumed
    held: int  # paths collected while paused
    counts: Counts
    busy: bool = False  # an action is under way

    def to_json(self) -> dict[str, object]:
        c = self.counts
        return {
            "name": self.name,
            "action": self.action,
            "state": self.state,
            "problem": self.problem,
            "roots": list(self.roots),
            "missing": list(self.missing),
            "directories": self.directories,
            "polled": self.polled,
            "paused_until": self.paused_until,
            "held": self.held,
            "busy": self.busy,
            "last_change": _fields(c.last_change),
            "last_action": _fields(c.last_action),
            "app": _fields(c.app),
            "counters": {
                "events": c.events,
                "batches": c.batches,
                "actions": c.actions,
                "confirmations": c.confirmations,
                "restarts": c.restarts,
                "overflows": c.overflows,
            },
        }


def _fields(value: LastChange | LastAction | App | None) -> dict[str, object] | None:
    return None if value is None else dataclasses.asdict(value)
