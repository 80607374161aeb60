"""The inotify tree's event logic (`WatchTable`) fed `(wd, mask, cookie, name)` tuples as the
reader thread feeds it a read's events: no kernel, no disk, no thread, no sleep.

The system it asks is `FakeOS` below: directories and files as a table, watch descriptors given
out as the kernel does (a path watched anew gets the next number), and a clock that moves only
when a test says so."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

import pytest

from watchd.inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    MOVE_HOLD,
    LimitError,
    LimitReached,
    Lost,
    Notice,
    Notification,
    Overflow,
    RawEvent,
    WatchTable,
)


@dataclass
class FakeStat:
    st_mtime_ns: int


@dataclass
class FakeEntry:
    name: str
    path: str
    directory: bool
    mtime_ns: int = 0

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self.directory

    def stat(self, *, follow_symlinks: bool = True) -> FakeStat:
        return FakeStat(self.mtime_ns)


@dataclass
class FakeOS:
    """A filesystem as a table (directory -> inode, file -> mtime) and inotify's watch numbering."""

    dirs: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    limit: int | None = None  # watches the "kernel" gives before ENOSPC
    watches: dict[str, int] = field(default_factory=dict)  # path -> wd
    removed: list[int] = field(default_factory=list)  # rm_watch calls
    _next_wd: int = 1
    _next_inode: int = 100

    def mkdir(self, *paths: str) -> None:
        for path in paths:
            self.dirs[path] = self._next_inode
            self._next_inode += 1

    def write(self, *paths: str, mtime_ns: int = 0) -> None:
        for path in paths:
            self.files[path] = mtime_ns

    def rename(self, src: str, dest: str) -> None:
        """`src` and everything below it now lies at `dest` (inodes kept), or outside the table."""
        for table in (self.dirs, self.files):
            for path in [p for p in table if p == src or p.startswith(src + "/")]:
                value = table.pop(path)
                if dest:
                    table[dest + path[len(src) :]] = value

    # ------------------------------------------------------------------ TreeOS

    def add_watch(self, path: str, mask: int) -> int:
        if path not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        wd = self.watches.get(path)
        if wd is None:
            if self.limit is not None and len(self.watches) >= self.limit:
                raise LimitError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            wd = self.watches[path] = self._next_wd
            self._next_wd += 1
        return wd

    def rm_watch(self, wd: int) -> None:
        self.removed.append(wd)
        for path, w in list(self.watches.items()):
            if w == wd:
                del self.watches[path]

    def identity(self, path: str) -> tuple[int, int] | None:
        inode = self.dirs.get(path)
        return None if inode is None else (1, inode)

    def scandir(self, path: str) -> list[FakeEntry]:
        if path not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        children = [
            FakeEntry(os.path.basename(p), p, p in self.dirs, self.files.get(p, 0))
            for p in sorted([*self.dirs, *self.files])
            if os.path.dirname(p) == path and p != path
        ]
        return children

    def links_and_device(self, path: str) -> tuple[int, int] | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


APP, PKG, W = "/w/app", "/w/app/pkg", "/w"
# the watch descriptors the fake gives out at setup: the root, its subdirectory, the root's parent
ROOT_WD, PKG_WD, PARENT_WD = 1, 2, 3
NEXT_WD = 4  # the next directory watched


def setup(*, limit: int | None = None) -> tuple[WatchTable, FakeOS, Clock]:
    """/w/app (root 0) holding a.py and pkg/b.py; /w/other beside it, not watched."""
    fs = FakeOS()
    fs.mkdir(W, APP, PKG, "/w/other")
    fs.write(f"{APP}/a.py", f"{PKG}/b.py", "/w/other/o.py")
    clock = Clock()
    table = WatchTable(fs, clock)
    added, notices = table.add_root(0, APP, recursive=True, prune=lambda rel: False)
    assert (added, notices) == (2, [])
    assert fs.watches == {APP: ROOT_WD, PKG: PKG_WD, W: PARENT_WD}
    fs.limit = limit
    return table, fs, clock


