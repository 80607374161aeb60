"""content: true -- ContentMemory on real files: what leaves the bytes as they were does not count."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from watchd import content
from watchd.changes import Batch, Change, ChangeKind
from watchd.content import ContentMemory


def batch(*changes: Change) -> Batch:
    return Batch("w", changes, 0.0, 0.0)


def modified(path: Path) -> Change:
    return Change(ChangeKind.MODIFIED, str(path))


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    made = []
    for i in range(3):
        p = tmp_path / f"m{i}.py"
        p.write_text(f"x = {i}\n")
        made.append(p)
    return made


def memory_of(paths: list[Path]) -> ContentMemory:
    memory = ContentMemory("w")
    memory.remember(str(p) for p in paths)
    return memory


def test_touch_and_a_rewrite_with_the_same_bytes_do_not_count(files: list[Path]) -> None:
    memory = memory_of(files)
    os.utime(files[0], (1, 1))  # touch
    files[1].write_text("x = 1\n")  # an editor's save without edits
    assert memory.sift(batch(modified(files[0]), modified(files[1]))) == (None, 2)


def test_a_changed_file_counts_and_is_remembered_as_it_is_now(files: list[Path]) -> None:
    memory = memory_of(files)
    files[0].write_text("x = 'new'\n")
    kept, dropped = memory.sift(batch(modified(files[0]), modified(files[1])))
    assert kept is not None and [c.path for c in kept.changes] == [str(files[0])]
    assert dropped == 1
    assert memory.sift(batch(modified(files[0]))) == (None, 1)  # saved again, unchanged: nothing
    files[0].write_text("x = 0\n")  # back to the bytes of start: a change from the last action
    assert memory.sift(batch(modified(files[0])))[0] is not None


def test_a_file_rewritten_through_delete_and_create_with_the_same_bytes_does_not_count(
    files: list[Path],
) -> None:
    memory = memory_of(files)
    files[2].unlink()
    files[2].write_text("x = 2\n")  # git checkout: removed and written again
    assert memory.sift(batch(Change(ChangeKind.CREATED, str(files[2])))) == (None, 1)


def test_deletions_moves_new_files_and_directories_always_count(files: list[Path], tmp_path: Path) -> None:
    memory = memory_of(files)
    new = tmp_path / "new.py"
    new.write_text("")
    files[0].unlink()
    changes = (
        Change(ChangeKind.DELETED, str(files[0])),
        Change(ChangeKind.CREATED, str(new)),
        Change(ChangeKind.MOVED, str(files[1]), str(tmp_path / "moved.py")),
        Change(ChangeKind.MODIFIED, str(tmp_path), is_dir=True),
    )
    kept, dropped = memory.sift(batch(*changes))
    assert kept is not None and kept.changes == changes and dropped == 0
    assert memory.sift(batch(Change(ChangeKind.CREATED, str(files[0]))))[0] is not None  # forgotten


def test_a_large_file_is_judged_by_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "MAX_HASHED", 10)
    big = tmp_path / "data.bin"
    big.write_bytes(b"0123456789abcdef")
    memory = memory_of([big])
    assert memory.sift(batch(modified(big))) == (None, 1)  # nothing changed at all
    os.utime(big, ns=(1, 1))  # same bytes, new mtime: counts (its bytes are not kept)
    assert memory.sift(batch(modified(big)))[0] is not None


def test_memory_is_bounded_and_says_so_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = []
    for i in range(5):
        p = tmp_path / f"f{i}"
        p.write_text(str(i))
        paths.append(str(p))
    memory = ContentMemory("w", max_files=3)
    with caplog.at_level(logging.WARNING):
        memory.remember(paths)
        memory.remember(paths)
    assert len(memory) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "w: content: remembering 3 files, the most it keeps; files beyond them count on every change"
    ]
    os.utime(paths[4], (1, 1))
    assert memory.sift(batch(Change(ChangeKind.MODIFIED, paths[4])))[0] is not None  # not remembered
