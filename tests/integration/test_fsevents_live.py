"""FSEvents, live on Linux: the double of watchdog's extension (helpers/fsevents_double) in live
mode, fed by this machine's inotify events translated into the FSEvents events macOS reports,
timed and coalesced within the stream's latency; watchdog's real FSEventsEmitter and watchd's
Watcher on top, on a real directory. This is what the macOS-profile lane runs; here it runs in
process. Each test does a real operation and waits (bounded) for what a user expects of it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from helpers.changes import Collector, sentinel
from helpers.fsevents_double import _watchdog_fsevents as double
from helpers.fsevents_double import installed
from helpers.fsevents_double._watchdog_fsevents import Flag, Stream

from watchd.changes import Change, ChangeKind, net_effect
from watchd.matching import Matcher
from watchd.watching import Subscription, Watcher, native_observer

pytestmark = pytest.mark.skipif(
    not hasattr(os, "uname") or os.uname().sysname not in ("Linux", "Darwin"),  # (the profile says Darwin)
    reason="the live double reads Linux's inotify",
)

CREATED, REMOVED, RENAMED, MODIFIED = (
    Flag.ITEM_CREATED,
    Flag.ITEM_REMOVED,
    Flag.ITEM_RENAMED,
    Flag.ITEM_MODIFIED,
)
FILE, DIR = Flag.ITEM_IS_FILE, Flag.ITEM_IS_DIR


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The double as watchdog's extension, its streams live (see helpers.fsevents_double.installed)."""
    monkeypatch.setattr(double, "LIVE", True)
    with installed() as module:
        yield module


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "root"
    d.mkdir()
    (d / "app.py").write_text("x = 1\n")
    return d


class Watching(NamedTuple):
    watcher: Watcher
    sink: Collector
    stream: Stream
    lost: threading.Event


@pytest.fixture
def watching(live: ModuleType, root: Path) -> Iterator[Watching]:
    sink, lost = Collector(), threading.Event()
    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]))], sink, lost.set, native=False)
    w.start()
    try:
        yield Watching(w, sink, double.stream_for(str(root)), lost)
    finally:
        w.stop()


def net(root: Path, changes: list[Change]) -> list[tuple[str, str, str | None]]:
    """What one batch of `changes` holds (watchd's batching: one net change per path), sorted."""

    def r(p: str | None) -> str | None:
        return None if p is None else os.path.relpath(p, root)

    return sorted((c.kind.value, r(c.path) or "", r(c.dest)) for c in net_effect(changes))


def test_the_watcher_runs_watchdogs_fsevents_emitter_on_a_live_stream(root: Path, watching: Watching) -> None:
    assert type(native_observer()).__name__ == "WatchdFSEventsObserver"
    assert watching.stream.live
    emitters = [e for obs in watching.watcher._observers.values() for e in obs.emitters]
    assert [type(e).__name__ for e in emitters] == ["WatchdFSEventsEmitter"]


def test_a_write_is_one_modification(root: Path, watching: Watching) -> None:
    with (root / "app.py").open("r+") as f:  # an editor writing in place: truncate, write, write
        f.truncate()
        f.flush()
        f.write("x = 2\n")
        f.flush()
        f.write("y = 3\n")
    assert net(root, sentinel(root, watching.sink)) == [("modified", "app.py", None)]


def test_an_atomic_save_is_the_target_changed_and_nothing_deleted(root: Path, watching: Watching) -> None:
    tmp = root / ".app.py.tmp"
    tmp.write_text("x = 3\n")
    os.replace(tmp, root / "app.py")
    changes = sentinel(root, watching.sink)
    assert net(root, changes) in ([("created", "app.py", None)], [("modified", "app.py", None)])
    assert not any(c.kind is ChangeKind.DELETED for c in changes)


def test_vims_save_is_one_change(root: Path, watching: Watching) -> None:
    """vim's default save: probe file 4913 made and removed, the file renamed to its backup, a new
    file written, the backup removed (vim issue #15733)."""
    (root / "4913").write_text("")
    (root / "4913").unlink()
    os.rename(root / "app.py", root / "app.py~")
    (root / "app.py").write_text("x = 4\n")
    os.chmod(root / "app.py", 0o644)
    (root / "app.py~").unlink()
    assert net(root, sentinel(root, watching.sink)) in (
        [("created", "app.py", None)],
        [("modified", "app.py", None)],
    )


def test_a_rename_names_both_files(root: Path, watching: Watching) -> None:
    os.rename(root / "app.py", root / "main.py")
    assert net(root, sentinel(root, watching.sink)) == [("moved", "app.py", "main.py")]


def test_a_file_in_a_new_subdirectory_is_seen(root: Path, watching: Watching) -> None:
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "m.py").write_text("")  # at once: in the directory before or after its watch
    got = watching.sink.expect(lambda c: c.path == str(deep / "m.py"))
    assert got.kind in (ChangeKind.CREATED, ChangeKind.MODIFIED)
    (deep / "m.py").write_text("later")  # and watched from then on
    assert net(root, sentinel(root, watching.sink)) == [("modified", "a/b/c/m.py", None)]


def test_a_directory_renamed_inside_moves_its_files(root: Path, watching: Watching) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "a.py").write_text("")
    assert watching.sink.expect(lambda c: c.path == str(root / "pkg" / "a.py"))
    sentinel(root, watching.sink)
    os.rename(root / "pkg", root / "lib")
    changes = sentinel(root, watching.sink)
    assert ("moved", "pkg/a.py", "lib/a.py") in net(root, changes)
    (root / "lib" / "a.py").write_text("after")  # the renamed directory is still watched, by its new name
    assert net(root, sentinel(root, watching.sink)) == [("modified", "lib/a.py", None)]


