"""Collecting a watcher's changes in tests: wait for one with a timeout, or for a sentinel."""

from __future__ import annotations

import itertools
import queue
import time
from pathlib import Path

from watchd.changes import Change, Uncounted


class Collector:
    def __init__(self) -> None:
        self.q: queue.Queue[tuple[int, Change]] = queue.Queue()
        self.others: queue.Queue[int] = queue.Queue()  # non-matching changes (they keep a batch open)

    def __call__(self, key: int, change: Change | Uncounted) -> None:
        if isinstance(change, Uncounted):
            self.others.put(key)
        else:
            self.q.put((key, change))

    def expect(self, predicate: object = None, timeout: float = 5.0) -> Change:
        """The next change matching `predicate` (a callable), failing after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("expected change did not arrive")
            try:
                _, change = self.q.get(timeout=left)
            except queue.Empty:
                raise AssertionError("expected change did not arrive") from None
            if predicate is None or predicate(change):  # type: ignore[operator]
                return change

    def drain(self) -> list[Change]:
        out = []
        while True:
            try:
                out.append(self.q.get_nowait()[1])
            except queue.Empty:
                return out


_markers = itertools.count()


def sentinel(root: Path, sink: Collector, suffix: str = ".py") -> list[Change]:
    """Write a marker file and return every change that arrived before it (in order), leaving
    out the events of earlier markers (a write is several events: their last ones may follow)."""
    marker = root / f"zz_sentinel{next(_markers)}{suffix}"
    marker.write_text("marker\n")  # not empty: see write_sentinel
    before: list[Change] = []
    while True:
        change = sink.expect()
        if change.path == str(marker):
            return before
        if "zz_sentinel" not in change.path:
            before.append(change)


def write_sentinel(path: Path) -> None:
    """Write the file a test changes after the ones that must not count, and waits for its own
    batch. Not empty: watchdog's FSEvents emitter drops a "created" for an inode it saw created
    before, and this machine's file system hands a just-freed inode (the file an atomic save
    replaced) to the next new file, so in the macOS lane an empty new file can go unreported;
    its write is a modification as well, and that is reported. (APFS does not reuse inode
    numbers so soon.)"""
    path.write_text("# sentinel\n")
