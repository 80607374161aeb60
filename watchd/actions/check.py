"""The check gate: a command that must succeed before the action runs.

Typical checks: `python -m compileall -q src` or `gunicorn --check-config app:app`, so a save
with a syntax error never reloads a server into code that cannot import. The check gets the
same environment as commands and runs in the watch's `cwd`; its output is kept (a temporary
file, so a chatty check cannot block on a pipe) and the last lines are logged when it fails.
"""

from __future__ import annotations

import logging
import threading

from watchd.actions import Executor
from watchd.actions.process import batch_environment, run_child
from watchd.changes import Batch
from watchd.config import Check, command_for_log, format_duration

log = logging.getLogger(__name__)

TAIL_LINES = 10
_TAIL_BYTES = 8192


class CheckedExecutor:
    """Runs `check` first; runs the wrapped executor only if the check exits 0."""

    def __init__(
        self, name: str, check: Check, inner: Executor, *, what: str, base: str | None = None
    ) -> None:
        self.name = name
        self.check = check
        self.inner = inner
        self.what = what  # the action, for the log line: "HUP not sent", "command not run"
        self.base = base
        cmd = check.command
        self.shown = command_for_log(cmd)

    def close(self) -> None:
        self.inner.close()

    def execute(self, batch: Batch, stop: threading.Event) -> str | None:
        changed = batch.summary(self.base)
        import tempfile  # noqa: PLC0415 (lazy, as in watchd.actions.process)

        with tempfile.TemporaryFile() as output, batch_environment(self.name, batch) as env:
            try:
                done = run_child(
                    self.check.command,
                    cwd=self.check.cwd,
                    env=env,
                    stop=stop,
                    timeout=self.check.timeout,
                    output=output,
                )
            except OSError as exc:
                log.error(
                    "%s: %s changed; check %s could not start: %s (check the command and cwd %s); %s",
                    self.name,
                    changed,
                    self.shown,
                    exc.strerror or exc,
                    self.check.cwd,
                    self.what,
                )
                return f"check could not start; {self.what}"
            if done.stopped:
                return None
            if not done.ok:
                size = output.seek(0, 2)
                output.seek(max(0, size - _TAIL_BYTES))
                lines = output.read().decode("utf-8", "replace").splitlines()
                tail = [line for line in lines if line.strip()][-TAIL_LINES:]
                status = (
                    f"timed out after {format_duration(self.check.timeout)}"
                    if done.timed_out
                    else done.status()
                )
                log.warning(
                    "%s: %s changed; check %s failed (%s in %.2f s); %s%s",
                    self.name,
                    changed,
                    self.shown,
                    status,
                    done.took,
                    self.what,
                    "".join(f"\n    | {line}" for line in tail),
                )
                return f"check failed ({status}); {self.what}"
        log.debug("%s: check passed in %.2f s", self.name, done.took)
        return self.inner.execute(batch, stop)
