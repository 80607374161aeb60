"""PidfileAction refuses every PID it must not signal; the injected `kill` proves it never fires.

The real os.kill is never handed a pidfile's PID here: every signaller gets a recording `kill`.
Child processes are started (and reaped) by the tests themselves; pidfiles live in tmp_path.

Every test runs on both sides of the platform seam (the `side` fixture): what the process is --
its start time, command line, state, owner -- comes from /proc, then from psutil.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import psutil
import pytest
from helpers.clock import Clock, ClockedStop
from helpers.procs import proc_state

from watchd.actions import Context
from watchd.actions import pidfile as pidfile_module
from watchd.actions.pidfile import PidfileAction, program_name
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import PidfileSettings
from watchd.trust import read_pidfile

BATCH = Batch("api", (Change(ChangeKind.MODIFIED, "app.py"),), 0.0, 0.0)

pytestmark = pytest.mark.usefixtures("side")


class RecordingKill:
    def __init__(self, raises: BaseException | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.raises = raises

    def __call__(self, pid: int, sig: int) -> None:
        self.calls.append((pid, sig))
        if self.raises is not None:
            raise self.raises


@pytest.fixture(autouse=True)
def _propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI turns propagation off when it configures logging; caplog listens on the root logger
    monkeypatch.setattr(logging.getLogger("watchd"), "propagate", True)


@pytest.fixture
def children() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start child processes that are always reaped, whatever the test does."""
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        argv = list(args) or [sys.executable, "-c", "import time; time.sleep(60)"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        procs.append(p)
        return p

    yield spawn
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def shows_its_argv(child: subprocess.Popen[bytes]) -> bool:
    """Popen returns once the exec has begun; the new command line is set up a moment later
    (until then the kernel shows an empty one, or the parent's): what `expect` matches."""
    try:
        return psutil.Process(child.pid).cmdline() == child.args
    except psutil.Error:
        return False


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def unused_pid() -> int:
    """A PID no process has, below macOS's largest (99998): a valid PID on both systems (psutil,
    not /proc: it runs in the macOS-profile lane too)."""
    taken = set(psutil.pids())
    for pid in range(99_998, 300, -1):
        if pid not in taken and not psutil.pid_exists(pid):
            return pid
    pytest.fail("no free PID found")


def signaller(
    pidfile: Path,
    kill: RecordingKill,
    *,
    expect: str | None = None,
    sig: int = signal.SIGHUP,
    wait: float = 0.1,
    dry_run: bool = False,
    unit: str | None = None,
) -> PidfileAction:
    action = PidfileSettings(pidfile=pidfile, signal=sig, expect=expect, pidfile_wait=wait, unit=unit)
    return PidfileAction(action, Context("api", dry_run=dry_run, kill=kill))


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def assert_refused(caplog: pytest.LogCaptureFixture, kill: RecordingKill, fragment: str) -> None:
    assert kill.calls == []
    errs = errors(caplog)
    assert len(errs) == 1, errs
    assert errs[0].startswith("api: app.py changed; HUP not sent: "), errs[0]
    assert fragment in errs[0], errs[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"0", "holds PID 0: refused"),
        (b"1", "holds PID 1: refused"),
        (b"-1", "holds PID -1: refused"),
        (b"-42", "holds PID -42: refused"),
        (b" -1 \n", "holds PID -1: refused"),
        (b"+1", "holds PID 1: refused"),
        (b"00", "holds PID 0: refused"),
        (b"-0", "holds PID 0: refused"),
        (b"abc", "does not hold a PID: 'abc'"),
        (b"12 13", "does not hold a PID: '12 13'"),
        (b"12\n13\n", "does not hold a PID"),
        (b"0x10", "does not hold a PID: '0x10'"),
        (b"1.5", "does not hold a PID: '1.5'"),
        (b"1e3", "does not hold a PID"),
        (b"--1", "does not hold a PID"),
        (b"12\x00", "does not hold a PID"),
        ("\u0663".encode(), "does not hold a PID"),  # an Arabic-Indic 3: int() would take it
        (b"\xff\xfe", "does not hold a PID"),
        (b"99999999999999999999", "holds 99999999999999999999: refused (larger than any PID)"),
        (b"2147483648", "holds 2147483648: refused"),
        (b"4194304", "no process with PID 4194304"),  # above Linux PID_MAX_LIMIT
    ],
)
def test_bad_pidfile_contents_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, fragment: str
) -> None:
    pidfile = tmp_path / "api.pid"
    pidfile.write_bytes(content)
    kill = RecordingKill()
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, fragment)


