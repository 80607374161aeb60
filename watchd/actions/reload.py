"""`reload: SIGNAL` on a run watch: reload the app watchd runs with a signal instead of restarting it.

gunicorn, uWSGI, nginx and Prometheus reload on HUP: a new generation of workers on the new code
and config, the master (and the listening socket, and the connections it serves) kept. A `run`
watch with `reload` sends that signal to its app (the process watchd started, which leads the
app's group) for a batch, through the check gate like any action, and follows the reload with the
signal action's confirmation (`watchd.actions.confirm`: the new workers counted). A batch that
changes a file `restart_patterns` match -- what a reload does not re-read: requirements.txt (new
packages), gunicorn.conf.py (the master's own settings) -- restarts the app instead, as does a
batch that finds no app running (it is started).

The signal goes to watchd's own child, by PID: while it has not been reaped its PID is not
anyone else's (Linux holds an exited leader unreaped until its group is gone; see
`watchd.actions.process.Child`), so no pidfile or identity checks are needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from watchd import platform
from watchd.actions import confirm
from watchd.actions.confirm import Confirmations
from watchd.actions.pidfile import program_name
from watchd.actions.pysource import invalidate_bytecode
from watchd.changes import Batch
from watchd.logtext import signal_name
from watchd.matching import Matcher
from watchd.model import RunSettings
from watchd.outcome import Outcome, Result
from watchd.paths import under

if TYPE_CHECKING:
    from watchd.actions.process import Child
    from watchd.stats import Tally

log = logging.getLogger(__name__)


class Reload:
    """A run watch's reloads: which batches they serve, and the signal with its confirmation."""

    def __init__(self, name: str, action: RunSettings, roots: Sequence[Path], tally: Tally | None) -> None:
        assert action.reload is not None
        self.name = name
        self.action = action
        self.signal = action.reload
        self.signame = signal_name(action.reload)
        self._roots = [str(r) for r in roots]
        self._restart = (
            Matcher(action.restart_patterns, ignore_defaults=False) if action.restart_patterns else None
        )
        self._confirmations = Confirmations(name, tally)
        self.program = _program(action.command)  # "gunicorn": the app, as the signal action says it

    def restarting(self, batch: Batch) -> str | None:
        """The first path of `batch` that restart_patterns match (relative to the watch's paths,
        as patterns are; a watched file itself by its name): the app restarts. None: it reloads."""
        if self._restart is None:
            return None
        for path in batch.paths:
            for root in self._roots:
                rel = under(path, root)
                if rel == "":
                    rel = os.path.basename(root)
                if rel is not None and self._restart.matches(rel):
                    return path
        return None

    def send(self, child: Child, batch: Batch, changed: str) -> Outcome | None:
        """Send the signal to the running app `child` and follow its reload; its outcome, or None
        if the app is gone (it exited meanwhile: the caller starts it)."""
        if child.done.is_set():
            return None
        pid = child.pid
        side = platform.current
        try:
            info = side.process_info(pid)
        except OSError:
            info = None
        if info is None or info.exited:
            return None
        shown = self.program
        # the new workers import the changed files: never from a .pyc a same-size save within
        # the same second left looking fresh
        invalidate_bytecode(batch.paths)
        # the generation this signal must retire, however young (a reload may be under way)
        before = confirm.snapshot(pid) if self.action.confirm else None
        try:
            os.kill(pid, self.signal)  # watchd's own unreaped child (see the module's docstring)
        except ProcessLookupError:
            return None
        except OSError as exc:
            failed = Outcome(f"{self.signame} not sent: {exc.strerror}", Result.FAILED)
            log.error(
                "%s: %s; %s not sent to %s (pid %d): %s",
                self.name,
                changed,
                self.signame,
                shown,
                pid,
                exc.strerror,
                extra=failed.log,
            )
            return failed
        waiting = self._confirmations.follow(
            pid,
            info.started,
            process=shown,
            signame=self.signame,
            before=before,
            timeout=self.action.confirm_timeout,
        )
        sent = Outcome(f"sent {self.signame} to {shown} (pid {pid})")
        log.info(
            "%s: %s; sent %s to %s (pid %d) to reload it%s",
            self.name,
            changed,
            self.signame,
            shown,
            pid,
            waiting,
            extra=sent.log,
        )
        return sent

    def close(self, deadline: float) -> None:
        self._confirmations.close(deadline)


def _program(command: str | tuple[str, ...]) -> str:
    """The app's name for log lines, from its command (its process may be named otherwise: a warm
    start runs in watchd's fork server): `gunicorn` for `/venv/bin/gunicorn -c ...`, the script
    for `python app.py`."""
    if isinstance(command, str):
        import shlex  # noqa: PLC0415 (once per watch)

        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        if words and words[0] == "exec":
            words = words[1:]
    else:
        words = list(command)
    if not words:
        return "the app"
    return program_name(os.path.basename(words[0]), words)
