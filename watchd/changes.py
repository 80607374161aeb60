"""The values that flow through watchd: a `Change` from the watcher, a `Batch` to an action."""

from __future__ import annotations

import os
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
class Batch:
    """The changes one action answers for, in the order they were first seen."""

    watch: str
    changes: tuple[Change, ...]
    first_at: float
    last_at: float

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
        """This batch followed by `later` (used when changes pile up behind a busy action)."""
        return Batch(self.watch, self.changes + later.changes, self.first_at, later.last_at)

    def summary(self, base: str | None = None) -> str:
        """'src/app.py' or 'src/app.py and 41 more', for log lines."""
        paths = self.paths
        if not paths:
            return "nothing"
        first = display_path(paths[0], base)
        return first if len(paths) == 1 else f"{first} and {len(paths) - 1} more"


def display_path(path: str, base: str | None = None) -> str:
    """A path for a log line: relative to `base` when under it, control characters escaped."""
    base = (base or "").rstrip(os.sep)
    if base and path.startswith(base + os.sep):  # never relative to "/" (a daemon's usual cwd)
        path = path[len(base) + 1 :]
    if path.isprintable():
        return path
    return repr(path)[1:-1]  # newlines, escapes and undecodable bytes shown as \n, \x1b, \udcff
