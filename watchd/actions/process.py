"""Child processes for commands and checks: environment, process groups, timeouts.

Environment given to commands and checks (see README, "How changed paths reach commands"):

    WATCHD_WATCH         the watch's name
    WATCHD_COUNT         how many distinct paths changed
    WATCHD_PATH          the first changed path, exactly (any bytes but NUL)
    WATCHD_CHANGED       every changed path, one per line, capped at 32 KiB (whole lines)
    WATCHD_TRUNCATED     "1" if WATCHD_CHANGED was capped, else "0"
    WATCHD_CHANGED_FILE  a file listing every path, each followed by a NUL byte: exact for any name
    watch_src_path, watch_dest_path, watch_event_type, watch_object
                         the first change, under watchmedo's names, so its shell-command lines work

A child runs in its own session and process group with stdin from /dev/null; timeouts,
restarts and shutdown stop the whole group: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# subprocess and tempfile are imported when a command first runs: a watch that only signals
# never needs them, and they are ~8 ms of every start.

from watchd.changes import Batch, ChangeKind

log = logging.getLogger(__name__)

CHANGED_CAP = 32 * 1024  # bytes; one env string may be 128 KiB on Linux, all of them ~2 MiB
STOP_GRACE = 0.5  # seconds between SIGTERM and SIGKILL for the command's process group
_POLL = 0.02


def changed_environment(name: str, batch: Batch, list_file: str) -> dict[str, str]:
    """The WATCHD_* (and watchmedo-compatible) variables for `batch`."""
    paths = batch.paths
    lines: list[str] = []
    size = 0
    for p in paths:
        n = len(os.fsencode(p)) + 1
        if size + n > CHANGED_CAP:
            break
        lines.append(p)
        size += n
    first = batch.changes[0] if batch.changes else None
    env = {
        "WATCHD_WATCH": name,
        "WATCHD_COUNT": str(len(paths)),
        "WATCHD_PATH": paths[0] if paths else "",
        "WATCHD_CHANGED": "\n".join(lines),
        "WATCHD_TRUNCATED": "1" if len(lines) < len(paths) else "0",
        "WATCHD_CHANGED_FILE": list_file,
        "watch_src_path": first.path if first else "",
        "watch_dest_path": (first.dest or "") if first else "",
        "watch_event_type": first.kind.value if first else "",
        "watch_object": ("directory" if first.is_dir else "file") if first else "",
    }
    if first is not None and first.kind is ChangeKind.MOVED:
        env["watch_event_type"] = "moved"
    return env


def write_list_file(paths: tuple[str, ...]) -> str:
    """Write every path, NUL-terminated, to a private temporary file; return its name."""
    import tempfile  # noqa: PLC0415 (lazy, see the module's imports)

    fd, name = tempfile.mkstemp(prefix="watchd-", suffix=".changed")
    with os.fdopen(fd, "wb") as f:
        for p in paths:
            f.write(os.fsencode(p))
            f.write(b"\0")
    return name


def stop_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the command's process group, SIGKILL it after `grace` if it lingers."""
    import subprocess  # noqa: PLC0415 (lazy, see the module's imports)

    pgid = proc.pid  # start_new_session=True: the child leads its own group
    if pgid <= 1:  # never: but a wrong value here would signal everything
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            # the leader is gone; take any of its group still running with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait()


def describe_status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def argv_for(command: str | tuple[str, ...]) -> list[str]:
    """A string runs with /bin/sh -c; a sequence runs as it is, without a shell."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


@contextlib.contextmanager
def batch_environment(name: str, batch: Batch) -> Iterator[dict[str, str]]:
    """The environment for a command or check answering `batch`; the list file lives as long as this."""
    list_file = write_list_file(batch.paths)
    try:
        env = dict(os.environ)
        env.update(changed_environment(name, batch, list_file))
        yield env
    finally:
        with contextlib.suppress(OSError):
            os.unlink(list_file)


@dataclass(frozen=True, slots=True)
class Finished:
    """How a child process ended."""

    code: int | None  # exit status, negative for a signal; None when watchd stopped it
    took: float
    timed_out: bool = False
    stopped: bool = False  # by the stop event (restart, shutdown)

    @property
    def ok(self) -> bool:
        return self.code == 0

    def status(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.stopped:
            return "stopped"
        assert self.code is not None
        return describe_status(self.code)


def run_child(
    command: str | tuple[str, ...],
    *,
    cwd: Path,
    env: dict[str, str],
    stop: threading.Event,
    timeout: float | None,
    output: IO[bytes] | None = None,
) -> Finished:
    """Run `command` to the end, a timeout, or `stop`; its process group goes with it.

    Output goes to `output` (a file) or, if None, to watchd's own stdout/stderr.
    Raises OSError if it cannot start (no such program, no such cwd).
    """
    import subprocess  # noqa: PLC0415 (lazy, see the module's imports)

    started = time.monotonic()
    proc = subprocess.Popen(
        argv_for(command),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
    )
    while True:
        try:
            proc.wait(_POLL)
            return Finished(proc.returncode, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            pass
        if stop.is_set():
            stop_group(proc)
            return Finished(None, time.monotonic() - started, stopped=True)
        if timeout is not None and time.monotonic() - started >= timeout:
            stop_group(proc)
            return Finished(None, time.monotonic() - started, timed_out=True)
