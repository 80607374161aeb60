"""Batching: a quiet period with a hard cap, on an injected clock.

A batch fires once its watch has been quiet for `debounce`, or `max_delay` after its first
change, whichever comes first, so a burst of 5,000 writes is one action after the last write
and endless churn still acts every `max_delay`. An empty batch never fires.
"""

from __future__ import annotations

from watchd.changes import Batch, Change


class Batcher:
    """Collects one watch's changes and says when the batch is due. Not thread-safe: one owner."""

    __slots__ = ("_changes", "_first", "_index", "_last", "debounce", "max_delay", "watch")

    def __init__(self, watch: str, debounce: float, max_delay: float) -> None:
        self.watch = watch
        self.debounce = debounce
        self.max_delay = max(max_delay, debounce)
        self._changes: list[Change] = []
        self._index: set[Change] = set()
        self._first = 0.0
        self._last = 0.0

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
        batch = Batch(self.watch, tuple(self._changes), self._first, self._last)
        self._changes = []
        self._index = set()
        return batch
