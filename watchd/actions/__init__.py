"""Actions: what a watch does. One module per kind, behind `Action`; `build` picks the kind.

An action has a lifecycle, driven by its watch's `WatchWorker` (one worker thread per watch):
`start()` when the watches are live (at launch, and for a watch a reload added or changed),
`execute(batch)` for each batch, `close(deadline)` at shutdown or when a reload removes the
watch. Start and close run on the worker's thread too, except for a worker that never started;
so an action's state has one owner and needs no locks of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from watchd.changes import Batch
from watchd.environment import WatchEnvironment
from watchd.model import CommandSettings, OnBusy, PidfileSettings, ProcessSettings, RunSettings, Watch

if TYPE_CHECKING:
    from watchd.output import Prefixer
    from watchd.sockets import Listeners
    from watchd.stats import Tally
    from watchd.terminal import Terminal

KillFunc = Callable[[int, int], None]
Job = Callable[[], None]


class Action(Protocol):
    """Failures are logged, not raised: the daemon goes on and the next change tries again."""

    @property
    def on_busy(self) -> OnBusy:
        """What the worker does with batches that arrive while `execute` runs."""

    @property
    def not_done(self) -> str:
        """For log lines when a failed check skips it: "HUP not sent", "not restarted"."""

    @property
    def grace(self) -> float:
        """The longest `close` may take (its processes' stop timeout), in seconds."""

    @property
    def early(self) -> float | None:
        """Call `prepare` once a forming batch has been quiet this long (None: never)."""

    def start(self) -> None:
        """Begin: an app is started here. Nothing to do for most kinds."""

    def prepare(self, batch: Batch, cancel: threading.Event) -> None:
        """A batch is forming (its files went quiet for `early`): get ready for `execute`.
        `cancel` is set when watchd closes the action meanwhile."""

    def forget(self) -> None:
        """The batch `prepare` saw will not be carried out (a check failed): undo `prepare`."""

    def execute(self, batch: Batch, cancel: threading.Event) -> str | None:
        """Carry out `batch`; return a short outcome for status displays ("sent HUP to ..."), an
        `watchd.outcome.Outcome` saying the result unless it is a success; None if nothing was
        done (stopped before it began).

        `cancel` is set when the run must end early (restart on busy, shutdown): long-running
        actions poll it and clean up (stop their process group) promptly.
        """

    def close(self, deadline: float) -> None:
        """End: stop what it started (processes, threads) by `deadline` (time.monotonic())."""

    def status(self) -> str | None:
        """A few words for systemd's STATUS line ("pid 4242, 3 restarts"), or None."""


@dataclass(frozen=True, slots=True)
class Context:
    """What an action may use of the daemon and of its worker."""

    name: str  # the watch's name, first on every log line
    base: str | None = None  # log paths relative to this directory when below it
    dry_run: bool = False
    kill: KillFunc = os.kill  # injectable, so PID 0/1/-1 paths are testable safely
    post: Callable[[Job], None] | None = None  # run a job on the watch's worker thread
    post_later: Callable[[float, Job], None] | None = None  # ... after a delay (seconds)
    give_way: Callable[[Batch], bool] | None = None  # a newer batch waits: carry this one into it
    finish: Callable[[int], None] | None = None  # end watchd with this exit status
    terminal: Terminal | None = None  # watchd's terminal, if an app may have it
    listeners: Listeners | None = None  # the listening sockets watchd holds for apps
    status_changed: Callable[[], None] | None = None  # an app started or ended: refresh STATUS
    spawn: Callable[..., Any] | None = None  # injectable process start (process.spawn's signature)
    watch_files: Callable[[list[str]], None] | None = None  # watch these files too (an app's imports)
    tally: Tally | None = None  # the watch's counters: reload confirmations, the app's starts and exits
    counts: Callable[[str], bool] | None = None  # whether the watch's own paths and patterns count a file
    roots: tuple[Path, ...] = ()  # the watch's paths (`build` sets them)
    output: Prefixer | None = None  # its commands' and apps' lines prefixed [name] (several watches)
    environment: WatchEnvironment = field(default_factory=lambda: WatchEnvironment("", (), None))


class PerBatch:
    """The lifecycle of an action that only acts per batch (a signal, a command, a request):
    nothing to start, prepare, undo or report, and nothing of its own to close."""

    early: float | None = None

    def start(self) -> None:
        pass

    def prepare(self, batch: Batch, cancel: threading.Event) -> None:
        pass

    def forget(self) -> None:
        pass

    def status(self) -> str | None:
        return None

    def close(self, deadline: float) -> None:
        pass


def build(watch: Watch, ctx: Context) -> Action:
    """The action for `watch`, behind its check gate if it has one (a dry run skips checks).

    Each kind's module is imported when a watch first needs it: a watch that only signals never
    loads the process machinery."""
    settings = watch.action
    action: Action
    if not ctx.roots:
        ctx = replace(ctx, roots=watch.paths)
    if isinstance(settings, PidfileSettings):
        from watchd.actions.pidfile import PidfileAction  # noqa: PLC0415 (lazy, as above)

        action = PidfileAction(settings, ctx)
    elif isinstance(settings, ProcessSettings):
        from watchd.actions.pidfile import ProcessAction  # noqa: PLC0415

        action = ProcessAction(settings, ctx)
    elif isinstance(settings, CommandSettings):
        from watchd.actions.command import CommandAction  # noqa: PLC0415

        action = CommandAction(settings, ctx)
    elif isinstance(settings, RunSettings):
        from watchd.actions.run import RunAction  # noqa: PLC0415

        action = RunAction(settings, ctx)
    else:
        from watchd.actions.post import PostAction  # noqa: PLC0415

        action = PostAction(settings, ctx)
    if watch.check is None or ctx.dry_run:
        return action
    from watchd.actions.check import gate  # noqa: PLC0415

    return gate(watch, action, ctx)
