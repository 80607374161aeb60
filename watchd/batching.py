"""Batching: a quiet period with a hard cap, on an injected clock.

A batch fires once its watch has been quiet for `debounce`, or `max_delay` after its first
change, whichever comes first, so a burst of 5,000 writes is one action after the last write
and endless churn still acts every `max_delay`. While a batch is open, changes under the
watch's roots that do not match its patterns (rsync writing `locale/*.po` between two `.py`
files) keep it open too (`touch`), so one operation is one action; they never open a batch.
What fires is the net effect per path (see `changes.net_effect`); an empty batch never fires.
"""

from __future__ import annotations

from collections.abc import Callable

from watchd.changes import Batch, Change, net_effect


class Batcher:
    """Collects one watch's changes and says when the batch is due. Not thread-safe: one owner."""

    __slots__ = (
        "_changes",
        "_early_taken",
        "_exists",
        "_first",
        "_index",
        "_last",
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

    def touch(self, now: float) -> None:
        """Something else changed under the watch's roots: an open batch stays open (capped by
        max_delay as always); with no batch open, nothing happens."""
        if self._changes:
            self._last = now

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
