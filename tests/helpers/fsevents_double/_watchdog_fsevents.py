"""A stand-in for watchdog's C extension `_watchdog_fsevents`, so that watchdog's real
`FSEventsEmitter` / `FSEventsObserver` (watchdog/observers/fsevents.py) run on Linux.

It has the surface that Python file uses, as watchdog 7.1's src/watchdog_fsevents.c defines it:
- `NativeEvent(path, inode, flags, id)`: the raw flags, `path`, `inode` (None where FSEvents gives
  no file ID: RootChanged, HistoryDone, dropped events), `event_id`, `is_coalesced` and one
  `is_*` property per kFSEventStreamEventFlag* bit;
- `Stream(paths, latency=...)`: `run(callback, started=None)` blocks its thread, calling
  `callback(paths, inodes, flags, ids)` once per delivery, until `stop()` (which may come first,
  from another thread or from inside the callback, as on a Mac).

What fseventsd does is the test's side: `replay()` takes the raw per-operation events of one or
more latency windows, coalesces each window as FSEvents does (see `coalesce`) and delivers each as
one callback, on the stream's own thread, returning once the emitter has handled it; `post()`
takes them one at a time, live, and makes the windows from the stream's latency (`flush()` waits
for them to be delivered).

Live mode (`Stream.live`, from the module's `LIVE` when the stream is made): the stream's paths are
watched with inotify (watchdog's own `inotify_c.InotifyFD`, which the macOS profile allows), and
each inotify event is posted as the event macOS's kernel reports for that operation (`_LiveFeed`):
so FSEvents' timing and coalescing apply to this machine's real file changes. `LIVE` is true when
this file is imported as the extension itself, by its own name (tests/macos_lane.sh puts this
directory on PYTHONPATH, so watchdog's `import _watchdog_fsevents` finds it); imported as the test
helper (helpers.fsevents_double._watchdog_fsevents), it is false: a test that scripts batches with
`replay()` gets only those, and a test that wants live streams sets `LIVE`.
"""

from __future__ import annotations

import itertools
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Sequence
from enum import IntFlag
from typing import Any, NamedTuple


class Flag(IntFlag):
    """kFSEventStreamEventFlag* (Apple, FSEvents.h: "FSEventStreamEventFlags"; the same values in
    learn.microsoft.com's CoreServices.FSEventStreamEventFlags and docs.rs fsevent-sys)."""

    NONE = 0x00000000
    MUST_SCAN_SUB_DIRS = 0x00000001
    USER_DROPPED = 0x00000002
    KERNEL_DROPPED = 0x00000004
    EVENT_IDS_WRAPPED = 0x00000008
    HISTORY_DONE = 0x00000010
    ROOT_CHANGED = 0x00000020
    MOUNT = 0x00000040
    UNMOUNT = 0x00000080
    ITEM_CREATED = 0x00000100
    ITEM_REMOVED = 0x00000200
    ITEM_INODE_META_MOD = 0x00000400
    ITEM_RENAMED = 0x00000800
    ITEM_MODIFIED = 0x00001000
    ITEM_FINDER_INFO_MOD = 0x00002000
    ITEM_CHANGE_OWNER = 0x00004000
    ITEM_XATTR_MOD = 0x00008000
    ITEM_IS_FILE = 0x00010000
    ITEM_IS_DIR = 0x00020000
    ITEM_IS_SYMLINK = 0x00040000
    OWN_EVENT = 0x00080000
    ITEM_IS_HARDLINK = 0x00100000
    ITEM_IS_LAST_HARDLINK = 0x00200000
    ITEM_CLONED = 0x00400000


# stream-level flags: about the stream, not an item; never coalesced with an item's events
STREAM_FLAGS = (
    Flag.MUST_SCAN_SUB_DIRS
    | Flag.USER_DROPPED
    | Flag.KERNEL_DROPPED
    | Flag.EVENT_IDS_WRAPPED
    | Flag.HISTORY_DONE
    | Flag.ROOT_CHANGED
    | Flag.MOUNT
    | Flag.UNMOUNT
)

_COALESCED = (
    Flag.ITEM_CREATED | Flag.ITEM_REMOVED,
    Flag.ITEM_CREATED | Flag.ITEM_RENAMED,
    Flag.ITEM_REMOVED | Flag.ITEM_RENAMED,
)


