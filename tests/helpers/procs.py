"""Helpers for tests that run real processes: bounded waits, a signal recorder, watchd itself."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

HELPERS = Path(__file__).resolve().parent
WATCHD = str(Path(sys.executable).parent / "watchd")  # the installed console script


def wait_for(condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `condition` until it is truthy or `timeout` passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# psutil's process statuses as the state letters of ps and /proc/PID/stat
_STATES = {
    psutil.STATUS_RUNNING: "R",
    psutil.STATUS_SLEEPING: "S",
    psutil.STATUS_DISK_SLEEP: "D",
    psutil.STATUS_STOPPED: "T",
    psutil.STATUS_TRACING_STOP: "t",
    psutil.STATUS_ZOMBIE: "Z",
    psutil.STATUS_DEAD: "X",
    psutil.STATUS_IDLE: "I",
}


def proc_state(pid: int) -> str | None:
    """The process's state letter (R, S, Z ...; "?" for one ps has no letter for), or None if it
    is gone. From psutil, not /proc: the helpers work on macOS and in the macOS-profile lane."""
    try:
        return _STATES.get(psutil.Process(pid).status(), "?")
    except psutil.NoSuchProcess:  # (psutil answers "zombie" for a zombie rather than raise)
        return None


def pid_alive(pid: int) -> bool:
    """Whether `pid` exists and has not exited (a zombie or dead one only awaits its reaping)."""
    return proc_state(pid) not in (None, "Z", "X")


def group_pids(pgid: int) -> list[int]:
    """The PIDs of process group `pgid`'s members that have not exited (zombies left out)."""
    out = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and proc_state(pid) not in (None, "Z", "X"):
                out.append(pid)
        except ProcessLookupError:
            continue
    return sorted(out)


def rss_kib(pid: int) -> int:
    """The resident set size of `pid` in KiB (psutil: /proc/PID/statm on Linux, the task's info on
    macOS)."""
    return int(psutil.Process(pid).memory_info().rss // 1024)


def zombie_children(pid: int) -> list[int]:
    """The PIDs of `pid`'s children that have exited and wait to be reaped."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if proc_state(c.pid) == "Z"]


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
    """Stop a process this test started (its own process group), escalating to SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


class Recorder:
    """A stand-in server (tests/helpers/sigrecorder.py) that records the signals it receives."""

    def __init__(self, directory: Path, name: str = "server") -> None:
        self.pidfile = directory / f"{name}.pid"
        self.record = directory / f"{name}.signals"
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "sigrecorder.py"), str(self.pidfile), str(self.record)],
            start_new_session=True,
        )
        # its own PID: a stale pidfile of an earlier recorder may be there already
        if not wait_for(lambda: self._pidfile_text() == str(self.proc.pid)):
            raise RuntimeError("sigrecorder did not write its pidfile")
        self.pid = self.proc.pid

    def _pidfile_text(self) -> str:
        try:
            return self.pidfile.read_text().strip()
        except FileNotFoundError:
            return ""

    def signals(self) -> list[tuple[str, float]]:
        try:
            lines = self.record.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            name, _, when = line.partition(" ")
            out.append((name, float(when)))
        return out

    def names(self) -> list[str]:
        return [n for n, _ in self.signals()]

    def stop(self) -> None:
        stop_process(self.proc)


def profiled(env: dict[str, str] | None) -> dict[str, str] | None:
    """`env` for a process this test starts, with the macOS profile first on its PYTHONPATH when
    the tests run in it (tests/macos_lane.sh), also where a test set a PYTHONPATH of its own (the
    profile imports the sitecustomize it hides). Otherwise `env` as it is (None: inherited)."""
    profile = getattr(sys.modules.get("sitecustomize"), "__file__", None)
    if env is None or not getattr(sys.modules.get("sitecustomize"), "ACTIVE", False) or profile is None:
        return env
    here = str(Path(profile).parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here in paths:
        return env
    return {**env, "PYTHONPATH": os.pathsep.join([here, *paths])}


# The directories tests/conftest.py gives the tests (the runtime directory per test, the cache
# directory per session), set in this process's environment, which a process started with an
# environment of its own still gets unless the test set them.
PRIVATE = ("XDG_RUNTIME_DIR", "XDG_CACHE_HOME")


def child_env(env: dict[str, str] | None) -> dict[str, str] | None:
    """`env` for a process a test starts (watchd, or a terminal it runs in): the test's private
    directories where `env` names none (`PRIVATE`: each watchd's control socket in the test's
    own runtime directory), then the macOS profile (`profiled`). None: all inherited."""
    if env is not None:
        env = {**{k: os.environ[k] for k in PRIVATE if k in os.environ}, **env}
    return profiled(env)


class Watchd:
    """The installed `watchd` command running as a subprocess, its log in a file.

    Its stdout (where commands' output goes) shares the log file unless `stdout` names another.
    """

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        stdout: Path | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        """`prefix`: what runs watchd (a wrapper that execs it, as `unshare ... sh -c '... exec "$@"'`)."""
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self._stdout = open(stdout, "wb") if stdout is not None else None  # noqa: SIM115 (as _log)
        self.proc = subprocess.Popen(
            [*prefix, WATCHD, *args],
            stdout=self._stdout or self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=child_env(env),
            start_new_session=True,
        )
        if wait_ready and not self.wait_log("ready", timeout=10):
            self.stop()
            raise RuntimeError(f"watchd did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def wait_log(self, text: str, count: int = 1, timeout: float = 5.0) -> bool:
        return wait_for(lambda: self.log().count(text) >= count, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 5.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        code = stop_process(self.proc)
        self._log.close()
        if self._stdout is not None:
            self._stdout.close()
        return code


def wait_workers_settled(pid: int, count: int, timeout: float = 10.0) -> bool:
    """Wait until `pid` has `count` children that count as workers for reload confirmation
    (running for watchd.actions.confirm.SETTLED seconds)."""
    from watchd.actions.confirm import children, settled  # noqa: PLC0415

    return wait_for(lambda: len(settled(children(pid))) >= count, timeout)
