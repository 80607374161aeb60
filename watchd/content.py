"""content: true -- a file whose bytes are what they were at the last action does not count.

`touch`, an editor's save without edits, a `git checkout` that restores the same bytes and a
formatter that rewrites a file identically all raise events; with content mode a batch made only of
such files does nothing. Each file the watch counts is remembered by a 16-byte BLAKE2b digest of
its bytes: at start (a walk, on a thread of its own, so watching starts at once) and after every
action, for the files it acted on. Files larger than MAX_HASHED are remembered by size and
modification time only: they count whenever those change. At most MAX_FILES files are remembered;
beyond that a file counts on every change, and the log says so once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from watchd.changes import Batch, Change, ChangeKind
from watchd.logtext import count

log = logging.getLogger(__name__)

MAX_HASHED = 1024 * 1024  # bytes: a larger file is judged by its size and mtime
MAX_FILES = 200_000  # files remembered per watch (~220 bytes each with its path: 45 MiB at most)
_CHUNK = 1 << 16

# what is remembered of a file: its digest, or (size, mtime_ns) for one too large to hash
Mark = bytes | tuple[int, int]


def mark_of(path: str) -> Mark | None:
    """The file's digest (or size and mtime when it is large); None if it is not a readable file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        try:  # a symlink: judge the file it leads to
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_HASHED:
            return (st.st_size, st.st_mtime_ns)
        digest = hashlib.blake2b(digest_size=16)
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
        return digest.digest()
    except OSError:
        return None
    finally:
        os.close(fd)


class ContentMemory:
    """The marks of a watch's files as they were at its last action (or at start)."""

    def __init__(
        self, name: str, *, max_files: int = MAX_FILES, mark: Callable[[str], Mark | None] = mark_of
    ):
        self.name = name
        self.max_files = max_files
        self._mark = mark
        self._marks: dict[str, Mark] = {}
        self._lock = threading.Lock()
        self._full_said = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # the start-up walk is done

    def __len__(self) -> int:
        with self._lock:
            return len(self._marks)

    def remember(self, paths: Iterable[str]) -> None:
        """Mark `paths` as they are now (after an action; at start)."""
        for path in paths:
            if self._closed.is_set():
                return
            mark = self._mark(path)
            with self._lock:
                if mark is None:
                    self._marks.pop(path, None)
                elif path in self._marks or len(self._marks) < self.max_files:
                    self._marks[path] = mark
                elif not self._full_said:
                    self._full_said = True
                    log.warning(
                        "%s: content: remembering %s files, the most it keeps; files beyond them count "
                        "on every change",
                        self.name,
                        f"{self.max_files:,}",
                    )

    def start(self, files: Callable[[], Iterator[str]]) -> threading.Thread:
        """Remember the watch's files at start, on a thread of its own."""

        def walk() -> None:
            started = time.monotonic()
            try:
                self.remember(files())
            except Exception as exc:  # a file system that fails half-way: what is known stays
                log.warning("%s: content: reading the files at start failed: %s", self.name, exc)
            finally:
                self.ready.set()
            took = (time.monotonic() - started) * 1000
            log.debug("%s: content: %s remembered in %.0f ms", self.name, count(len(self), "file"), took)

        self._thread = threading.Thread(target=walk, name=f"watchd-content-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def close(self) -> None:
        """Stop the start-up walk, if it still runs (the watch is going)."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def unchanged(self, change: Change) -> bool:
        """True if `change` left a file's bytes as they were at the last action."""
        if change.is_dir or change.kind not in (ChangeKind.MODIFIED, ChangeKind.CREATED):
            return False
        with self._lock:
            before = self._marks.get(change.path)
        return before is not None and self._mark(change.path) == before

    def sift(self, batch: Batch) -> tuple[Batch | None, int]:
        """`batch` without the files whose content is unchanged (None if nothing is left), and how
        many were dropped. The files kept are remembered as they are now: the action sees them so."""
        kept = tuple(c for c in batch.changes if not self.unchanged(c))
        dropped = len(batch.changes) - len(kept)
        if not kept:
            return None, dropped
        for c in kept:
            if c.kind is ChangeKind.DELETED:
                with self._lock:
                    self._marks.pop(c.path, None)
            elif c.kind is ChangeKind.MOVED and c.dest is not None:
                with self._lock:
                    self._marks.pop(c.path, None)
                self.remember([c.dest])
            elif not c.is_dir:
                self.remember([c.path])
        return (batch if not dropped else dataclasses.replace(batch, changes=kept)), dropped
