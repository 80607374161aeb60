"""A real observer on real temporary directories: which filesystem operations become changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.changes import Collector, sentinel

from watchd.changes import Change, ChangeKind
from watchd.matching import Matcher
from watchd.watching import RootState, Subscription, Watcher


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "root"
    d.mkdir()
    (d / "app.py").write_text("x = 1\n")
    return d


@pytest.fixture(params=["inotify", "watchdog"])
def watch(root: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Watcher, Collector]]:
    """Every behaviour below holds for watchd's own inotify backend and for watchdog's."""
    sink = Collector()
    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]))], sink, native=request.param == "inotify")
    w.start()
    yield w, sink
    w.stop()


def test_write_is_a_modification(root: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    (root / "app.py").write_text("x = 2\n")
    c = sink.expect()
    assert c == Change(ChangeKind.MODIFIED, str(root / "app.py"))


def test_touch_counts_reading_does_not(root: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    (root / "app.py").read_text()
    with open(root / "app.py", "rb") as f:
        f.read()
    assert sentinel(root, sink) == []
    subprocess.run(["touch", str(root / "app.py")], check=True)
    assert sink.expect(lambda c: "sentinel" not in c.path).path == str(root / "app.py")


def test_empty_directory_does_not_count_but_deleting_it_does(
    root: Path, watch: tuple[Watcher, Collector]
) -> None:
    _, sink = watch
    (root / "empty").mkdir()
    assert sentinel(root, sink) == []
    (root / "empty").rmdir()
    c = sink.expect(lambda c: c.is_dir)
    assert c == Change(ChangeKind.DELETED, str(root / "empty"), None, True)


def test_atomic_save_is_seen_as_creation_of_the_target(root: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    tmp = root / ".app.py.tmpXYZ"  # not matching *.py: only the rename's destination counts
    tmp.write_text("x = 3\n")
    os.replace(tmp, root / "app.py")
    c = sink.expect()
    assert c == Change(ChangeKind.CREATED, str(root / "app.py"))


def test_rename_between_matching_names_is_a_move(root: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    os.rename(root / "app.py", root / "main.py")
    assert sink.expect() == Change(ChangeKind.MOVED, str(root / "app.py"), str(root / "main.py"))


def test_moving_a_directory_away_counts(root: Path, tmp_path: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    (root / "pkg").mkdir()
    (root / "pkg" / "m.py").write_text("")
    sink.expect(lambda c: c.path.endswith("m.py"))
    shutil.move(str(root / "pkg"), str(tmp_path / "elsewhere"))
    c = sink.expect(lambda c: c.is_dir)
    assert c.kind is ChangeKind.DELETED
    assert c.path == str(root / "pkg")


def test_ignored_directories_cost_nothing(root: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    for rel in (".git/objects/ab/cd.py", "__pycache__/x.py", "node_modules/a/b.py"):
        p = root / rel
        p.parent.mkdir(parents=True)
        p.write_text("")
    shutil.rmtree(root / "node_modules")  # deleting an ignored directory does not count either
    assert sentinel(root, sink) == []


def test_new_subdirectory_files_are_seen(root: Path, watch: tuple[Watcher, Collector]) -> None:
    _, sink = watch
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "m.py").write_text("")  # written at once: watchdog reports it from its scan of the new dir
    assert sink.expect(lambda c: c.path == str(deep / "m.py")).kind in (
        ChangeKind.CREATED,
        ChangeKind.MODIFIED,
    )


def test_single_file_root_sees_atomic_saves(tmp_path: Path) -> None:
    target = tmp_path / "settings.py"
    target.write_text("A = 1\n")
    (tmp_path / "other.py").write_text("")
    sink = Collector()
    w = Watcher([Subscription(0, "t", str(target), Matcher())], sink)
    w.start()
    try:
        (tmp_path / "other.py").write_text("changed")  # same directory, not the watched file
        tmp = tmp_path / "settings.py.new"
        tmp.write_text("A = 2\n")
        os.replace(tmp, target)
        c = sink.expect()
        assert c.path == str(target)
        assert all(ch.path == str(target) for ch in sink.drain())
    finally:
        w.stop()


def test_root_replaced_is_watched_again(root: Path, watch: tuple[Watcher, Collector]) -> None:
    w, sink = watch
    shutil.rmtree(root)
    root.mkdir()
    (root / "restored.py").write_text("")  # before watchd notices: the appearance scan reports it
    # the daemon checks again whenever a root is lost, and periodically: so does the test, until
    # the deletion has been seen (one check straight after rmtree can come before it)
    restored = expect_checking(w, sink, lambda c: c.path == str(root / "restored.py"))
    assert restored.kind is ChangeKind.CREATED
    (root / "after.py").write_text("")
    assert sink.expect(lambda c: c.path == str(root / "after.py"))


def expect_checking(w: Watcher, sink: Collector, predicate: Callable[[Change], bool]) -> Change:
    """The first change matching `predicate`, calling check_roots() between waits (5 s at most)."""
    deadline = time.monotonic() + 5.0
    while True:
        w.check_roots()
        try:
            return sink.expect(predicate, timeout=0.1)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


@pytest.mark.parametrize("native", [True, False], ids=["inotify", "watchdog"])
def test_root_replaced_in_place_is_rescheduled_by_the_check_its_loss_asks_for(
    root: Path, native: bool
) -> None:
    """The daemon runs check_roots() once when told a root is lost: that one check must re-watch
    it, even when the new directory got the old one's inode number (ext4 and tmpfs reuse it at
    once) and watchdog's emitter for the old one has not stopped yet."""
    sink = Collector()
    lost = threading.Event()
    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]))], sink, lost.set, native=native)
    w.start()
    try:
        shutil.rmtree(root)
        root.mkdir()
        (root / "restored.py").write_text("")
        assert lost.wait(5)
        w.check_roots()
        assert sink.expect(lambda c: c.path == str(root / "restored.py")).kind is ChangeKind.CREATED
    finally:
        w.stop()