def _flag(bit: Flag) -> Any:
    return property(lambda self: bool(self._flags & bit))


class NativeEvent:
    """One event as the extension hands it to Python (read-only)."""

    __slots__ = ("_flags", "_id", "_inode", "_path")

    def __init__(self, path: str, inode: int | None, flags: int, id: int) -> None:
        self._path = path
        self._inode = inode
        self._flags = flags
        self._id = id

    path = property(lambda self: self._path)
    inode = property(lambda self: self._inode)
    flags = property(lambda self: self._flags)
    event_id = property(lambda self: self._id)
    is_coalesced = property(lambda self: any(self._flags & m == m for m in _COALESCED))
    must_scan_subdirs = _flag(Flag.MUST_SCAN_SUB_DIRS)
    is_user_dropped = _flag(Flag.USER_DROPPED)
    is_kernel_dropped = _flag(Flag.KERNEL_DROPPED)
    is_event_ids_wrapped = _flag(Flag.EVENT_IDS_WRAPPED)
    is_history_done = _flag(Flag.HISTORY_DONE)
    is_root_changed = _flag(Flag.ROOT_CHANGED)
    is_mount = _flag(Flag.MOUNT)
    is_unmount = _flag(Flag.UNMOUNT)
    is_created = _flag(Flag.ITEM_CREATED)
    is_removed = _flag(Flag.ITEM_REMOVED)
    is_inode_meta_mod = _flag(Flag.ITEM_INODE_META_MOD)
    is_renamed = _flag(Flag.ITEM_RENAMED)
    is_modified = _flag(Flag.ITEM_MODIFIED)
    is_item_finder_info_modified = _flag(Flag.ITEM_FINDER_INFO_MOD)
    is_owner_change = _flag(Flag.ITEM_CHANGE_OWNER)
    is_xattr_mod = _flag(Flag.ITEM_XATTR_MOD)
    is_file = _flag(Flag.ITEM_IS_FILE)
    is_directory = _flag(Flag.ITEM_IS_DIR)
    is_symlink = _flag(Flag.ITEM_IS_SYMLINK)
    is_own_event = _flag(Flag.OWN_EVENT)
    is_hardlink = _flag(Flag.ITEM_IS_HARDLINK)
    is_last_hardlink = _flag(Flag.ITEM_IS_LAST_HARDLINK)
    is_cloned = _flag(Flag.ITEM_CLONED)

    def __repr__(self) -> str:
        return f'NativeEvent(path="{self._path}", inode={self._inode}, flags={self._flags:x}, id={self._id})'


class Raw(NamedTuple):
    """One operation's event as the kernel reports it, before fseventsd coalesces a window."""

    path: str
    inode: int | None
    flags: Flag


_ids = itertools.count(0x2000000)  # event ids only grow (Apple: FSEventStreamEventId)


def coalesce(window: Sequence[Raw]) -> list[NativeEvent]:
    """One latency window's events as FSEvents delivers them: the flags of every event about the
    same item at the same path OR-ed into one event (in the place of its first, with the id of its
    last); never one event for different items at one path, nor for one item at different paths
    (watchdog's fsevents.py relies on this: see its comment in `queue_events`, and PR #754; the
    "sticky" flags reported against it, fsevents/fsevents #31 and fswatch #144, are scripted as raw
    events where a test needs them). Stream-level events stand alone; RootChanged's id is 0 (Apple:
    FSEventStreamEventFlags)."""
    slots: list[list[Any]] = []  # [path, inode, flags, id], in first-seen order
    by_item: dict[tuple[str, int], list[Any]] = {}
    for raw in window:
        event_id = 0 if raw.flags & Flag.ROOT_CHANGED else next(_ids)
        slot = None
        if raw.inode is not None and not raw.flags & STREAM_FLAGS:
            slot = by_item.get((raw.path, raw.inode))
        if slot is None:
            slot = [raw.path, raw.inode, int(raw.flags), event_id]
            slots.append(slot)
            if raw.inode is not None and not raw.flags & STREAM_FLAGS:
                by_item[(raw.path, raw.inode)] = slot
        else:
            slot[2] |= int(raw.flags)
            slot[3] = event_id
    return [NativeEvent(path, inode, flags, event_id) for path, inode, flags, event_id in slots]


Callback = Callable[[list[str], list[int | None], list[int], list[int]], object]

_streams: list[Stream] = []
_streams_changed = threading.Condition()


