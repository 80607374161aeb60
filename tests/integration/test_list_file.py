"""WATCHD_CHANGED_FILE with real processes: an anonymous file (memfd) where the platform has one,
else a temporary file, else no variable and one warning. It must never stop an action, read
exactly (names with newlines, undecodable bytes) by the command, the processes it starts and a
second read, and leave nothing behind in watchd: no descriptor, no file.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers.procs import wait_for

from watchd import platform
from watchd.actions import Context
from watchd.actions import process as process_module
from watchd.actions.check import CommandGate
from watchd.actions.command import CommandAction
from watchd.actions.process import write_list_file
from watchd.actions.run import RunAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import CheckSettings, CommandSettings, RunSettings
from watchd.platform import darwin

PATHS = ("/srv/app/a.py", "/srv/app/new\nline.py", os.fsdecode(b"/srv/app/bad-\xff.py"), "/srv/app/ü x.py")
LISTED = b"".join(os.fsencode(p) + b"\0" for p in PATHS)
HAS_MEMFD = hasattr(os, "memfd_create")

# Reads the list four ways: twice, through xargs (stdin opened by the shell), through a process
# of the command's own that opens the path itself. Each result lands in place only when complete.
READ_IT = (
    'cat "$WATCHD_CHANGED_FILE" > first.bin'
    ' && cat "$WATCHD_CHANGED_FILE" > second.bin'
    " && xargs -0 printf '%s\\0' < \"$WATCHD_CHANGED_FILE\" > xargs.bin"
    " && sh -c 'cat \"$WATCHD_CHANGED_FILE\"' > nested.bin"
    ' && printf %s "${WATCHD_CHANGED_FILE-unset}" > name.txt'
)
READS = ("first.bin", "second.bin", "xargs.bin", "nested.bin")


def batch_of(*paths: str) -> Batch:
    return Batch("w", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), 0.0, time.monotonic())


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/dev/fd")}


def assert_read_exactly(directory: Path) -> None:
    for name in READS:
        assert (directory / name).read_bytes() == LISTED, name


@pytest.fixture
def no_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tempfile has no usable directory (as in a container with a read-only root filesystem)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))


@pytest.fixture
def no_memfd(monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform has no anonymous files (macOS): its side of the seam's answer."""
    monkeypatch.setattr(platform.current, "memfd", darwin.memfd)


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_module, "_warned", set())


@pytest.mark.skipif(not HAS_MEMFD, reason="no memfd_create on this platform")
def test_a_command_reads_the_memfd_exactly_twice_and_through_its_children(
    tmp_path: Path, no_tempdir: None
) -> None:
    before = open_fds()
    runner = CommandAction(CommandSettings(command=READ_IT, cwd=tmp_path), Context("w"))
    for _ in range(3):
        outcome = runner.execute(batch_of(*PATHS), threading.Event())
        assert outcome == f"ran {runner.shown}: exit 0"
        assert_read_exactly(tmp_path)
        assert (tmp_path / "name.txt").read_text().startswith("/dev/fd/")
    assert open_fds() - before == set()  # each memfd closed in watchd


@pytest.mark.skipif(not HAS_MEMFD, reason="no memfd_create on this platform")
def test_a_check_reads_the_memfd_and_its_output_needs_no_temporary_directory(
    tmp_path: Path, no_tempdir: None, caplog: pytest.LogCaptureFixture
) -> None:
    before = open_fds()
    gate = CommandGate(CheckSettings(command=READ_IT, cwd=tmp_path), Context("w"), "command not run")
    assert gate.run(batch_of(*PATHS), threading.Event()) is None
    assert_read_exactly(tmp_path)
    failing = CommandGate(
        CheckSettings(command="echo the reason; exit 1", cwd=tmp_path), Context("w"), "not run"
    )
    assert failing.run(batch_of(*PATHS), threading.Event()) == "check failed (exit 1); not run"
    assert "\n    | the reason" in caplog.text  # the output was kept (in an anonymous file)
    assert open_fds() - before == set()


