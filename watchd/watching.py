"""The filesystem side: watchdog observers -> relevant `Change` values. The only watchdog importer.

The handler runs on watchdog's thread and only converts, matches (pure, microseconds) and
hands the change to a sink; no action ever runs there.

Designed around watchdog 7.1's traps:
- the inotify mask is limited to the event kinds watchd uses (`event_filter`): with the default
  mask, opens during watchdog's own recursive walk overflow the kernel queue on large trees;
- a deleted watched root silently stops its emitter and a re-created one is not watched again,
  and a renamed root keeps reporting the old path: `check_roots()` (called periodically by the
  daemon) notices by identity (device, inode) and re-schedules;
- running out of inotify watches during the recursive walk is silent: `start()` compares the
  directories it found with the kernel's count of watches and says which sysctl to raise.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from watchd.changes import Change, ChangeKind
from watchd.matching import Matcher

log = logging.getLogger(__name__)

# The kinds watchd acts on. Deliberately no open / close-without-write: see the module docstring.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

Sink = Callable[[int, Change], None]


class WatchError(Exception):
    """A root could not be watched (watch limit, permissions); the message says what to do."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One watch's interest in one path (a directory tree or a single file)."""

    key: int  # handed back with every change: the daemon's index of the watch
    name: str  # the watch's name, for log lines
    path: str  # absolute path as configured
    matcher: Matcher
    ignore_directories: bool = False
    poll: bool = False
    poll_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class WatchStats:
    roots: int
    missing: int
    directories: int


@dataclass(eq=False)
class _Target:
    """A subscription bound to a root: `only` is set when the subscription names a single file."""

    sub: Subscription
    only: str | None


@dataclass(eq=False)
class _Root:
    """One scheduled watchdog watch: a directory, recursive unless it stands in for single files."""

    path: str
    recursive: bool
    poll: bool
    poll_interval: float
    targets: list[_Target] = field(default_factory=list)
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) when scheduled
    observed: ObservedWatch | None = None
    handler: _Handler | None = None
    observer: BaseObserver | None = None
    failed: bool = False  # a scheduling failure was already logged

    @property
    def label(self) -> str:
        return ", ".join(sorted({t.sub.name for t in self.targets}))


def _under(path: str, root: str) -> str | None:
    """`path` relative to `root` ('/'-separated), '' for the root itself, None if outside."""
    if path == root:
        return ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if path.startswith(prefix):
        rel = path[len(prefix) :]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return None


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's thread: convert, match, hand over. Nothing slow, nothing blocking."""

    def __init__(self, root: _Root, sink: Sink, on_root_lost: Callable[[], None]) -> None:
        self._root = root
        self._sink = sink
        self._on_root_lost = on_root_lost

    def dispatch(self, event: FileSystemEvent) -> None:
        root = self._root
        src = os.fsdecode(event.src_path)
        is_dir = event.is_directory
        etype = event.event_type
        if etype == "moved":
            dest = os.fsdecode(event.dest_path)
            for t in root.targets:
                src_ok = self._relevant(t, src, is_dir)
                dest_ok = self._relevant(t, dest, is_dir)
                if src_ok and dest_ok:
                    self._sink(t.sub.key, Change(ChangeKind.MOVED, src, dest, is_dir))
                elif src_ok:  # moved out of view: gone, as far as this watch is concerned
                    self._sink(t.sub.key, Change(ChangeKind.DELETED, src, None, is_dir))
                elif dest_ok and not is_dir:  # moved into view (a directory's files report themselves)
                    self._sink(t.sub.key, Change(ChangeKind.CREATED, dest, None, False))
            return
        if etype == "deleted":
            kind = ChangeKind.DELETED
            if src == root.path:
                self._on_root_lost()
                for t in root.targets:
                    if t.only is None and not t.sub.ignore_directories:
                        self._sink(t.sub.key, Change(kind, src, None, True))
                return
        elif is_dir:
            return  # a new or modified directory is not a change; its files are
        elif etype == "created":
            kind = ChangeKind.CREATED
        else:  # modified, attrib, closed (after writing)
            kind = ChangeKind.MODIFIED
        for t in root.targets:
            if self._relevant(t, src, is_dir):
                self._sink(t.sub.key, Change(kind, src, None, is_dir))

    def _relevant(self, target: _Target, path: str, is_dir: bool) -> bool:
        rel = _under(path, self._root.path)
        if not rel:
            return False
        if target.only is not None:
            return rel == target.only and target.sub.matcher.matches(rel)
        if is_dir and target.sub.ignore_directories:
            return False
        return target.sub.matcher.matches(rel, is_dir=is_dir)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return (st.st_dev, st.st_ino)