def created(path: str, *, closed: bool = True, rid: int = 0) -> Notification:
    return Notification(rid, "created", path, None, False, closed)


def modified(path: str, *, closed: bool = True) -> Notification:
    return Notification(0, "modified", path, None, False, closed)


def deleted(path: str, *, is_dir: bool = False, rid: int = 0) -> Notification:
    return Notification(rid, "deleted", path, None, is_dir)


def moved(src: str, dest: str, *, is_dir: bool = False) -> Notification:
    return Notification(0, "moved", src, dest, is_dir)


def feed(table: WatchTable, *reads: list[RawEvent]) -> list[Notice]:
    out: list[Notice] = []
    for events in reads:
        out += table.handle(events)
    return out


# --------------------------------------------------------------------------- one read at a time

CASES: list[tuple[str, list[list[RawEvent]], list[Notice]]] = [
    (
        "a file created, and created and closed in one read",
        [[(ROOT_WD, IN_CREATE, 0, b"c.py"), (PKG_WD, IN_CREATE | IN_CLOSE_WRITE, 0, b"d.py")]],
        [created(f"{APP}/c.py", closed=False), created(f"{PKG}/d.py")],
    ),
    (
        "written, and closed after writing",
        [[(PKG_WD, IN_MODIFY, 0, b"b.py")], [(PKG_WD, IN_CLOSE_WRITE, 0, b"b.py")]],
        [modified(f"{PKG}/b.py", closed=False), modified(f"{PKG}/b.py")],
    ),
    ("deleted", [[(ROOT_WD, IN_DELETE, 0, b"a.py")]], [deleted(f"{APP}/a.py")]),
    (
        "a directory's own events are no change (its files' are)",
        [[(ROOT_WD, IN_ATTRIB | IN_ISDIR, 0, b"pkg"), (PKG_WD, IN_ATTRIB | IN_ISDIR, 0, b"")]],
        [],
    ),
    (
        "renamed within its directory",
        [[(ROOT_WD, IN_MOVED_FROM, 7, b"a.py"), (ROOT_WD, IN_MOVED_TO, 7, b"c.py")]],
        [moved(f"{APP}/a.py", f"{APP}/c.py")],
    ),
    (
        "moved to another directory of the tree",
        [[(ROOT_WD, IN_MOVED_FROM, 7, b"a.py"), (PKG_WD, IN_MOVED_TO, 7, b"a.py")]],
        [moved(f"{APP}/a.py", f"{PKG}/a.py")],
    ),
    (
        "a move split across two reads is one move, before the second read's own events",
        [
            [(ROOT_WD, IN_MOVED_FROM, 7, b"a.py")],
            [(PKG_WD, IN_MOVED_TO, 7, b"a.py"), (ROOT_WD, IN_CREATE, 0, b"after.py")],
        ],
        [moved(f"{APP}/a.py", f"{PKG}/a.py"), created(f"{APP}/after.py", closed=False)],
    ),
    (
        "a held move whose other half is not in the next read left the tree: deleted, first",
        [[(ROOT_WD, IN_MOVED_FROM, 7, b"a.py")], [(ROOT_WD, IN_CREATE, 0, b"a.py")]],
        [deleted(f"{APP}/a.py"), created(f"{APP}/a.py", closed=False)],
    ),
    (
        "two moves in flight: each pairs by its cookie",
        [
            [(ROOT_WD, IN_MOVED_FROM, 7, b"a.py"), (PKG_WD, IN_MOVED_FROM, 8, b"b.py")],
            [(PKG_WD, IN_MOVED_TO, 7, b"a.py"), (ROOT_WD, IN_MOVED_TO, 8, b"b.py")],
        ],
        [moved(f"{APP}/a.py", f"{PKG}/a.py"), moved(f"{PKG}/b.py", f"{APP}/b.py")],
    ),
    (
        "moved in from outside the tree: created",
        [[(ROOT_WD, IN_MOVED_TO, 9, b"new.py")]],
        [created(f"{APP}/new.py")],
    ),
    (
        "an overflow: said once, and a move held in the same read is forgotten",
        [[(ROOT_WD, IN_MOVED_FROM, 7, b"a.py"), (-1, IN_Q_OVERFLOW, 0, b"")]],
        [Overflow()],
    ),
    (
        "an overflow after a held move: the move is reported first (its read is over)",
        [[(ROOT_WD, IN_MOVED_FROM, 7, b"a.py")], [(-1, IN_Q_OVERFLOW, 0, b"")]],
        [deleted(f"{APP}/a.py"), Overflow()],
    ),
    (
        "events of a watch removed a moment ago are dropped",
        [[(99, IN_CREATE, 0, b"x.py")]],
        [],
    ),
]


