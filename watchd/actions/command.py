"""Run a command for a batch. Changed paths reach it through the environment, never its text
(the variables are listed in `watchd.actions.process`)."""

from __future__ import annotations

import contextlib
import logging
import threading

from watchd.actions import Context, PerBatch
from watchd.actions.process import batch_environment, clear_screen, run_child
from watchd.changes import Batch
from watchd.logtext import command_for_log, format_duration
from watchd.model import CommandSettings
from watchd.outcome import Outcome, Result

log = logging.getLogger(__name__)


class CommandAction(PerBatch):
    """The command action."""

    not_done = "command not run"

    def __init__(self, action: CommandSettings, ctx: Context) -> None:
        self.name = ctx.name
        self.action = action
        self.base = ctx.base
        self.environment = ctx.environment
        self.output = ctx.output
        self.dry_run = ctx.dry_run
        self.on_busy = action.on_busy
        self.grace = action.stop.grace
        self.shown = command_for_log(action.command)

    # close: a running command is stopped by `execute`, which sees the worker's cancel event

    def execute(self, batch: Batch, cancel: threading.Event) -> str | None:
        changed = batch.what(self.base)
        if self.dry_run:
            log.info("%s: %s; would run %s [dry run]", self.name, changed, self.shown)
            return f"would run {self.shown}"
        if self.action.clear:
            clear_screen()
        env, listed = batch_environment(self.name, batch, self.environment.values())
        with listed, contextlib.ExitStack() as piped:
            output = None
            if self.output is not None:  # several watches share the terminal: [name] before each line
                output = piped.enter_context(self.output.pipe())
                env.setdefault("PYTHONUNBUFFERED", "1")  # a pipe, not a terminal: lines as they come
            try:
                done = run_child(
                    self.action.command,
                    cwd=self.action.cwd,
                    env=env,
                    cancel=cancel,
                    timeout=self.action.timeout,
                    how=self.action.stop,
                    output=output,
                    list_file=listed,
                )
            except OSError as exc:
                failed = Outcome(f"could not start {self.shown}", Result.FAILED)
                log.error(
                    "%s: %s; could not start %s: %s (check the command and cwd %s)",
                    self.name,
                    changed,
                    self.shown,
                    exc.strerror or exc,
                    self.action.cwd,
                    extra=failed.log,
                )
                return failed
        if done.stop_failed:
            result = Result.FAILED
        elif done.stopped:
            result = Result.STOPPED
        elif done.timed_out:
            result = Result.TIMEOUT
        else:
            result = Result.OK if done.ok else Result.FAILED
        outcome = Outcome(f"ran {self.shown}: {done.status()}", result)
        if done.stop_failed:
            log.error(
                "%s: %s; ran %s: could not stop it after %.2f s: %s; it may still be running",
                self.name,
                changed,
                self.shown,
                done.took,
                done.stop_failed,
                extra=outcome.log,
            )
        elif done.stopped:
            log.info("%s: stopped %s after %.2f s", self.name, self.shown, done.took, extra=outcome.log)
        elif done.timed_out:
            assert self.action.timeout is not None
            log.warning(
                "%s: %s; ran %s: timed out after %s, process group stopped",
                self.name,
                changed,
                self.shown,
                format_duration(self.action.timeout),
                extra=outcome.log,
            )
        elif done.ok:
            log.info(
                "%s: %s; ran %s: exit 0 in %.2f s",
                self.name,
                changed,
                self.shown,
                done.took,
                extra=outcome.log,
            )
        else:
            log.warning(
                "%s: %s; ran %s: %s in %.2f s",
                self.name,
                changed,
                self.shown,
                done.status(),
                done.took,
                extra=outcome.log,
            )
        return outcome