def test_renamed_root_does_not_report_old_paths(
    root: Path, tmp_path: Path, watch: tuple[Watcher, Collector]
) -> None:
    w, sink = watch
    os.rename(root, tmp_path / "renamed")
    w.check_roots()  # the identity changed: the old watch is dropped
    sink.drain()
    (tmp_path / "renamed" / "app.py").write_text("after rename")
    root.mkdir()
    w.check_roots()
    (root / "fresh.py").write_text("")
    c = sink.expect(lambda c: "fresh" in c.path or "app.py" in c.path)
    assert c.path == str(root / "fresh.py")


def test_polling_observer(root: Path) -> None:
    sink = Collector()
    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]), poll=True, poll_interval=0.1)], sink)
    w.start()
    try:
        (root / "polled.py").write_text("")
        assert sink.expect(lambda c: c.path == str(root / "polled.py"))
    finally:
        w.stop()


def test_two_watches_on_one_tree_see_their_own_patterns(root: Path) -> None:
    sink = Collector()
    subs = [
        Subscription(0, "py", str(root), Matcher(["*.py"])),
        Subscription(1, "css", str(root), Matcher(["*.css"])),
    ]
    w = Watcher(subs, sink)
    w.start()
    try:
        (root / "a.css").write_text("")
        key, change = sink.q.get(timeout=5)
        assert (key, change.path) == (1, str(root / "a.css"))
        (root / "b.py").write_text("")
        while True:
            key, change = sink.q.get(timeout=5)
            if change.path.endswith("b.py"):
                break
            assert key == 1  # late events for a.css
        assert key == 0
    finally:
        w.stop()


def test_non_matching_changes_are_reported_as_activity_and_ignored_ones_not_at_all(
    root: Path, watch: tuple[Watcher, Collector]
) -> None:
    _, sink = watch
    (root / "locale.po").write_text("x")  # not *.py: keeps an open batch open
    assert sink.others.get(timeout=5) == 0
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "app.cpython-311.pyc").write_text("x")  # ignored: nothing at all
    before = sentinel(root, sink)
    assert before == []
    while not sink.others.empty():
        sink.others.get_nowait()
    (root / "__pycache__" / "other.pyc").write_text("x")
    sentinel(root, sink)
    assert sink.others.empty()


