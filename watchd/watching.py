"""The filesystem side: native events -> relevant `Change` values, for every watched root.

Backends:
- Linux: watchd's own inotify tree (`watchd.inotify`): ignored directories cost no watch, queue
  overflows and the watch limit are reported instead of silently losing events;
- elsewhere (FSEvents on macOS) and for `poll: true`: watchdog, the only other module that
  knows about it is none (this one imports it lazily). Its 7.1 traps are designed around: the
  event mask is limited to the kinds watchd uses, and deleted, replaced or renamed roots are
  noticed by identity (device, inode) in `check_roots()` and re-scheduled. On FSEvents, events
  saying events were lost are a rescan (`fsevents_observer`), and real paths (/private/tmp/...)
  are said as the root was configured (`_WatchdogHandler`); tests/integration/test_fsevents_replay.py
  replays macOS's batches through watchdog's emitter.

If a root cannot be watched natively because the inotify watch limit is reached, it is polled
instead (and the warning says which sysctl to raise), so reloads keep working.

Conversion and matching run on the backend's thread, take microseconds, and end in `sink`;
no action ever runs there.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from watchd import gitignore, inotify, mounts, platform
from watchd.changes import Change, ChangeKind, Uncounted
from watchd.matching import IGNORED, MATCH, OTHER, Matcher
from watchd.model import Poll
from watchd.paths import under

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

log = logging.getLogger(__name__)

# (watch key, change) for a change the watch acts on; (watch key, Uncounted(path)) for a change
# under its roots that does not match its patterns and is not ignored: it keeps a batch open
Sink = Callable[[int, Change | Uncounted], None]
# (watch key, path, is_dir, why) of a file change a watch does not count, for -v: `why` is
# given when the watcher decided (a .gitignore), None when the watch's matcher did
Explain = Callable[[int, str, bool, str | None], None]

GIT_IGNORED = -1  # a verdict besides matching's: the matcher would count it, git ignores it

DEFAULT_POLL_FALLBACK = 1.0  # seconds between polls of a root the watch limit forced off inotify


class WatchError(Exception):
    """A root could not be watched at start (instance limit, permissions); the message says what to do."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One watch's interest in one path (a directory tree or a single file)."""

    key: int  # handed back with every change: the daemon's id of the watch
    name: str  # the watch's name, for log lines
    path: str  # absolute path as configured
    matcher: Matcher
    ignore_directories: bool = False
    gitignore: bool = False  # what the repository's ignore files ignore does not count either
    poll: Poll = Poll.AUTO
    poll_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class WatchStats:
    roots: int
    missing: int
    directories: int
    degraded: int = 0  # roots polled because native watching was impossible (watch limit)


@dataclass(eq=False)
class _Target:
    """A subscription bound to a root: `only` is set when the subscription names a single file.

    `links` are the entries of the root directory the single file is reached through when it
    is a symlink (Kubernetes mounts a ConfigMap as `app.yaml -> ..data/app.yaml`, `..data ->
    ..2026_x`, and updates it by swapping `..data`: no event ever names `app.yaml`).
    """

    sub: Subscription
    only: str | None
    links: frozenset[str] = frozenset()
    digest: bytes | None = None  # of the file's content, when reached through links


class RootState(Enum):
    """Where a root stands. It changes only through Root's transitions (watched_natively,
    observed_by, lose, fail, unwatched), so no two of them can be true at once."""

    WAITING = "waiting"  # not watched: not there (yet, or any more), or watching has not started
    FAILED = "failed"  # not watched: watching it failed, and that was logged (once, until it works)
    NATIVE = "native"  # on watchd's inotify tree
    OBSERVED = "observed"  # on a watchdog observer (FSEvents, or polling)
    LOST = "lost"  # its backend saw it deleted, moved or unmounted: check_roots() watches it anew


@dataclass(eq=False)
class Root:
    """One watched directory: recursive, unless it stands in for single files in it."""

    rid: int
    path: str
    recursive: bool
    poll: bool
    poll_interval: float
    targets: list[_Target] = field(default_factory=list)
    state: RootState = RootState.WAITING
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) when watched
    # the watchdog observer and its watch, while it is OBSERVED (or LOST there)
    observer: BaseObserver | None = None
    observed: ObservedWatch | None = None
    # Not states, but what stays true whatever the state:
    # native watching proved impossible (the watch or instance limit): polled from now on; on the
    # inotify tree still (NATIVE) until check_roots() moves it
    degraded: bool = False
    mode: Poll = Poll.AUTO  # its watches' poll setting (roots are not shared across settings)
    remote: str | None = None  # the network filesystem it was last found on (said once per change)
    # a kubelet-managed volume (ConfigMap, Secret: `..data` at its top): its visible files' digests
    volume: dict[str, bytes | None] | None = None
    gitignore: gitignore.Repository | None = None  # the repository, if any target honours its ignore files
    directories: int = 1  # on watchdog: counted once, at start (a walk; not on the daemon's loop later)
    venvs: Venvs = field(init=False)

    def __post_init__(self) -> None:
        self.venvs = Venvs(self.path)

    @property
    def label(self) -> str:
        return ", ".join(sorted({t.sub.name for t in self.targets}))

    @property
    def scheduled(self) -> bool:
        """On a backend (watched there, or lost there and not yet taken off it)."""
        return self.state in _ON_A_BACKEND

    @property
    def native(self) -> bool:
        """On the inotify tree (watched there, or lost there and not yet taken off it)."""
        return self.state is RootState.NATIVE or (self.state is RootState.LOST and self.observer is None)

    # ------------------------------------------------------------------ transitions

    def watched_natively(self, identity: tuple[int, int]) -> None:
        """WAITING or FAILED -> NATIVE: the inotify tree watches the directory `identity`."""
        self.state, self.identity = RootState.NATIVE, identity

    def observed_by(self, observer: BaseObserver, observed: ObservedWatch, identity: tuple[int, int]) -> None:
        """WAITING or FAILED -> OBSERVED: a watchdog observer watches the directory `identity`."""
        self.state, self.identity = RootState.OBSERVED, identity
        self.observer, self.observed = observer, observed

    def lose(self) -> None:
        """NATIVE or OBSERVED -> LOST: its backend saw it go. A late notice about a root no
        longer watched changes nothing (watching it again would start from WAITING anyway)."""
        if self.state is RootState.NATIVE or self.state is RootState.OBSERVED:
            self.state = RootState.LOST

    def fail(self) -> bool:
        """-> FAILED: watching it failed. True the first time, when that is to be logged."""
        first = self.state is not RootState.FAILED
        self.state = RootState.FAILED
        return first

    def unwatched(self) -> None:
        """-> WAITING: taken off its backend (the caller did that)."""
        self.state, self.identity = RootState.WAITING, None
        self.observer = self.observed = None


