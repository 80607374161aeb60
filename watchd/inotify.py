"""Linux inotify, used directly (ctypes), for what watchdog 7.1 cannot tell us.

watchd keeps watchdog for macOS (FSEvents) and for polling, but on Linux watches trees itself:
- ignored directories (node_modules/, .venv/, .git/ ...) get no inotify watch at all, where
  watchdog's recursive walk watches everything;
- a kernel queue overflow (IN_Q_OVERFLOW) is reported to the caller, who acts on it, where
  watchdog only logs a warning and events are lost silently;
- running out of watches (ENOSPC) anywhere in a tree is an error the caller sees, where
  watchdog silently skips the directories past the limit;
- a watched root that is deleted, moved away or unmounted is reported at once.

One inotify instance and one reader thread serve every root. The reader parses events and
feeds them to a `WatchTable`, the pure part: it keeps the directory table up to date (new
directories are watched and scanned, so files created before their directory's watch existed
are still reported), pairs moves, and answers each read with simple `(root, kind, path, dest,
is_dir, closed)` notifications, which `InotifyTree` hands to the owner once its lock is released.
The table asks the system for nothing itself: the kernel's watches and the directories' contents
come through a `TreeOS` (`Kernel` here; a table of directories in tests/unit), and time from an
injected clock. Nothing runs actions.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import math
import os
import select
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from watchd import platform
from watchd.paths import under

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_MASK_ADD = 0x20000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

# No IN_OPEN / IN_ACCESS / IN_CLOSE_NOWRITE: reading a file is not a change, and on large trees
# those events flood the kernel queue (watchdog's default mask never becomes ready on 10,000 dirs).
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)

# On a root's parent directory: only entries appearing or going away, to notice at once that the
# root itself was renamed, deleted or swapped (a symlink replaced, the Kubernetes ConfigMap way).
# IN_MASK_ADD: the parent may also be watched as part of another tree, whose mask must stay.
PARENT_MASK = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ONLYDIR | IN_MASK_ADD
_ROOT_ENTRY_EVENTS = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE

_HEADER = struct.Struct("iIII")
_READ_SIZE = 256 * 1024
# Reads this close together, this many times in a row, are a burst: the reader then waits
# _BURST_WAIT before each read (events are stamped when read, so at most that much later).
_BURST_GAP = 0.002
_BURST_READS = 3
_BURST_WAIT = 0.002
_WRITTEN = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE  # a file's content or metadata changed
# A rename is two events, IN_MOVED_FROM then IN_MOVED_TO, queued one after the other by the same
# rename(); a read can fall between them. A MOVED_FROM whose other half is not in its read is held:
# the next read either starts with its MOVED_TO (one move) or does not (it left the watched trees,
# reported before that read's own events); with no next read, it is reported after this long.
MOVE_HOLD = 0.1
# Filesystems whose directories count their subdirectories in st_nlink (2 + subdirectories), so
# one with st_nlink 2 has none and a walk that only looks for directories need not read it
# (find's leaf optimisation). Elsewhere (btrfs and overlay say 1, FUSE, network) every one is read.
NLINK_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


@functools.cache
def _libc() -> ctypes.CDLL:
    # The process's own symbols include libc's; ctypes.util.find_library would run ldconfig
    # (2-3 ms at every start) to find the same library.
    lib = ctypes.CDLL(None, use_errno=True)
    if not hasattr(lib, "inotify_init1"):
        from ctypes.util import find_library  # noqa: PLC0415 (imports subprocess: only if needed)

        lib = ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)
    lib.inotify_init1.argtypes = [ctypes.c_int]
    lib.inotify_init1.restype = ctypes.c_int
    lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    lib.inotify_add_watch.restype = ctypes.c_int
    lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.inotify_rm_watch.restype = ctypes.c_int
    return lib


def available() -> bool:
    """True on Linux with a libc that has inotify."""
    if os.uname().sysname != "Linux":
        return False
    try:
        _libc()
    except (OSError, AttributeError):
        return False
    return True


def dir_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the directory at `path` (symlinks followed), or None if there is none.

    A root is the same root while this is unchanged; the owner (watching) uses it too.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return (st.st_dev, st.st_ino)


def _changed_since(entry: Entry, since_ns: int | None) -> bool:
    try:
        return since_ns is not None and entry.stat(follow_symlinks=False).st_mtime_ns >= since_ns
    except OSError:
        return False


class LimitError(OSError):
    """Out of inotify watches (ENOSPC) or instances (EMFILE)."""


# root id, kind, path, dest, is_dir, closed: a file created or modified and then closed by its writer
# (IN_CLOSE_WRITE), as opposed to one still being written (a truncation before the new content)
Notify = Callable[[int, str, str, "str | None", bool, bool], None]

# One event of a read, as the kernel gives it: (watch descriptor, mask, cookie, name)
RawEvent = tuple[int, int, int, bytes]


# ---------------------------------------------------------------------- what the table says


class Notification(NamedTuple):
    """A change under a root, for the owner (the arguments of `Notify`)."""

    rid: int
    kind: str  # created / modified / deleted / moved
    path: str
    dest: str | None = None
    is_dir: bool = False
    closed: bool = True  # the writer closed it (IN_CLOSE_WRITE), or nothing says it is still writing


@dataclass(frozen=True, slots=True)
class Lost:
    """The root is gone (deleted, moved away, unmounted, replaced): its id, and which directory it
    was (the owner hears it after the lock is released, when it may already watch a new one by that name)."""

    rid: int
    identity: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Overflow:
    """The kernel's event queue overflowed: events were lost, for every root."""


