"""Signal the process named by a pidfile: the graceful reload of gunicorn and uWSGI.

The pidfile is re-read at every trigger (servers rewrite it: gunicorn on every HUP, and a USR2
upgrade leaves a moment with none), and what it names is checked before `kill`, because a
wrong PID here is a signal to the wrong process:

- one decimal integer (surrounding whitespace allowed), else refused;
- PID 0, 1 or negative refused: kill(0) hits watchd's own group, kill(-1) every process;
- watchd's own PID refused;
- the process must exist and not be a zombie (kill(pid, 0) succeeds on zombies: /proc says);
- it must have started before the pidfile was last written, else the PID was reused;
- its command line must contain `expect`, when set.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchd import procfs
from watchd.actions import Context, confirm
from watchd.actions.confirm import Confirmation
from watchd.changes import Batch
from watchd.config import OnBusy, SignalAction, signal_name
from watchd.errors import ActionError

log = logging.getLogger(__name__)

_PID = re.compile(rb"[+-]?\d+")
_RETRY_EVERY = 0.025
_PID_MAX = 2**31 - 1  # pid_t is a C int: os.kill raises OverflowError above it
# /proc start times have clock-tick (10 ms) resolution; allow for that and a little skew.
_START_TOLERANCE = 0.1


@dataclass(frozen=True, slots=True)
class Target:
    pid: int
    name: str  # the kernel's short process name (comm)
    cmdline: str


def read_pidfile(pidfile: Path) -> tuple[int, float] | None:
    """(pid, mtime) from the pidfile, or None if it is missing or empty (the caller retries)."""
    try:
        with open(pidfile, "rb") as f:
            data = f.read(4096)
            mtime = os.fstat(f.fileno()).st_mtime
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ActionError(
            f"pidfile {pidfile} is a directory (point pidfile at the file the server writes)"
        ) from None
    except PermissionError:
        raise ActionError(f"cannot read pidfile {pidfile}: permission denied") from None
    except OSError as exc:
        raise ActionError(f"cannot read pidfile {pidfile}: {exc.strerror}") from None
    text = data.strip()
    if not text:
        return None
    if not _PID.fullmatch(text):
        shown = text[:40].decode("utf-8", "backslashreplace")
        raise ActionError(f"pidfile {pidfile} does not hold a PID: {shown!r} (expected one decimal number)")
    pid = int(text)
    if pid == 0:
        raise ActionError(
            f"pidfile {pidfile} holds PID 0: refused (kill(0) would signal watchd's own process group)"
        )
    if pid == 1:
        raise ActionError(f"pidfile {pidfile} holds PID 1: refused (that is init, not a server)")
    if pid < 0:
        raise ActionError(
            f"pidfile {pidfile} holds PID {pid}: refused (a negative PID signals a whole process group; "
            "-1 every process)"
        )
    if pid > _PID_MAX:
        raise ActionError(f"pidfile {pidfile} holds {pid}: refused (larger than any PID)")
    return pid, mtime


def inspect_process(pid: int, pidfile_mtime: float | None = None) -> Target:
    """Check that `pid` is a live process that could have written the pidfile; describe it."""
    if pid == os.getpid():
        raise ActionError(f"PID {pid} is watchd itself: refused (the pidfile must name the server)")
    if not procfs.available():  # macOS: existence is all we can check
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise ActionError(f"no process with PID {pid} (stale pidfile? is the server running?)") from None
        except PermissionError:
            pass
        return Target(pid, "?", "")
    gone = ActionError(f"no process with PID {pid} (stale pidfile? is the server running?)")
    try:
        stat = procfs.read_stat(pid)
        if stat is None:
            raise gone
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline_raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise gone from None
    except OSError as exc:
        raise ActionError(f"cannot inspect PID {pid}: {exc.strerror}") from None
    name = stat.name
    if stat.exited:
        raise ActionError(f"PID {pid} ({name}) has exited (zombie): not signalled; is the server restarting?")
    if pidfile_mtime is not None:
        started = stat.start_ticks / os.sysconf("SC_CLK_TCK")  # seconds since boot
        boot_offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        written = pidfile_mtime - boot_offset
        if started > written + _START_TOLERANCE:
            raise ActionError(
                f"PID {pid} ({name}) started {started - written:.1f} s after the pidfile was written: "
                "the PID was reused by another process (stale pidfile); not signalled"
            )
    argv = [a.decode("utf-8", "backslashreplace") for a in cmdline_raw.rstrip(b"\0").split(b"\0")]
    return Target(pid, program_name(name, argv), " ".join(argv))


_INTERPRETER = re.compile(r"^(python|pypy)[\d.]*$")


def program_name(comm: str, argv: list[str]) -> str:
    """A name for log lines: the kernel's, or for `python3 /venv/bin/gunicorn ...` the script's."""
    if _INTERPRETER.match(comm) and len(argv) > 1:
        rest = argv[1:]
        if rest[0] == "-m" and len(rest) > 1:
            return rest[1]
        if not rest[0].startswith("-"):
            return os.path.basename(rest[0])
    return comm


class PidfileSignaller:
    """The signal action. `ctx.kill` is injectable so PID 0/1/-1 paths are testable safely."""

    on_busy = OnBusy.QUEUE
    grace = 0.0
    early = None

    def __init__(self, action: SignalAction, ctx: Context) -> None:
        self.name = ctx.name
        self.action = action
        self.base = ctx.base
        self.dry_run = ctx.dry_run
        self.kill = ctx.kill
        self.not_done = f"{signal_name(action.signal)} not sent"
        self._confirmation: Confirmation | None = None

    def start(self) -> None:
        pass

    def prepare(self, batch: Batch, stop: threading.Event) -> None:
        pass

    def forget(self) -> None:
        pass

    def status(self) -> str | None:
        return None

    def close(self, deadline: float) -> None:
        if self._confirmation is not None:
            self._confirmation.cancel.set()
            self._confirmation.join(max(0.0, deadline - time.monotonic()))

    def resolve(self, stop: threading.Event) -> Target:
        """Read and validate the pidfile, waiting up to `pidfile_wait` for one to appear."""
        deadline = time.monotonic() + self.action.pidfile_wait
        while True:
            got = read_pidfile(self.action.pidfile)
            if got is not None:
                pid, mtime = got
                target = inspect_process(pid, mtime)
                if self.action.expect and self.action.expect not in target.cmdline:
                    raise ActionError(
                        f"PID {pid} ({target.name}) is not the expected process: its command line "
                        f"{target.cmdline[:80]!r} does not contain {self.action.expect!r}; not signalled"
                    )
                return target
            if time.monotonic() >= deadline or stop.is_set():
                exists = self.action.pidfile.exists()
                waited = f"waited {self.action.pidfile_wait:g} s"
                if exists:
                    raise ActionError(
                        f"pidfile {self.action.pidfile} is empty ({waited}; is the server starting?)"
                    )
                raise ActionError(
                    f"pidfile {self.action.pidfile} does not exist ({waited}; is the server running "
                    "and writing it, e.g. gunicorn --pid FILE?)"
                )
            stop.wait(_RETRY_EVERY)

    def execute(self, batch: Batch, stop: threading.Event) -> str | None:
        sig = signal_name(self.action.signal)
        changed = batch.what(self.base)
        started = time.monotonic()
        try:
            target = self.resolve(stop)
            if self.dry_run:
                log.info(
                    "%s: %s; would send %s to %s (pid %d) [dry run]",
                    self.name,
                    changed,
                    sig,
                    target.name,
                    target.pid,
                )
                return f"would send {sig} to {target.name} (pid {target.pid})"
            follow = self.action.confirm and procfs.available()
            kids = confirm.children(target.pid) if follow else {}
            before = confirm.settled(kids)
            try:
                self.kill(target.pid, self.action.signal)
            except PermissionError:
                raise ActionError(
                    f"permission denied sending {sig} to PID {target.pid} ({target.name}): "
                    "it belongs to another user; run watchd as that user"
                ) from None
            except ProcessLookupError:
                raise ActionError(f"PID {target.pid} ({target.name}) exited before the signal") from None
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    raise ActionError(f"permission denied sending {sig} to PID {target.pid}") from None
                raise ActionError(f"sending {sig} to PID {target.pid} failed: {exc.strerror}") from None
        except ActionError as exc:
            log.error("%s: %s; %s not sent: %s", self.name, changed, sig, exc)
            return f"{sig} not sent: {exc}"
        took = (time.monotonic() - started) * 1000
        log.info(
            "%s: %s; sent %s to %s (pid %d) in %.0f ms%s",
            self.name,
            changed,
            sig,
            target.name,
            target.pid,
            took,
            f"; waiting for its {len(before)} workers to be replaced"
            if before
            else "; cannot confirm a reload: its children all started less than "
            f"{confirm.SETTLED:g} s ago (a shell loop's, or a reload under way)"
            if kids
            else "",
        )
        if self._confirmation is not None:
            self._confirmation.cancel.set()  # superseded by this signal
            self._confirmation = None
        if before:
            self._confirmation = Confirmation(
                self.name,
                process=target.name,
                pid=target.pid,
                signame=sig,
                before=before,
                timeout=self.action.confirm_timeout,
            )
            self._confirmation.start()
        return f"sent {sig} to {target.name} (pid {target.pid})"