def test_own_pid_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    kill = RecordingKill()
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, f"PID {os.getpid()} is watchd itself: refused")


def test_pid_that_does_not_exist_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pid = unused_pid()
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{pid}\n")
    kill = RecordingKill()
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, f"no process with PID {pid}")


def test_zombie_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    child = children(sys.executable, "-c", "pass")  # exits at once; not waited for: a zombie
    assert wait_for(lambda: proc_state(child.pid) == "Z"), proc_state(child.pid)
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    kill = RecordingKill()
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, "(zombie)")


def test_process_started_after_the_pidfile_was_written_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    child = children()
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    hour_ago = time.time() - 3600
    os.utime(pidfile, (hour_ago, hour_ago))
    kill = RecordingKill()
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, "after the pidfile was written: the PID was reused")
    assert child.poll() is None  # still alive: refused for its age, not for being gone


def test_live_process_with_whitespace_around_the_pid_is_signalled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    child = children()
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f" {child.pid} \n")
    kill = RecordingKill()
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert kill.calls == [(child.pid, signal.SIGHUP)]
    assert errors(caplog) == []
    assert any("sent HUP to" in m and f"(pid {child.pid})" in m for m in caplog.messages)


@pytest.mark.parametrize(
    ("content", "pid"),
    [(b" 1234 \n", 1234), (b"1234", 1234), (b"\t1234\r\n", 1234), (b"\n\n42\n\n", 42), (b"+7", 7)],
)
def test_read_pidfile_parses(tmp_path: Path, content: bytes, pid: int) -> None:
    pidfile = tmp_path / "api.pid"
    pidfile.write_bytes(content)
    got = read_pidfile(pidfile)
    assert got is not None
    assert got.pid == pid
    assert got.mtime == pidfile.stat().st_mtime


@pytest.mark.parametrize("content", [b"", b"  \n", b"\n\n"])
def test_read_pidfile_empty_is_none(tmp_path: Path, content: bytes) -> None:
    pidfile = tmp_path / "api.pid"
    pidfile.write_bytes(content)
    assert read_pidfile(pidfile) is None


def test_read_pidfile_missing_is_none(tmp_path: Path) -> None:
    assert read_pidfile(tmp_path / "none.pid") is None


def test_expect_mismatch_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    child = children(sys.executable, "-c", "import time; time.sleep(60)", "gunicorn-marker")
    assert wait_for(lambda: shows_its_argv(child))
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    kill = RecordingKill()
    signaller(pidfile, kill, expect="uwsgi-marker").execute(BATCH, threading.Event())
    assert_refused(caplog, kill, "is not the expected process")
    assert "'uwsgi-marker'" in errors(caplog)[0]


def test_the_target_is_named_by_its_program_in_the_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    sleeper = children("sleep", "60")
    script = tmp_path / "server.py"
    script.write_text("import time\ntime.sleep(60)\n")
    server = children(sys.executable, str(script))
    # Popen returns once the exec has begun (the close-on-exec pipe closed); its argv is set up
    # a moment later, and until then the kernel reads an empty command line for it
    assert wait_for(lambda: len(psutil.Process(server.pid).cmdline()) > 1)
    kill = RecordingKill()
    for child in (sleeper, server):
        pidfile = tmp_path / f"{child.pid}.pid"
        pidfile.write_text(f"{child.pid}\n")
        signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert f"sent HUP to sleep (pid {sleeper.pid})" in caplog.text
    assert f"sent HUP to server.py (pid {server.pid})" in caplog.text  # past the interpreter


def test_unit_is_checked_where_there_are_cgroups(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    children: Callable[..., subprocess.Popen[bytes]],
    side: ModuleType,
) -> None:
    child = children()
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    kill = RecordingKill()
    signaller(pidfile, kill, unit="no-such-watchd-test.service").execute(BATCH, threading.Event())
    if side.NAME == "linux":
        assert_refused(caplog, kill, "is not in unit no-such-watchd-test.service: refused")
    else:
        assert_refused(caplog, kill, "its systemd unit cannot be checked here")
        assert "needs Linux's cgroups" in errors(caplog)[0]


