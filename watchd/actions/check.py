"""The check gate: a command that must succeed before the action runs.

Typical checks: `python -m compileall -q src` or `gunicorn --check-config app:app`, so a save
with a syntax error never reloads a server into code that cannot import. The check gets the
same environment as commands and runs in the watch's `cwd`; its output is kept (a temporary
file, so a chatty check cannot block on a pipe) and the last lines are logged when it fails.
"""

from __future__ import annotations

import logging
import threading
import time

from watchd.actions import Action, Context
from watchd.actions.process import KILL_WAIT, batch_environment, run_child
from watchd.changes import Batch
from watchd.config import Check, OnBusy, Stop, command_for_log, format_duration

log = logging.getLogger(__name__)

TAIL_LINES = 10
STOP = Stop()  # a check is stopped (shutdown, restart) as commands are by default
_STOPPED = "stopped"  # the check was stopped (shutdown): nothing to report
_TAIL_BYTES = 8192


class Checked:
    """Runs `check` first; carries out the wrapped action only if the check exits 0."""

    def __init__(self, check: Check, inner: Action, ctx: Context) -> None:
        self.name = ctx.name
        self.check = check
        self.inner = inner
        self.what = inner.not_done  # for the log line: "HUP not sent", "command not run"
        self.base = ctx.base
        self.shown = command_for_log(check.command)
        self._verdict: tuple[float, str | None] | None = None  # (when the check started, outcome)

    # the wrapped action's lifecycle, unchanged
    @property
    def on_busy(self) -> OnBusy:
        return self.inner.on_busy

    @property
    def not_done(self) -> str:
        return self.inner.not_done

    @property
    def grace(self) -> float:
        return max(self.inner.grace, STOP.timeout + KILL_WAIT)

    def start(self) -> None:
        self.inner.start()

    def status(self) -> str | None:
        return self.inner.status()

    def close(self, deadline: float) -> None:
        self.inner.close(deadline)

    @property
    def early(self) -> float | None:
        return self.inner.early

    def prepare(self, batch: Batch, stop: threading.Event) -> None:
        """Check the forming batch first: the next app starts early only on code that passes.
        The verdict stands for `execute` if nothing changed after the check started."""
        started = time.monotonic()
        outcome = self._check(batch, stop)
        self._verdict = (started, outcome)
        if outcome is None:
            self.inner.prepare(batch, stop)

    def forget(self) -> None:
        self.inner.forget()

    def execute(self, batch: Batch, stop: threading.Event) -> str | None:
        verdict, self._verdict = self._verdict, None
        if verdict is not None and batch.last_at < verdict[0]:
            outcome = verdict[1]  # this very batch was checked by `prepare` (and logged if it failed)
        else:
            outcome = self._check(batch, stop)
        if outcome is not None:
            self.inner.forget()  # an app started early on code that now fails the check goes
            return None if outcome == _STOPPED else outcome
        return self.inner.execute(batch, stop)

    def _check(self, batch: Batch, stop: threading.Event) -> str | None:
        """Run the check; None if it passed, else the outcome (a failure is logged)."""
        changed = batch.what(self.base)
        import tempfile  # noqa: PLC0415 (lazy, as in watchd.actions.process)

        with tempfile.TemporaryFile() as output, batch_environment(self.name, batch) as env:
            try:
                done = run_child(
                    self.check.command,
                    cwd=self.check.cwd,
                    env=env,
                    stop=stop,
                    timeout=self.check.timeout,
                    how=STOP,
                    output=output,
                )
            except OSError as exc:
                log.error(
                    "%s: %s; check %s could not start: %s (check the command and cwd %s); %s",
                    self.name,
                    changed,
                    self.shown,
                    exc.strerror or exc,
                    self.check.cwd,
                    self.what,
                )
                return f"check could not start; {self.what}"
            if done.stopped:
                return _STOPPED
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
                    "%s: %s; check %s failed (%s in %.2f s); %s%s",
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
        return None
