"""Pidfile trust with real files and real processes: watchd runs as root here, the other side as
`nobody` (setpriv). The real os.kill/pidfd path is used; targets record the signals they get.

Every test runs on both sides of the platform seam (the `side` fixture): Linux's checks through
a pidfd, and the Darwin side's (psutil's owner and start time; no pidfd, so the start time is
checked again right before kill())."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from helpers.procs import HELPERS, stop_process, wait_for

from watchd.actions import Context
from watchd.actions.pidfile import PidfileAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import PidfileSettings

NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]


def _as_root_with_setpriv() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not _as_root_with_setpriv(), reason="needs root and setpriv"),
    pytest.mark.usefixtures("side"),
]
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory nobody can use too (tmp_path's parents are root's only)."""
    d = Path(tempfile.mkdtemp(prefix="watchd-trust-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Target:
    """A sigrecorder, as root or as nobody, writing its own pidfile in `directory`."""

    def __init__(self, directory: Path, name: str, *, nobody: bool) -> None:
        self.dir = directory / name
        self.dir.mkdir()
        if nobody:
            os.chown(self.dir, NOBODY, NOBODY)
        self.pidfile = self.dir / "server.pid"
        self.record = self.dir / "signals"
        argv = [sys.executable, str(HELPERS / "sigrecorder.py"), str(self.pidfile), str(self.record)]
        self.proc = subprocess.Popen((AS_NOBODY if nobody else []) + argv, start_new_session=True, cwd="/")
        assert wait_for(lambda: self.pidfile.exists() and self.pidfile.read_text().strip(), 10)
        self.pid = int(self.pidfile.read_text())

    def signals(self) -> list[str]:
        return (
            [line.split()[0] for line in self.record.read_text().splitlines()] if self.record.exists() else []
        )

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def targets(shared: Path) -> Iterator[list[Target]]:
    made: list[Target] = []
    yield made
    for t in made:
        t.stop()


def send(pidfile: Path, caplog: pytest.LogCaptureFixture, **action: object) -> str:
    """One trigger of a signal action (HUP) on `pidfile`; returns the log line it made."""
    caplog.clear()
    signaller = PidfileAction(
        PidfileSettings(pidfile, pidfile_wait=0.1, confirm=False, **action),  # type: ignore[arg-type]
        Context("api"),
    )
    batch = Batch("api", (Change(ChangeKind.MODIFIED, "/srv/app.py"),), 0.0, 0.0)
    done = threading.Event()
    result: list[object] = []

    def run() -> None:
        result.append(signaller.execute(batch, threading.Event()))
        done.set()

    t = threading.Thread(target=run)
    t.start()
    assert done.wait(5), "the signal action blocked"
    t.join()
    signaller.close(0.0)
    (line,) = [r.getMessage() for r in caplog.records if r.name.startswith("watchd")]
    return line


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="watchd")
    return caplog


def pidfile_for(target: Target, where: Path, *, owner: int = 0, mode: int = 0o644) -> Path:
    path = where / f"copy-{secrets.token_hex(4)}.pid"
    path.write_text(f"{target.pid}\n")
    os.chmod(path, mode)
    os.chown(path, owner, owner)
    os.utime(path, (target.pidfile.stat().st_mtime,) * 2)  # written when the target started
    return path


def test_a_pidfile_owned_by_another_user_cannot_name_a_root_process(
    shared: Path, targets: list[Target], logs: pytest.LogCaptureFixture
) -> None:
    root_target = Target(shared, "root", nobody=False)
    targets.append(root_target)
    line = send(pidfile_for(root_target, shared, owner=NOBODY), logs)
    assert f"HUP not sent: PID {root_target.pid} runs as uid 0, but the pidfile owned by uid 65534" in line
    assert root_target.signals() == []


def test_a_pidfile_owned_by_another_user_names_that_users_process(
    shared: Path, targets: list[Target], logs: pytest.LogCaptureFixture
) -> None:
    theirs = Target(shared, "nobody", nobody=True)
    targets.append(theirs)
    line = send(theirs.pidfile, logs)  # written by nobody itself: owned by uid 65534
    assert "sent HUP" in line, line
    assert wait_for(lambda: theirs.signals() == ["SIGHUP"], 5)


@pytest.mark.parametrize("owner", [0, NOBODY])
def test_a_world_writable_pidfile_is_refused_whoever_owns_it(
    shared: Path, targets: list[Target], logs: pytest.LogCaptureFixture, owner: int
) -> None:
    target = Target(shared, "t", nobody=owner == NOBODY)
    targets.append(target)
    line = send(pidfile_for(target, shared, owner=owner, mode=0o666), logs)
    assert "is world-writable (mode 0666): refused" in line, line
    assert target.signals() == []


def test_a_symlink_in_someone_elses_sticky_directory_cannot_reach_a_root_pidfile(
    shared: Path, targets: list[Target], logs: pytest.LogCaptureFixture
) -> None:
    """/tmp-style: nobody's world-writable sticky directory holds nobody's symlink to a directory
    of root's, whose pidfile names a root daemon: only nobody's processes could be meant."""
    root_target = Target(shared, "root", nobody=False)
    targets.append(root_target)
    sticky = shared / "sticky"
    sticky.mkdir()
    os.chown(sticky, NOBODY, NOBODY)
    sticky.chmod(0o1777)
    subprocess.run([*AS_NOBODY, "ln", "-s", str(root_target.dir), str(sticky / "run")], check=True)
    line = send(sticky / "run" / "server.pid", logs)
    assert "runs as uid 0, but the symlink" in line and "may only name that user's processes" in line, line
    assert root_target.signals() == []


def test_a_symlink_as_the_pidfile_itself_is_refused(
    shared: Path, targets: list[Target], logs: pytest.LogCaptureFixture
) -> None:
    target = Target(shared, "t", nobody=False)
    targets.append(target)
    link = shared / "link.pid"
    link.symlink_to(target.pidfile)
    assert "is a symlink: refused" in send(link, logs)
    assert target.signals() == []


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_at_the_pidfile_path_is_refused_without_blocking(
    shared: Path, logs: pytest.LogCaptureFixture, kind: str
) -> None:
    path = shared / "server.pid"
    if kind == "fifo":
        os.mkfifo(path)
        assert "is not a regular file (a FIFO, device or socket): refused" in send(path, logs)
    else:
        path.mkdir()
        assert "is a directory" in send(path, logs)


def _cgroup_root() -> Path | None:
    """A cgroup hierarchy this test may make a group in (v2, or v1's pids controller)."""
    for candidate in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if (candidate / "cgroup.procs").exists() and os.access(candidate, os.W_OK):
            return candidate
    return None


@pytest.mark.skipif(_cgroup_root() is None, reason="no writable cgroup hierarchy")
def test_unit_names_the_cgroup_the_target_must_be_in(
    shared: Path, targets: list[Target], logs: pytest.LogCaptureFixture, side: ModuleType
) -> None:
    if side.NAME != "linux":
        pytest.skip("cgroups are Linux's: the Darwin side refuses unit: (see test_pidfile_refusals)")
    root = _cgroup_root()
    assert root is not None
    unit = f"watchd-test-{secrets.token_hex(4)}.service"
    group = root / unit
    group.mkdir()
    target = Target(shared, "t", nobody=False)
    targets.append(target)
    try:
        (group / "cgroup.procs").write_text(str(target.pid))
        line = send(target.pidfile, logs, unit="other.service")
        assert "is not in unit other.service: refused" in line, line
        assert target.signals() == []
        assert "sent HUP" in send(target.pidfile, logs, unit=unit)
        assert wait_for(lambda: target.signals() == ["SIGHUP"], 5)
    finally:
        target.stop()
        assert wait_for(lambda: not (group / "cgroup.procs").read_text().strip(), 5)
        group.rmdir()


RACE = textwrap.dedent("""\
    import logging, os, subprocess, sys, threading, time
    from pathlib import Path
    sys.path.insert(0, {helpers!r})
    from procs import wait_for
    import watchd.platform, watchd.platform.{side}
    watchd.platform.current = watchd.platform.{side}
    import watchd.actions.pidfile as pf
    from watchd.actions import Context
    from watchd.changes import Batch, Change, ChangeKind
    from watchd.model import PidfileSettings

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    work = Path({work!r})
    target = subprocess.Popen(["sleep", "60"])
    pidfile = work / "target.pid"
    pidfile.write_text(f"{{target.pid}}\\n")
    real = pf.inspect_process
    stranger = []

    def racing(pid, mtime=None):
        checked = real(pid, mtime)  # every check passes: it is the target (held by a pidfd on Linux)
        time.sleep(0.05)  # it ran a while, as a server does: start times tell 10 ms apart (psutil's too)
        target.kill()
        target.wait()  # gone and reaped: its PID is free again
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))  # the next process gets exactly that PID
        argv = [sys.executable, {recorder!r}, str(work / "new.pid"), str(work / "new.signals")]
        rec = subprocess.Popen(argv)
        assert wait_for(lambda: (work / "new.pid").exists(), 10)
        stranger.append(rec)
        print("reused", rec.pid == pid, flush=True)
        return checked

    pf.inspect_process = racing
    action = PidfileSettings(pidfile, confirm=False)
    signaller = pf.PidfileAction(action, Context("api"))
    signaller.execute(Batch("api", (Change(ChangeKind.MODIFIED, "/a.py"),), 0, 0), threading.Event())
    print("stranger got", repr((work / "new.signals").read_text()), flush=True)
    stranger[0].kill()
""")


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare")
def test_a_pid_reused_between_the_checks_and_the_signal_gets_nothing(
    tmp_path: Path, side: ModuleType
) -> None:
    """Inside a PID namespace of its own: the target passes every check, exits, is reaped, and
    the next process is forced onto its PID (ns_last_pid) before the signal is sent. Linux's
    pidfd refuses it; the Darwin side's start time, checked again right before kill(), too."""
    script = RACE.format(
        helpers=str(HELPERS), work=str(tmp_path), recorder=str(HELPERS / "sigrecorder.py"), side=side.NAME
    )
    r = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        check=False,
    )
    out = r.stdout + r.stderr
    assert "reused True" in out, out  # the race really happened
    assert "exited" in out and "HUP not sent" in out, out
    assert "stranger got ''" in out, out  # the new process received nothing