def _walk_dirs(path: str) -> Iterator[tuple[int, int]]:
    """(device, inode) of `path` and every directory below it, without following symlinks."""
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d, follow_symlinks=False)
            yield (st.st_dev, st.st_ino)
            with os.scandir(d) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue


def inotify_watch_count() -> int | None:
    """How many inotify watches this process holds (Linux: /proc/self/fdinfo), or None if unknown."""
    if not sys.platform.startswith("linux"):
        return None
    total = 0
    try:
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                    continue
                with open(f"/proc/self/fdinfo/{fd}") as f:
                    total += sum(1 for line in f if line.startswith("inotify wd:"))
            except OSError:
                continue
    except OSError:
        return None
    return total


def _limit_hint(exc: OSError, path: str) -> str:
    if exc.errno == errno.ENOSPC:
        return (
            f"cannot watch {path}: the inotify watch limit (fs.inotify.max_user_watches = "
            f"{_read_sysctl('max_user_watches')}) is reached; raise it, e.g. "
            "sudo sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/), or use poll: true"
        )
    if exc.errno == errno.EMFILE:
        return (
            f"cannot watch {path}: the inotify instance limit (fs.inotify.max_user_instances = "
            f"{_read_sysctl('max_user_instances')}) is reached; raise it, e.g. "
            "sudo sysctl fs.inotify.max_user_instances=1024"
        )
    if exc.errno == errno.EACCES:
        return f"cannot watch {path}: permission denied (check the directory's mode and owner)"
    return f"cannot watch {path}: {exc.strerror or exc}"


def _read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/fs/inotify/{name}") as f:
            return f.read().strip()
    except OSError:
        return "?"


