"""Stale bytecode: a restarted app must never import the .pyc of the code before a save."""

from __future__ import annotations

import py_compile
from pathlib import Path

from watchd.actions.pysource import invalidate_bytecode


def compiled(source: Path, mode: py_compile.PycInvalidationMode) -> Path:
    return Path(py_compile.compile(str(source), invalidation_mode=mode, doraise=True))


def test_timestamp_pycs_of_changed_sources_go_hash_checked_and_others_stay(tmp_path: Path) -> None:
    app, other, hashed = tmp_path / "app.py", tmp_path / "other.py", tmp_path / "hashed.py"
    for f in (app, other, hashed):
        f.write_text("x = 1\n")
    app_pyc = compiled(app, py_compile.PycInvalidationMode.TIMESTAMP)
    other_pyc = compiled(other, py_compile.PycInvalidationMode.TIMESTAMP)
    hashed_pyc = compiled(hashed, py_compile.PycInvalidationMode.CHECKED_HASH)
    invalidate_bytecode((str(app), str(hashed), str(tmp_path / "notes.txt"), str(tmp_path / "gone.py")))
    assert not app_pyc.exists()  # validated by mtime and size: could be stale
    assert hashed_pyc.exists()  # validated by the source's hash: never stale
    assert other_pyc.exists()  # not changed


def test_names_with_glob_characters(tmp_path: Path) -> None:
    odd = tmp_path / "a[1]*.py"
    odd.write_text("x = 1\n")
    near = tmp_path / "a1x.py"
    near.write_text("x = 1\n")
    odd_pyc = compiled(odd, py_compile.PycInvalidationMode.TIMESTAMP)
    near_pyc = compiled(near, py_compile.PycInvalidationMode.TIMESTAMP)
    invalidate_bytecode((str(odd),))
    assert not odd_pyc.exists()
    assert near_pyc.exists()


def test_optimized_levels_dotted_names_and_many_files_in_one_directory(tmp_path: Path) -> None:
    sources = [tmp_path / f"m{i}.py" for i in range(50)] + [tmp_path / "a.b.py"]
    for f in sources:
        f.write_text("x = 1\n")
    pycs = [compiled(f, py_compile.PycInvalidationMode.TIMESTAMP) for f in sources]
    opt = Path(
        py_compile.compile(
            str(sources[0]), optimize=1, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP
        )
    )
    assert opt.name.endswith(".opt-1.pyc")
    kept = tmp_path / "a.py"  # a prefix of a changed name ("a.b"), itself unchanged
    kept.write_text("x = 1\n")
    kept_pyc = compiled(kept, py_compile.PycInvalidationMode.TIMESTAMP)
    invalidate_bytecode([str(f) for f in sources])
    assert not any(p.exists() for p in pycs)
    assert not opt.exists()
    assert kept_pyc.exists()


def test_a_stem_that_looks_like_an_optimization_level(tmp_path: Path) -> None:
    odd, plain = tmp_path / "x.opt-in.py", tmp_path / "x.py"
    for f in (odd, plain):
        f.write_text("x = 1\n")
    odd_pyc = compiled(odd, py_compile.PycInvalidationMode.TIMESTAMP)
    plain_pyc = compiled(plain, py_compile.PycInvalidationMode.TIMESTAMP)
    invalidate_bytecode([str(plain)])
    assert odd_pyc.exists() and not plain_pyc.exists()
    invalidate_bytecode([str(odd)])
    assert not odd_pyc.exists()