_ON_A_BACKEND = frozenset({RootState.NATIVE, RootState.OBSERVED, RootState.LOST})
_WATCHING = frozenset({RootState.NATIVE, RootState.OBSERVED})


def files_below(
    top: str, root: str, matcher: Matcher, git: gitignore.Repository | None = None
) -> Iterator[str]:
    """The files below directory `top` (in the tree watched at `root`) that `matcher` counts and
    `git` (if given) does not ignore, in name order; ignored directories are not entered,
    symlinked ones neither, nor (with the built-in ignores) virtual environments."""
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = under(dirpath, root) or ""
        prefix = rel_dir + "/" if rel_dir else ""
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not matcher.ignored(prefix + d, is_dir=True)
            and not (matcher.defaults and holds_venv(os.path.join(dirpath, d)))
            and not (git is not None and git.ignored(os.path.join(dirpath, d), is_dir=True))
        )
        for name in sorted(filenames):
            if matcher.matches(prefix + name):
                path = os.path.join(dirpath, name)
                if git is None or not git.ignored(path):
                    yield path


def own_output_files(fds: Sequence[int] = (1, 2)) -> frozenset[str]:
    """The regular files watchd's own stdout and stderr write to (`watchd ... > watchd.log`,
    nohup.out): a change to them is never a change, or watchd run in the directory it watches
    would act on its own log line, for ever."""
    found: set[str] = set()
    for fd in fds:
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        path = platform.current.fd_path(fd)
        with contextlib.suppress(OSError):
            if path is not None and os.path.samestat(os.stat(path), st):
                found.add(path)
    return frozenset(found)


VENV_MARK = "pyvenv.cfg"  # at the top of every virtual environment (venv, virtualenv >= 20)


def holds_venv(directory: str) -> bool:
    """True if `directory` is a virtual environment (holds a pyvenv.cfg)."""
    return os.path.isfile(os.path.join(directory, VENV_MARK))


class Venvs:
    """Which directories of a root are virtual environments (hold a pyvenv.cfg), whatever their
    name: ignored like .venv/ while the built-in ignores apply. One stat per directory, cached."""

    _MAX = 8192

    def __init__(self, root: str) -> None:
        self.root = root
        self._known: dict[str, bool] = {}  # relative directory -> holds a pyvenv.cfg

    def is_venv(self, rel_dir: str) -> bool:
        known = self._known.get(rel_dir)
        if known is None:
            if len(self._known) >= self._MAX:
                self._known.clear()
            known = holds_venv(os.path.join(self.root, rel_dir))
            self._known[rel_dir] = known
        return known

    def inside(self, rel_dir: str) -> bool:
        """True if directory `rel_dir` ('' is the root itself: never one) is a virtual
        environment or lies in one."""
        start = 0
        while rel_dir:
            slash = rel_dir.find("/", start)
            if self.is_venv(rel_dir if slash < 0 else rel_dir[:slash]):
                return True
            if slash < 0:
                return False
            start = slash + 1
        return False

    def noticed(self, rel: str) -> None:
        """A pyvenv.cfg appeared at `rel`: a venv is being made in a directory already watched."""
        parent, _, name = rel.rpartition("/")
        if name == VENV_MARK and parent:
            self._known[parent] = True


def _judge(root: Root, target: _Target, path: str, is_dir: bool) -> int:
    """MATCH, OTHER or IGNORED (see Matcher.judge) for this target."""
    rel = under(path, root.path)
    if not rel:
        return IGNORED
    if target.only is not None:
        return MATCH if rel == target.only and target.sub.matcher.matches(rel) else IGNORED
    if is_dir and target.sub.ignore_directories:
        return IGNORED
    if target.sub.matcher.defaults:
        root.venvs.noticed(rel)
        if root.venvs.inside(rel if is_dir else rel.rpartition("/")[0]):
            return IGNORED
    verdict = target.sub.matcher.judge(rel, is_dir=is_dir)
    git = root.gitignore if target.sub.gitignore else None
    if verdict != IGNORED and git is not None and git.ignored(path, is_dir=is_dir):
        return GIT_IGNORED
    return verdict


def _relevant(root: Root, target: _Target, path: str, is_dir: bool) -> bool:
    return _judge(root, target, path, is_dir) == MATCH


# ---------------------------------------------------------------------- kubelet volumes
# A ConfigMap or Secret volume is written by the kubelet's AtomicWriter: the payload goes into a new
# timestamped directory (..2026_01_02_03_04_05.123), a symlink ..data_tmp is made to it and renamed
# over ..data, and the old timestamped directory is removed; each visible file is a symlink
# `app.yaml -> ..data/app.yaml`, made once for a new key and removed with its key. No event ever
# names app.yaml when its content changes. The functions below decide what such events mean from
# a `Listing` of the directory (names, link targets, content digests), and ask the disk nothing
# themselves: `DirListing` reads it, tests give a table.


class Listing(Protocol):
    """A directory as the kubelet logic reads it. Paths are absolute, below `directory`."""

    @property
    def directory(self) -> str: ...

    def names(self) -> list[str]:
        """The entries of the directory itself; raises OSError."""
        ...

    def readlink(self, path: str) -> str | None:
        """Where the symlink at `path` leads (its target as written), None if it is none."""
        ...

    def is_file(self, path: str) -> bool:
        """True if `path` (links followed) is a regular file."""
        ...

    def digest(self, path: str) -> bytes | None:
        """A digest of the content of the file at `path` (links followed); see content_digest."""
        ...