@pytest.mark.linux_only("watchd's inotify reader (its callbacks outside its lock)")
def test_an_exception_while_handling_one_event_costs_only_that_event(root: Path) -> None:
    """The inotify reader runs the owner's callback outside its lock, event by event."""
    got: list[Change] = []
    ready = threading.Event()

    def sink(key: int, change: Change | None) -> None:
        if change is None:
            return
        if change.path.endswith("bomb.py"):
            raise RuntimeError("injected")
        got.append(change)
        ready.set()

    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]))], sink, native=True)
    w.start()
    try:
        (root / "bomb.py").write_text("")
        (root / "after.py").write_text("")
        assert ready.wait(5)
        assert wait_until(lambda: any(c.path.endswith("after.py") for c in got))
        assert w.alive()
    finally:
        w.stop()


@pytest.mark.linux_only("inotify's queue overflow (IN_Q_OVERFLOW)")
def test_an_overflow_while_a_reload_changes_the_roots(tmp_path: Path) -> None:
    """The overflow handler walks the roots on the reader's thread while the daemon's thread adds
    and removes them: it must see a consistent list."""
    roots = []
    for i in range(30):
        d = tmp_path / f"r{i}"
        d.mkdir()
        roots.append(d)
    w = Watcher([Subscription(0, "t", str(roots[0]), Matcher())], Collector(), native=True)
    w.start()
    errors: list[BaseException] = []
    stop = threading.Event()

    def overflow_storm() -> None:
        while not stop.is_set():
            try:
                w._overflow()
            except BaseException as exc:
                errors.append(exc)
                return

    t = threading.Thread(target=overflow_storm)
    t.start()
    try:
        for i in range(1, 30):
            w.add([Subscription(i, f"t{i}", str(roots[i]), Matcher())])
        w.remove(set(range(1, 30)))
    finally:
        stop.set()
        t.join(10)
        w.stop()
    assert errors == []