def test_a_directory_moved_out_is_deleted_and_then_silent(
    root: Path, tmp_path: Path, watching: Watching
) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "a.py").write_text("")
    assert watching.sink.expect(lambda c: c.path == str(root / "pkg" / "a.py"))
    sentinel(root, watching.sink)
    os.rename(root / "pkg", tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "a.py").write_text("outside now")  # its old watch must not name root/pkg
    assert net(root, sentinel(root, watching.sink)) == [("deleted", "pkg", None)]


def test_a_burst_of_files_is_seen_whole(root: Path, watching: Watching) -> None:
    """Like a checkout: many files written at once, over several latency windows."""
    (root / "src").mkdir()
    for n in range(300):
        (root / "src" / f"m{n:03}.py").write_text(f"n = {n}\n")
    got = net(root, sentinel(root, watching.sink))
    assert [path for _, path, _ in got] == [f"src/m{n:03}.py" for n in range(300)]
    assert {kind for kind, _, _ in got} == {"created"}  # (the directory's scan and later events: one each)


def test_a_deleted_root_is_reported_and_watched_again_when_recreated(root: Path, watching: Watching) -> None:
    w = watching
    shutil.rmtree(root)
    assert w.lost.wait(5)  # RootChanged: the daemon runs check_roots() when told
    assert w.sink.expect(lambda c: c.path == str(root)) == Change(ChangeKind.DELETED, str(root), None, True)
    w.watcher.check_roots()  # gone: nothing to watch yet
    root.mkdir()
    (root / "restored.py").write_text("")
    w.watcher.check_roots()
    assert w.sink.expect(lambda c: "restored" in c.path) == Change(
        ChangeKind.CREATED, str(root / "restored.py")
    )
    again = double.stream_for(str(root), after=w.stream)  # a new live stream on the same path
    assert again.live
    (root / "after.py").write_text("")
    assert w.sink.expect(lambda c: "after" in c.path).path == str(root / "after.py")


# ---------------------------------------------------------------------- the feed itself


class Recorded(NamedTuple):
    stream: Stream
    batches: list[list[tuple[str, int | None, int]]]
    arrived: threading.Condition


@pytest.fixture
def recorded(live: ModuleType, root: Path) -> Iterator[Callable[..., Recorded]]:
    """A live stream of the double alone, recording each delivery (path, inode, flags)."""
    runners: list[tuple[Stream, threading.Thread]] = []

    def start(path: Path = root, latency: float = 0.01) -> Recorded:
        stream = double.Stream([str(path)], latency=latency)
        rec = Recorded(stream, [], threading.Condition())

        def callback(paths: list[str], inodes: list[int | None], flags: list[int], ids: list[int]) -> None:
            with rec.arrived:
                rec.batches.append(list(zip(paths, inodes, flags, strict=True)))
                rec.arrived.notify_all()

        started = threading.Event()
        runner = threading.Thread(target=stream.run, args=(callback, started.set))
        runner.start()
        runners.append((stream, runner))
        assert started.wait(5)
        return rec

    yield start
    for stream, runner in runners:
        stream.stop()
        runner.join(5)


def wait_for(rec: Recorded, predicate: Callable[[tuple[str, int | None, int]], bool]) -> list[list[Any]]:
    with rec.arrived:
        assert rec.arrived.wait_for(lambda: any(predicate(e) for b in rec.batches for e in b), 5)
        return [list(b) for b in rec.batches]


def test_the_feed_gives_fsevents_flags_inodes_and_coalesces_within_the_latency(
    root: Path, recorded: Callable[..., Recorded]
) -> None:
    rec = recorded(latency=0.5)
    new = root / "new.py"
    new.write_text("a")  # the first after a quiet latency goes at once (NoDefer) ...
    with new.open("a") as f:  # ... what follows within the latency is one event per item
        f.write("b")
    os.chmod(new, 0o600)
    rec.stream.flush()
    inode = os.lstat(new).st_ino
    batches = wait_for(rec, lambda e: e[0] == str(new) and bool(e[2] & Flag.ITEM_INODE_META_MOD))
    assert batches[0] == [(str(new), inode, CREATED | FILE)]
    assert batches[1:] == [[(str(new), inode, MODIFIED | Flag.ITEM_INODE_META_MOD | FILE)]]


def test_the_feed_names_real_paths(root: Path, tmp_path: Path, recorded: Callable[..., Recorded]) -> None:
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    rec = recorded(link)
    (link / "app.py").write_text("x = 2\n")
    wait_for(rec, lambda e: e[0] == str(root / "app.py") and bool(e[2] & MODIFIED))


def test_the_feed_gives_root_changed_when_a_directory_above_the_root_is_renamed(
    tmp_path: Path, recorded: Callable[..., Recorded]
) -> None:
    base = tmp_path / "base"
    (base / "root").mkdir(parents=True)
    rec = recorded(base / "root")
    os.rename(base, tmp_path / "moved")
    batches = wait_for(rec, lambda e: bool(e[2] & Flag.ROOT_CHANGED))
    assert [e for b in batches for e in b] == [(str(base / "root"), None, Flag.ROOT_CHANGED)]


def test_the_feed_reports_a_queue_overflow_as_dropped_events_on_the_root(
    root: Path, recorded: Callable[..., Recorded]
) -> None:
    rec = recorded()
    assert rec.stream.feed is not None
    rec.stream.feed.on_queue_overflow()  # (as watchdog's InotifyFD calls it on IN_Q_OVERFLOW)
    batches = wait_for(rec, lambda e: bool(e[2] & Flag.KERNEL_DROPPED))
    assert (str(root), None, Flag.MUST_SCAN_SUB_DIRS | Flag.KERNEL_DROPPED) in [e for b in batches for e in b]
