"""The installed `watchd` against a real process that records the signals it receives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers.procs import HELPERS, WATCHD, Recorder, Watchd, proc_state, stop_process, wait_for


def one_liner(recorder: Recorder, src: Path, *extra: str) -> list[str]:
    return ["-p", "*.py", "--pidfile", str(recorder.pidfile), *extra, str(src)]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    (d / "app.py").write_text("x = 1\n")
    return d


def test_single_save_sends_one_hup(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    w = start_watchd(one_liner(recorder, src))
    (src / "app.py").write_text("x = 2\n")
    assert wait_for(lambda: recorder.names() == ["SIGHUP"])
    assert w.wait_log("sent HUP")
    assert "app.py changed; sent HUP to sigrecorder.py (pid " in w.log()
    # a second save is a second reload, and nothing else arrived in between
    (src / "app.py").write_text("x = 3\n")
    assert wait_for(lambda: len(recorder.names()) == 2)
    assert recorder.names() == ["SIGHUP", "SIGHUP"]


def test_atomic_save_sends_one_hup(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    w = start_watchd(one_liner(recorder, src))
    tmp = src / ".app.py.k3j2x9"
    tmp.write_text("x = 2\n")
    os.replace(tmp, src / "app.py")
    assert wait_for(lambda: len(recorder.names()) >= 1)
    # the next save proves no second action was pending from the first: it is the second, alone
    (src / "other.py").write_text("y = 1\n")
    assert w.wait_log("other.py changed; sent HUP"), w.log()
    assert w.log().count("sent HUP") == 2, w.log()
    assert wait_for(lambda: len(recorder.names()) >= 2)
    assert recorder.names() == ["SIGHUP", "SIGHUP"]


def test_vim_style_save_sends_one_hup(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    w = start_watchd(one_liner(recorder, src, "--debounce", "100ms"))
    # what vim does with backupcopy=no: swap file, 4913 probe, backup rename, new file, drop backup
    swap = src / ".app.py.swp"
    swap.write_bytes(b"\0" * 4096)
    probe = src / "4913"
    probe.write_text("")
    probe.unlink()
    os.rename(src / "app.py", src / "app.py~")
    (src / "app.py").write_text("x = 2\n")
    (src / "app.py~").unlink()
    swap.write_bytes(b"\1" * 4096)
    swap.unlink()
    assert wait_for(lambda: len(recorder.names()) >= 1)
    (src / "sentinel.py").write_text("")
    assert wait_for(lambda: len(recorder.names()) >= 2)
    assert recorder.names() == ["SIGHUP", "SIGHUP"]
    assert w.wait_log("sentinel.py changed;")
    first = next(line for line in w.log().splitlines() if "sent HUP" in line)
    assert "app.py changed;" in first  # the backup and swap files are not mentioned


def test_ignored_paths_send_nothing(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    w = start_watchd(one_liner(recorder, src, "-i", "tests/**"))
    for rel in (
        ".git/index.py",
        "__pycache__/app.cpython-311.py",
        "node_modules/pkg/index.py",
        ".venv/lib/site.py",
        "tests/test_app.py",
        "notes.txt",
        "app.py~",
        ".#app.py",
    ):
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("ignored\n")
    (src / "app.py").read_text()  # reading does not count
    (src / "emptydir").mkdir()  # nor does an empty directory
    # inotify delivers in order: a wrong event would land in the sentinel's batch, or before it
    (src / "sentinel.py").write_text("")
    assert wait_for(lambda: len(recorder.names()) >= 1)
    assert w.wait_log("sent HUP")
    assert recorder.names() == ["SIGHUP"]
    line = next(line for line in w.log().splitlines() if "sent HUP" in line)
    assert "sentinel.py changed;" in line, line  # alone: no ignored path was in the batch


@pytest.mark.linux_only(
    "the live FSEvents double of the macOS lane watches a new directory with inotify once it appears, "
    "so a 5,000-file burst into it is not always counted whole (a lane run said fewer than 5,000)"
)
def test_burst_of_5000_writes_is_one_hup_after_the_last(
    src: Path, recorder: Recorder, start_watchd: type[Watchd]
) -> None:
    # a 300 ms debounce: the burst is one batch even when this process is not scheduled for a
    # while between two writes (the default 50 ms closed it mid-burst under a CPU hog)
    w = start_watchd(one_liner(recorder, src, "--max-delay", "20s", "--debounce", "300ms"))
    burst = src / "burst"
    burst.mkdir()
    for i in range(5000):
        (burst / f"m{i}.py").write_text("x")
    last_write = time.time()
    assert wait_for(lambda: len(recorder.names()) >= 1, timeout=20)
    (hup_at,) = [t for _, t in recorder.signals()]
    assert hup_at >= last_write
    assert w.wait_log("and 4999 more changed; sent HUP")
    (src / "sentinel.py").write_text("")
    assert wait_for(lambda: len(recorder.names()) >= 2)
    assert recorder.names() == ["SIGHUP", "SIGHUP"]
    assert w.wait_log("sentinel.py changed; sent HUP")


def test_new_subdirectory_is_watched(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    start_watchd(one_liner(recorder, src))
    sub = src / "pkg" / "deep"
    sub.mkdir(parents=True)
    (sub / "mod.py").write_text("")  # before or after the new directory's watch: both are seen
    assert wait_for(lambda: len(recorder.names()) == 1)
    (sub / "mod.py").write_text("changed")
    assert wait_for(lambda: len(recorder.names()) == 2)


def test_root_deleted_and_recreated(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    w = start_watchd(one_liner(recorder, src))
    shutil.rmtree(src)
    assert w.wait_log("was deleted or moved")
    assert wait_for(lambda: len(recorder.names()) == 1)  # deleting app.py is a change
    src.mkdir()
    assert w.wait_log("appeared; watching it")
    (src / "new.py").write_text("")
    assert wait_for(lambda: len(recorder.names()) == 2)
    assert w.log().count("was deleted or moved") == 1  # logged once


def test_root_missing_at_start_is_picked_up(
    tmp_path: Path, recorder: Recorder, start_watchd: type[Watchd]
) -> None:
    later = tmp_path / "later"
    config = tmp_path / "watchd.yaml"  # a one-liner refuses a path that does not exist: a config waits
    config.write_text(f"watches:\n  w:\n    paths: [{later}]\n    pidfile: {recorder.pidfile}\n")
    w = start_watchd(["--config", str(config)])
    assert "does not exist yet" in w.log()
    later.mkdir()
    (later / "a.py").write_text("")  # may land before the watch: the appearance scan reports it
    assert wait_for(lambda: len(recorder.names()) == 1)
    assert w.wait_log("appeared; watching it")
    (later / "b.py").write_text("")
    assert wait_for(lambda: len(recorder.names()) == 2)


BAD_PIDFILES = [
    ("abc\n", "does not hold a PID"),
    ("12 13\n", "does not hold a PID"),
    ("0x10\n", "does not hold a PID"),
    ("", "is empty"),
]


@pytest.mark.parametrize(("content", "message"), BAD_PIDFILES)
def test_bad_pidfile_content_is_refused(
    content: str, message: str, src: Path, recorder: Recorder, start_watchd: type[Watchd]
) -> None:
    w = start_watchd(one_liner(recorder, src, "--pidfile-wait", "200ms"))
    recorder.pidfile.write_text(content)
    (src / "app.py").write_text("x = 2\n")
    assert w.wait_log(message)
    assert w.alive()
    assert recorder.names() == []
    # the daemon goes on: a good pidfile and the next change reload
    recorder.pidfile.write_text(f"{recorder.pid}\n")
    (src / "app.py").write_text("x = 3\n")
    assert wait_for(lambda: recorder.names() == ["SIGHUP"])


def test_stale_pidfile_then_server_back(
    tmp_path: Path, src: Path, recorder: Recorder, start_watchd: type[Watchd]
) -> None:
    w = start_watchd(one_liner(recorder, src))
    recorder.stop()  # the pidfile stays behind, naming a PID that is gone
    (src / "app.py").write_text("x = 2\n")
    assert w.wait_log("no process with PID")
    assert w.alive()
    again = Recorder(tmp_path)  # same pidfile path, new PID
    try:
        (src / "app.py").write_text("x = 3\n")
        assert wait_for(lambda: again.names() == ["SIGHUP"])
    finally:
        again.stop()


def test_reused_pid_is_refused(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    innocent = subprocess.Popen(
        [
            sys.executable,
            str(HELPERS / "sigrecorder.py"),
            str(tmp_path / "own.pid"),
            str(tmp_path / "innocent.signals"),
        ],
        start_new_session=True,
    )
    try:
        assert wait_for((tmp_path / "own.pid").exists)
        pidfile = tmp_path / "old.pid"
        pidfile.write_text(f"{innocent.pid}\n")
        hour_ago = time.time() - 3600
        os.utime(pidfile, (hour_ago, hour_ago))  # written long before this process started
        w = start_watchd(["-p", "*.py", "--pidfile", str(pidfile), str(src)])
        (src / "app.py").write_text("x = 2\n")
        assert w.wait_log("the PID was reused")
        assert (tmp_path / "innocent.signals").read_text() == ""
        assert w.alive()
    finally:
        stop_process(innocent)


def test_expect_mismatch_is_refused(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    w = start_watchd(one_liner(recorder, src, "--expect", "gunicorn"))
    (src / "app.py").write_text("x = 2\n")
    assert w.wait_log("is not the expected process")
    assert recorder.names() == []
    assert w.alive()


def test_own_pid_is_refused(src: Path, tmp_path: Path, start_watchd: type[Watchd]) -> None:
    pidfile = tmp_path / "self.pid"
    w = start_watchd(["-p", "*.py", "--pidfile", str(pidfile), str(src)])
    pidfile.write_text(f"{w.proc.pid}\n")
    (src / "app.py").write_text("x = 2\n")
    assert w.wait_log("is watchd itself")
    assert w.alive()


def test_other_signal_by_number_and_name(src: Path, recorder: Recorder, start_watchd: type[Watchd]) -> None:
    start_watchd(one_liner(recorder, src, "--signal", "usr1"))
    (src / "app.py").write_text("x = 2\n")
    assert wait_for(lambda: recorder.names() == ["SIGUSR1"])


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return r.returncode == 0


@pytest.mark.root
@pytest.mark.skipif(not _can_unshare(), reason="needs unshare --pid (root or user namespaces)")
@pytest.mark.parametrize("content", ["-1", "0", "1", "-2"])
def test_dangerous_pids_refused_inside_a_pid_namespace(tmp_path: Path, content: str) -> None:
    """PID 0/1/negative: run watchd in a private PID namespace, so a bug cannot reach this machine.

    Inside, a recorder (which would receive a wrong kill(-1)/kill(0)/process-group signal)
    and watchd run under a shell that is PID 1 of the namespace.
    """
    src = tmp_path / "src"
    src.mkdir()
    pidfile = tmp_path / "bad.pid"
    pidfile.write_text(content + "\n")
    rec_pid, rec = tmp_path / "rec.pid", tmp_path / "rec.signals"
    log = tmp_path / "watchd.log"
    script = f"""
        {sys.executable} {HELPERS / "sigrecorder.py"} {rec_pid} {rec} &
        exec {WATCHD} -p '*.py' --pidfile {pidfile} {src} >{log} 2>&1
    """
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", script],
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: log.exists() and "ready" in log.read_text(), timeout=10)
        assert wait_for(rec_pid.exists)
        (src / "app.py").write_text("x = 1\n")
        assert wait_for(lambda: f"holds PID {int(content)}: refused" in log.read_text()), log.read_text()
        assert rec.read_text() == ""
        assert proc.poll() is None  # watchd (and its namespace) still running
    finally:
        stop_process(proc)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_stop_signals_exit_codes(
    src: Path, recorder: Recorder, start_watchd: type[Watchd], sig: int, code: int
) -> None:
    w = start_watchd(one_liner(recorder, src))
    w.signal(sig)
    assert w.wait(timeout=10) == code
    assert "Traceback" not in w.log()


def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "dev.yaml"
    cfg.write_text("watches:\n  api:\n    paths: [src]\n    pidfile: x.pid\n    signal: HUPP\n")
    r = subprocess.run(
        [WATCHD, "--config", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"watchd: {cfg}:5:13: watches.api.signal: "
        "unknown signal 'HUPP' (use a name like HUP, USR1 or a number)"
    )
    assert r.stdout == ""


def test_python_dash_m_works(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "watchd", "--version"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0
    assert r.stdout.startswith("watchd ")


def test_zombie_is_refused(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    child = subprocess.Popen(["true"])  # exits at once; not reaped until the end: a zombie
    try:
        assert wait_for(lambda: proc_state(child.pid) == "Z")
        pidfile = tmp_path / "zombie.pid"
        pidfile.write_text(f"{child.pid}\n")
        w = start_watchd(["-p", "*.py", "--pidfile", str(pidfile), str(src)])
        (src / "app.py").write_text("x = 2\n")
        assert w.wait_log(f"PID {child.pid} (true) has exited (zombie)")
        assert w.alive()
    finally:
        child.wait()


def _can_drop_privileges() -> bool:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", WATCHD, "--version"],
        capture_output=True,
        check=False,
    )
    return r.returncode == 0


@pytest.mark.root
@pytest.mark.skipif(not _can_drop_privileges(), reason="needs root and setpriv to run watchd as nobody")
def test_permission_denied_is_reported(src: Path, recorder: Recorder, tmp_path: Path) -> None:
    """watchd as `nobody` asked to signal a root-owned process: EPERM, reported as such."""
    shared = Path(tempfile.mkdtemp(prefix="watchd-eperm-"))
    try:
        shared.chmod(0o755)
        pidfile = shared / "server.pid"
        pidfile.write_text(f"{recorder.pid}\n")
        os.utime(pidfile, (recorder.pidfile.stat().st_mtime,) * 2)
        watched = shared / "src"
        watched.mkdir()
        watched.chmod(0o777)
        log = tmp_path / "watchd.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    WATCHD,
                    "-p",
                    "*.py",
                    "--pidfile",
                    str(pidfile),
                    str(watched),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
            )
        try:
            assert wait_for(lambda: "ready" in log.read_text(), timeout=10), log.read_text()
            (watched / "app.py").write_text("")
            assert wait_for(lambda: "permission denied sending HUP" in log.read_text()), log.read_text()
            assert recorder.names() == []
            assert proc.poll() is None
        finally:
            stop_process(proc)
    finally:
        shutil.rmtree(shared)
