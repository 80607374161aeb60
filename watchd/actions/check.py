"""The check gate: something that must pass before the action runs.

A check is a command (`python -m compileall -q src`, `gunicorn --check-config app:app`) or the
built-in `python`, which compiles the batch's changed `.py` files in-process (no interpreter
start). Either way a save with a syntax error never reloads a server into code that cannot
import. A command check gets the same environment as commands and runs in the watch's `cwd`;
its output is kept (an anonymous or temporary file, so a chatty check cannot block on a pipe)
and the last lines are logged when it fails.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import IO, Protocol

from watchd.actions import Action, Context
from watchd.actions.process import batch_environment, run_child, scratch_file, warn_once
from watchd.actions.pysource import Failure, Sources, compile_all
from watchd.changes import Batch, display_path
from watchd.logtext import command_for_log, format_duration
from watchd.matching import Matcher
from watchd.model import CheckSettings, OnBusy, Stop, Watch

log = logging.getLogger(__name__)

TAIL_LINES = 10
SHOWN_FAILURES = 3  # files whose errors a failed python check logs in full
STOP = Stop()  # a check is stopped (shutdown, restart) as commands are by default
_STOPPED = "stopped"  # the check was stopped (shutdown): nothing to report
_TAIL_BYTES = 8192


class Gate(Protocol):
    def run(self, batch: Batch, cancel: threading.Event) -> str | None:
        """None if the batch may go on; else the outcome (a failure is logged) or _STOPPED."""


def gate(watch: Watch, inner: Action, ctx: Context) -> Checked:
    """`inner` behind the watch's check."""
    what = inner.not_done  # for the log line: "HUP not sent", "command not run"
    if isinstance(watch.check, CheckSettings):
        return Checked(CommandGate(watch.check, ctx, what), inner)
    matcher = Matcher(watch.patterns, watch.ignore, ignore_defaults=watch.ignore_defaults)
    return Checked(PythonGate(Sources(watch.paths, matcher), ctx, what), inner)


class Checked:
    """Runs the gate first; carries out the wrapped action only if it passes."""

    def __init__(self, gate: Gate, inner: Action) -> None:
        self.gate = gate
        self.inner = inner
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
        return max(self.inner.grace, STOP.grace)

    def start(self) -> None:
        self.inner.start()

    def status(self) -> str | None:
        return self.inner.status()

    def close(self, deadline: float) -> None:
        self.inner.close(deadline)

    @property
    def early(self) -> float | None:
        return self.inner.early

    def prepare(self, batch: Batch, cancel: threading.Event) -> None:
        """Check the forming batch first: the next app starts early only on code that passes.
        The verdict stands for `execute` if nothing changed after the check started."""
        started = time.monotonic()
        outcome = self.gate.run(batch, cancel)
        self._verdict = (started, outcome)
        if outcome is None:
            self.inner.prepare(batch, cancel)

    def forget(self) -> None:
        self.inner.forget()

    def execute(self, batch: Batch, cancel: threading.Event) -> str | None:
        verdict, self._verdict = self._verdict, None
        if verdict is not None and batch.last_at < verdict[0]:
            outcome = verdict[1]  # this very batch was checked by `prepare` (and logged if it failed)
        else:
            outcome = self.gate.run(batch, cancel)
        if outcome is not None:
            self.inner.forget()  # an app started early on code that now fails the check goes
            return None if outcome == _STOPPED else outcome
        return self.inner.execute(batch, cancel)


class CommandGate:
    """A command that must exit 0."""

    def __init__(self, check: CheckSettings, ctx: Context, what: str) -> None:
        self.name = ctx.name
        self.check = check
        self.what = what
        self.base = ctx.base
        self.environment = ctx.environment
        self.shown = command_for_log(check.command)

    def run(self, batch: Batch, cancel: threading.Event) -> str | None:
        changed = batch.what(self.base)
        with contextlib.ExitStack() as cleanup:
            output = self._output()
            if output is not None:
                cleanup.enter_context(output)
            env, listed = batch_environment(self.name, batch, self.environment.values())
            cleanup.enter_context(listed)
            try:
                done = run_child(
                    self.check.command,
                    cwd=self.check.cwd,
                    env=env,
                    cancel=cancel,
                    timeout=self.check.timeout,
                    how=STOP,
                    output=output,
                    list_file=listed,
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
                tail = _tail(output) if output is not None else []
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

    def _output(self) -> IO[bytes] | None:
        """A file for the check's output, so its last lines can be logged; None (the output goes
        to watchd's own) if no file can be made."""
        try:
            return scratch_file("watchd-check-output")
        except OSError as exc:
            warn_once(
                self.name,
                "check output",
                "%s: check %s: its output goes to watchd's output, not into the log when it fails: "
                "no file can hold it (%s) (said once)",
                self.name,
                self.shown,
                exc.strerror or exc,
            )
            return None


def _tail(output: IO[bytes]) -> list[str]:
    """The last non-blank lines of a check's output."""
    size = output.seek(0, 2)
    output.seek(max(0, size - _TAIL_BYTES))
    lines = output.read().decode("utf-8", "replace").splitlines()
    return [line for line in lines if line.strip()][-TAIL_LINES:]


class PythonGate:
    """`check: python`: every changed `.py` file must compile, as it would on import.

    A file that failed is checked again with every later batch until it compiles or is gone:
    a save of another file must not reload the server into the broken one.
    """

    def __init__(self, sources: Sources, ctx: Context, what: str) -> None:
        self.name = ctx.name
        self.sources = sources
        self.what = what
        self.base = ctx.base
        self._failing: dict[str, None] = {}  # paths that failed, in the order they did

    def run(self, batch: Batch, cancel: threading.Event) -> str | None:
        started = time.monotonic()
        paths = dict.fromkeys(self.sources.of(batch))
        paths.update(self._failing)
        done = compile_all(iter(paths), cancel)
        took = time.monotonic() - started
        if cancel.is_set():
            return _STOPPED
        failures = done.failures
        self._failing = {f.path: None for f in failures}
        for path, size in done.skipped:
            log.warning(
                "%s: check python skipped %s (%s: compiling it would stop watchd for seconds; "
                "check it with a command, e.g. check: python3 -m py_compile FILE)",
                self.name,
                display_path(path, self.base),
                size,
            )
        if not failures:
            log.debug("%s: check python passed: %d files in %.3f s", self.name, done.count, took)
            return None
        first = failures[0]
        where = display_path(first.path, self.base)
        if len(failures) > 1:
            where += f" and {len(failures) - 1} more"
        log.warning(
            "%s: %s; check python failed (%s in %s, %.2f s); %s%s",
            self.name,
            batch.what(self.base),
            first.error,
            where,
            took,
            self.what,
            _failure_lines(failures),
        )
        return f"check failed ({first.error}); {self.what}"


def _failure_lines(failures: list[Failure]) -> str:
    """What the interpreter would print for the first few files, as indented log lines."""
    lines = [_clip(line) for f in failures[:SHOWN_FAILURES] for line in f.lines]
    if len(failures) > SHOWN_FAILURES:
        lines.append(f"... and {len(failures) - SHOWN_FAILURES} more files that do not compile")
    return "".join(f"\n    | {line}" for line in lines)


def _clip(line: str, width: int = 200) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."
