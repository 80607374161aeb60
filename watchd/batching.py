"""Batching: a quiet period with a hard cap, on an injected clock.

A batch fires once its watch has been quiet for `debounce`, or `max_delay` after its first
change, whichever comes first, so a burst of 5,000 writes is one action after the last write
and endless churn still acts every `max_delay`. While a batch is open, changes under the
watch's roots that do not match its patterns (rsync writing `locale/*.po` between two `.py`
files) keep it open too (`touch`), so one operation is one action; they never open a batch.
What fires is the net effect per path (see `changes.net_effect`); an empty batch never fires.

A file that changes on its own all the time (the app's log, `db.sqlite3`, celery's schedule file)
would keep every batch open until `max_delay`: a save would wait 2 s instead of 50 ms. So the
evidence decides: a path that changed in CHURN_HITS of the last CHURN_WINDOWS quiet periods is
churn, and no longer keeps a batch open (it is not the tail of one operation, it is background);
once it has been quiet again for CHURN_WINDOWS periods it counts as activity again.
"""

from __future__ import annotations

from collections.abc import Callable

from watchd.changes import Batch, Change, net_effect

CHURN_WINDOWS = 8  # quiet periods looked back on
CHURN_HITS = 5  # changed in this many of them: churn
_CHURN_MIN_WINDOW = 0.025  # seconds: the window when debounce is shorter (or 0)
_ACTIVITY_MAX = 4096  # paths remembered before the ones quiet for CHURN_WINDOWS are forgotten
_WINDOW_MASK = (1 << CHURN_WINDOWS) - 1


class Batcher:
    """Collects one watch's changes and says when the batch is due. Not thread-safe: one owner."""

    __slots__ = (
        "_activity",
        "_changes",
        "_early_taken",
        "_exists",
        "_first",
        "_index",
        "_last",
        "_said",
        "churning",
        "debounce",
        "early",
        "max_delay",
        "watch",
    )

    def __init__(
        self,
        watch: str,
        debounce: float,
        max_delay: float,
        early: float | None = None,
        *,
        exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.watch = watch
        self.debounce = debounce
        self.max_delay = max(max_delay, debounce)
        # an early look at a forming batch, once it has been quiet this long (see take_early)
        self.early = early if early is not None and early < debounce else None
        self._changes: list[Change] = []
        self._index: set[Change] = set()
        self._first = 0.0
        self._last = 0.0
        self._early_taken = False
        self._exists = exists  # the disk, as net_effect sees it (None: the disk; injectable for tests)
        # path -> (the last window it changed in, a bit per window: bit 0 is that one)
        self._activity: dict[str, tuple[int, int]] = {}
        # churning paths: read by other threads (the daemon's -v explanations), replaced not mutated
        self.churning: frozenset[str] = frozenset()
        self._said: set[str] = set()  # paths touch() has reported as churn (once each)

    def __len__(self) -> int:
        return len(self._changes)

    def add(self, change: Change, now: float) -> bool:
        """Add a change; return False if the pending batch already had it (it still extends the quiet)."""
        if not self._changes:
            self._first = now
        self._last = now
        if change in self._index:  # the same change reported twice (modify + close) counts once
            return False
        self._index.add(change)
        self._changes.append(change)
        return True

    def touch(self, path: str, now: float) -> bool:
        """Something else (`path`) changed under the watch's roots: an open batch stays open
        (capped by max_delay as always), unless `path` is churn; with no batch open, nothing
        happens. True the first time `path` is found to be churn (the caller says so, once)."""
        window = int(now / max(self.debounce, _CHURN_MIN_WINDOW))
        last, bits = self._activity.get(path, (window, 0))
        shift = window - last
        bits = ((bits << shift) & _WINDOW_MASK | 1) if shift < CHURN_WINDOWS else 1
        if len(self._activity) >= _ACTIVITY_MAX and path not in self._activity:
            self._forget_quiet(window)
        self._activity[path] = (window, bits)
        churn = bits.bit_count() >= CHURN_HITS
        if not churn:
            if path in self.churning:
                self.churning = self.churning - {path}
            if self._changes:
                self._last = now
            return False
        if path in self.churning:
            return False
        self.churning = self.churning | {path}
        if path in self._said:
            return False
        self._said.add(path)
        return True

    def _forget_quiet(self, window: int) -> None:
        """Drop the paths that have not changed for CHURN_WINDOWS windows (they are no churn)."""
        self._activity = {p: a for p, a in self._activity.items() if window - a[0] < CHURN_WINDOWS}
        self.churning = frozenset(p for p in self.churning if p in self._activity)

    def deadline(self) -> float | None:
        """When the pending batch is due (monotonic seconds), or None if there is nothing pending."""
        if not self._changes:
            return None
        return min(self._last + self.debounce, self._first + self.max_delay)

    def take(self, now: float) -> Batch | None:
        """The batch if it is due at `now` (and reset), else None."""
        due = self.deadline()
        if due is None or now < due:
            return None
        changes = net_effect(self._changes, self._exists)
        batch = Batch(self.watch, changes, self._first, self._last)
        self._changes = []
        self._index = set()
        self._early_taken = False
        return batch if changes else None

    def early_deadline(self) -> float | None:
        """When the forming batch is due for its early look, or None (none wanted, or taken)."""
        if self.early is None or self._early_taken or not self._changes:
            return None
        due = self._last + self.early
        final = self.deadline()
        return due if final is None or due < final else None

    def take_early(self, now: float) -> Batch | None:
        """The forming batch as it is now, once per batch, when it has been quiet for `early`
        (an app can start on the new code while the debounce runs; the batch itself still
        comes from `take`)."""
        due = self.early_deadline()
        if due is None or now < due:
            return None
        self._early_taken = True
        changes = net_effect(self._changes, self._exists)
        return Batch(self.watch, changes, self._first, self._last) if changes else None