@dataclass(frozen=True, slots=True)
class DirListing:
    """The `Listing` of a directory on disk (read when asked)."""

    directory: str

    def names(self) -> list[str]:
        return os.listdir(self.directory)

    @staticmethod
    def readlink(path: str) -> str | None:
        try:
            return os.readlink(path)
        except OSError:
            return None

    @staticmethod
    def is_file(path: str) -> bool:
        return os.path.isfile(path)

    @staticmethod
    def digest(path: str) -> bytes | None:
        return content_digest(path)


def link_entries(listing: Listing, name: str) -> frozenset[str]:
    """The entries of the directory that `name` in it resolves through, when it is a symlink
    (`app.yaml -> ..data/app.yaml` gives {"..data"})."""
    directory = listing.directory
    names: set[str] = set()
    path = os.path.join(directory, name)
    for _ in range(40):  # the kernel's own limit on links in a path
        target = listing.readlink(path)
        if target is None:
            break
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
        first = os.path.relpath(path, directory).split(os.sep, 1)[0]
        if first in (os.curdir, os.pardir):
            break
        names.add(first)
    return frozenset(names)


def relinked(
    listing: Listing, only: str, links: frozenset[str], digest: bytes | None, changed: set[str]
) -> tuple[frozenset[str], bytes | None, bool] | None:
    """A single file `only`, reached through the entries `links` and last seen with content
    `digest`, when the entries `changed` changed: None if it is not reached through any of them;
    else its links and digest now, and whether its content changed."""
    if not links or changed.isdisjoint(links):
        return None
    now = listing.digest(os.path.join(listing.directory, only))
    return link_entries(listing, only) or links, now, not (now is not None and now == digest)


def _through_links(root: Root, sink: Sink, src: str, dest: str | None) -> None:
    """An entry a single file is reached through changed: the file's content did."""
    changed = {os.path.basename(p) for p in (src, dest) if p is not None and os.path.dirname(p) == root.path}
    listing = DirListing(root.path)
    for t in root.targets:
        if t.only is None:
            continue
        step = relinked(listing, t.only, t.links, t.digest, changed)
        if step is None:
            continue
        t.links, t.digest, content_changed = step
        # (not changed: another key of the ConfigMap changed, not this file's content)
        if content_changed and t.sub.matcher.matches(t.only):
            sink(t.sub.key, Change(ChangeKind.MODIFIED, os.path.join(root.path, t.only)))


def content_digest(path: str) -> bytes | None:
    """A digest of a (small) file's content; None if it cannot be read or is too large to hash
    on the watcher's thread (it then counts as changed whenever its links change)."""
    try:
        with open(path, "rb") as f:
            data = f.read(_DIGEST_MAX + 1)
    except OSError:
        return None
    if len(data) > _DIGEST_MAX:
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


_DIGEST_MAX = 1 << 20  # bytes


KUBELET_DATA = "..data"  # in a ConfigMap or Secret volume, what every visible file is reached through


def volume_files(listing: Listing) -> dict[str, bytes | None] | None:
    """For a kubelet-managed volume (a `..data` symlink at its top), the digest of each visible
    file (`app.yaml -> ..data/app.yaml`); None for any other directory."""
    directory = listing.directory
    if listing.readlink(os.path.join(directory, KUBELET_DATA)) is None:
        return None
    files: dict[str, bytes | None] = {}
    with contextlib.suppress(OSError):
        for name in listing.names():
            path = os.path.join(directory, name)
            if not name.startswith("..") and listing.is_file(path):
                files[name] = listing.digest(path)
    return files


@dataclass(frozen=True, slots=True)
class VolumeStep:
    """What one event means for a kubelet volume (see volume_event)."""

    handled: bool  # nothing more to do: about the volume's own `..` entries, or a copy of the same content
    volume: dict[str, bytes | None]  # the visible files' digests after it
    changed: tuple[str, ...] = ()  # visible files whose content the swap of `..data` changed


def volume_event(
    volume: dict[str, bytes | None], listing: Listing, kind: str, src: str, dest: str | None
) -> VolumeStep:
    """An event in a kubelet volume whose visible files had the digests `volume`.

    An event about the volume's own `..` entries (its timestamped directories, `..data` and
    `..data_tmp`) is no change of a visible file: the swap of `..data` is one for each visible
    file whose content changed. A poll that sees a visible file's target change counts only if
    its content did. Any other event is not handled here: it is a change like any other."""
    names = [under(p, listing.directory) for p in (src, dest) if p is not None]
    if not any(rel is not None and rel.startswith("..") for rel in names):
        name = names[0]
        if kind != "moved" and name and "/" not in name and listing.readlink(src) is not None:
            # polled: a visible file "deleted and created" or "modified" as its link now leads
            # into the new timestamped directory
            digest = listing.digest(src)
            if digest is not None and digest == volume.get(name):
                return VolumeStep(True, volume)  # a new copy of the same content
            if kind != "deleted":
                volume = {**volume, name: digest}
        return VolumeStep(False, volume)
    if KUBELET_DATA not in names:
        return VolumeStep(True, volume)
    after = volume_files(listing) or {}
    changed = tuple(
        name
        for name, digest in after.items()
        # the same digest: another key of the ConfigMap changed, not this file's content
        if not (name in volume and digest is not None and digest == volume[name])
    )
    return VolumeStep(True, after, changed)


def _volume_event(root: Root, sink: Sink, kind: str, src: str, dest: str | None) -> bool:
    """volume_event for `root`, if it is a kubelet volume: its changes to the root's tree watches.
    True if the event was handled here (and needs nothing more)."""
    if root.volume is None:
        return False
    step = volume_event(root.volume, DirListing(root.path), kind, src, dest)
    root.volume = step.volume
    for name in step.changed:
        path = os.path.join(root.path, name)
        for t in root.targets:
            if t.only is None and t.sub.matcher.matches(name):
                sink(t.sub.key, Change(ChangeKind.MODIFIED, path))
    return step.handled


