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
"""

from __future__ import annotations

import itertools
import queue
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


_Item = _Window | Raw | _Barrier | None  # None: stop


class Stream:
    """An FSEventStream on `paths` (copied, as the C copies them into a CFArray)."""

    def __init__(self, paths: Sequence[str], latency: float = 0.01) -> None:
        self.paths = [str(p) for p in paths]
        self.latency = latency
        self._inbox: queue.Queue[_Item] = queue.Queue()
        self._stopped = threading.Event()
        self.running = False
        with _streams_changed:
            _streams.append(self)
            _streams_changed.notify_all()

    def run(self, callback: Callback, started: Callable[[], object] | None = None) -> None:
        if self._stopped.is_set():
            return  # stopped before it ran: returns at once (watchdog's test_stream_stop_before_run)
        if started is not None:
            started()
        with _streams_changed:
            self.running = True
            _streams_changed.notify_all()
        try:
            self._loop(callback)
        finally:
            with _streams_changed:
                self.running = False
                _streams_changed.notify_all()

    def _loop(self, callback: Callback) -> None:
        pending: list[Raw] = []  # posted within the current latency window
        barriers: list[threading.Event] = []
        last = float("-inf")  # when the last delivery was made

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
            timeout = max(0.0, last + self.latency - time.monotonic()) if pending else None
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
            elif not pending and time.monotonic() - last >= self.latency:
                # kFSEventStreamCreateFlagNoDefer (watchdog sets it): after a quiet latency, at once
                deliver(coalesce([item]))
            else:
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