def wait_until(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


# --------------------------------------------------------------------------- leaf directories


def _tmpfs_dir() -> Path | None:
    from watchd.platform import current  # noqa: PLC0415

    shm = Path("/dev/shm")
    usable = shm.is_dir() and os.access(shm, os.W_OK)
    return shm if usable and current.filesystem_type(str(shm)) == "tmpfs" else None


@pytest.fixture(params=["tmp_path", "tmpfs"])
def leafy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A tree of directories without subdirectories, on the test's disk and on a tmpfs."""
    if request.param == "tmpfs":
        base = _tmpfs_dir()
        if base is None:
            pytest.skip("no writable tmpfs at /dev/shm")
        top = Path(tempfile.mkdtemp(dir=base, prefix="watchd-leaf-"))
    else:
        top = tmp_path / "leafy"
    for i in range(3):
        (top / f"d{i}" / "leaf").mkdir(parents=True)
        (top / f"d{i}" / "leaf" / "a.py").write_text("")
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.linux_only("watchd's inotify tree (find's leaf optimisation)")
def test_leaf_directories_are_watched_without_being_read(leafy: Path) -> None:
    """On a filesystem that counts subdirectories in st_nlink, a directory with st_nlink 2 is not
    read at start (find's leaf optimisation); its changes and new subdirectories still count."""
    from watchd.inotify import NLINK_FILESYSTEMS  # noqa: PLC0415
    from watchd.platform import current  # noqa: PLC0415

    leaf = leafy / "d1" / "leaf"
    assert os.stat(leaf).st_nlink == 2 or current.filesystem_type(str(leafy)) not in NLINK_FILESYSTEMS
    sink = Collector()
    w = Watcher([Subscription(0, "t", str(leafy), Matcher(["*.py"]))], sink, native=True)
    w.start()
    try:
        assert w.stats().directories == 7  # the root, d0-d2 and their leaves
        (leaf / "a.py").write_text("x = 1\n")
        sink.expect(lambda c: c.path == str(leaf / "a.py"))
        (leaf / "sub").mkdir()
        (leaf / "sub" / "b.py").write_text("")
        sink.expect(lambda c: c.path == str(leaf / "sub" / "b.py"))
        # the new subdirectory is watched itself (a file of its own: a second write to b.py can
        # be one event with its creation, when both land in one read)
        (leaf / "sub" / "c.py").write_text("y = 2\n")
        sink.expect(lambda c: c.path == str(leaf / "sub" / "c.py"))
        assert w.stats().directories == 8
    finally:
        w.stop()


@pytest.mark.linux_only("watchd's inotify tree (find's leaf optimisation)")
def test_a_directory_on_another_device_is_read_whatever_its_link_count(tmp_path: Path) -> None:
    """A mount point below a root may be a filesystem whose link counts mean nothing."""
    from watchd.inotify import WatchedTree, is_leaf, links_and_device  # noqa: PLC0415

    leaf = tmp_path / "leaf"
    leaf.mkdir()
    (tmp_path / "parent" / "child").mkdir(parents=True)
    st = os.stat(tmp_path)
    here = WatchedTree(
        0, str(tmp_path), True, lambda rel: False, identity=(st.st_dev, st.st_ino), leaves=True
    )
    elsewhere = WatchedTree(
        1, str(tmp_path), True, lambda rel: False, identity=(st.st_dev + 1, st.st_ino), leaves=True
    )
    assert is_leaf(here, links_and_device(str(leaf)))
    assert not is_leaf(here, links_and_device(str(tmp_path / "parent")))  # it has a subdirectory
    assert not is_leaf(elsewhere, links_and_device(str(leaf)))
    assert not is_leaf(here, links_and_device(str(tmp_path / "gone")))


@pytest.mark.linux_only("watchd's inotify reader (a lost root's late notice)")
def test_a_late_notice_that_the_old_root_is_gone_leaves_its_successor_alone(
    root: Path, tmp_path: Path
) -> None:
    """The reader reports a lost root after releasing its lock; by then check_roots() may watch the
    new directory of that name. The notice names the old one, and must not mark the new one lost
    (which made the next check re-watch it and report all its files as created again)."""
    sink = Collector()
    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]))], sink, native=True)
    w.start()
    try:
        [r] = w._roots.values()
        old = r.identity
        os.rename(root, tmp_path / "old")  # kept: the new directory cannot reuse its inode
        root.mkdir()
        (root / "a.py").write_text("")
        w.check_roots()
        sink.expect(lambda c: c.path == str(root / "a.py"))
        assert r.identity != old
        w._native_lost(r.rid, old)  # the old directory's notice, late
        assert r.state is not RootState.LOST
        sink.drain()
        w.check_roots()
        (root / "b.py").write_text("")
        assert sink.expect().path == str(root / "b.py")  # a.py is not reported again
    finally:
        w.stop()


def test_a_virtual_environment_by_any_name_is_ignored(root: Path, tmp_path: Path) -> None:
    """`venv/`, `env/`, and any directory holding a pyvenv.cfg, like `.venv/`: a pip install
    into it is no change, and (on inotify) it costs no watch."""
    for name in ("venv", "myenv"):
        (root / name / "lib" / "site-packages").mkdir(parents=True)
    (root / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for native in (True, False) if sys.platform == "linux" else (False,):  # inotify's tree: Linux's
        sink = Collector()
        w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"]))], sink, native=native)
        w.start()
        try:
            if native:
                assert w.count_directories() == 1  # the root only
            (root / "myenv" / "lib" / "site-packages" / "flask.py").write_text("")
            (root / "venv" / "lib" / "site-packages" / "flask.py").write_text("")
            # made while watched: its directory first, then its pyvenv.cfg, then its packages
            (root / "newenv" / "lib").mkdir(parents=True)
            (root / "newenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
            (root / "newenv" / "lib" / "six.py").write_text("")
            assert [c.path for c in sentinel(root, sink)] == []
        finally:
            w.stop()
        shutil.rmtree(root / "newenv")


def test_without_the_builtin_ignores_a_virtual_environment_counts(root: Path) -> None:
    (root / "myenv").mkdir()
    (root / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    sink = Collector()
    w = Watcher([Subscription(0, "t", str(root), Matcher(["*.py"], ignore_defaults=False))], sink)
    w.start()
    try:
        (root / "myenv" / "six.py").write_text("")
        assert sink.expect().path == str(root / "myenv" / "six.py")
    finally:
        w.stop()