def deliver(
    root: Root,
    sink: Sink,
    kind: str,
    src: str,
    dest: str | None,
    *,
    is_dir: bool,
    explain: Explain | None = None,
) -> None:
    """One backend event -> the changes each of the root's watches cares about.

    kind is created / modified / deleted / moved. A move is judged per watch: both sides
    relevant -> moved; only the source -> deleted (moved out of view); only the destination ->
    created (moved into view; a directory's files report themselves). A new or modified
    directory is no change; its files are.
    """
    if not root.recursive:
        _through_links(root, sink, src, dest)
    elif _volume_event(root, sink, kind, src, dest):
        return
    if kind == "moved" and dest is not None:
        for t in root.targets:
            src_is = _judge(root, t, src, is_dir)
            dest_is = _judge(root, t, dest, is_dir)
            if src_is == MATCH and dest_is == MATCH:
                sink(t.sub.key, Change(ChangeKind.MOVED, src, dest, is_dir))
            elif src_is == MATCH:
                sink(t.sub.key, Change(ChangeKind.DELETED, src, None, is_dir))
            elif dest_is == MATCH and not is_dir:
                sink(t.sub.key, Change(ChangeKind.CREATED, dest, None, False))
            elif OTHER in (src_is, dest_is):
                sink(t.sub.key, Uncounted(dest if dest_is == OTHER else src))
        return
    if kind == "deleted":
        change_kind = ChangeKind.DELETED
        if src == root.path:  # the root itself
            for t in root.targets:
                if t.only is None and not t.sub.ignore_directories:
                    sink(t.sub.key, Change(change_kind, src, None, True))
            return
    elif is_dir:
        return
    elif kind == "created":
        change_kind = ChangeKind.CREATED
    else:
        change_kind = ChangeKind.MODIFIED
    for t in root.targets:
        verdict = _judge(root, t, src, is_dir)
        if verdict == MATCH:
            sink(t.sub.key, Change(change_kind, src, None, is_dir))
        elif verdict == OTHER:
            sink(t.sub.key, Uncounted(src))
        if verdict != MATCH and explain is not None and t.only is None:
            git = root.gitignore if verdict == GIT_IGNORED else None
            explain(t.sub.key, src, is_dir, git.why(src, is_dir=is_dir) if git is not None else None)


class _WatchdogHandler:
    """Watchdog calls `dispatch` on its thread; convert to `deliver`'s terms. Nothing else.

    `closes`: the observer reports a file closed after writing (its inotify emitter does; FSEvents
    and polling do not), so an ignore file is read then, not half-written at its creation.

    FSEvents names a path by its real path (`/private/tmp/x/a.py` for a root configured as `/tmp/x`,
    `/private/var/folders/...` for macOS's temporary directories, any root reached through a
    symlink), and watchdog passes that on: such paths are said as the root was configured, or
    nothing under the root would ever count."""

    def __init__(
        self,
        root: Root,
        sink: Sink,
        on_root_lost: Callable[[], None],
        *,
        closes: bool = False,
        skip: frozenset[str] = frozenset(),
        explain: Callable[[], Explain | None] = lambda: None,
    ) -> None:
        self._root = root
        self._sink = sink
        self._on_root_lost = on_root_lost
        self._closes = closes
        self._skip = skip
        self._explain = explain  # the watcher's -v callback, as it is when an event comes
        real = os.path.realpath(root.path)
        self._real = real if real != root.path else None

    def _as_configured(self, path: str) -> str:
        real = self._real
        if real is not None and (path == real or path.startswith(real + os.sep)):
            return self._root.path + path[len(real) :]
        return path

    def dispatch(self, event: Any) -> None:
        etype = event.event_type
        src = self._as_configured(os.fsdecode(event.src_path))
        dest = self._as_configured(os.fsdecode(event.dest_path)) if etype == "moved" else None
        if src in self._skip:
            return
        if etype == RESCAN_EVENT:
            self._rescan(src)
            return
        if etype == "deleted" and src == self._root.path:
            # lost now, whatever its identity: a directory made at once in its place can have the
            # same inode number, and this emitter stops only a moment later
            self._root.lose()
            self._on_root_lost()
        kind = etype if etype in ("created", "deleted", "moved") else "modified"
        git = self._root.gitignore
        if git is not None and (etype in ("closed", "deleted", "moved") or not self._closes):
            rules_changed(git, kind, src, dest, is_dir=event.is_directory)
        deliver(self._root, self._sink, kind, src, dest, is_dir=event.is_directory, explain=self._explain())

    def _rescan(self, path: str) -> None:
        """Events under `path` were lost: every watch it concerns acts once (as on inotify's overflow)."""
        root = self._root
        rel = under(path, root.path)
        for t in root.targets:
            if t.only is not None:
                if rel in ("", t.only):
                    self._sink(t.sub.key, Change(ChangeKind.RESCAN, os.path.join(root.path, t.only)))
            elif rel is None or rel == "":
                self._sink(t.sub.key, Change(ChangeKind.RESCAN, root.path, None, True))
            elif _judge(root, t, path, is_dir=True) != IGNORED:
                self._sink(t.sub.key, Change(ChangeKind.RESCAN, path, None, True))


RESCAN_EVENT = "rescan"  # watchd's own watchdog event type (see _rescan_event)


@functools.cache
def _rescan_event() -> type[Any]:
    """The event watchd's FSEvents emitter queues when FSEvents says events were lost."""
    from watchdog.events import FileSystemEvent  # noqa: PLC0415 (lazy, see _event_filter)

    class RescanEvent(FileSystemEvent):
        """FSEvents dropped or hierarchically coalesced events under `src_path`: rescan it."""

        event_type = RESCAN_EVENT
        is_directory = True

    return RescanEvent


