"""The daemon loop: wires watching -> batching -> actions and owns signals and shutdown.

One thread (the caller's) runs the loop. Watchdog's thread hands changes over through a deque
and a wake-up pipe; POSIX signals arrive on the same pipe (`signal.set_wakeup_fd`), so the loop
sleeps in one `select` until a change, a signal or a batch deadline, with no polling of its own
besides the periodic check that watched roots still exist.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from watchd.actions import Executor
from watchd.actions.check import CheckedExecutor
from watchd.actions.command import CommandRunner
from watchd.actions.pidfile import KillFunc, PidfileSignaller
from watchd.actions.runner import Runner
from watchd.batching import Batcher
from watchd.changes import Change, display_path
from watchd.config import CommandAction, Config, OnBusy, Watch, signal_name
from watchd.matching import Matcher
from watchd.watching import Subscription, Watcher, WatchError, WatchStats

log = logging.getLogger(__name__)

ROOT_CHECK_INTERVAL = 0.5  # seconds between checks that watched roots still exist
_EVENT_BYTE = b"\0"  # on the wake-up pipe; any other byte is a signal number


class DaemonError(Exception):
    """The daemon cannot run (e.g. watch limits); the message says what to do."""


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    reason: str


class Daemon:
    """Runs a `Config` until stopped. `run()` must be called on the main thread to own signals."""

    def __init__(
        self,
        config: Config,
        *,
        dry_run: bool = False,
        kill: KillFunc = os.kill,
        clock: Callable[[], float] = time.monotonic,
        handle_signals: bool = True,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self._kill = kill
        self._clock = clock
        self._handle_signals = handle_signals
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._incoming: deque[tuple[int, Change]] = deque()
        self._armed = False  # a wake-up byte for changes is already in the pipe
        self._check_roots_now = False
        self._stop_code: int | None = None
        self.ready = threading.Event()
        self.stats: WatchStats | None = None
        # log lines show paths relative to where watchd was started, when they are below it
        self._base = os.getcwd()
        self._verbose = log.isEnabledFor(logging.DEBUG)
        self.watches = config.watches
        self.batchers = [Batcher(w.name, w.debounce, w.max_delay) for w in config.watches]
        self.runners = [Runner(w.name, self._executor(w), self._on_busy(w)) for w in config.watches]
        subs = [
            Subscription(
                key=i,
                name=w.name,
                path=str(p),
                matcher=Matcher(w.patterns, w.ignore, ignore_defaults=w.ignore_defaults),
                ignore_directories=w.ignore_directories,
                poll=w.poll,
                poll_interval=w.poll_interval,
            )
            for i, w in enumerate(config.watches)
            for p in w.paths
        ]
        self.watcher = Watcher(subs, self._on_change, self._on_root_lost)

    def _executor(self, w: Watch) -> Executor:
        action: Executor
        if isinstance(w.action, CommandAction):
            action = CommandRunner(w.name, w.action, base=self._base, dry_run=self.dry_run)
            what = "command not run"
        else:
            action = PidfileSignaller(
                w.name, w.action, base=self._base, dry_run=self.dry_run, kill=self._kill
            )
            what = f"{signal_name(w.action.signal)} not sent"
        if w.check is None or self.dry_run:  # a dry run does not run checks either
            return action
        return CheckedExecutor(w.name, w.check, action, what=what, base=self._base)

    @staticmethod
    def _on_busy(w: Watch) -> OnBusy:
        return w.action.on_busy if isinstance(w.action, CommandAction) else OnBusy.QUEUE

    # -------------------------------------------------------------- called from other threads

    def _wake(self, byte: bytes) -> None:
        try:
            os.write(self._wfd, byte)
        except BlockingIOError:
            pass  # the pipe is full, so the loop is awake anyway
        except OSError:
            pass  # closed during shutdown

    def _on_change(self, key: int, change: Change) -> None:
        """Watchdog's thread: enqueue and make sure the loop wakes. Nothing else."""
        self._incoming.append((key, change))
        if not self._armed:
            self._armed = True
            self._wake(_EVENT_BYTE)

    def _on_root_lost(self) -> None:
        self._check_roots_now = True
        self._wake(_EVENT_BYTE)

    def stop(self, code: int = 0) -> None:
        """Ask the loop to exit with `code` (thread-safe)."""
        self._stop_code = code
        self._wake(_EVENT_BYTE)

    # -------------------------------------------------------------- the loop

    def run(self) -> int:
        """Watch until SIGTERM/SIGINT (or `stop()`); return the exit status (0, or 130 for SIGINT)."""
        restore = self._install_signals() if self._handle_signals else None
        try:
            for r in self.runners:
                r.start()
            try:
                self.stats = self.watcher.start()
            except WatchError as exc:
                raise DaemonError(str(exc)) from None
            s = self.stats
            log.info(
                "watching %d %s: %d %s, %d %s%s; ready",
                len(self.watches),
                "watch" if len(self.watches) == 1 else "watches",
                s.roots,
                "root" if s.roots == 1 else "roots",
                s.directories,
                "directory" if s.directories == 1 else "directories",
                f" ({s.missing} not there yet)" if s.missing else "",
            )
            self.ready.set()
            return self._loop()
        finally:
            self._shutdown()
            if restore is not None:
                restore()

    def _loop(self) -> int:
        next_root_check = self._clock() + ROOT_CHECK_INTERVAL
        while True:
            now = self._clock()
            deadlines = [d for b in self.batchers if (d := b.deadline()) is not None]
            wake_at = min([next_root_check, *deadlines])
            timeout = max(0.0, wake_at - now)
            readable, _, _ = select.select([self._rfd], [], [], timeout)
            if readable:
                for sig in self._drain():
                    if sig in (signal.SIGTERM, signal.SIGINT):
                        name = signal.Signals(sig).name
                        log.info("%s received; stopping", name)
                        return 130 if sig == signal.SIGINT else 0
            if self._stop_code is not None:
                return self._stop_code
            self._take_changes()
            now = self._clock()
            if self._check_roots_now or now >= next_root_check:
                self._check_roots_now = False
                self.watcher.check_roots()
                if not self.watcher.alive():
                    log.error("the filesystem observer stopped unexpectedly; exiting")
                    return 1
                next_root_check = now + ROOT_CHECK_INTERVAL
            for batcher, runner in zip(self.batchers, self.runners, strict=True):
                batch = batcher.take(now)
                if batch is not None:
                    runner.submit(batch)

    def _drain(self) -> list[int]:
        """Empty the wake-up pipe; return the signal numbers in it."""
        self._armed = False  # before reading the deque, so no change is left unannounced
        signals: list[int] = []
        while True:
            try:
                data = os.read(self._rfd, 4096)
            except BlockingIOError:
                break
            if not data:
                break
            signals.extend(b for b in data if b != 0)
        return signals

    def _take_changes(self) -> None:
        now = self._clock()
        incoming = self._incoming
        while incoming:
            key, change = incoming.popleft()
            if self.batchers[key].add(change, now) and self._verbose:
                where = display_path(change.path, self._base)
                if change.dest is not None:
                    where += " -> " + display_path(change.dest, self._base)
                log.debug("%s: %s %s", self.watches[key].name, change.kind.value, where)

    def _shutdown(self) -> None:
        self.watcher.stop()
        for r in self.runners:
            r.close(timeout=1.0)
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _install_signals(self) -> Callable[[], None]:
        """Route SIGTERM/SIGINT into the loop through the wake-up pipe; return an undo function."""

        def note(signum: int, frame: FrameType | None) -> None:
            pass  # the byte written by set_wakeup_fd does the work

        old_wakeup = signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)
        saved = {s: signal.signal(s, note) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for s, h in saved.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_wakeup)

        return restore
