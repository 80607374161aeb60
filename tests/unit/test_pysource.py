"""`check: python`: which files a batch brings, compiling them, and the gate's verdict and log."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from helpers.actions import Recording

from watchd.actions import Context
from watchd.actions.check import SHOWN_FAILURES, Checked, PythonGate
from watchd.actions.pysource import MAX_SOURCE, Compiled, Sources, compile_all, compile_source, read_source
from watchd.changes import Batch, Change, ChangeKind
from watchd.matching import Matcher


def batch_of(*changes: Change) -> Batch:
    return Batch("api", changes, 0.0, 0.0)


def modified(path: Path) -> Change:
    return Change(ChangeKind.MODIFIED, str(path))


def sources(root: Path, patterns: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> Sources:
    return Sources((root,), Matcher(patterns, ignore))


# --------------------------------------------------------------------------- compiling


def test_a_syntax_error_reads_as_the_interpreter_prints_it(tmp_path: Path) -> None:
    path = str(tmp_path / "app.py")
    failure = compile_source(path, b"x = 1\ndef f(:\n    pass\n")
    assert failure is not None
    assert failure.error == "SyntaxError"
    assert failure.lines == (
        f'  File "{path}", line 2',
        "    def f(:",
        "          ^",
        "SyntaxError: invalid syntax",
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (b"if x:\n  a\n\tb\n", "TabError"),
        (b"if x:\npass\n", "IndentationError"),
        (b"x = 1\0\n", "SyntaxError"),  # null bytes: no position, the file is named anyway
        (b"\xff = 1\n", "SyntaxError"),  # not UTF-8 and no coding declaration
        (b"x = " + b"(" * 300 + b")" * 300 + b"\n", "SyntaxError"),  # too deeply nested
        (b"return 1\n", "SyntaxError"),  # compiles only as part of a function
    ],
)
def test_every_kind_of_failure_names_the_file(tmp_path: Path, source: bytes, error: str) -> None:
    path = str(tmp_path / "app.py")
    failure = compile_source(path, source)
    assert failure is not None
    assert failure.error == error
    assert failure.lines[0].startswith(f'  File "{path}"')
    assert failure.lines[-1].startswith(f"{error}: ")


def test_good_code_passes_and_its_warnings_are_not_watchds_to_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    # an invalid escape warns on import; the app prints that, watchd must not
    assert compile_source(str(tmp_path / "a.py"), b'import re\nP = re.compile("\\d+")\n') is None
    assert compile_source(str(tmp_path / "b.py"), b"# -*- coding: latin-1 -*-\nx = '\xe9'\n") is None
    assert not recwarn.list
    assert capsys.readouterr() == ("", "")


def test_future_imports_of_watchd_do_not_leak_into_the_checked_file(tmp_path: Path) -> None:
    # watchd's modules use `from __future__ import annotations`, under which this is an error;
    # the app's module compiles without it, as the interpreter compiles it on import
    source = b"def g():\n    def f(x: (yield)): pass\n"
    assert compile_source(str(tmp_path / "a.py"), source) is None
    assert compile_source(str(tmp_path / "a.py"), b"from __future__ import annotations\n" + source)


def test_only_regular_files_are_read_and_nothing_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")  # opening a FIFO for reading would wait for a writer
    (tmp_path / "pkg.py").mkdir()
    (tmp_path / "app.py").write_bytes(b"x = 1\n")
    assert read_source(str(tmp_path / "pipe.py")) is None
    assert read_source(str(tmp_path / "pkg.py")) is None
    assert read_source(str(tmp_path / "gone.py")) is None
    assert read_source(str(tmp_path / "app.py")) == b"x = 1\n"


def test_compile_all_counts_what_it_read_and_stops_when_told(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("x = 1\n")
    bad.write_text("x = (\n")
    paths = [str(good), str(bad), str(tmp_path / "gone.py")]
    done = compile_all(iter(paths), threading.Event())
    assert done.count == 2
    assert [f.path for f in done.failures] == [str(bad)]
    stopped = threading.Event()
    stopped.set()
    assert compile_all(iter(paths), stopped) == Compiled()


def test_a_file_too_big_to_compile_in_process_is_skipped_not_failed(tmp_path: Path) -> None:
    big = tmp_path / "generated.py"
    big.write_bytes(b"x = (\n" + b"#" * MAX_SOURCE)  # broken, but over the limit: not compiled
    done = compile_all(iter([str(big)]), threading.Event())
    assert done == Compiled(count=0, failures=[], skipped=[(str(big), "1.0 MB")])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_watchd_cannot_read_fails_the_check(tmp_path: Path) -> None:
    secret = tmp_path / "secret.py"
    secret.write_text("x = 1\n")
    secret.chmod(0)
    [failure] = compile_all(iter([str(secret)]), threading.Event()).failures
    assert failure.error == "unreadable"
    assert failure.lines[-1] == "cannot read it: Permission denied"


# --------------------------------------------------------------------------- which files


def test_changed_python_files_of_a_batch(tmp_path: Path) -> None:
    app, notes, old = tmp_path / "app.py", tmp_path / "notes.txt", tmp_path / "old.py"
    moved = tmp_path / "new.py"
    batch = batch_of(
        modified(app),
        modified(notes),
        Change(ChangeKind.DELETED, str(old)),
        Change(ChangeKind.MOVED, str(tmp_path / "tmp.swp"), dest=str(moved)),
        modified(app),
    )
    assert list(sources(tmp_path).of(batch)) == [str(app), str(moved)]


def test_a_new_directory_brings_the_python_files_below_it_that_the_watch_counts(
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "pkg"
    for rel in ("a.py", "sub/b.py", "sub/c.txt", "__pycache__/a.py", "node_modules/x.py", "gen/d.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("x = 1\n")
    batch = batch_of(Change(ChangeKind.CREATED, str(pkg), is_dir=True))
    found = list(sources(tmp_path, ignore=("gen/",)).of(batch))
    assert found == [str(pkg / "a.py"), str(pkg / "sub" / "b.py")]
    # and only the files its patterns select
    found = list(sources(tmp_path, patterns=("sub/",)).of(batch))
    assert found == [str(pkg / "sub" / "b.py")]


def test_lost_events_bring_every_python_file_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b" / "c.py").parent.mkdir()
    (tmp_path / "b" / "c.py").write_text("x = 1\n")
    batch = batch_of(Change(ChangeKind.RESCAN, str(tmp_path), is_dir=True))
    assert sorted(sources(tmp_path).of(batch)) == [str(tmp_path / "a.py"), str(tmp_path / "b" / "c.py")]


def test_lost_events_of_a_single_file_bring_that_file(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("x = (\n")
    rescan = batch_of(Change(ChangeKind.RESCAN, str(app), is_dir=False))  # a single file's root
    assert list(Sources((app,), Matcher()).of(rescan)) == [str(app)]


def test_a_symlinked_directory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.py").write_text("x = (\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    batch = batch_of(Change(ChangeKind.RESCAN, str(root), is_dir=True))
    assert list(sources(root).of(batch)) == []


# --------------------------------------------------------------------------- the gate


def python_gate(root: Path, inner: Recording) -> Checked:
    ctx = Context("api", base=str(root))
    return Checked(PythonGate(sources(root), ctx, inner.not_done), inner)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="watchd")
    return caplog


def test_the_gate_lets_good_code_through(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    inner = Recording("HUP not sent", early=None)
    assert python_gate(tmp_path, inner).execute(batch_of(modified(tmp_path / "app.py")), threading.Event())
    assert inner.calls == ["execute"]
    assert "api: check python passed: 1 files in " in logs.text


def test_the_gate_stops_a_syntax_error_and_logs_what_python_would_print(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "app.py").write_text("def f(:\n    pass\n")
    (tmp_path / "ok.py").write_text("x = 1\n")
    inner = Recording("HUP not sent", early=None)
    batch = batch_of(modified(tmp_path / "ok.py"), modified(tmp_path / "app.py"))
    outcome = python_gate(tmp_path, inner).execute(batch, threading.Event())
    assert outcome == "check failed (SyntaxError); HUP not sent"
    assert inner.calls == ["forget"]
    [record] = [r for r in logs.records if r.levelno >= logging.WARNING]
    first, *rest = record.getMessage().splitlines()
    assert first == (
        "api: ok.py and 1 more changed; check python failed (SyntaxError in app.py, "
        f"{first.split(', ')[1].split(')')[0]}); HUP not sent"
    )
    assert rest == [
        f'    |   File "{tmp_path / "app.py"}", line 1',
        "    |     def f(:",
        "    |           ^",
        "    | SyntaxError: invalid syntax",
    ]


def test_many_broken_files_are_counted_not_all_printed(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    broken = [tmp_path / f"m{i}.py" for i in range(SHOWN_FAILURES + 2)]
    for path in broken:
        path.write_text("x = (\n")
    python_gate(tmp_path, Recording("HUP not sent", early=None)).execute(
        batch_of(*map(modified, broken)), threading.Event()
    )
    [record] = [r for r in logs.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert f"(SyntaxError in m0.py and {len(broken) - 1} more, " in message
    assert message.count("    | SyntaxError: ") == SHOWN_FAILURES
    assert message.endswith("    | ... and 2 more files that do not compile")


def test_a_file_that_failed_is_checked_again_with_every_later_batch(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """A save of another file must not reload the server into the broken one."""
    broken, other = tmp_path / "a.py", tmp_path / "b.py"
    broken.write_text("def f(:\n")
    other.write_text("y = 1\n")
    inner = Recording("HUP not sent", early=None)
    gate = python_gate(tmp_path, inner)
    gate.execute(batch_of(modified(broken)), threading.Event())
    gate.execute(batch_of(modified(other)), threading.Event())
    assert inner.calls == ["forget", "forget"]
    assert "b.py changed; check python failed (SyntaxError in a.py, " in logs.text
    broken.write_text("def f():\n    pass\n")  # fixed (its own save would say so too)
    gate.execute(batch_of(modified(other)), threading.Event())
    assert inner.calls == ["forget", "forget", "execute"]
    broken.write_text("def f(:\n")
    gate.execute(batch_of(modified(broken)), threading.Event())
    broken.unlink()  # gone: nothing left to fail
    gate.execute(batch_of(modified(other)), threading.Event())
    assert inner.calls[-2:] == ["forget", "execute"]


def test_a_big_file_is_skipped_with_a_warning_and_the_action_runs(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    big = tmp_path / "generated.py"
    big.write_bytes(b"x = 1\n" + b"#" * MAX_SOURCE)
    inner = Recording("HUP not sent", early=None)
    python_gate(tmp_path, inner).execute(batch_of(modified(big)), threading.Event())
    assert inner.calls == ["execute"]
    assert "api: check python skipped generated.py (1.0 MB: compiling it would stop watchd" in logs.text


def test_a_batch_without_python_files_passes(tmp_path: Path) -> None:
    (tmp_path / "style.css").write_text("a {\n")
    inner = Recording("HUP not sent", early=None)
    python_gate(tmp_path, inner).execute(batch_of(modified(tmp_path / "style.css")), threading.Event())
    assert inner.calls == ["execute"]