def native_observer() -> BaseObserver:
    """The observer for `poll: false` roots watchdog serves: FSEvents, corrected (see
    `fsevents_observer`), where watchdog has its extension (macOS builds); else watchdog's choice."""
    try:
        return fsevents_observer()
    except ImportError:  # no _watchdog_fsevents: not macOS
        from watchdog.observers import Observer  # noqa: PLC0415 (lazy, see _event_filter)

        return Observer()


def fsevents_observer() -> BaseObserver:
    """watchdog's FSEvents observer, with the one correction watchd needs from its emitter.

    watchdog's `FSEventsEmitter.queue_events` acts only on item flags: an event carrying
    kFSEventStreamEventFlagMustScanSubDirs (with UserDropped or KernelDropped when events were
    dropped, or alone when fseventsd coalesced a subtree's events into its directory: Apple's
    FSEventStreamEventFlags) has none, and vanished without a trace (watchdog issue #124). Here it
    becomes a rescan event, which the handler turns into a RESCAN change, as an inotify overflow does.
    Built per call, not cached: the extension is imported when an observer is made.
    """
    from watchdog.observers.api import (  # noqa: PLC0415 (lazy, see _event_filter)
        DEFAULT_OBSERVER_TIMEOUT,
        BaseObserver,
    )
    from watchdog.observers.fsevents import (  # noqa: PLC0415 (lazy; ImportError off macOS)
        DEFAULT_FSEVENTS_LATENCY,
        FSEventsEmitter,
        FSEventsObserver,
    )

    rescan = _rescan_event()

    class WatchdFSEventsEmitter(FSEventsEmitter):
        def queue_events(self, timeout: float, events: list[Any]) -> None:  # type: ignore[override]  # (as its base)
            kept = []
            for e in events:
                if e.must_scan_subdirs or e.is_user_dropped or e.is_kernel_dropped:
                    self.queue_event(rescan(self._encode_path(e.path)))
                else:
                    kept.append(e)
            super().queue_events(timeout, kept)

    class WatchdFSEventsObserver(FSEventsObserver):
        def __init__(self) -> None:
            # (FSEventsObserver.__init__ only names its emitter class: this names watchd's)
            BaseObserver.__init__(
                self,
                WatchdFSEventsEmitter,
                timeout=DEFAULT_OBSERVER_TIMEOUT,
                latency=DEFAULT_FSEVENTS_LATENCY,
            )

    return WatchdFSEventsObserver()


def rules_changed(
    git: gitignore.Repository, kind: str, src: str, dest: str | None, *, is_dir: bool
) -> int | None:
    """Tell `git` about an event that may change its rules: an ignore file written, created,
    deleted or renamed, or a directory (and the ignore files in it) moved or deleted. If what
    it ignores changed, when (st_mtime_ns)."""
    if is_dir:
        if kind in ("deleted", "moved"):
            git.forget(src)
            if dest is not None:
                git.forget(dest)
        return None
    times = [t for t in (git.changed(src), git.changed(dest) if dest is not None else None) if t is not None]
    return min(times) if times else None


def _event_filter() -> list[Any]:
    """The watchdog event kinds watchd uses: no open / close-without-write (see the module docstring)."""
    from watchdog.events import (  # noqa: PLC0415 (lazy: Linux without polling never loads watchdog)
        DirDeletedEvent,
        DirMovedEvent,
        FileAttribEvent,
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
    )

    return [
        FileCreatedEvent,
        FileModifiedEvent,
        FileAttribEvent,
        FileClosedEvent,
        FileDeletedEvent,
        FileMovedEvent,
        DirDeletedEvent,
        DirMovedEvent,
        _rescan_event(),
    ]


def _fallback_interval(root: Root) -> float:
    """How often to poll a root the watch limit forced off inotify: its watches' shortest interval."""
    return min(t.sub.poll_interval for t in root.targets) or DEFAULT_POLL_FALLBACK


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


def read_sysctl(name: str) -> str:
    """An inotify limit as it applies to this process.

    /proc/sys/user/max_inotify_* is the limit of this process's user namespace (the same
    number as fs.inotify.* outside containers, lower where a container runtime set it).
    """
    paths = [f"/proc/sys/fs/inotify/{name}"]
    if name.startswith("max_user_"):
        paths.insert(0, f"/proc/sys/user/max_inotify_{name.removeprefix('max_user_')}")
    for path in paths:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            continue
    return "?"


def limit_hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return (
            f"the inotify watch limit (fs.inotify.max_user_watches = {read_sysctl('max_user_watches')}) "
            "is reached; raise it: sudo sysctl fs.inotify.max_user_watches=524288 "
            "(and persist it in /etc/sysctl.d/)"
        )
    if exc.errno == errno.EMFILE:
        return (
            "the inotify instance limit (fs.inotify.max_user_instances = "
            f"{read_sysctl('max_user_instances')}) is reached; raise it: "
            "sudo sysctl fs.inotify.max_user_instances=1024"
        )
    if exc.errno == errno.EACCES:
        return "permission denied (check the directory's mode and owner)"
    return str(exc.strerror or exc)


class PollDecision(Enum):
    """How a root is watched, from its watches' `poll` and its filesystem type."""

    NATIVE = "native"  # native events
    POLL = "poll"  # poll: true
    POLL_REMOTE = "poll-remote"  # poll: auto, on a network filesystem: polled, and the log says why
    NATIVE_UNSEEN = "native-unseen"  # poll: false on a network filesystem: native, with a warning


def poll_decision(mode: Poll, fstype: str | None) -> PollDecision:
    """poll: auto polls only where changes made elsewhere raise no events (NFS, SMB, 9p, ...)."""
    if mode is Poll.ALWAYS:
        return PollDecision.POLL
    if fstype is None or not mounts.is_remote(fstype):
        return PollDecision.NATIVE
    return PollDecision.POLL_REMOTE if mode is Poll.AUTO else PollDecision.NATIVE_UNSEEN