class Watcher:
    """Schedules every subscription's path on the right observer and keeps roots watched."""

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        sink: Sink,
        on_root_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self._sink = sink
        self._on_root_lost = on_root_lost
        self._observers: dict[tuple[bool, float], BaseObserver] = {}
        self._roots: dict[tuple[str, bool, bool, float], _Root] = {}
        self._subs = list(subscriptions)
        self._started = False
        for sub in self._subs:
            self._bind(sub)

    # ------------------------------------------------------------------ layout

    def _bind(self, sub: Subscription) -> _Root:
        """Attach `sub` to the root that serves it: its directory, or a file's parent directory."""
        path = sub.path
        only: str | None = None
        if os.path.isfile(path):
            # A single file: watch its directory, so an atomic save (rename onto it) is seen too.
            only = os.path.basename(path)
            path = os.path.dirname(path)
        interval = sub.poll_interval if sub.poll else 0.0
        key = (path, only is None, sub.poll, interval)
        root = self._roots.get(key)
        if root is None:
            root = _Root(path=path, recursive=only is None, poll=sub.poll, poll_interval=interval)
            self._roots[key] = root
        # replaced, not mutated: watchdog's thread may be iterating over the old list
        root.targets = [*root.targets, _Target(sub, only)]
        return root

    def _observer(self, root: _Root) -> BaseObserver:
        key = (root.poll, root.poll_interval)
        obs = self._observers.get(key)
        if obs is None:
            obs = PollingObserver(timeout=root.poll_interval) if root.poll else Observer()
            obs.daemon = True
            self._observers[key] = obs
            if self._started:
                obs.start()
        return obs

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> WatchStats:
        """Schedule every root that exists; return what is watched. Raises WatchError on limits.

        When this returns, the watches are established: a change made now is seen.
        """
        for root in self._roots.values():
            self._observer(root)
        for obs in self._observers.values():
            obs.start()
        self._started = True
        missing = 0
        for root in self._roots.values():
            if not self._schedule(root, fatal=True):
                missing += 1
                for t in root.targets:
                    log.warning(
                        "%s: %s does not exist yet; it will be watched when it appears",
                        t.sub.name,
                        t.sub.path,
                    )
        directories = self.count_directories()
        native = [r for r in self._roots.values() if not r.poll and r.observed is not None]
        held = inotify_watch_count() if native else None
        if held is not None and held < directories:
            log.warning(
                "only %d of %d directories could be watched: the inotify watch limit "
                "(fs.inotify.max_user_watches = %s) is too low; raise it, e.g. "
                "sudo sysctl fs.inotify.max_user_watches=524288, or use poll: true",
                held,
                directories,
                _read_sysctl("max_user_watches"),
            )
        return WatchStats(roots=len(self._roots), missing=missing, directories=directories)

    def stop(self, timeout: float = 1.0) -> None:
        for obs in self._observers.values():
            obs.stop()
        for obs in self._observers.values():
            if obs.is_alive():
                obs.join(timeout)

    def add(self, subscriptions: Sequence[Subscription]) -> None:
        """Watch more paths while running (a config reload). Existing files are not reported."""
        for sub in subscriptions:
            self._subs.append(sub)
            root = self._bind(sub)
            if self._started and root.observed is None and not self._schedule(root, fatal=False):
                log.warning(
                    "%s: %s does not exist yet; it will be watched when it appears", sub.name, sub.path
                )

    def remove(self, keys: set[int]) -> None:
        """Stop delivering changes for these subscription keys; unschedule roots nobody needs."""
        self._subs = [s for s in self._subs if s.key not in keys]
        for rkey, root in list(self._roots.items()):
            kept = [t for t in root.targets if t.sub.key not in keys]
            if len(kept) == len(root.targets):
                continue
            root.targets = kept
            if not kept:
                self._unschedule(root)
                del self._roots[rkey]

    def count_directories(self) -> int:
        seen: set[tuple[int, int]] = set()
        for root in self._roots.values():
            if root.observed is None:
                continue
            if root.recursive:
                seen.update(_walk_dirs(root.path))
            else:
                seen.add(root.identity or (0, 0))
        return len(seen)

    @property
    def root_count(self) -> int:
        return len(self._roots)

    def alive(self) -> bool:
        """False if an observer thread died (the daemon then exits with a failure)."""
        return all(obs.is_alive() for obs in self._observers.values()) if self._started else True

    # ------------------------------------------------------------------ roots

    def _schedule(self, root: _Root, *, fatal: bool) -> bool:
        ident = _identity(root.path)
        if ident is None:
            return False
        handler = _Handler(root, self._sink, self._on_root_lost)
        obs = self._observer(root)
        try:
            observed = obs.schedule(handler, root.path, recursive=root.recursive, event_filter=EVENT_FILTER)
        except OSError as exc:
            message = _limit_hint(exc, root.path)
            if fatal and exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise WatchError(message) from None
            if not root.failed:
                log.error("%s: %s", root.label, message)
                root.failed = True
            return False
        root.identity, root.observed, root.handler, root.observer = ident, observed, handler, obs
        root.failed = False
        return True

    def _unschedule(self, root: _Root) -> None:
        if root.observed is not None and root.observer is not None:
            with contextlib.suppress(KeyError, ValueError):  # already gone with its emitter
                root.observer.unschedule(root.observed)
        root.observed = root.handler = root.observer = None
        root.identity = None

    def check_roots(self) -> None:
        """Notice roots that vanished, were replaced or appeared; re-schedule them.

        A root that reappears is scanned and its existing files reported as created, so a
        tree restored in one go (checkout, rsync, rm -rf && cp -r) is not missed.
        """
        for root in self._roots.values():
            current = _identity(root.path)
            if root.observed is not None and current == root.identity:
                emitter_alive = True
                if root.observer is not None:
                    # watchdog stops the emitter of a deleted root; treat that as lost too
                    emitters = getattr(root.observer, "emitters", ())
                    emitter_alive = any(e.watch == root.observed and e.is_alive() for e in emitters)
                if emitter_alive:
                    continue
            if root.observed is not None:
                self._unschedule(root)
                for t in root.targets:
                    log.warning(
                        "%s: %s was deleted or moved; it will be watched again when it reappears",
                        t.sub.name,
                        t.sub.path if t.only is None else os.path.dirname(t.sub.path),
                    )
            if current is None:
                if root.recursive and not root.targets[0].only and os.path.isfile(root.path):
                    self._become_file_root(root)
                    current = _identity(root.path)
                if current is None:
                    continue
            if self._schedule(root, fatal=False):
                for t in root.targets:
                    log.info("%s: %s appeared; watching it", t.sub.name, t.sub.path)
                self._report_existing(root)

    @staticmethod
    def _become_file_root(root: _Root) -> None:
        """A path that did not exist at start turned out to be a file: watch its directory for it."""
        name = os.path.basename(root.path)
        root.path = os.path.dirname(root.path)
        root.recursive = False
        for t in root.targets:
            t.only = name

    def _report_existing(self, root: _Root) -> None:
        for t in root.targets:
            if t.only is not None:
                path = os.path.join(root.path, t.only)
                if os.path.exists(path) and t.sub.matcher.matches(t.only):
                    self._sink(t.sub.key, Change(ChangeKind.CREATED, path))
                continue
            for path in self._files(root.path, t.sub.matcher):
                self._sink(t.sub.key, Change(ChangeKind.CREATED, path))

    @staticmethod
    def _files(top: str, matcher: Matcher) -> Iterable[str]:
        for dirpath, dirnames, filenames in os.walk(top):
            rel_dir = _under(dirpath, top) or ""
            prefix = rel_dir + "/" if rel_dir else ""
            dirnames[:] = [d for d in dirnames if not matcher.ignored(prefix + d, is_dir=True)]
            for name in filenames:
                if matcher.matches(prefix + name):
                    yield os.path.join(dirpath, name)