@dataclass(frozen=True, slots=True, eq=False)
class LimitReached:
    """The watch limit was reached while watching more of this root."""

    rid: int
    error: OSError


Notice = Notification | Lost | Overflow | LimitReached


# ---------------------------------------------------------------------- what the table asks


class _Stat(Protocol):
    @property
    def st_mtime_ns(self) -> int: ...


class Entry(Protocol):
    """A directory entry, as os.scandir gives it."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str: ...

    def is_dir(self, *, follow_symlinks: bool = True) -> bool: ...

    def stat(self, *, follow_symlinks: bool = True) -> _Stat: ...


class TreeOS(Protocol):
    """What the watch table needs of the system: inotify's watches and the directories' contents."""

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor of `path` (the same one again for a directory already watched);
        raises LimitError at the watch limit, OSError (with the path) for anything else."""
        ...

    def rm_watch(self, wd: int) -> None: ...

    def identity(self, path: str) -> tuple[int, int] | None:
        """(device, inode) of the directory at `path`, symlinks followed; None if there is none."""
        ...

    def scandir(self, path: str) -> Iterable[Entry]:
        """The entries of directory `path`; raises OSError."""
        ...

    def links_and_device(self, path: str) -> tuple[int, int] | None:
        """(st_nlink, st_dev) of `path` itself (lstat), None if it cannot be had."""
        ...


