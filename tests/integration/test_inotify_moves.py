"""A rename's two inotify events split across two reads: the reader pairs them all the same.

The kernel queues IN_MOVED_FROM and IN_MOVED_TO one after the other, but a read can come between
them (seen under load: a rename reported as a deletion). The events are fed to a real tree's
handler, read by read, as the reader thread would; the tree's directory is real and unchanged."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchd.inotify import IN_CREATE, IN_ISDIR, IN_MOVED_FROM, IN_MOVED_TO, MOVE_HOLD, InotifyTree

pytestmark = pytest.mark.linux_only("watchd's inotify reader (Linux's inotify)")

Event = tuple[int, str, str, "str | None", bool, bool]


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[InotifyTree, queue.Queue[Event], int]]:
    got: queue.Queue[Event] = queue.Queue()
    t = InotifyTree(
        lambda *args: got.put(args),
        lambda rid, identity: None,
        lambda: None,
        lambda rid, exc: None,
    )
    t.add_root(0, str(tmp_path), recursive=True, prune=lambda rel: False)
    wd = next(iter(t._table.paths))  # the root's watch (its parent's is added after it)
    yield t, got, wd
    t.close()


def read(t: InotifyTree, *events: tuple[int, int, int, bytes]) -> None:
    """One read's events, handled as the reader thread handles them."""
    t._read(list(events))


def kinds(got: queue.Queue[Event], n: int, timeout: float = 5.0) -> list[tuple[str, str, str | None]]:
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < n:
        _, kind, path, dest, _, _ = got.get(timeout=max(0.0, deadline - time.monotonic()))
        out.append((kind, path.rsplit("/", 1)[-1], dest.rsplit("/", 1)[-1] if dest else None))
    return out


def test_a_move_split_across_two_reads_is_one_move(tree: tuple[InotifyTree, queue.Queue[Event], int]) -> None:
    t, got, wd = tree
    read(t, (wd, IN_MOVED_FROM, 7, b"app.py"))
    read(t, (wd, IN_MOVED_TO, 7, b"main.py"), (wd, IN_CREATE, 0, b"after.py"))
    assert kinds(got, 2) == [("moved", "app.py", "main.py"), ("created", "after.py", None)]


def test_an_unpaired_move_is_reported_before_the_next_reads_events(
    tree: tuple[InotifyTree, queue.Queue[Event], int],
) -> None:
    t, got, wd = tree
    read(t, (wd, IN_MOVED_FROM, 7, b"app.py"))
    read(t, (wd, IN_CREATE, 0, b"app.py"))  # moved away, and a new app.py made in its place
    assert kinds(got, 2) == [("deleted", "app.py", None), ("created", "app.py", None)]


def test_a_file_moved_out_of_the_tree_is_deleted_once_the_hold_is_over(
    tmp_path: Path, tree: tuple[InotifyTree, queue.Queue[Event], int]
) -> None:
    _, got, _ = tree
    (tmp_path / "app.py").write_text("")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    assert kinds(got, 1) == [("created", "app.py", None)]
    started = time.monotonic()
    (tmp_path / "app.py").rename(outside / "app.py")  # a real rename: only its MOVED_FROM is seen
    seen = kinds(got, 1)
    if seen == [("modified", "app.py", None)]:  # the write's own event, in a read of its own
        seen = kinds(got, 1)
    assert seen == [("deleted", "app.py", None)]
    assert time.monotonic() - started >= MOVE_HOLD * 0.9  # held, not dropped: it came on its own


def test_a_late_rename_of_a_root_seen_through_its_parent_leaves_its_successor_watched(
    tmp_path: Path,
) -> None:
    """Under load the reader can take a root's rename (root -> renamed, seen through its parent's
    watch) after check_roots() already watches the new directory made by that name: dropping the
    watches below the old name then dropped the new root's (a proof run's failure)."""
    got: queue.Queue[Event] = queue.Queue()
    t = InotifyTree(
        lambda *args: got.put(args), lambda rid, identity: None, lambda: None, lambda rid, exc: None
    )
    root = tmp_path / "root"
    root.mkdir()
    try:
        t.add_root(0, str(root), recursive=True, prune=lambda rel: False)
        root.rename(tmp_path / "renamed")
        t.remove_root(0)  # check_roots(): the identity changed
        root.mkdir()
        (root / "pkg").mkdir()
        t.add_root(0, str(root), recursive=True, prune=lambda rel: False)  # ... and the successor
        watched = t.watch_count
        parent_wd = next(wd for wd, p in t._table.paths.items() if p == str(tmp_path))
        read(
            t,
            (parent_wd, IN_MOVED_FROM | IN_ISDIR, 9, b"root"),
            (parent_wd, IN_MOVED_TO | IN_ISDIR, 9, b"renamed"),
        )
        assert t.watch_count == watched
        (root / "pkg" / "fresh.py").write_text("")
        deadline = time.monotonic() + 5
        while ("created", "fresh.py", None) not in kinds(got, 1, timeout=deadline - time.monotonic()):
            pass  # (earlier events of the old root may come first)
    finally:
        t.close()