class _Window(NamedTuple):
    events: list[NativeEvent]
    done: threading.Event


class _Barrier(NamedTuple):
    done: threading.Event


class _Held(NamedTuple):
    """An event whose other half follows (a rename's old path): it opens a window, not a delivery."""

    raw: Raw


_Item = _Window | Raw | _Held | _Barrier | None  # None: stop


# Live streams, fed from inotify (see the module's docstring): as the extension, by default
LIVE = __name__ == "_watchdog_fsevents"


class Stream:
    """An FSEventStream on `paths` (copied, as the C copies them into a CFArray)."""

    def __init__(self, paths: Sequence[str], latency: float = 0.01) -> None:
        self.paths = [str(p) for p in paths]
        self.latency = latency
        self.live = LIVE
        self.feed: _LiveFeed | None = None  # while a live stream runs
        self._inbox: queue.Queue[_Item] = queue.Queue()
        self._stopped = threading.Event()
        self.running = False
        with _streams_changed:
            _streams.append(self)
            _streams_changed.notify_all()

    def run(self, callback: Callback, started: Callable[[], object] | None = None) -> None:
        if self._stopped.is_set():
            return  # stopped before it ran: returns at once (watchdog's test_stream_stop_before_run)
        # the watches are in place before `started`: what changes once the emitter started is seen
        feed = self.feed = _LiveFeed(self) if self.live else None
        try:
            if started is not None:
                started()
            with _streams_changed:
                self.running = True
                _streams_changed.notify_all()
            self._loop(callback)
        finally:
            with _streams_changed:
                self.running = False
                _streams_changed.notify_all()
            if feed is not None:
                feed.close()

    def _loop(self, callback: Callback) -> None:
        pending: list[Raw] = []  # posted within the current latency window
        barriers: list[threading.Event] = []
        last = float("-inf")  # when the last delivery was made
        deadline = 0.0  # when the current window (if `pending`) is delivered

        def deliver(events: list[NativeEvent]) -> None:
            nonlocal last
            last = time.monotonic()
            if events:
                callback(
                    [e.path for e in events],
                    [e.inode for e in events],
                    [e.flags for e in events],
                    [e.event_id for e in events],
                )

        while True:
            timeout = max(0.0, deadline - time.monotonic()) if pending else None
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:  # the window is over: what it gathered goes as one delivery
                deliver(coalesce(pending))
                pending.clear()
                for b in barriers:
                    b.set()
                barriers.clear()
                continue
            if item is None:
                return
            if isinstance(item, _Window):
                try:
                    deliver(item.events)
                finally:
                    item.done.set()
            elif isinstance(item, _Barrier):
                if pending:
                    barriers.append(item.done)
                else:
                    item.done.set()
            elif isinstance(item, _Held):
                if not pending:  # (a window of its own if quiet: its other half is in it)
                    deadline = max(last, time.monotonic()) + self.latency
                pending.append(item.raw)
            elif not pending and time.monotonic() - last >= self.latency:
                # kFSEventStreamCreateFlagNoDefer (watchdog sets it): after a quiet latency, at once
                deliver(coalesce([item]))
            else:
                if not pending:
                    deadline = last + self.latency
                pending.append(item)

    def stop(self) -> None:
        self._stopped.set()
        self._inbox.put(None)

    # ---------------------------------------------------------------- the test's side (fseventsd)

    def replay(self, *windows: Sequence[Raw], timeout: float = 5.0) -> None:
        """Deliver each latency window, coalesced, as one callback; return when all are handled."""
        for window in windows:
            done = threading.Event()
            self._inbox.put(_Window(coalesce(window), done))
            if not done.wait(timeout):
                raise AssertionError(f"the stream on {self.paths} did not handle a delivery in {timeout}s")

    def post(self, raw: Raw) -> None:
        """One operation's event, live, timed as FSEvents times a stream with kFSEventStreamCreate-
        FlagNoDefer: the first after a quiet latency is delivered at once; the next ones are
        gathered until `latency` has passed since that delivery, then coalesced into one (Apple,
        FSEventStreamCreateFlags: NoDefer "is useful for apps that are interactive")."""
        self._inbox.put(raw)

    def post_held(self, raw: Raw) -> None:
        """As `post`, for an event whose other half follows at once: the kernel reports a rename as
        one record naming both paths, so fseventsd never delivers its old path without its new
        one (when both are in the stream's paths). Even after a quiet latency, it waits a latency
        for what follows."""
        self._inbox.put(_Held(raw))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything posted so far has been delivered and handled."""
        done = threading.Event()
        self._inbox.put(_Barrier(done))
        if not done.wait(timeout):
            raise AssertionError(f"the stream on {self.paths} did not deliver its events in {timeout}s")


def stream_for(path: str, timeout: float = 5.0, *, after: Stream | None = None) -> Stream:
    """The newest running stream watching `path` (made after `after`, if given), waiting for it."""
    deadline = time.monotonic() + timeout
    with _streams_changed:
        while True:
            start = _streams.index(after) + 1 if after is not None else 0
            found = [s for s in _streams[start:] if s.running and path in s.paths]
            if found:
                return found[-1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no FSEvents stream runs on {path}")
            _streams_changed.wait(left)


def forget_streams() -> None:
    """Between tests: no stream of an earlier test is found again."""
    with _streams_changed:
        _streams.clear()


# ---------------------------------------------------------------- live: fed from inotify

_CALLBACK_ID = 0x46534556  # the feed's id on each watch of its own InotifyFD ("FSEV")


def _kind(mode: int) -> Flag:
    if stat.S_ISDIR(mode):
        return Flag.ITEM_IS_DIR
    if stat.S_ISLNK(mode):
        return Flag.ITEM_IS_SYMLINK
    return Flag.ITEM_IS_FILE


class _LiveFeed:
    """A live stream's paths watched with inotify, each event posted to the stream as the raw event
    macOS's kernel reports for the same operation (the stream then times and coalesces them as
    fseventsd does, see `Stream.post`):

    - IN_CREATE -> ItemCreated, IN_MODIFY -> ItemModified, IN_ATTRIB -> ItemInodeMetaMod, IN_DELETE ->
      ItemRemoved, IN_MOVED_FROM and IN_MOVED_TO -> ItemRenamed at the old path and at the new one
      (watchdog pairs the two by inode); each with ItemIsFile, ItemIsDir or ItemIsSymlink and the
      item's inode (FSEvents' file ID: watchdog's C asks for it with UseExtendedData). inotify
      events carry no inode: it is the one the item had when this feed last saw it (made, renamed
      or at the start), else the one at the path now; an item gone before it could be seen gets
      a made-up number of its own, so that its events still coalesce as one item's.
    - Paths are real paths, as FSEvents gives them (/private/tmp/x for /tmp/x).
    - The tree is watched recursively (FSEvents is); a directory made in it is watched at once and
      what is already in it reported created (FSEvents reports every item made after the stream
      started); a directory moved in is reported alone (FSEvents names the directory only).
    - kFSEventStreamCreateFlagWatchRoot (which watchdog passes, PR #727): the root deleted or
      renamed gives its own ItemRemoved / ItemRenamed, then RootChanged; a directory above it
      deleted or renamed, RootChanged alone (Apple: "a change to one of the directories along the
      path to one of the directories you asked to watch"). Each ancestor has a watch for that.
    - The kernel's queue overflowing (IN_Q_OVERFLOW) gives MustScanSubDirs|KernelDropped on each
      root (Apple: the client must rescan), and the tree is walked again for directories missed.
    Not translated: IN_UNMOUNT (Unmount), xattr and owner changes (both IN_ATTRIB: InodeMetaMod
    here), hard link flags, own-event and clone flags.
    """

    def __init__(self, stream: Stream) -> None:
        from watchdog.observers import inotify_c  # noqa: PLC0415 (live streams only: Linux's inotify)

        c = inotify_c.InotifyConstants
        self._c = c
        self._tree_mask = (
            c.IN_MODIFY
            | c.IN_ATTRIB
            | c.IN_CREATE
            | c.IN_DELETE
            | c.IN_MOVED_FROM
            | c.IN_MOVED_TO
            | c.IN_DELETE_SELF
            | c.IN_MOVE_SELF
            | c.IN_DONT_FOLLOW
            | c.IN_ONLYDIR
            | c.IN_EXCL_UNLINK
        )
        self._above_mask = c.IN_MOVED_FROM | c.IN_DELETE | c.IN_ONLYDIR
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False
        self._dirs: dict[int, str] = {}  # wd -> the directory of the tree it watches (real path)
        self._wd_of: dict[str, int] = {}
        self._roots: dict[str, int] = {}  # real root -> its wd
        self._above: dict[int, list[tuple[str, str]]] = {}  # wd of an ancestor -> [(entry name, root)]
        self._known: dict[str, tuple[int, Flag]] = {}  # real path -> (inode, type bit), as last seen
        self._moving: dict[int, str] = {}  # cookie -> the path an IN_MOVED_FROM named
        self._changed: set[str] = set()  # roots that got RootChanged
        self._made_up = itertools.count(1 << 62)
        self._fd = inotify_c.InotifyFD()  # its own instance (not watchdog's shared one)
        self._fd.start()
        try:
            with self._lock:
                for path in stream.paths:
                    root = os.path.realpath(path)
                    if root in self._roots or not self._add(root, self._tree_mask):
                        continue
                    self._roots[root] = self._wd_of[root]
                    self._watch_tree(root, report=False)
                    self._watch_above(root)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._closed = True
        self._fd.stop()
        self._fd.join(5)

    # ------------------------------------------------------------ watchdog's WatchCallback

    def on_event(self, event: Any) -> None:
        with self._lock:
            raws = [] if self._closed else self._translate(event)
        for raw in raws:
            if raw.flags & Flag.ITEM_RENAMED and event.mask & self._c.IN_MOVED_FROM:
                self._stream.post_held(raw)
            else:
                self._stream.post(raw)

    def on_watch_deleted(self, wd: int) -> None:
        with self._lock:
            self._above.pop(wd, None)
            path = self._dirs.pop(wd, None)
            if path is not None and self._wd_of.get(path) == wd:
                del self._wd_of[path]

    def on_queue_overflow(self) -> None:
        with self._lock:
            roots = [r for r in self._roots if r not in self._changed]
            for root in roots:
                self._watch_tree(root, report=False)
        for root in roots:
            self._stream.post(Raw(root, None, Flag.MUST_SCAN_SUB_DIRS | Flag.KERNEL_DROPPED))

    def on_events_lost(self) -> None:
        pass

    # ------------------------------------------------------------ translation (under the lock)

    def _translate(self, event: Any) -> list[Raw]:
        c, mask, wd = self._c, event.mask, event.wd
        if self._moving and not (mask & c.IN_MOVED_TO and event.cookie in self._moving):
            for gone in self._moving.values():  # no IN_MOVED_TO followed: it left the tree
                self._forget(gone)
            self._moving.clear()
        name = os.fsdecode(event.name)
        if wd in self._above:
            hit = [root for entry, root in self._above[wd] if entry == name]
            return [r for root in hit for r in self._root_changed(root, None)]
        directory = self._dirs.get(wd)
        if directory is None:
            return []  # a directory no longer in the tree (moved out, removed)
        path = os.path.join(directory, name) if name else directory
        is_dir = bool(mask & c.IN_ISDIR)
        if mask & (c.IN_DELETE_SELF | c.IN_MOVE_SELF):
            if directory in self._roots and self._roots[directory] == wd:
                own = Flag.ITEM_REMOVED if mask & c.IN_DELETE_SELF else Flag.ITEM_RENAMED
                return self._root_changed(directory, own)
            return []  # a directory below the root: its parent's watch reports it
        if mask & c.IN_CREATE:
            inode, kind = self._seen(path, is_dir)
            out = [Raw(path, inode, Flag.ITEM_CREATED | kind)]
            if kind is Flag.ITEM_IS_DIR:
                self._watch_tree(path, report=True, out=out)
            return out
        if mask & c.IN_MOVED_TO:
            source = self._moving.pop(event.cookie, None)
            before = self._known.get(source) if source is not None else None
            if source is not None:
                self._relocate(source, path)
            inode, kind = self._seen(path, is_dir, before)
            if source is None and kind is Flag.ITEM_IS_DIR:
                self._watch_tree(path, report=False)  # moved in: FSEvents names the directory alone
            return [Raw(path, inode, Flag.ITEM_RENAMED | kind)]
        inode, kind = self._known.get(path) or self._seen(path, is_dir)
        if mask & c.IN_MOVED_FROM:
            self._moving[event.cookie] = path
            return [Raw(path, inode, Flag.ITEM_RENAMED | kind)]
        if mask & c.IN_DELETE:
            if kind is Flag.ITEM_IS_DIR:
                self._forget(path)
            else:  # (no walk through everything known for each file of an `rm -rf`)
                self._known.pop(path, None)
            return [Raw(path, inode, Flag.ITEM_REMOVED | kind)]
        if mask & c.IN_MODIFY:
            return [Raw(path, inode, Flag.ITEM_MODIFIED | kind)]
        if mask & c.IN_ATTRIB:
            return [Raw(path, inode, Flag.ITEM_INODE_META_MOD | kind)]
        return []

    def _seen(self, path: str, is_dir: bool, before: tuple[int, Flag] | None = None) -> tuple[int, Flag]:
        """The item at `path` now (inode, type bit), remembered; `before` (else a made-up inode)
        if it is gone already."""
        try:
            st = os.lstat(path)
        except OSError:
            seen = before or (next(self._made_up), Flag.ITEM_IS_DIR if is_dir else Flag.ITEM_IS_FILE)
        else:
            seen = (st.st_ino, _kind(st.st_mode))
        self._known[path] = seen
        return seen

    def _root_changed(self, root: str, own: Flag | None) -> list[Raw]:
        if root in self._changed:
            return []
        self._changed.add(root)
        out = []
        if own is not None:
            inode, _ = self._known.get(root) or (next(self._made_up), Flag.ITEM_IS_DIR)
            out.append(Raw(root, inode, own | Flag.ITEM_IS_DIR))
        self._forget(root)
        return [*out, Raw(root, None, Flag.ROOT_CHANGED)]

    def _add(self, directory: str, mask: int) -> bool:
        if directory in self._wd_of:
            return True
        try:
            wd = self._fd.add_callback(os.fsencode(directory), mask, self, _CALLBACK_ID)  # type: ignore[arg-type]  # (a NewType of int)
        except OSError:  # gone already, not a directory, not readable; or the feed is closing
            return False
        self._dirs[wd] = directory
        self._wd_of[directory] = wd
        return True

    def _watch_tree(self, top: str, *, report: bool, out: list[Raw] | None = None) -> None:
        """Watch `top` and every directory below; with `report`, each item in them goes to `out`
        as created. (Each directory is watched before it is read: nothing made in between is lost.)"""
        pending = [top]
        while pending:
            directory = pending.pop()
            if not self._add(directory, self._tree_mask):
                continue
            if directory not in self._known:
                self._seen(directory, is_dir=True)
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in sorted(entries, key=lambda e: e.name):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                kind = _kind(st.st_mode)
                self._known[entry.path] = (st.st_ino, kind)
                if report and out is not None:
                    out.append(Raw(entry.path, st.st_ino, Flag.ITEM_CREATED | kind))
                if kind is Flag.ITEM_IS_DIR:
                    pending.append(entry.path)

    def _watch_above(self, root: str) -> None:
        child = root
        parent = os.path.dirname(child)
        while parent != child:
            wd = self._wd_of.get(parent)
            if wd is None and self._add(parent, self._above_mask):
                wd = self._wd_of.pop(parent)  # not part of the tree
                del self._dirs[wd]
            if wd is not None:
                self._above.setdefault(wd, []).append((os.path.basename(child), root))
            child, parent = parent, os.path.dirname(parent)

    def _below(self, path: str, keys: Any) -> list[str]:
        prefix = path.rstrip(os.sep) + os.sep
        return [k for k in keys if k == path or k.startswith(prefix)]

    def _forget(self, path: str) -> None:
        """`path` and what is below it left the tree: no watches, nothing remembered."""
        for gone in self._below(path, self._known):
            del self._known[gone]
        unwatched = [(self._wd_of.pop(d), d) for d in self._below(path, self._wd_of)]
        for wd, _ in unwatched:
            self._dirs.pop(wd, None)
        if unwatched and not self._closed:
            self._fd.remove_callbacks([(wd, _CALLBACK_ID) for wd, _ in unwatched])  # type: ignore[misc]  # (NewTypes of int)

    def _relocate(self, source: str, dest: str) -> None:
        """A directory of the tree (or a file) renamed within it: what was below `source` is below `dest`."""
        for old in self._below(source, self._known):
            self._known[dest + old[len(source) :]] = self._known.pop(old)
        for old in self._below(source, self._wd_of):
            wd = self._wd_of.pop(old)
            new = dest + old[len(source) :]
            self._wd_of[new] = wd
            self._dirs[wd] = new