@pytest.mark.skipif(not HAS_MEMFD, reason="no memfd_create on this platform")
def test_an_app_gets_its_list_file_at_start_and_at_each_restart(tmp_path: Path, no_tempdir: None) -> None:
    before = open_fds()
    app = (
        'cat "$WATCHD_CHANGED_FILE" > list.tmp && cat "$WATCHD_CHANGED_FILE" >> list.tmp'
        ' && mv list.tmp "list-$WATCHD_RESTARTS.bin"; exec sleep 60'
    )
    runner = RunAction(RunSettings(command=app, cwd=tmp_path), Context("w"))
    try:
        runner.start()
        assert wait_for((tmp_path / "list-0.bin").exists)
        assert (tmp_path / "list-0.bin").read_bytes() == b""  # launched for no change: an empty list
        runner.execute(batch_of(*PATHS), threading.Event())
        assert wait_for((tmp_path / "list-1.bin").exists)
        assert (tmp_path / "list-1.bin").read_bytes() == LISTED * 2
    finally:
        runner.close(time.monotonic() + 5)
    # and an app that cannot start (no such cwd) leaves nothing behind either
    unstartable = RunAction(RunSettings(command="true", cwd=tmp_path / "missing"), Context("w"))
    unstartable.start()
    unstartable.close(time.monotonic() + 5)
    assert open_fds() - before == set()


@pytest.mark.parametrize("memfd", ["absent", "failing"])
def test_without_a_memfd_a_temporary_file_is_used_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memfd: str
) -> None:
    def failing(name: str) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(process_module, "anonymous_fd", failing if memfd == "failing" else lambda name: None)
    before = open_fds()
    runner = CommandAction(CommandSettings(command=READ_IT, cwd=tmp_path), Context("w"))
    runner.execute(batch_of(*PATHS), threading.Event())
    assert_read_exactly(tmp_path)
    listed = Path((tmp_path / "name.txt").read_text())
    assert listed.name.startswith("watchd-")
    assert not listed.exists()
    assert open_fds() - before == set()


@pytest.mark.usefixtures("no_memfd", "no_tempdir", "fresh_warnings")
def test_with_no_file_at_all_the_variable_is_unset_and_that_is_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WATCHD_CHANGED_FILE", "/stale/from/a/parent/watchd")
    command = 'printf "%s|%s" "${WATCHD_CHANGED_FILE-unset}" "$WATCHD_PATH" > seen.txt'
    runner = CommandAction(CommandSettings(command=command, cwd=tmp_path), Context("w"))
    for i in range(3):
        (tmp_path / "seen.txt").unlink(missing_ok=True)
        assert runner.execute(batch_of(f"/srv/{i}.py"), threading.Event()) == f"ran {runner.shown}: exit 0"
        assert (tmp_path / "seen.txt").read_text() == f"unset|/srv/{i}.py"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "w: WATCHD_CHANGED_FILE is unset: no file can hold the changed paths (temporary file: "
        "No such file or directory); WATCHD_PATH and WATCHD_CHANGED still name them (said once)"
    ]


@pytest.mark.usefixtures("no_memfd", "fresh_warnings")
def test_with_no_file_at_all_a_check_still_gates_and_says_so_once(
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passing = CommandGate(
        CheckSettings(command='test -z "${WATCHD_CHANGED_FILE+set}"', cwd=tmp_path), Context("c"), "x"
    )
    failing = CommandGate(
        CheckSettings(command="echo the reason; exit 1", cwd=tmp_path), Context("c"), "not run"
    )
    with monkeypatch.context() as patch:  # only while capfd does not need temporary files itself
        patch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
        for _ in range(2):
            assert passing.run(batch_of("/a.py"), threading.Event()) is None
            assert failing.run(batch_of("/a.py"), threading.Event()) == "check failed (exit 1); not run"
    assert "the reason" in capfd.readouterr().out  # with no file to keep it, the output is watchd's
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    said = sorted(m for m in warnings if "no file can hold" in m)
    assert len(said) == 2, warnings  # once about the list, once about the output: for both checks
    assert said[0].startswith("c: WATCHD_CHANGED_FILE is unset")
    assert said[1].startswith('c: check test -z "${WATCHD_CHANGED_FILE+set}": its output goes to watchd')
    assert sum("check echo the reason; exit 1 failed (exit 1 in" in m for m in warnings) == 2


@pytest.mark.skipif(not HAS_MEMFD, reason="no memfd_create on this platform")
def test_the_memfd_reaches_no_other_child(tmp_path: Path) -> None:
    listed = write_list_file("w", PATHS)
    try:
        assert listed.fd is not None and listed.fd >= 10
        assert not os.get_inheritable(listed.fd)
        # a process started meanwhile, even one that keeps every inheritable descriptor
        other = subprocess.run(["sh", "-c", f"test -e /dev/fd/{listed.fd}"], close_fds=False, check=False)
        assert other.returncode == 1
    finally:
        listed.discard()