class Watcher:
    """Schedules every subscription's path on the right backend and keeps roots watched."""

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        sink: Sink,
        on_root_lost: Callable[[], None] = lambda: None,
        *,
        native: bool | None = None,
        observer: Callable[[], BaseObserver] = native_observer,
    ) -> None:
        """`native`: use watchd's inotify tree (default: where the kernel has it); `observer`:
        makes the observer for roots watchdog serves without polling."""
        self._sink = sink
        self._make_observer = observer
        self._on_root_lost = on_root_lost
        self._use_inotify = inotify.available() if native is None else native
        self._tree: inotify.InotifyTree | None = None
        self._observers: dict[tuple[bool, float], BaseObserver] = {}
        self._roots: dict[tuple[str, bool, Poll, float], Root] = {}
        self._by_rid: dict[int, Root] = {}
        self._next_rid = 0
        self._subs: list[Subscription] = []
        self._repos: dict[str, gitignore.Repository] = {}  # by top: one per work tree
        self._started = False
        self.explain: Explain | None = None  # set for -v: why a change does not count
        # files whose changes are never changes (watchd's own log: see own_output_files); set
        # before start()
        self.skip: frozenset[str] = frozenset()
        self.overflows = 0
        for sub in subscriptions:
            self._subs.append(sub)
            self._bind(sub)

    # ------------------------------------------------------------------ layout

    def _bind(self, sub: Subscription) -> Root:
        """Attach `sub` to the root that serves it: its directory, or a file's parent directory."""
        path = sub.path
        only: str | None = None
        if os.path.isfile(path):
            # A single file: watch its directory, so an atomic save (rename onto it) is seen too.
            only = os.path.basename(path)
            path = os.path.dirname(path)
        interval = sub.poll_interval if sub.poll is not Poll.NEVER else 0.0
        key = (path, only is None, sub.poll, interval)
        root = self._roots.get(key)
        if root is None:
            always = sub.poll is Poll.ALWAYS
            root = Root(self._next_rid, path, recursive=only is None, poll=always, poll_interval=interval)
            root.mode = sub.poll
            self._next_rid += 1
            self._roots[key] = root
            self._by_rid[root.rid] = root
        # replaced, not mutated: a backend thread may be iterating over the old list
        links = link_entries(DirListing(path), only) if only is not None else frozenset()
        digest = content_digest(os.path.join(path, only)) if only is not None and links else None
        root.targets = [*root.targets, _Target(sub, only, links, digest)]
        if sub.gitignore and only is None and root.gitignore is None:
            root.gitignore = self._repository(sub, path)
        return root

    def _repository(self, sub: Subscription, path: str) -> gitignore.Repository | None:
        """The work tree `path` is in, whose ignore files `sub` honours; warn when that cannot be."""
        top = gitignore.find_top(path)
        if top is None:
            log.warning(
                "%s: gitignore is on, but %s is not in a git repository: no .gitignore applies",
                sub.name,
                path,
            )
            return None
        repo = self._repos.get(top)
        if repo is None:
            repo = self._repos[top] = gitignore.Repository(top)
        repo.watch(path)
        why = repo.why(path, is_dir=True)
        if why is not None:
            log.warning(
                "%s: %s is itself ignored by git (%s): with gitignore on, nothing under it counts",
                sub.name,
                path,
                why,
            )
        return repo

    def _observer(self, poll: bool, interval: float) -> BaseObserver:
        key = (poll, interval)
        obs = self._observers.get(key)
        if obs is None:
            if poll:
                from watchdog.observers.polling import PollingObserver  # noqa: PLC0415 (lazy, see _event_filter)

                obs = PollingObserver(timeout=interval)
            else:
                obs = self._make_observer()
            obs.daemon = True
            self._observers[key] = obs
            if self._started:
                obs.start()
        return obs

    def _inotify(self) -> inotify.InotifyTree:
        if self._tree is None:
            try:
                self._tree = inotify.InotifyTree(
                    self._native_event, self._native_lost, self._overflow, self._limit
                )
            except OSError as exc:
                raise WatchError(f"cannot start watching: {limit_hint(exc)}") from None
        return self._tree

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> WatchStats:
        """Schedule every root that exists; return what is watched.

        When this returns, the watches are established: a change made now is seen.
        """
        self._started = True
        for obs in self._observers.values():
            obs.start()
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
        return self.stats(missing)

    def stats(self, missing: int = 0, *, internal: frozenset[int] = frozenset()) -> WatchStats:
        """What is watched for the subscriptions, leaving out those whose keys are `internal`
        (watchd's watch on its own config file is not a user's root)."""
        roots = [r for r in self._roots.values() if any(t.sub.key not in internal for t in r.targets)]
        return WatchStats(
            roots=len(roots),
            missing=missing,
            directories=self.count_directories(roots),
            degraded=sum(1 for r in roots if r.degraded),
        )

    def stop(self, timeout: float = 1.0) -> None:
        for obs in self._observers.values():
            obs.stop()
        for obs in self._observers.values():
            if obs.is_alive():
                obs.join(timeout)
        if self._tree is not None:
            self._tree.close()

    def add(self, subscriptions: Sequence[Subscription]) -> None:
        """Watch more paths while running (a config reload). Existing files are not reported."""
        for sub in subscriptions:
            self._subs.append(sub)
            root = self._bind(sub)
            if not self._started:
                continue
            if not root.scheduled:
                if not self._schedule(root, fatal=False):
                    log.warning(
                        "%s: %s does not exist yet; it will be watched when it appears", sub.name, sub.path
                    )
            elif root.native and self._tree is not None:
                self._tree.rescan(root.rid)  # the new watch may need directories others ignore

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
                del self._by_rid[root.rid]

    def count_directories(self, roots: Sequence[Root] | None = None) -> int:
        """Directories watched for `roots` (default: all); a tree on watchdog counts as the
        directories it had at start (walking it again would stall the daemon's loop)."""
        roots = list(self._roots.values()) if roots is None else roots
        polled = sum(r.directories for r in roots if r.observed is not None)
        native = 0
        if self._tree is not None:
            native = self._tree.watches_of({r.rid for r in roots if r.native})
        return native + polled

    def all_native(self) -> bool:
        """True if every root is watched by the inotify tree (none missing, polled or on watchdog)."""
        return all(root.native and not root.degraded for root in self._roots.values())

    def alive(self) -> bool:
        """False if a backend thread died (the daemon then exits with a failure)."""
        if not self._started:
            return True
        observers_ok = all(obs.is_alive() for obs in self._observers.values())
        return observers_ok and (self._tree is None or self._tree.alive())

    # ------------------------------------------------------------------ native backend callbacks
    # (run on the inotify reader thread, with its lock held: quick, no blocking)

    def _native_event(  # noqa: PLR0917 (inotify.Notify: called with the queued tuple)
        self, rid: int, kind: str, path: str, dest: str | None, is_dir: bool, closed: bool
    ) -> None:
        root = self._by_rid.get(rid)
        if root is None or path in self.skip:
            return
        if root.gitignore is not None and closed:
            # (an ignore file still being written is read once its writer closes it: read
            # between the truncation and the new content, it would ignore nothing for a moment)
            since = rules_changed(root.gitignore, kind, path, dest, is_dir=is_dir)
            if since is not None:
                self._rules_changed(root.gitignore, since)
        deliver(root, self._sink, kind, path, dest, is_dir=is_dir, explain=self.explain)

    def _rules_changed(self, git: gitignore.Repository, since_ns: int) -> None:
        """What `git` ignores changed at `since_ns`: directories it ignored until now get their
        watches, and their files changed since then count (they were written unwatched)."""
        for root in list(self._roots.values()):
            if root.gitignore is git and root.native and self._tree is not None:
                self._tree.rescan(root.rid, since_ns=since_ns)

    def _native_lost(self, rid: int, identity: tuple[int, int] | None) -> None:
        root = self._by_rid.get(rid)
        if root is None:
            return
        if identity is not None and root.native and root.identity != identity:
            return  # about the directory this root was before check_roots() watched its successor
        root.lose()
        deliver(root, self._sink, "deleted", root.path, None, is_dir=True)
        self._on_root_lost()

    def _overflow(self) -> None:
        self.overflows += 1
        log.warning(
            "the kernel's inotify queue overflowed (fs.inotify.max_queued_events = %s): changes were "
            "lost, so every watch acts once; raise the sysctl if this happens often",
            read_sysctl("max_queued_events"),
        )
        for root in list(self._roots.values()):  # a reload may change the roots meanwhile
            if not root.native:
                continue
            self._rescan(root)
            if self._tree is not None:
                self._tree.rescan(root.rid)

    def _rescan(self, root: Root) -> None:
        """Tell every watch of `root` that something under it changed (events were lost)."""
        for t in root.targets:
            path = os.path.join(root.path, t.only) if t.only else root.path
            self._sink(t.sub.key, Change(ChangeKind.RESCAN, path, None, t.only is None))

    def _limit(self, rid: int, exc: OSError) -> None:
        root = self._by_rid.get(rid)
        if root is not None and not root.degraded:
            root.degraded = True  # check_roots() moves it to polling
            self._on_root_lost()

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, root: Root, *, fatal: bool, report: bool = False) -> bool:
        """Watch `root` on its backend; with `report`, its existing files are reported as
        created (a root that appeared), with the same walk that watches it where that is native."""
        ident = inotify.dir_identity(root.path)
        if ident is None:
            return False
        root.volume = (
            volume_files(DirListing(root.path)) if root.recursive else None
        )  # before the walk prunes
        # each time: a root that reappears may be on another filesystem (its leaves, below)
        fstype = platform.current.filesystem_type(os.path.realpath(root.path))
        remote = fstype if fstype is not None and mounts.is_remote(fstype) else None
        if remote != root.remote:  # said once per root, and again if it reappears elsewhere
            root.remote = remote
            decision = poll_decision(root.mode, fstype)
            if decision is PollDecision.POLL_REMOTE:
                log.info(
                    "%s: %s is on %s, where changes made by other machines (or the VM/container host) "
                    "raise no events: polling it every %.3gs (poll: false keeps native events)",
                    root.label,
                    root.path,
                    fstype,
                    root.poll_interval,
                )
            elif decision is PollDecision.NATIVE_UNSEEN:
                log.warning(
                    "%s: %s is on %s: changes made by other machines (or the VM/container host) raise "
                    "no events here; set poll: auto or true on this watch if they matter",
                    root.label,
                    root.path,
                    fstype,
                )
        if self._use_inotify and not root.poll and not root.degraded and not self._polls_remote(root):
            try:
                tree = self._inotify()
            except WatchError:
                if fatal:
                    raise
                # no inotify instance to be had now (the instance limit): poll this root instead
                root.degraded = True
                log.warning(
                    "%s: cannot watch %s natively: %s; polling it every %.3gs instead",
                    root.label,
                    root.path,
                    limit_hint(OSError(errno.EMFILE, "")),
                    _fallback_interval(root),
                )
                return self._schedule_watchdog_reporting(root, ident, fatal, report)
            try:
                tree.add_root(
                    root.rid,
                    root.path,
                    recursive=root.recursive,
                    prune=self._pruner(root),
                    report=report and root.recursive,
                    leaves=fstype in inotify.NLINK_FILESYSTEMS,
                    # virtual environments, when every watch of the root has the built-in ignores
                    marker=VENV_MARK if all(t.sub.matcher.defaults for t in root.targets) else None,
                )
            except inotify.LimitError as exc:
                root.degraded = True
                log.warning(
                    "%s: cannot watch %s natively: %s; polling it every %.3gs instead",
                    root.label,
                    root.path,
                    limit_hint(exc),
                    _fallback_interval(root),
                )
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    return False
                return self._failed(root, exc, fatal)
            else:
                root.watched_natively(ident)
                if report:
                    self._report_existing(root, files=not root.recursive)
                return True
        return self._schedule_watchdog_reporting(root, ident, fatal, report)

    def _schedule_watchdog_reporting(
        self, root: Root, ident: tuple[int, int], fatal: bool, report: bool
    ) -> bool:
        if not self._schedule_watchdog(root, ident, fatal):
            return False
        if report:
            self._report_existing(root)
        return True

    @staticmethod
    def _polls_remote(root: Root) -> bool:
        """poll: auto, on a filesystem where changes made elsewhere raise no events here."""
        return poll_decision(root.mode, root.remote) is PollDecision.POLL_REMOTE

    def _schedule_watchdog(self, root: Root, ident: tuple[int, int], fatal: bool) -> bool:
        if root.degraded:
            poll, interval = True, _fallback_interval(root)
        elif self._polls_remote(root):
            poll, interval = True, root.poll_interval
        else:
            poll, interval = root.poll, root.poll_interval
        obs = self._observer(poll, interval)
        closes = type(obs).__name__ == "InotifyObserver"  # (watchdog's inotify emitter: Linux)
        handler = _WatchdogHandler(
            root, self._sink, self._on_root_lost, closes=closes, skip=self.skip, explain=lambda: self.explain
        )
        try:
            observed = obs.schedule(
                handler,  # type: ignore[arg-type]  # watchdog only calls dispatch()
                root.path,
                recursive=root.recursive,
                event_filter=_event_filter(),
            )
        except OSError as exc:
            return self._failed(root, exc, fatal)
        root.observed_by(obs, observed, ident)
        if fatal and root.recursive:  # at start, before watchd is ready: count its directories once
            root.directories = sum(1 for _ in _walk_dirs(root.path))
        return True

    def _failed(self, root: Root, exc: OSError, fatal: bool) -> bool:
        message = f"cannot watch {root.path}: {limit_hint(exc)}"
        if fatal and exc.errno == errno.EMFILE:
            raise WatchError(message)
        if root.fail():
            log.error("%s: %s", root.label, message)
        return False

    @staticmethod
    def _pruner(root: Root) -> Callable[[str], bool]:
        """A directory no watch of this root can care about gets no inotify watch at all."""

        def prune(rel: str) -> bool:
            if root.volume is not None and rel.startswith(".."):
                return True  # a kubelet volume's timestamped directories: only the swap of ..data counts
            for t in root.targets:
                if t.only is not None:
                    return False
                if t.sub.matcher.prunes(rel):
                    continue
                git = root.gitignore if t.sub.gitignore else None
                if git is None or not git.ignored(root.path + "/" + rel, is_dir=True):
                    return False
            return True

        return prune

    def _unschedule(self, root: Root) -> None:
        if root.native and self._tree is not None:
            self._tree.remove_root(root.rid)
        if root.observed is not None and root.observer is not None:
            with contextlib.suppress(KeyError, ValueError):  # already gone with its emitter
                root.observer.unschedule(root.observed)
        root.unwatched()

    def check_roots(self) -> None:
        """Notice roots that vanished, were replaced or appeared; re-schedule them.

        A root that reappears is scanned and its existing files reported as created, so a
        tree restored in one go (checkout, rsync, rm -rf && cp -r, a ConfigMap symlink swap)
        is not missed.
        """
        for git in self._repos.values():
            since = git.refresh()  # an ignore file outside the watched trees changed
            if since is not None:
                self._rules_changed(git, since)
        for root in list(self._roots.values()):
            current = inotify.dir_identity(root.path)
            if root.state in _WATCHING and current == root.identity and self._backend_ok(root):
                continue
            if root.scheduled:
                was_degraded = root.degraded and root.native
                self._unschedule(root)
                if was_degraded:
                    self._schedule(root, fatal=False)  # polled from now on
                    self._rescan(root)  # what changed during the switch is not known: act once
                    # logged once polling is in place: a change made after this line is caught
                    log.warning(
                        "%s: %s: inotify watch limit reached while watching it (%s); polling it instead",
                        root.label,
                        root.path,
                        limit_hint(OSError(errno.ENOSPC, "")),
                    )
                    continue
                if not root.degraded:
                    for t in root.targets:
                        log.warning(
                            "%s: %s was deleted or moved; it will be watched again when it reappears",
                            t.sub.name,
                            t.sub.path if t.only is None else os.path.dirname(t.sub.path),
                        )
            if current is None:
                if root.recursive and not root.targets[0].only and os.path.isfile(root.path):
                    self._become_file_root(root)
                    current = inotify.dir_identity(root.path)
                if current is None:
                    continue
            if self._schedule(root, fatal=False, report=True):
                for t in root.targets:
                    log.info("%s: %s appeared; watching it", t.sub.name, t.sub.path)

    @staticmethod
    def _backend_ok(root: Root) -> bool:
        if root.native:
            return not root.degraded
        if root.observer is not None:
            # watchdog stops the emitter of a deleted root; treat that as lost too
            emitters = getattr(root.observer, "emitters", ())
            return any(e.watch == root.observed and e.is_alive() for e in emitters)
        return True

    @staticmethod
    def _become_file_root(root: Root) -> None:
        """A path that did not exist at start turned out to be a file: watch its directory for it."""
        name = os.path.basename(root.path)
        root.path = os.path.dirname(root.path)
        root.venvs = Venvs(root.path)
        root.recursive = False
        for t in root.targets:
            t.only = name
            t.links = link_entries(DirListing(root.path), name)

    def _report_existing(self, root: Root, *, files: bool = True) -> None:
        """Report a root's existing files as created: its single files, and (`files`) the files
        of its tree (walked here; on inotify the tree's own walk reported them)."""
        for t in root.targets:
            if t.only is not None:
                path = os.path.join(root.path, t.only)
                if os.path.exists(path) and t.sub.matcher.matches(t.only):
                    self._sink(t.sub.key, Change(ChangeKind.CREATED, path))
                continue
            if files:
                git = root.gitignore if t.sub.gitignore else None
                for path in files_below(root.path, root.path, t.sub.matcher, git):
                    if root.volume is not None and (under(path, root.path) or "").startswith(".."):
                        continue  # a kubelet volume's own copy: its visible file is reported
                    self._sink(t.sub.key, Change(ChangeKind.CREATED, path))