class Kernel:
    """The real `TreeOS`: one inotify instance (Linux), and the directories on disk."""

    def __init__(self) -> None:
        self._lib = _libc()
        fd = self._lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise LimitError(err, os.strerror(err))
        self.fd = fd

    def add_watch(self, path: str, mask: int) -> int:
        wd: int = self._lib.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSPC, errno.EMFILE):
                raise LimitError(err, os.strerror(err), path)
            raise OSError(err, os.strerror(err), path)
        return wd

    def rm_watch(self, wd: int) -> None:
        self._lib.inotify_rm_watch(self.fd, wd)

    @staticmethod
    def identity(path: str) -> tuple[int, int] | None:
        return dir_identity(path)

    @staticmethod
    def scandir(path: str) -> list[os.DirEntry[str]]:
        with os.scandir(path) as it:
            return list(it)

    @staticmethod
    def links_and_device(path: str) -> tuple[int, int] | None:
        return links_and_device(path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def links_and_device(path: str) -> tuple[int, int] | None:
    """(st_nlink, st_dev) of `path` itself (not following a symlink), None if it cannot be had."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_nlink, st.st_dev


def is_leaf(tree: WatchedTree, links_device: tuple[int, int] | None) -> bool:
    """True if a directory of `tree` with these (st_nlink, st_dev) has no subdirectory (stat'ed
    after its watch was added, so one made since raises an event). Only on the root's own device:
    a mount point below it may be another filesystem."""
    if links_device is None:
        return False
    nlink, dev = links_device
    return nlink == 2 and tree.identity is not None and dev == tree.identity[0]


# ---------------------------------------------------------------------- the pure part


@dataclass(eq=False)
class WatchedTree:
    """One root of the table: a directory watched (with what is below it, if `recursive`)."""

    rid: int
    path: str
    recursive: bool
    prune: Callable[[str], bool]  # relative directory path -> do not watch it (ignored by everyone)
    parent_wd: int | None = None
    identity: tuple[int, int] | None = None  # (device, inode) of the directory watched as the root
    lost: bool = False
    leaves: bool = False  # its filesystem counts subdirectories in st_nlink (NLINK_FILESYSTEMS)
    marker: str | None = None  # a directory holding a file of this name is pruned (pyvenv.cfg)


class WatchTable:
    """Which directories are watched for which roots, and what a read's events mean for them.

    Pure: watches are added and removed, and directories listed, through `system` (a `TreeOS`); the
    time a held move is due comes from `clock`. Every call that can say something returns its
    notices, in order; the caller delivers them. Not thread-safe: its owner holds a lock.
    """

    def __init__(self, system: TreeOS, clock: Callable[[], float] = time.monotonic) -> None:
        self._os = system
        self._clock = clock
        self._roots: dict[int, WatchedTree] = {}
        self.paths: dict[int, str] = {}  # wd -> directory path
        # wd -> root ids; a tuple (nearly always of one): on 100,000 directories a set each
        # would cost ~15 MiB more
        self._owners: dict[int, tuple[int, ...]] = {}
        self._parent_of: dict[int, set[int]] = {}  # wd of a root's parent directory -> root ids
        self._pending_moves: dict[int, tuple[int, str, bool]] = {}  # cookie -> (wd, path, is_dir)
        self.due: float | None = None  # when held MOVED_FROMs are reported as moved out (tick)
        self._out: list[Notice] = []

    def _take(self) -> list[Notice]:
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------------ public

    @property
    def watch_count(self) -> int:
        """Directories watched for the roots (not counting the roots' parents)."""
        return len(self._owners)

    def watches_of(self, rids: set[int]) -> int:
        """Directories watched for these roots."""
        return sum(1 for owners in self._owners.values() if not rids.isdisjoint(owners))

    def add_root(
        self,
        rid: int,
        path: str,
        *,
        recursive: bool,
        prune: Callable[[str], bool],
        report: bool = False,
        leaves: bool = False,
        marker: str | None = None,
    ) -> tuple[int, list[Notice]]:
        """See InotifyTree.add_root; also returns the files found when `report`, as notices."""
        root = WatchedTree(
            rid, path, recursive, prune, identity=self._os.identity(path), leaves=leaves, marker=marker
        )
        self._roots[rid] = root
        try:
            added = self._add_tree(root, path, report=report)
            self._watch_parent(root)
        except OSError:
            self._drop_root(root)
            del self._roots[rid]
            self._out.clear()
            raise
        return added, self._take()

    def remove_root(self, rid: int) -> None:
        root = self._roots.pop(rid, None)
        if root is not None:
            self._drop_root(root)

    def rescan(self, rid: int, *, since_ns: int | None = None) -> list[Notice]:
        """See InotifyTree.rescan."""
        root = self._roots.get(rid)
        if root is not None and not root.lost:
            try:
                self._add_tree(root, root.path, report=False, since_ns=since_ns)
            except OSError as exc:
                self._out.append(LimitReached(rid, exc))
        return self._take()

    def handle(self, events: list[RawEvent]) -> list[Notice]:
        """The events of one read, in order: what they mean, for every root they concern."""
        moved_to = {cookie for _, mask, cookie, _ in events if mask & IN_MOVED_TO}
        if self._pending_moves and not moved_to.issuperset(self._pending_moves):
            # held from the read before: their MOVED_TO would have come first in this one
            for cookie in [c for c in self._pending_moves if c not in moved_to]:
                wd, path, is_dir = self._pending_moves.pop(cookie)
                self._moved_out(wd, path, is_dir)
        for wd, mask, cookie, name in events:
            try:
                self._handle_one(wd, mask, cookie, name)
            except Exception:  # one event's trouble must not end the reader (and watchd with it)
                log.exception(
                    "watchd: handling an inotify event failed (%#x on watch %d); going on", mask, wd
                )
        # a MOVED_FROM still unpaired waits for the next read, or MOVE_HOLD at most
        self.due = self._clock() + MOVE_HOLD if self._pending_moves else None
        return self._take()

    def tick(self) -> list[Notice]:
        """No read came: held MOVED_FROMs whose time is up left the watched trees."""
        if self.due is not None and self._clock() >= self.due:
            self._moved_out_all()
        return self._take()

    # ------------------------------------------------------------------ watches

    def _add_watch(self, root: WatchedTree, path: str) -> tuple[int, bool]:
        """Watch `path` for `root`: its watch descriptor, and True if it was not watched for it before."""
        # the root itself may be a symlink the user named on purpose: follow it there only
        mask = WATCH_MASK & ~IN_DONT_FOLLOW if path == root.path else WATCH_MASK
        wd = self._os.add_watch(path, mask)
        self.paths[wd] = path
        owners = self._owners.get(wd, ())
        if root.rid in owners:
            return wd, False
        self._owners[wd] = (*owners, root.rid)
        return wd, True

    def _add_tree(self, root: WatchedTree, top: str, *, report: bool, since_ns: int | None = None) -> int:
        """Watch `top` and the directories below it; with `report`, notify the files found as
        created; with `since_ns`, those of newly watched directories changed since then as modified."""
        stack = [top]
        first = True
        added = 0
        while stack:
            d = stack.pop()
            try:
                wd, new = self._add_watch(root, d)
            except LimitError:
                raise
            except OSError as exc:
                if first and d == root.path:
                    raise
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                    log.warning("cannot watch %s: %s", d, exc.strerror)
                continue  # vanished meanwhile, or unreadable: skip it
            first = False
            added += 1
            if not root.recursive and d == root.path:
                continue
            recent = since_ns is not None and new and not report
            if not report and not recent and root.leaves and is_leaf(root, self._os.links_and_device(d)):
                continue  # no subdirectory to watch, and no file to report: nothing to read
            try:
                entries = list(self._os.scandir(d))
            except OSError:
                continue
            if root.marker is not None and d != root.path and any(e.name == root.marker for e in entries):
                # a virtual environment (its pyvenv.cfg): pruned, found in the names read anyway,
                # where asking every directory for the file cost a stat each (10,000 on a big tree)
                if new:
                    self._release(wd, root.rid)
                added -= 1
                continue
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if root.recursive and not root.prune(under(entry.path, root.path) or ""):
                        stack.append(entry.path)
                elif report:
                    self._out.append(Notification(root.rid, "created", entry.path))
                elif recent and _changed_since(entry, since_ns):
                    self._out.append(Notification(root.rid, "modified", entry.path))
        return added

    def _watch_parent(self, root: WatchedTree) -> None:
        parent = os.path.dirname(root.path)
        if parent == root.path:
            return
        try:
            wd = self._os.add_watch(parent, PARENT_MASK)
        except LimitError:
            raise
        except OSError:
            return  # an unreadable parent: roots are still checked periodically by the owner
        self.paths.setdefault(wd, parent)
        self._parent_of.setdefault(wd, set()).add(root.rid)
        root.parent_wd = wd

    def _drop_root(self, root: WatchedTree) -> None:
        for wd, owners in list(self._owners.items()):
            if root.rid in owners:
                self._release(wd, root.rid)
        pwd = root.parent_wd
        root.parent_wd = None
        if pwd is not None and pwd in self._parent_of:
            self._parent_of[pwd].discard(root.rid)
            if not self._parent_of[pwd]:
                del self._parent_of[pwd]
                if pwd not in self._owners:
                    self.paths.pop(pwd, None)
                    self._os.rm_watch(pwd)

    def _release(self, wd: int, rid: int) -> None:
        owners = self._owners.get(wd)
        if owners is None:
            return
        owners = tuple(o for o in owners if o != rid)
        if owners:
            self._owners[wd] = owners
        else:
            del self._owners[wd]
            if wd not in self._parent_of:  # still needed to watch a root's entry
                self.paths.pop(wd, None)
                self._os.rm_watch(wd)

    def _drop_subtree(self, path: str, rids: tuple[int, ...]) -> None:
        """Stop watching `path` and everything below it for the roots `rids` (those watching the
        directory it was moved away from). A move seen only through a root's parent is the root
        itself going: a root watched anew by that name meanwhile must keep its watches."""
        prefix = path + "/"
        for wd, p in list(self.paths.items()):
            if p == path or p.startswith(prefix):
                for rid in self._owners.get(wd, ()):
                    if rid in rids:
                        self._release(wd, rid)

    # ------------------------------------------------------------------ events

    def _moved_out_all(self) -> None:
        """The held MOVED_FROMs whose MOVED_TO never came: they left the watched trees."""
        pending, self._pending_moves, self.due = self._pending_moves, {}, None
        for wd, path, is_dir in pending.values():
            self._moved_out(wd, path, is_dir)

    def _handle_one(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        if mask & IN_Q_OVERFLOW:
            self._pending_moves.clear()
            self.due = None
            self._out.append(Overflow())
            return
        base = self.paths.get(wd)
        if base is None:
            return  # a watch removed a moment ago
        if name:
            decoded = name.decode(_FS_ENCODING, _FS_ERRORS)
            path = base + "/" + decoded if base != "/" else "/" + decoded
        else:
            path = base
        is_dir = bool(mask & IN_ISDIR)
        if name and wd in self._parent_of and mask & _ROOT_ENTRY_EVENTS:
            self._root_entry_changed(wd, path)
        if mask & IN_IGNORED:
            self._forget(wd)
        elif mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
            self._self_gone(wd, base)
        elif mask & IN_MOVED_FROM:
            self._pending_moves[cookie] = (wd, path, is_dir)  # paired by its MOVED_TO, or held
        elif mask & IN_MOVED_TO:
            source = self._pending_moves.pop(cookie, None)
            if source is None:
                self._moved_in(wd, path, is_dir)
            else:
                self._moved(source, wd, path, is_dir)
        elif mask & IN_CREATE:
            if is_dir:
                self._new_dir(wd, path)
            else:
                self._emit(wd, "created", path, None, False, bool(mask & IN_CLOSE_WRITE))
        elif mask & IN_DELETE:
            self._emit(wd, "deleted", path, None, is_dir)
        elif not is_dir and mask & (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE):
            self._emit(wd, "modified", path, None, False, bool(mask & IN_CLOSE_WRITE))

    def _emit(  # noqa: PLR0917 (the hot path: a notification for every owner)
        self, wd: int, kind: str, path: str, dest: str | None, is_dir: bool, closed: bool = True
    ) -> None:
        owners = self._owners.get(wd)
        if owners:
            out = self._out
            for rid in owners:
                out.append(Notification(rid, kind, path, dest, is_dir, closed))

    def _roots_for(self, wd: int) -> list[WatchedTree]:
        return [self._roots[rid] for rid in self._owners.get(wd, ()) if rid in self._roots]

    def _new_dir(self, parent_wd: int, path: str) -> None:
        """A directory appeared in a watched one: watch it (unless pruned) and report its files."""
        for root in self._roots_for(parent_wd):
            if not root.recursive or root.prune(under(path, root.path) or ""):
                continue
            try:
                self._add_tree(root, path, report=True)
            except LimitError as exc:
                self._out.append(LimitReached(root.rid, exc))

    def _moved_out(self, wd: int, path: str, is_dir: bool) -> None:
        if is_dir:
            self._drop_subtree(path, self._owners.get(wd, ()))
        self._emit(wd, "deleted", path, None, is_dir)

    def _moved_in(self, wd: int, path: str, is_dir: bool) -> None:
        if is_dir:
            self._new_dir(wd, path)
        else:
            self._emit(wd, "created", path, None, False)

    def _moved(self, source: tuple[int, str, bool], wd: int, path: str, is_dir: bool) -> None:
        src_wd, src_path, _ = source
        if is_dir:  # re-watch it where it is now (its new name may be pruned, or not)
            self._drop_subtree(src_path, self._owners.get(src_wd, ()))
            self._new_dir(wd, path)
        src_roots = set(self._owners.get(src_wd, ()))
        dest_roots = set(self._owners.get(wd, ()))
        for rid in src_roots & dest_roots:
            self._out.append(Notification(rid, "moved", src_path, path, is_dir))
        for rid in src_roots - dest_roots:
            self._out.append(Notification(rid, "deleted", src_path, None, is_dir))
        for rid in dest_roots - src_roots:
            if not is_dir:
                self._out.append(Notification(rid, "created", path))

    def _lose(self, root: WatchedTree) -> None:
        root.lost = True
        self._drop_root(root)
        self._out.append(Lost(root.rid, root.identity))

    def _root_entry_changed(self, parent_wd: int, path: str) -> None:
        """A root's name in its parent was renamed, deleted or replaced: stop reporting under it now."""
        now = self._os.identity(path)
        for rid in list(self._parent_of.get(parent_wd, ())):
            root = self._roots.get(rid)
            if root is not None and root.path == path and not root.lost:
                if now is not None and now == root.identity:
                    continue  # about an earlier directory of that name: the one watched is there
                self._lose(root)

    def _self_gone(self, wd: int, path: str) -> None:
        for root in self._roots_for(wd):
            if path == root.path and not root.lost:
                self._lose(root)

    def _forget(self, wd: int) -> None:
        """The kernel dropped this watch (its directory was deleted)."""
        self._owners.pop(wd, None)
        self._parent_of.pop(wd, None)
        self.paths.pop(wd, None)


# ---------------------------------------------------------------------- the reader


class InotifyTree:
    """Watches directory trees with one inotify instance; see the module docstring."""

    def __init__(
        self,
        notify: Notify,
        on_lost: Callable[[int, tuple[int, int] | None], None],
        on_overflow: Callable[[], None],
        on_limit: Callable[[int, OSError], None],
    ) -> None:
        self._kernel = Kernel()
        self._table = WatchTable(self._kernel)
        self._notify_cb = notify
        self._on_lost_cb = on_lost
        self._on_overflow_cb = on_overflow
        self._on_limit_cb = on_limit
        # The table's notices are delivered once the lock is released, one by one, in order, by
        # the thread that got them (the reader, or the owner adding a root): an owner that is
        # slow or raises can neither stall the tables nor end the reader.
        self._lock = threading.RLock()
        self._stop_r, self._stop_w = platform.current.cloexec_pipe()
        self._thread = threading.Thread(target=self._run, name="watchd-inotify", daemon=True)
        self._thread.start()

    def _deliver(self, notices: list[Notice]) -> None:
        """Hand the table's notices to the owner (call without holding the lock)."""
        for notice in notices:
            try:
                if isinstance(notice, Notification):
                    self._notify_cb(*notice)
                elif isinstance(notice, Lost):
                    self._on_lost_cb(notice.rid, notice.identity)
                elif isinstance(notice, Overflow):
                    self._on_overflow_cb()
                else:
                    self._on_limit_cb(notice.rid, notice.error)
            except Exception:  # one bad callback must not cost the others, or the reader
                log.exception("watchd: handling a filesystem event failed; going on")

    # ------------------------------------------------------------------ public

    @property
    def watch_count(self) -> int:
        """Directories watched for the roots (not counting the roots' parents)."""
        with self._lock:
            return self._table.watch_count

    def watches_of(self, rids: set[int]) -> int:
        """Directories watched for these roots."""
        with self._lock:
            return self._table.watches_of(rids)

    def add_root(
        self,
        rid: int,
        path: str,
        *,
        recursive: bool,
        prune: Callable[[str], bool],
        report: bool = False,
        leaves: bool = False,
        marker: str | None = None,
    ) -> int:
        """Watch `path` (and, if `recursive`, every directory below it not pruned); with `report`,
        notify the files found as created (a root that reappeared: one walk does both). `leaves`:
        the root's filesystem is one of NLINK_FILESYSTEMS (a walk skips directories without any).
        `marker`: a directory below the root holding a file of that name is pruned too.

        Returns the number of directories watched. Raises LimitError when the kernel's watch
        limit is reached (nothing of this root stays watched), FileNotFoundError if it is gone.
        """
        with self._lock:
            added, notices = self._table.add_root(
                rid, path, recursive=recursive, prune=prune, report=report, leaves=leaves, marker=marker
            )
        self._deliver(notices)
        return added

    def remove_root(self, rid: int) -> None:
        with self._lock:
            self._table.remove_root(rid)

    def rescan(self, rid: int, *, since_ns: int | None = None) -> None:
        """Watch directories that appeared while events were lost (after an overflow), or that
        are no longer pruned (the rules changed). With `since_ns`, the files of directories not
        watched until now that changed since then (st_mtime_ns) are notified as modified."""
        with self._lock:
            notices = self._table.rescan(rid, since_ns=since_ns)
        self._deliver(notices)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2)
        self._kernel.close()
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ reading

    def _read(self, events: list[RawEvent]) -> None:
        """One read's events: through the table under the lock, then to the owner."""
        with self._lock:
            notices = self._table.handle(events)
        self._deliver(notices)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._kernel.fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        stop = self._stop_r
        # one buffer for every read: os.read(fd, 256 KiB) allocates (and maps) 256 KiB each time,
        # ~27 us, for reads that mostly hold a few events
        buffer = bytearray(_READ_SIZE)
        last_read = 0.0
        streak = 0  # reads in a row that came within _BURST_GAP of the one before
        try:
            while True:
                due = self._table.due
                timeout = None if due is None else max(0, math.ceil((due - time.monotonic()) * 1000))
                ready = poller.poll(timeout)
                if any(fd == stop for fd, _ in ready):
                    return
                if not ready:  # a held MOVED_FROM's other half never came
                    with self._lock:
                        notices = self._table.tick()
                    self._deliver(notices)
                    continue
                now = time.monotonic()
                streak = streak + 1 if now - last_read < _BURST_GAP else 0
                if streak >= _BURST_READS:
                    # a tree is landing (tar, rsync, checkout): let events gather for a moment,
                    # so one wake-up reads more of them (about twice). A save is never a burst.
                    time.sleep(_BURST_WAIT)
                last_read = time.monotonic()
                try:
                    data = bytes(memoryview(buffer)[: os.readv(self._kernel.fd, [buffer])])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    log.error("reading inotify events failed: %s", exc.strerror)
                    return
                self._read(self._parse(data))
        except Exception:
            log.exception("the inotify reader failed")

    @staticmethod
    def _parse(data: bytes) -> list[RawEvent]:
        """The events of one read, in order; a file written (modify, attrib, close_write ...)
        right after it was created or written is one event (its masks or-ed together), as it is
        one change to report."""
        events: list[RawEvent] = []
        unpack, header = _HEADER.unpack_from, _HEADER.size
        offset, size = 0, len(data)
        last_wd, last_name = -1, b""
        while offset + header <= size:
            wd, mask, cookie, length = unpack(data, offset)
            start = offset + header
            offset = start + length
            name = data[start:offset].rstrip(b"\0")
            if wd == last_wd and name == last_name and name and not mask & ~_WRITTEN:
                # the same file again: created or written, and now written (or closed)
                events[-1] = (wd, events[-1][1] | mask, events[-1][2], name)
                continue
            if mask & (_WRITTEN | IN_CREATE) and not mask & IN_ISDIR:
                last_wd, last_name = wd, name
            else:
                last_wd = -1
            events.append((wd, mask, cookie, name))
        return events
