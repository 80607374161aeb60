"""Batcher on a fake clock (plain numbers passed as `now`), and the Change/Batch values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watchd.batching import CHURN_HITS, Batcher
from watchd.changes import Batch, Change, ChangeKind, display_path, merge, net_effect

C, M, D, MV = ChangeKind.CREATED, ChangeKind.MODIFIED, ChangeKind.DELETED, ChangeKind.MOVED


def THERE(path: str) -> bool:
    return True


def mod(path: str) -> Change:
    return Change(M, path)


# --------------------------------------------------------------------------- Batcher


def test_fires_after_quiet_period_not_before() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    b.add(mod("a.py"), now=10.0)
    assert b.take(10.0) is None
    assert b.take(10.049) is None
    batch = b.take(10.05)
    assert batch is not None
    assert batch.watch == "w"
    assert batch.changes == (mod("a.py"),)
    assert (batch.first_at, batch.last_at) == (10.0, 10.0)
    assert len(b) == 0
    assert b.take(11.0) is None  # taken: nothing left


def test_each_change_restarts_the_quiet_period() -> None:
    b = Batcher("w", debounce=0.5, max_delay=10.0, exists=THERE)
    b.add(mod("a.py"), now=0.0)
    b.add(mod("b.py"), now=0.4)
    assert b.take(0.5) is None  # quiet since 0.4 only
    assert b.take(0.89) is None
    batch = b.take(0.9)
    assert batch is not None
    assert batch.changes == (mod("a.py"), mod("b.py"))
    assert (batch.first_at, batch.last_at) == (0.0, 0.4)


def test_continuous_churn_fires_at_max_delay() -> None:
    b = Batcher("w", debounce=0.125, max_delay=1.0, exists=THERE)
    fired: list[tuple[float, Batch]] = []
    # a change every 1/16 s (exact in binary) for 3.5 s: never quiet for 1/8 s
    for i in range(56):
        now = 100.0 + i / 16
        got = b.take(now)
        if got is not None:
            fired.append((now, got))
        b.add(mod(f"f{i}.py"), now)
    assert [t for t, _ in fired] == [101.0, 102.0, 103.0]
    first = fired[0][1]
    assert first.first_at == 100.0
    assert first.changes[0] == mod("f0.py")
    assert first.changes[-1] == mod("f15.py")  # the change at 101.0 starts the next batch
    assert fired[1][1].first_at == 101.0
    # nothing lost, nothing repeated
    all_changes = [c for _, batch in fired for c in batch.changes]
    assert all_changes == [mod(f"f{i}.py") for i in range(48)]
    # and the churn's tail still fires once it goes quiet
    assert b.take(103.5) is None
    tail = b.take(103.4375 + 0.125)
    assert tail is not None
    assert tail.changes == tuple(mod(f"f{i}.py") for i in range(48, 56))


def test_burst_of_5000_adds_is_one_batch_ending_with_the_last_add() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    taken: list[Batch] = []
    for i in range(5000):
        now = 50.0 + i * 0.0001  # 5,000 writes in half a second
        got = b.take(now)
        if got is not None:
            taken.append(got)
        b.add(Change(C if i % 2 else M, f"gen/file{i}.txt"), now)
    last_add = 50.0 + 4999 * 0.0001
    assert taken == []
    assert b.take(last_add + 0.049) is None
    batch = b.take(last_add + 0.05)
    assert batch is not None
    taken.append(batch)
    assert len(taken) == 1
    assert len(batch.changes) == 5000
    assert batch.changes[-1] == Change(C, "gen/file4999.txt")
    assert batch.changes[0] == Change(M, "gen/file0.txt")
    assert batch.last_at == last_add
    assert b.take(last_add + 100) is None


@pytest.mark.parametrize("now", [-1.0, 0.0, 1.0, 1e9])
def test_never_returns_a_batch_when_empty(now: float) -> None:
    b = Batcher("w", debounce=0.0, max_delay=0.0, exists=THERE)
    assert b.take(now) is None
    assert b.deadline() is None
    assert len(b) == 0


def test_empty_again_after_take() -> None:
    b = Batcher("w", debounce=0.1, max_delay=1.0, exists=THERE)
    b.add(mod("a.py"), 0.0)
    assert b.take(5.0) is not None
    assert b.deadline() is None
    assert b.take(10.0) is None


def test_duplicate_changes_counted_once() -> None:
    b = Batcher("w", debounce=0.1, max_delay=1.0, exists=THERE)
    b.add(mod("a.py"), 0.0)
    b.add(mod("a.py"), 0.01)
    b.add(Change(C, "a.py"), 0.02)
    b.add(mod("a.py"), 0.03)
    b.add(Change(C, "a.py"), 0.04)
    assert len(b) == 2
    batch = b.take(1.0)
    assert batch is not None
    assert batch.changes == (mod("a.py"),)  # one net change per path
    assert batch.last_at == 0.04  # a duplicate still extends the quiet period


def test_duplicate_extends_quiet_period() -> None:
    b = Batcher("w", debounce=0.1, max_delay=1.0, exists=THERE)
    b.add(mod("a.py"), 0.0)
    b.add(mod("a.py"), 0.08)
    assert b.take(0.1) is None
    assert b.take(0.18) is not None


def test_dedup_resets_between_batches() -> None:
    b = Batcher("w", debounce=0.1, max_delay=1.0, exists=THERE)
    b.add(mod("a.py"), 0.0)
    assert b.take(1.0) is not None
    b.add(mod("a.py"), 2.0)
    batch = b.take(3.0)
    assert batch is not None
    assert batch.changes == (mod("a.py"),)
    assert batch.first_at == 2.0


@pytest.mark.parametrize(
    ("debounce", "max_delay", "adds", "expected"),
    [
        (0.05, 2.0, [], None),
        (0.05, 2.0, [10.0], 10.05),
        (0.05, 2.0, [10.0, 10.5], 10.55),
        (0.5, 1.0, [0.0, 0.4, 0.8], 1.0),  # capped by max_delay from the first change
        (0.5, 1.0, [0.0, 0.3], 0.8),
        (0.0, 0.0, [3.0], 3.0),
        (1.0, 0.5, [0.0], 1.0),  # max_delay below debounce is raised to debounce
    ],
)
def test_deadline(debounce: float, max_delay: float, adds: list[float], expected: float | None) -> None:
    b = Batcher("w", debounce, max_delay, exists=THERE)
    for i, t in enumerate(adds):
        b.add(mod(f"{i}.py"), t)
    assert b.deadline() == pytest.approx(expected)
    if expected is not None:
        assert b.take(expected - 1e-6) is None
        assert b.take(expected) is not None


def test_max_delay_counts_from_first_change_of_each_batch() -> None:
    b = Batcher("w", debounce=0.1, max_delay=1.0, exists=THERE)
    b.add(mod("a.py"), 0.0)
    assert b.take(0.2) is not None
    b.add(mod("b.py"), 5.0)
    assert b.deadline() == pytest.approx(5.1)
    b.add(mod("c.py"), 5.05)
    b.add(mod("d.py"), 5.95)
    assert b.deadline() == pytest.approx(6.0)


# --------------------------------------------------------------------------- Batch


def batch_of(*changes: Change) -> Batch:
    return Batch("w", changes, 1.0, 2.0)


@pytest.mark.parametrize(
    ("changes", "paths"),
    [
        ((), ()),
        ((mod("a"),), ("a",)),
        ((mod("a"), mod("b"), mod("a")), ("a", "b")),
        ((Change(C, "b"), mod("a"), Change(D, "b")), ("b", "a")),
        # a move lists its destination first, then its source
        ((Change(MV, "old.py", "new.py"),), ("new.py", "old.py")),
        ((mod("x"), Change(MV, "old.py", "new.py"), mod("new.py")), ("x", "new.py", "old.py")),
        ((mod("old.py"), Change(MV, "old.py", "new.py")), ("old.py", "new.py")),
        # a -> b -> c: each path once
        ((Change(MV, "a", "b"), Change(MV, "b", "c")), ("b", "a", "c")),
        ((Change(MV, "a", "b"), Change(MV, "b", "a")), ("b", "a")),
    ],
)
def test_batch_paths(changes: tuple[Change, ...], paths: tuple[str, ...]) -> None:
    assert batch_of(*changes).paths == paths


def test_batch_merged() -> None:
    early = Batch("w", (mod("a"), mod("b")), 1.0, 2.0)
    late = Batch("w", (mod("b"), mod("c")), 5.0, 6.0)
    merged = early.merged(late)
    assert merged == Batch("w", (mod("a"), mod("b"), mod("c")), 1.0, 6.0)  # one change per path
    assert merged.paths == ("a", "b", "c")
    # the originals are untouched (frozen values)
    assert early.changes == (mod("a"), mod("b"))
    assert late.first_at == 5.0


@pytest.mark.parametrize(
    ("changes", "base", "summary"),
    [
        ((), None, "nothing"),
        ((mod("src/app.py"),), None, "src/app.py"),
        ((mod("src/app.py"), mod("src/app.py")), None, "src/app.py"),
        ((mod("src/app.py"), mod("b"), mod("c")), None, "src/app.py and 2 more"),
        ((mod("/srv/app/src/app.py"), mod("/srv/app/b")), "/srv/app", "src/app.py and 1 more"),
        ((mod("/srv/app/src/app.py"),), "/srv/app/", "src/app.py"),
        ((mod("/srv/other/app.py"),), "/srv/app", "/srv/other/app.py"),
        ((mod("/srv/application/x"),), "/srv/app", "/srv/application/x"),
        ((Change(MV, "/r/old", "/r/new"),), "/r", "new and 1 more"),
        ((mod("/r/bad\nname.py"),), "/r", "bad\\nname.py"),
    ],
)
def test_batch_summary(changes: tuple[Change, ...], base: str | None, summary: str) -> None:
    assert batch_of(*changes).summary(base) == summary


@pytest.mark.parametrize(
    ("path", "base", "shown"),
    [
        ("src/app.py", None, "src/app.py"),
        ("my app.py", None, "my app.py"),
        ("café/été.py", None, "café/été.py"),
        ("/root/src/a.py", "/root", "src/a.py"),
        ("/root/src/a.py", "/root/", "src/a.py"),
        ("/root", "/root", "/root"),
        ("/rootless/a.py", "/root", "/rootless/a.py"),
        ("line\nbreak.py", None, "line\\nbreak.py"),
        ("/root/evil\nWARNING fake.py", "/root", "evil\\nWARNING fake.py"),
        ("tab\there", None, "tab\\there"),
        ("esc\x1b[31mred", None, "esc\\x1b[31mred"),
        ("cr\rhidden", None, "cr\\rhidden"),
        # bytes that are not UTF-8 arrive as lone surrogates (os.fsdecode's surrogateescape)
        (b"bad\xffname.py".decode("utf-8", "surrogateescape"), None, "bad\\udcffname.py"),
        ("/r/" + b"\xe9t\xe9.py".decode("utf-8", "surrogateescape"), "/r", "\\udce9t\\udce9.py"),
        ("it's\n", None, "it's\\n"),
    ],
)
def test_display_path(path: str, base: str | None, shown: str) -> None:
    assert display_path(path, base) == shown


def test_display_path_is_one_line_and_encodable() -> None:
    nasty = "a\nb\r\x00" + b"\xff\xfe".decode("utf-8", "surrogateescape")
    shown = display_path(nasty)
    assert "\n" not in shown
    assert "\r" not in shown
    shown.encode("utf-8")  # a lone surrogate would raise UnicodeEncodeError here


def test_display_path_is_never_relative_to_the_filesystem_root() -> None:
    assert display_path("/srv/app/x.py", "/") == "/srv/app/x.py"
    assert display_path("/srv/app/x.py", "/srv/") == "app/x.py"


# --------------------------------------------------------------------------- the early look


def test_early_look_comes_once_the_files_are_quiet_and_once_per_batch() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, early=0.01, exists=THERE)
    assert b.early_deadline() is None  # nothing forming
    b.add(mod("a.py"), now=1.0)
    b.add(mod("b.py"), now=1.005)
    assert b.early_deadline() == pytest.approx(1.015)
    assert b.take_early(1.014) is None
    early = b.take_early(1.015)
    assert early is not None and early.changes == (mod("a.py"), mod("b.py"))
    assert early.last_at == 1.005
    assert b.take_early(1.02) is None  # once per batch ...
    b.add(mod("c.py"), now=1.03)
    assert b.early_deadline() is None  # ... even when more changes come
    batch = b.take(1.08)
    assert batch is not None and len(batch.changes) == 3  # the batch itself is whole
    b.add(mod("d.py"), now=2.0)
    assert b.early_deadline() == pytest.approx(2.01)  # the next batch has its own


def test_no_early_look_unless_asked_or_when_it_would_not_be_earlier() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    b.add(mod("a.py"), now=1.0)
    assert b.early_deadline() is None
    assert b.take_early(5.0) is None
    late = Batcher("w", debounce=0.05, max_delay=2.0, early=0.05, exists=THERE)
    late.add(mod("a.py"), now=1.0)
    assert late.early_deadline() is None
    capped = Batcher("w", debounce=0.05, max_delay=0.05, early=0.01, exists=THERE)
    capped.add(mod("a.py"), now=1.0)
    for t in (1.0, 1.009, 1.018, 1.027, 1.036, 1.045):  # churn: never 10 ms quiet ...
        capped.add(mod("a.py"), now=t)
    assert capped.early_deadline() is None  # ... and max_delay comes first


# --------------------------------------------------------------------------- net effect per path


def ch(kind: ChangeKind, path: str, dest: str | None = None) -> Change:
    return Change(kind, path, dest)


NET = [
    # (what the backend reported, what is on disk afterwards, the net batch)
    pytest.param([ch(M, "a.py")], {"a.py"}, [ch(M, "a.py")], id="modified"),
    pytest.param([ch(C, "a.py"), ch(M, "a.py")], {"a.py"}, [ch(C, "a.py")], id="created-then-written"),
    pytest.param([ch(C, "t.py"), ch(D, "t.py")], set(), [], id="temporary-file-leaves-no-trace"),
    pytest.param(
        [ch(C, "tmpq.py"), ch(M, "tmpq.py"), ch(MV, "tmpq.py", "app.py")],
        {"app.py"},
        [ch(M, "app.py")],
        id="tempfile-renamed-onto-app.py",
    ),
    pytest.param([ch(D, "app.py"), ch(C, "app.py")], {"app.py"}, [ch(M, "app.py")], id="polled-atomic-save"),
    pytest.param([ch(M, "a.py"), ch(D, "a.py")], set(), [ch(D, "a.py")], id="written-then-deleted"),
    pytest.param([ch(D, "a.py")], {"a.py"}, [ch(M, "a.py")], id="deleted-but-there-again"),
    pytest.param([ch(MV, "a.py", "b.py")], {"b.py"}, [ch(MV, "a.py", "b.py")], id="a-real-rename"),
    pytest.param(
        [ch(MV, "a.py", "b.py"), ch(MV, "b.py", "c.py")],
        {"c.py"},
        [ch(MV, "a.py", "c.py")],
        id="renamed-twice",
    ),
    pytest.param(
        [ch(MV, "a.py", "b.py"), ch(MV, "b.py", "a.py")], {"a.py"}, [ch(M, "a.py")], id="renamed-and-back"
    ),
    pytest.param(
        [ch(MV, "a.py", "b.py"), ch(M, "b.py")], {"b.py"}, [ch(MV, "a.py", "b.py")], id="renamed-then-written"
    ),
    pytest.param([ch(MV, "a.py", "b.py")], set(), [ch(D, "a.py")], id="renamed-and-gone"),
    pytest.param(
        [ch(M, "x.py"), ch(C, "y.py"), ch(M, "x.py")],
        {"x.py", "y.py"},
        [ch(M, "x.py"), ch(C, "y.py")],
        id="first-seen-order",
    ),
    pytest.param(
        [Change(ChangeKind.RESCAN, "/src")], set(), [Change(ChangeKind.RESCAN, "/src")], id="rescan"
    ),
]


@pytest.mark.parametrize(("reported", "on_disk", "net"), NET)
def test_net_effect(reported: list[Change], on_disk: set[str], net: list[Change]) -> None:
    assert net_effect(reported, on_disk.__contains__) == tuple(net)


def test_a_batch_that_nets_to_nothing_never_fires() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=lambda p: False)
    b.add(Change(C, "t.py"), 0.0)
    b.add(Change(D, "t.py"), 0.01)
    assert b.take(1.0) is None
    assert len(b) == 0


def test_merging_pending_batches_stays_bounded() -> None:
    """1,000 batches of one change to one file, piling up behind a busy command: one entry."""
    pending = Batch("w", (mod("a.py"),), 0.0, 0.0)
    for i in range(1, 1000):
        pending = pending.merged(Batch("w", (mod("a.py"),), i, i))
    assert pending.changes == (mod("a.py"),)
    assert (pending.first_at, pending.last_at) == (0.0, 999)


@pytest.mark.parametrize(
    ("earlier", "later", "merged"),
    [
        ([ch(C, "a")], [ch(M, "a")], [ch(C, "a")]),
        ([ch(C, "a")], [ch(D, "a")], []),
        ([ch(D, "a")], [ch(C, "a")], [ch(M, "a")]),
        ([ch(M, "a")], [ch(D, "a")], [ch(D, "a")]),
        ([ch(M, "a"), ch(M, "b")], [ch(M, "a")], [ch(M, "a"), ch(M, "b")]),  # first-seen order
    ],
)
def test_merge(earlier: list[Change], later: list[Change], merged: list[Change]) -> None:
    assert merge(tuple(earlier), tuple(later)) == tuple(merged)


def test_non_matching_changes_keep_an_open_batch_open_but_never_open_one() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    b.touch("locale/de.po", 0.0)  # nothing pending, nothing happens
    assert b.deadline() is None
    b.add(mod("a.py"), 1.0)
    for i, t in enumerate((1.04, 1.08, 1.12)):  # rsync writes other files for a while
        assert not b.touch(f"locale/{i}.po", t)
        assert b.take(t + 0.01) is None
    assert b.deadline() == pytest.approx(1.17)
    b.touch("locale/x.po", 3.5)  # ... but never past max_delay
    assert b.deadline() == pytest.approx(3.0)


def test_a_file_that_keeps_changing_stops_holding_batches_and_is_reported_once() -> None:
    """app.log written every 10 ms under traffic: after CHURN_HITS quiet periods of it, a save is
    acted on after the debounce, not after max_delay."""
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    found = [t for t in range(100) if b.touch("app.log", t * 0.01)]  # 1 s of logging
    assert found == [(CHURN_HITS - 1) * 5]  # once: its first write in the CHURN_HITS-th window
    assert b.churning == {"app.log"}
    b.add(mod("app.py"), 1.0)  # a save, while the log goes on
    for t in range(100, 106):
        assert not b.touch("app.log", t * 0.01)
    assert b.deadline() == pytest.approx(1.05)
    assert b.take(1.05) is not None
    b.touch("other.txt", 1.06)  # another file still holds a batch open as before
    b.add(mod("app.py"), 1.06)
    b.touch("other.txt", 1.1)
    assert b.deadline() == pytest.approx(1.15)


def test_churn_that_stopped_holds_batches_again_and_is_not_reported_twice() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    assert any(b.touch("db.sqlite3", t * 0.05) for t in range(10))
    b.add(mod("models.py"), 5.0)  # quiet for far longer than CHURN_WINDOWS periods
    assert not b.touch("db.sqlite3", 5.02)  # one write: activity again, part of this operation
    assert b.churning == frozenset()
    assert b.deadline() == pytest.approx(5.07)
    assert not any(b.touch("db.sqlite3", 6 + t * 0.05) for t in range(10))  # churn again: said once


def test_churn_needs_most_of_the_recent_windows_not_a_few() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    # every other quiet period: 4 of the last 8, never churn
    assert not any(b.touch("cache.bin", t * 0.1) for t in range(30))
    assert b.churning == frozenset()


def test_activity_remembers_a_bounded_number_of_paths() -> None:
    b = Batcher("w", debounce=0.05, max_delay=2.0, exists=THERE)
    for i in range(3 * 4096):
        b.touch(f"f{i}", i * 0.05)  # each once, in its own window
    assert len(b._activity) <= 4096


def test_a_deleted_file_is_reported_as_deleted() -> None:
    assert Batch("w", (Change(D, "src/a.py"),), 0, 0).what() == "src/a.py deleted"
    assert Batch("w", (Change(D, "a"), Change(D, "b")), 0, 0).what() == "a and 1 more deleted"
    assert Batch("w", (Change(D, "a"), mod("b")), 0, 0).what() == "a and 1 more changed"


def test_existing_answers_as_lexists_does_whether_it_reads_the_directory_or_not(tmp_path: Path) -> None:
    from watchd.changes import existing  # noqa: PLC0415

    many = [tmp_path / f"f{i}.py" for i in range(70)]  # enough to read the directory
    for f in many[:10]:
        f.write_text("")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere")  # lexists: the link is there
    few = tmp_path / "sub"
    few.mkdir()
    (few / "a.py").write_text("")
    paths = [
        *map(str, many),
        str(tmp_path / "dangling.py"),
        str(few / "a.py"),
        str(few / "b.py"),
        str(tmp_path / "gone" / "x.py"),
        "/",
    ]
    assert len(many) * 64 >= os.lstat(tmp_path).st_size  # (so it does read it)
    assert existing(paths) == {p for p in paths if os.path.lexists(p)}
    assert existing([str(tmp_path / "gone" / f"{i}.py") for i in range(20)]) == set()
