"""The check gate with real processes: Checked in front of a real CommandAction.

Every check and command runs in tmp_path; the gated command leaves a file behind, so
"the action ran" is a file that exists and "the action was skipped" one that does not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.actions import Recording
from helpers.procs import pid_alive, wait_for

from watchd.actions import Action, Context
from watchd.actions.check import TAIL_LINES, Checked, CommandGate
from watchd.actions.command import CommandAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import CheckSettings, CommandSettings

ACTION = 'echo "$WATCHD_PATH" > ran'  # the gated command: proves it ran, and with what
CTX = Context("api")


def batch_of(*paths: str) -> Batch:
    return Batch("api", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), 0.0, 0.0)


def gated(
    tmp_path: Path, command: str | tuple[str, ...], *, cwd: Path | None = None, timeout: float = 10.0
) -> Checked:
    inner = CommandAction(CommandSettings(command=ACTION, cwd=tmp_path), CTX)
    check = CheckSettings(command=command, cwd=cwd or tmp_path, timeout=timeout)
    return behind(check, inner)


def behind(check: CheckSettings, inner: Action) -> Checked:
    return Checked(CommandGate(check, CTX, inner.not_done), inner)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="watchd")
    return caplog


def test_a_passing_check_lets_the_action_run(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    # the command only succeeds if the check ran first, in the same directory
    executor = gated(tmp_path, "touch checked")
    executor.inner = CommandAction(CommandSettings(command="test -f checked && " + ACTION, cwd=tmp_path), CTX)

    executor.execute(batch_of("/srv/app/app.py"), threading.Event())

    assert (tmp_path / "ran").read_text() == "/srv/app/app.py\n"
    assert "api: check passed in " in logs.text
    assert "ran test -f checked" in logs.text
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]


def test_a_failing_check_skips_the_action(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    executor = gated(tmp_path, "echo boom; exit 3")

    executor.execute(batch_of("/srv/app/app.py", "/srv/app/b.py"), threading.Event())

    assert not (tmp_path / "ran").exists()
    (record,) = [r for r in logs.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith(
        "api: /srv/app/app.py and 1 more changed; check echo boom; exit 3 failed (exit 3 in "
    )
    assert message.endswith(" s); command not run\n    | boom")


def test_a_check_killed_by_a_signal_says_so(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    gated(tmp_path, "kill -TERM $$").execute(batch_of("/a.py"), threading.Event())

    assert not (tmp_path / "ran").exists()
    assert "failed (killed by SIGTERM in " in logs.text


def test_the_check_gets_the_watchd_environment_and_its_cwd(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    check_dir = tmp_path / "checks"
    check_dir.mkdir()
    script = (
        'printf "%s\\n%s\\n%s\\n" "$WATCHD_WATCH" "$WATCHD_PATH" "$WATCHD_COUNT" > env.txt'
        ' && tr "\\0" "\\n" < "$WATCHD_CHANGED_FILE" > list.txt'
        ' && echo "$WATCHD_CHANGED_FILE" > list-name.txt'
        " && pwd -P > cwd.txt"
    )
    executor = gated(tmp_path, script, cwd=check_dir)
    fds = set(os.listdir("/dev/fd"))

    executor.execute(batch_of("/srv/app/app.py", "/srv/app/new file.py"), threading.Event())

    assert (check_dir / "env.txt").read_text() == "api\n/srv/app/app.py\n2\n"
    assert (check_dir / "list.txt").read_text() == "/srv/app/app.py\n/srv/app/new file.py\n"
    assert (check_dir / "cwd.txt").read_text().strip() == str(check_dir.resolve())
    listed = (check_dir / "list-name.txt").read_text().strip()
    if listed.startswith("/dev/fd/"):  # an anonymous file (memfd): closed in watchd afterwards
        assert set(os.listdir("/dev/fd")) - fds == set()
    else:  # a temporary file: removed afterwards
        assert not Path(listed).exists()
    assert (tmp_path / "ran").exists()  # the action runs in its own cwd, not the check's


def test_a_check_that_times_out_is_stopped_with_its_process_group(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    # the check leaves a grandchild behind: only stopping the whole group ends it
    executor = gated(tmp_path, "sleep 60 & echo $! > bg.pid; wait", timeout=0.5)
    bg: int | None = None
    try:
        # (no bound on the time here: a check not stopped at 500 ms runs its 60 s, past pytest's timeout)
        executor.execute(batch_of("/a.py"), threading.Event())

        bg = int((tmp_path / "bg.pid").read_text())
        assert wait_for(lambda: not pid_alive(bg), timeout=5.0), f"the check's child {bg} is still running"
        assert not (tmp_path / "ran").exists()
        assert "check sleep 60 & echo $! > bg.pid; wait failed (timed out after 500ms in " in logs.text
        assert "command not run" in logs.text
    finally:
        if bg is not None and pid_alive(bg):
            with contextlib.suppress(ProcessLookupError):
                os.kill(bg, signal.SIGKILL)


def test_a_check_stopped_by_shutdown_skips_the_action_quietly(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    executor = gated(tmp_path, "touch started; sleep 60")
    stop = threading.Event()
    worker = threading.Thread(target=executor.execute, args=(batch_of("/a.py"), stop))
    worker.start()
    try:
        assert wait_for((tmp_path / "started").exists, timeout=5.0)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert not (tmp_path / "ran").exists()
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("missing", ["program", "cwd"])
def test_a_check_that_cannot_start_skips_the_action(
    tmp_path: Path, logs: pytest.LogCaptureFixture, missing: str
) -> None:
    if missing == "program":
        executor = gated(tmp_path, ("no-such-program-watchd-test", "--check"))
    else:
        executor = gated(tmp_path, ("true",), cwd=tmp_path / "missing")

    executor.execute(batch_of("/a.py"), threading.Event())

    assert not (tmp_path / "ran").exists()
    (record,) = [r for r in logs.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert message.startswith("api: /a.py changed; check ")
    assert " could not start: No such file or directory (check the command and cwd " in message
    assert message.endswith("; command not run")


def test_only_the_last_non_empty_lines_of_a_chatty_check_are_logged(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    code = "import sys; [print(f'line {i}', end='\\n  \\n') for i in range(1000)]; sys.exit(1)"
    gated(tmp_path, (sys.executable, "-c", code)).execute(batch_of("/a.py"), threading.Event())

    assert not (tmp_path / "ran").exists()
    (record,) = [r for r in logs.records if r.levelno >= logging.WARNING]
    _, *tail = record.getMessage().split("\n")
    assert tail == [f"    | line {i}" for i in range(1000 - TAIL_LINES, 1000)]


def test_a_check_that_passed_for_the_early_start_is_not_run_again(tmp_path: Path) -> None:
    inner = Recording()
    checked = behind(CheckSettings(command="echo x >> checks", cwd=tmp_path), inner)
    assert checked.early == 0.01
    b = batch_of("/a.py")  # last change at 0.0: long before the check ran
    checked.prepare(b, threading.Event())
    checked.execute(b, threading.Event())
    assert (tmp_path / "checks").read_text() == "x\n"
    assert inner.calls == ["prepare", "execute"]
    # a batch that changed after the check started is checked again
    checked.prepare(b, threading.Event())
    later = Batch("api", b.changes, 0.0, time.monotonic() + 100)
    checked.execute(later, threading.Event())
    assert (tmp_path / "checks").read_text() == "x\nx\nx\n"


def test_a_failed_early_check_starts_nothing_and_is_logged_once(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    inner = Recording()
    checked = behind(CheckSettings(command="echo broken; exit 1", cwd=tmp_path), inner)
    b = batch_of("/a.py")
    checked.prepare(b, threading.Event())
    checked.execute(b, threading.Event())
    assert inner.calls == ["forget"]  # nothing was prepared; the inner action is told anyway
    assert logs.text.count("check echo broken; exit 1 failed (exit 1 in") == 1


def test_a_check_that_fails_after_the_early_start_drops_the_early_app(tmp_path: Path) -> None:
    """A second save broke the code after the early start passed its check: that app must go."""
    inner = Recording()
    checked = behind(CheckSettings(command="test ! -e broken", cwd=tmp_path), inner)
    b = batch_of("/a.py")
    checked.prepare(b, threading.Event())
    (tmp_path / "broken").touch()
    later = Batch("api", b.changes, 0.0, time.monotonic() + 100)
    checked.execute(later, threading.Event())
    assert inner.calls == ["prepare", "forget"]