@pytest.mark.parametrize(("reads", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reads_of_events_say(reads: list[list[RawEvent]], expected: list[Notice]) -> None:
    table, _, _ = setup()
    assert feed(table, *reads) == expected
    assert table.tick() == []  # nothing held back


# --------------------------------------------------------------------------- held moves and time


def test_a_file_moved_out_of_the_tree_is_deleted_once_the_hold_is_over() -> None:
    table, _, clock = setup()
    assert table.handle([(ROOT_WD, IN_MOVED_FROM, 7, b"a.py")]) == []
    due = clock.now + MOVE_HOLD
    assert table.due == due
    clock.now = due - MOVE_HOLD / 2
    assert table.tick() == []  # its MOVED_TO may still come in the next read
    clock.now = due
    assert table.tick() == [deleted(f"{APP}/a.py")]
    assert table.due is None
    assert table.tick() == []  # said once


def test_a_move_paired_in_its_read_holds_nothing() -> None:
    table, _, _ = setup()
    table.handle([(ROOT_WD, IN_MOVED_FROM, 7, b"a.py"), (ROOT_WD, IN_MOVED_TO, 7, b"b.py")])
    assert table.due is None


def test_a_directory_moved_out_of_the_tree_loses_its_watches() -> None:
    table, fs, clock = setup()
    fs.rename(PKG, "")  # gone from the table: moved somewhere not watched
    assert table.handle([(ROOT_WD, IN_MOVED_FROM | IN_ISDIR, 7, b"pkg")]) == []
    clock.now += MOVE_HOLD
    assert table.tick() == [deleted(PKG, is_dir=True)]
    assert fs.removed == [PKG_WD]
    assert table.watch_count == 1
    # the kernel then says the watch is gone (IN_IGNORED): nothing more to do or say
    assert table.handle([(PKG_WD, IN_IGNORED, 0, b"")]) == []
    assert table.handle([(PKG_WD, IN_CREATE, 0, b"late.py")]) == []


def test_a_file_moved_to_a_sibling_root_is_deleted_for_one_and_created_for_the_other() -> None:
    table, fs, _ = setup()
    table.add_root(1, "/w/other", recursive=True, prune=lambda rel: False)
    other_wd = fs.watches["/w/other"]
    fs.rename(f"{APP}/a.py", "/w/other/a.py")
    got = table.handle([(ROOT_WD, IN_MOVED_FROM, 7, b"a.py"), (other_wd, IN_MOVED_TO, 7, b"a.py")])
    assert got == [deleted(f"{APP}/a.py"), created("/w/other/a.py", rid=1)]


# --------------------------------------------------------------------------- directories arriving


def test_a_directory_moved_in_is_watched_its_files_reported_and_then_written() -> None:
    table, fs, _ = setup()
    fs.mkdir(f"{APP}/lib", f"{APP}/lib/sub")
    fs.write(f"{APP}/lib/c.py", f"{APP}/lib/sub/d.py")
    got = table.handle([(ROOT_WD, IN_MOVED_TO | IN_ISDIR, 9, b"lib")])
    # files that were there before the directory's watch existed are reported as created
    assert got == [created(f"{APP}/lib/c.py"), created(f"{APP}/lib/sub/d.py")]
    lib_wd, sub_wd = fs.watches[f"{APP}/lib"], fs.watches[f"{APP}/lib/sub"]
    assert table.watch_count == 4
    got = table.handle([(lib_wd, IN_MODIFY | IN_CLOSE_WRITE, 0, b"c.py"), (sub_wd, IN_CREATE, 0, b"e.py")])
    assert got == [modified(f"{APP}/lib/c.py"), created(f"{APP}/lib/sub/e.py", closed=False)]


def test_a_directory_created_is_watched_unless_pruned() -> None:
    fs = FakeOS()
    fs.mkdir(W, APP)
    table = WatchTable(fs, Clock())
    table.add_root(0, APP, recursive=True, prune=lambda rel: rel.endswith("node_modules"))
    fs.mkdir(f"{APP}/node_modules", f"{APP}/src")
    fs.write(f"{APP}/node_modules/x.js", f"{APP}/src/y.py")
    got = table.handle(
        [
            (ROOT_WD, IN_CREATE | IN_ISDIR, 0, b"node_modules"),
            (ROOT_WD, IN_CREATE | IN_ISDIR, 0, b"src"),
        ]
    )
    assert got == [created(f"{APP}/src/y.py")]
    assert f"{APP}/node_modules" not in fs.watches
    assert f"{APP}/src" in fs.watches


def test_a_directory_renamed_within_the_tree_is_watched_at_its_new_name() -> None:
    table, fs, _ = setup()
    fs.rename(PKG, f"{APP}/lib")
    got = table.handle(
        [(ROOT_WD, IN_MOVED_FROM | IN_ISDIR, 7, b"pkg"), (ROOT_WD, IN_MOVED_TO | IN_ISDIR, 7, b"lib")]
    )
    # its files are reported where they are now (the walk that watches it), then the move itself
    assert got == [created(f"{APP}/lib/b.py"), moved(PKG, f"{APP}/lib", is_dir=True)]
    assert fs.removed == [PKG_WD]
    assert fs.watches[f"{APP}/lib"] == NEXT_WD
    assert table.handle([(NEXT_WD, IN_MODIFY, 0, b"b.py")]) == [modified(f"{APP}/lib/b.py", closed=False)]


def test_a_new_directory_past_the_watch_limit_is_said_once() -> None:
    table, fs, _ = setup(limit=3)  # the three watches of the setup
    fs.mkdir(f"{APP}/lib")
    got = table.handle([(ROOT_WD, IN_CREATE | IN_ISDIR, 0, b"lib")])
    assert len(got) == 1
    assert isinstance(got[0], LimitReached)
    assert (got[0].rid, got[0].error.errno) == (0, errno.ENOSPC)


# --------------------------------------------------------------------------- a directory removed


def test_a_subdirectory_removed_is_forgotten_when_the_kernel_drops_its_watch() -> None:
    table, fs, _ = setup()
    fs.rename(PKG, "")
    # rm -r pkg: its file, then the directory itself (its own watch's last words), then its name
    got = table.handle(
        [
            (PKG_WD, IN_DELETE, 0, b"b.py"),
            (PKG_WD, IN_DELETE_SELF, 0, b""),
            (PKG_WD, IN_IGNORED, 0, b""),
            (ROOT_WD, IN_DELETE | IN_ISDIR, 0, b"pkg"),
        ]
    )
    assert got == [deleted(f"{PKG}/b.py"), deleted(PKG, is_dir=True)]
    assert table.watch_count == 1
    assert fs.removed == []  # the kernel removed it itself: no rm_watch on a dead descriptor


# --------------------------------------------------------------------------- the root itself


def test_the_root_deleted_is_lost_once() -> None:
    table, fs, _ = setup()
    identity = fs.identity(APP)
    fs.rename(APP, "")
    got = table.handle(
        [
            (ROOT_WD, IN_DELETE_SELF, 0, b""),
            (ROOT_WD, IN_IGNORED, 0, b""),
            (PARENT_WD, IN_DELETE | IN_ISDIR, 0, b"app"),
        ]
    )
    assert got == [Lost(0, identity)]
    assert table.watch_count == 0
    assert PARENT_WD in fs.removed  # no root needs the parent any more


def test_the_root_moved_away_is_lost_and_its_files_no_longer_reported() -> None:
    table, fs, _ = setup()
    identity = fs.identity(APP)
    fs.rename(APP, "/w/old")
    got = table.handle(
        [
            (PARENT_WD, IN_MOVED_FROM | IN_ISDIR, 5, b"app"),
            (PARENT_WD, IN_MOVED_TO | IN_ISDIR, 5, b"old"),
            (ROOT_WD, IN_MOVE_SELF, 0, b""),
            (ROOT_WD, IN_CREATE, 0, b"late.py"),  # written in its new place: not ours any more
        ]
    )
    assert got == [Lost(0, identity)]


def test_the_root_replaced_by_another_directory_of_its_name_is_lost() -> None:
    table, fs, _ = setup()
    identity = fs.identity(APP)
    fs.rename(APP, "")
    fs.mkdir(APP)  # a new directory by that name (a new inode): rm -rf app && mkdir app, or mv new app
    got = table.handle([(PARENT_WD, IN_MOVED_TO | IN_ISDIR, 5, b"app")])
    assert got == [Lost(0, identity)]
    assert fs.identity(APP) != identity


def test_a_late_notice_about_an_earlier_directory_of_the_roots_name_is_ignored() -> None:
    table, _, _ = setup()
    # the parent says "app" was created, but the directory there is the one watched
    assert table.handle([(PARENT_WD, IN_CREATE | IN_ISDIR, 0, b"app")]) == []
    assert table.handle([(ROOT_WD, IN_CREATE, 0, b"c.py")]) == [created(f"{APP}/c.py", closed=False)]


def test_a_lost_root_can_be_watched_again_and_reports_what_it_holds() -> None:
    table, fs, _ = setup()
    fs.rename(APP, "")
    table.handle([(ROOT_WD, IN_DELETE_SELF, 0, b""), (ROOT_WD, IN_IGNORED, 0, b"")])
    table.remove_root(0)  # the owner's check notices, and watches the new one
    fs.mkdir(APP)
    fs.write(f"{APP}/new.py")
    added, got = table.add_root(0, APP, recursive=True, prune=lambda rel: False, report=True)
    assert (added, got) == (1, [created(f"{APP}/new.py")])


def test_adding_a_root_past_the_watch_limit_keeps_nothing_of_it() -> None:
    table, fs, _ = setup(limit=4)
    fs.mkdir("/w/other/sub")
    with pytest.raises(LimitError):
        table.add_root(1, "/w/other", recursive=True, prune=lambda rel: False, report=True)
    assert table.watch_count == 2  # root 0's two
    assert table.watches_of({1}) == 0


def test_a_rescan_watches_directories_made_unseen_and_reports_files_changed_since() -> None:
    table, fs, _ = setup()
    fs.mkdir(f"{APP}/lib")
    fs.write(f"{APP}/lib/old.py", mtime_ns=10)
    fs.write(f"{APP}/lib/new.py", mtime_ns=30)
    assert table.rescan(0, since_ns=20) == [modified(f"{APP}/lib/new.py")]
    assert f"{APP}/lib" in fs.watches
    assert table.rescan(0, since_ns=20) == []  # watched now: its changes come as events