def test_expect_match_is_signalled_once_with_the_right_signal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    child = children(sys.executable, "-c", "import time; time.sleep(60)", "gunicorn-marker")
    assert wait_for(lambda: shows_its_argv(child))
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    kill = RecordingKill()
    s = signaller(pidfile, kill, expect="gunicorn-marker", sig=signal.SIGUSR2)
    s.execute(BATCH, threading.Event())
    assert kill.calls == [(child.pid, signal.SIGUSR2)]
    assert errors(caplog) == []


def test_dry_run_never_signals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    child = children()
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    kill = RecordingKill()
    signaller(pidfile, kill, dry_run=True).execute(BATCH, threading.Event())
    assert kill.calls == []
    assert any("would send HUP" in m and "[dry run]" in m for m in caplog.messages)


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [
        (PermissionError(1, "Operation not permitted"), "permission denied sending HUP"),
        (ProcessLookupError(3, "No such process"), "exited before the signal"),
    ],
)
def test_kill_failure_is_logged(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    children: Callable[..., subprocess.Popen[bytes]],
    exc: OSError,
    fragment: str,
) -> None:
    child = children()
    pidfile = tmp_path / "api.pid"
    pidfile.write_text(f"{child.pid}\n")
    kill = RecordingKill(raises=exc)
    signaller(pidfile, kill).execute(BATCH, threading.Event())
    assert kill.calls == [(child.pid, signal.SIGHUP)]
    errs = errors(caplog)
    assert len(errs) == 1
    assert fragment in errs[0]


def test_missing_pidfile_waits_then_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(pidfile_module, "time", clock)  # the wait's deadline, on the injected clock
    kill = RecordingKill()
    signaller(tmp_path / "missing.pid", kill, wait=0.1).execute(BATCH, ClockedStop(clock))
    assert_refused(caplog, kill, "does not exist (waited 0.1 s")
    # it looked again every _RETRY_EVERY until the 0.1 s were over, then gave up
    assert set(clock.waits) == {pidfile_module._RETRY_EVERY}, clock.waits
    assert 0.1 - 1e-9 <= clock.elapsed() < 0.1 + pidfile_module._RETRY_EVERY, clock.waits


def test_empty_pidfile_waits_then_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pidfile = tmp_path / "api.pid"
    pidfile.write_text("\n")
    kill = RecordingKill()
    signaller(pidfile, kill, wait=0.1).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, "is empty (waited 0.1 s")


def test_pidfile_that_is_a_directory_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    kill = RecordingKill()
    signaller(tmp_path, kill).execute(BATCH, threading.Event())
    assert_refused(caplog, kill, "is a directory")


def test_pidfile_is_reread_on_every_trigger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, children: Callable[..., subprocess.Popen[bytes]]
) -> None:
    old, new = children(), children()
    pidfile = tmp_path / "api.pid"
    kill = RecordingKill()
    s = signaller(pidfile, kill)
    pidfile.write_text(f"{old.pid}\n")
    s.execute(BATCH, threading.Event())
    pidfile.write_text(f"{new.pid}\n")  # the server upgraded: new PID
    s.execute(BATCH, threading.Event())
    assert kill.calls == [(old.pid, signal.SIGHUP), (new.pid, signal.SIGHUP)]


@pytest.mark.parametrize(
    ("comm", "argv", "shown"),
    [
        ("gunicorn", ["/venv/bin/python3", "/venv/bin/gunicorn", "app:app"], "gunicorn"),
        ("python3", ["/venv/bin/python3", "/venv/bin/gunicorn", "app:app"], "gunicorn"),
        ("python3.11", ["python3.11", "-m", "uvicorn", "app:app"], "uvicorn"),
        ("python3", ["python3", "-c", "pass"], "python3"),
        ("python3", ["python3"], "python3"),
        ("uwsgi", ["uwsgi", "--master"], "uwsgi"),
    ],
)
def test_program_name_looks_past_the_interpreter(comm: str, argv: list[str], shown: str) -> None:
    assert program_name(comm, argv) == shown
