"""The values that flow through watchd: a `Change` from the watcher, a `Batch` to an action."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum


class ChangeKind(StrEnum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"
    RESCAN = "rescan"  # events were lost (kernel queue overflow): something under the path changed


@dataclass(frozen=True, slots=True)
class Change:
    """One relevant filesystem change, in watchd's terms (no watchdog types past `watching`)."""

    kind: ChangeKind
    path: str
    dest: str | None = None  # for MOVED
    is_dir: bool = False


@dataclass(frozen=True, slots=True)
class Uncounted:
    """A file under a watch's roots changed that its patterns do not count (nor ignore): no
    action for it, but it keeps an open batch open (rsync writing `locale/*.po` between two `.py`
    files), unless it is churn (see batching)."""

    path: str


@dataclass(frozen=True, slots=True)
class Batch:
    """The changes one action answers for, in the order they were first seen."""

    watch: str
    changes: tuple[Change, ...]
    first_at: float
    last_at: float
    # WATCHD_TRIGGER: "change"; "manual" (`watchd trigger`, SIGUSR1, the r key); "start" (run_at_start)
    trigger: str = "change"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every distinct path touched, in first-seen order (a move lists its destination first)."""
        seen: dict[str, None] = {}
        for c in self.changes:
            if c.dest is not None:
                seen.setdefault(c.dest)
            seen.setdefault(c.path)
        return tuple(seen)

    def merged(self, later: Batch) -> Batch:
        """This batch followed by `later` (changes piling up behind a busy action): one net
        change per path, so the pending batch stays as small as the set of paths touched."""
        if self.trigger == later.trigger:
            trigger = self.trigger
        else:  # a change behind a start or a manual run (a paused watch's): what set the run off
            asked = {self.trigger, later.trigger} - {"change"}
            trigger = asked.pop() if len(asked) == 1 else "manual"
        return Batch(self.watch, merge(self.changes, later.changes), self.first_at, later.last_at, trigger)

    def summary(self, base: str | None = None) -> str:
        """'src/app.py' or 'src/app.py and 41 more', for log lines."""
        paths = self.paths
        if not paths:
            return _WHY.get(self.trigger, "nothing")
        first = display_path(paths[0], base)
        return first if len(paths) == 1 else f"{first} and {len(paths) - 1} more"

    def what(self, base: str | None = None) -> str:
        """'src/app.py changed', 'src/old.py deleted', 'src/a.py and 3 more changed': for log lines."""
        if not self.changes and self.trigger in _WHY:
            return _WHY[self.trigger]
        deleted = bool(self.changes) and all(c.kind is ChangeKind.DELETED for c in self.changes)
        return f"{self.summary(base)} {'deleted' if deleted else 'changed'}"


_WHY = {"manual": "manual trigger", "start": "at start"}  # an empty batch, in log lines


def net_effect(changes: Iterable[Change], exists: Callable[[str], bool] | None = None) -> tuple[Change, ...]:
    """One change per path, saying what happened to it over the batch, judged against the disk now.

    - a file created and gone again (an editor's or tempfile's temporary file) is no change;
    - created, then renamed onto another name (an atomic save): the other name is modified;
    - deleted and there again (polling sees an atomic save that way): modified;
    - created then written: created; written then deleted: deleted;
    - a move keeps its source and destination, unless the source was itself made in the batch.
    Order is first-seen order of the surviving paths. `exists` (the disk, `os.path.lexists`, by
    default asked for all the paths at once: see `existing`) is injectable for tests.
    """
    first: dict[str, Change] = {}  # path -> its first change in the batch (a move: keyed by dest)
    born: set[str] = set()  # paths that came into being within the batch
    for c in changes:
        if c.kind is ChangeKind.RESCAN:
            first.setdefault(c.path, c)
            continue
        if c.kind is ChangeKind.MOVED and c.dest is not None:
            source = first.pop(c.path, None)
            if c.path in born or (source is not None and source.kind is ChangeKind.CREATED):
                born.discard(c.path)
                # a temporary file renamed onto its name: the name's content changed
                first.setdefault(c.dest, Change(ChangeKind.MODIFIED, c.dest, None, c.is_dir))
            else:
                first.pop(c.dest, None)
                if source is not None and source.kind is ChangeKind.MOVED:
                    # a -> b, then b -> c: a -> c (a is gone, c is there); a -> b -> a: a changed
                    first[c.dest] = (
                        Change(ChangeKind.MOVED, source.path, c.dest, c.is_dir)
                        if source.path != c.dest
                        else Change(ChangeKind.MODIFIED, c.dest, None, c.is_dir)
                    )
                else:
                    first[c.dest] = c
            continue
        if c.kind is ChangeKind.CREATED:
            if c.path not in first:
                born.add(c.path)
                first[c.path] = c
            elif first[c.path].kind is ChangeKind.DELETED:
                first[c.path] = Change(ChangeKind.MODIFIED, c.path, None, c.is_dir)
            continue
        first.setdefault(c.path, c)
    if exists is None:
        exists = existing(first).__contains__
    out: list[Change] = []
    for key, c in first.items():
        if c.kind is ChangeKind.RESCAN:
            out.append(c)
            continue
        there = exists(key)
        if c.kind is ChangeKind.MOVED:
            out.append(c if there else Change(ChangeKind.DELETED, c.path, None, c.is_dir))
        elif not there:
            if key not in born:
                out.append(Change(ChangeKind.DELETED, key, None, c.is_dir))
        elif c.kind is ChangeKind.DELETED:
            out.append(Change(ChangeKind.MODIFIED, key, None, c.is_dir))
        else:
            out.append(c)
    return tuple(out)


def existing(paths: Iterable[str]) -> set[str]:
    """The paths that exist (`os.path.lexists`).

    Where a batch touched a good share of one directory (a checkout, a storm of rewrites), one
    read of the directory answers for all of them; elsewhere an lstat each. The share is judged
    by the directory's st_size, which grows with its entries on Linux and macOS filesystems
    (ext4: ~4 KiB per 100 names, tmpfs: 20 bytes a name): a misjudged share costs time, never
    a wrong answer.
    """
    by_dir: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        directory, _, name = path.rpartition(os.sep)
        by_dir.setdefault(directory, []).append((path, name))
    found: set[str] = set()
    lstat = os.lstat
    for directory, group in by_dir.items():
        if len(group) >= _LIST_FROM and directory:
            try:
                if len(group) * _BYTES_PER_NAME >= lstat(directory).st_size:
                    names = set(os.listdir(directory))
                    found.update(path for path, name in group if name in names)
                    continue
            except OSError:
                pass  # gone, or unreadable: ask path by path
        for path, _ in group:
            try:
                lstat(path)
            except (OSError, ValueError):
                continue
            found.add(path)
    return found


_LIST_FROM = 8  # changed paths in one directory before reading the directory can pay
_BYTES_PER_NAME = 64  # ... and at least one for every this many bytes of the directory's size


def merge(earlier: tuple[Change, ...], later: tuple[Change, ...]) -> tuple[Change, ...]:
    """Two net batches of the same watch as one, without looking at the disk: per path (in
    first-seen order) the later change wins, except that created stays created while it is
    there, and deleted-then-created is modified."""
    merged: dict[str, Change] = {(c.dest or c.path): c for c in earlier}
    for c in later:
        key = c.dest or c.path
        before = merged.get(key)
        if before is None:
            merged[key] = c
        elif before.kind is ChangeKind.CREATED and c.kind is ChangeKind.MODIFIED:
            continue
        elif before.kind is ChangeKind.CREATED and c.kind is ChangeKind.DELETED:
            del merged[key]
        elif before.kind is ChangeKind.DELETED and c.kind is ChangeKind.CREATED:
            merged[key] = Change(ChangeKind.MODIFIED, key, None, c.is_dir)
        else:
            merged[key] = c  # keeps its place: paths stay in first-seen order
    return tuple(merged.values())


def display_path(path: str, base: str | None = None) -> str:
    """A path for a log line: relative to `base` when under it, control characters escaped."""
    base = (base or "").rstrip(os.sep)
    if base and path.startswith(base + os.sep):  # never relative to "/" (a daemon's usual cwd)
        path = path[len(base) + 1 :]
    if path.isprintable():
        return path
    return repr(path)[1:-1]  # newlines, escapes and undecodable bytes shown as \n, \x1b, \udcff
