"""Run a command for a batch. Changed paths reach it through the environment, never its text.

Environment given to the command (see README, "How changed paths reach commands"):

    WATCHD_WATCH         the watch's name
    WATCHD_COUNT         how many distinct paths changed
    WATCHD_PATH          the first changed path, exactly (any bytes but NUL)
    WATCHD_CHANGED       every changed path, one per line, capped at 32 KiB (whole lines)
    WATCHD_TRUNCATED     "1" if WATCHD_CHANGED was capped, else "0"
    WATCHD_CHANGED_FILE  a file listing every path, each followed by a NUL byte: exact for any name
    watch_src_path, watch_dest_path, watch_event_type, watch_object
                         the first change, under watchmedo's names, so its shell-command lines work

The command runs in its own session and process group with stdin from /dev/null; timeouts,
restarts and shutdown stop the whole group: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time

from watchd.changes import Batch, ChangeKind
from watchd.config import CommandAction, format_duration

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
    fd, name = tempfile.mkstemp(prefix="watchd-", suffix=".changed")
    with os.fdopen(fd, "wb") as f:
        for p in paths:
            f.write(os.fsencode(p))
            f.write(b"\0")
    return name


def stop_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the command's process group, SIGKILL it after `grace` if it lingers."""
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


def _describe_status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


class CommandRunner:
    """Executor for `CommandAction`."""

    def __init__(
        self, name: str, action: CommandAction, *, base: str | None = None, dry_run: bool = False
    ) -> None:
        self.name = name
        self.action = action
        self.base = base
        self.dry_run = dry_run
        cmd = action.command
        self.argv: list[str] = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        self.shown = cmd if isinstance(cmd, str) else " ".join(cmd)

    def execute(self, batch: Batch, stop: threading.Event) -> None:
        changed = batch.summary(self.base)
        if self.dry_run:
            log.info("%s: %s changed; would run %s [dry run]", self.name, changed, self.shown)
            return
        list_file = write_list_file(batch.paths)
        try:
            self._run(batch, stop, changed, list_file)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(list_file)

    def _run(self, batch: Batch, stop: threading.Event, changed: str, list_file: str) -> None:
        env = dict(os.environ)
        env.update(changed_environment(self.name, batch, list_file))
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.action.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            log.error(
                "%s: %s changed; could not start %s: %s (check the command and cwd %s)",
                self.name,
                changed,
                self.shown,
                exc.strerror or exc,
                self.action.cwd,
            )
            return
        timeout = self.action.timeout
        outcome = None
        while True:
            try:
                proc.wait(_POLL)
                break
            except subprocess.TimeoutExpired:
                pass
            if stop.is_set():
                stop_group(proc)
                outcome = "stopped"
                break
            if timeout is not None and time.monotonic() - started >= timeout:
                stop_group(proc)
                outcome = "timeout"
                break
        took = time.monotonic() - started
        code = proc.returncode
        if outcome == "stopped":
            log.info("%s: stopped %s after %.2f s", self.name, self.shown, took)
        elif outcome == "timeout":
            assert timeout is not None
            log.warning(
                "%s: %s changed; ran %s: timed out after %s, process group stopped",
                self.name,
                changed,
                self.shown,
                format_duration(timeout),
            )
        elif code == 0:
            log.info("%s: %s changed; ran %s: exit 0 in %.2f s", self.name, changed, self.shown, took)
        else:
            log.warning(
                "%s: %s changed; ran %s: %s in %.2f s",
                self.name,
                changed,
                self.shown,
                _describe_status(code),
                took,
            )
