"""The daemon loop: wires watching -> batching -> actions and owns signals, reloads and shutdown.

One thread (the caller's) runs the loop. Watchdog's thread hands changes over through a deque
and a wake-up pipe; POSIX signals arrive on the same pipe (`signal.set_wakeup_fd`), so the loop
sleeps in one `select` until a change, a signal or a deadline (a batch due, the periodic check
that watched roots still exist, a systemd watchdog ping).

SIGHUP, or saving the config file, re-reads the config: an invalid one is reported and the
running watches are kept; otherwise unchanged watches keep running untouched (no event lost),
removed ones stop and new or changed ones start.

SIGUSR1, and `watchd trigger`, make every watch (or one) act now; `watchd pause` holds a watch's
batches back (collected, merged) until `watchd resume` acts once on all of them. The control
socket's and the metrics server's threads never touch the loop's state: they `ask` the loop,
which answers between two looks at its changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import select
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from watchd import __version__, logformat
from watchd.actions import Context, KillFunc, build
from watchd.batching import CHURN_HITS, CHURN_WINDOWS, Batcher
from watchd.changes import Batch, Change, ChangeKind, Uncounted, display_path
from watchd.content import ContentMemory
from watchd.environment import WatchEnvironment
from watchd.errors import ConfigError, WatchFailed, one_line
from watchd.keys import HELP, Keyboard
from watchd.logtext import count, format_duration, ignore_hint
from watchd.matching import Matcher
from watchd.model import CommandSettings, Config, RunSettings, Watch
from watchd.output import Prefixer, Screen, label, wants_colour
from watchd.paths import under
from watchd.sockets import ListenError, Listeners
from watchd.stats import Report, Tally
from watchd.systemd import Notifier
from watchd.terminal import Terminal
from watchd.watching import Subscription, Watcher, WatchError, WatchStats, files_below, own_output_files
from watchd.worker import WatchWorker

if TYPE_CHECKING:
    from watchd.control import ControlServer
    from watchd.metrics import MetricsServer, Snapshot

T = TypeVar("T")

log = logging.getLogger(__name__)

# Seconds between checks that watched roots still exist. Native (inotify) roots report their own
# loss at once, so while every root is native the check is only a safety net.
ROOT_CHECK_INTERVAL = 0.5
ROOT_CHECK_INTERVAL_NATIVE = 5.0
CONFIG_DEBOUNCE = 0.1  # editors write a config in several steps
CONFIG_KEY = -1  # subscription key of the config file itself
_EVERY_FILE = Matcher(ignore_defaults=False)  # an imported file is watched whatever its name
_EVENT_BYTE = b"\0"  # on the wake-up pipe; any other byte is a signal number
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
ASK_TIMEOUT = 2.0  # how long another thread waits for the loop to answer (then: not answering)


def counted_by(subs: list[Subscription], path: str) -> bool:
    """True if one of a watch's own paths and patterns counts `path`."""
    for sub in subs:
        rel = under(path, sub.path)
        if rel is not None and (rel == "" or sub.matcher.matches(rel)):
            return True
    return False


class DaemonError(Exception):
    """The daemon cannot run (e.g. watch limits); the message says what to do."""


@dataclass(eq=False)
class _Active:
    """A running watch: its batcher, its worker, its subscriptions."""

    key: int
    watch: Watch
    batcher: Batcher
    worker: WatchWorker
    subs: list[Subscription]
    tally: Tally
    imported: set[str] = field(default_factory=set)  # files its app imported, watched (watch_imports)
    # paused: until this monotonic time (math.inf: until resumed); its batches are held meanwhile
    paused_until: float | None = None
    held: Batch | None = None
    # each path as last seen: True a directory, False a file (not yet seen: not there since start)
    seen: dict[str, bool] = field(default_factory=dict)
    content: ContentMemory | None = None  # content: true -- its files' bytes at the last action


def _writers(watches: tuple[Watch, ...]) -> list[str]:
    """The watches whose commands or apps write to watchd's stdout, in the config's order."""
    return [w.name for w in watches if isinstance(w.action, CommandSettings | RunSettings)]


def _counted_files(subs: list[Subscription]) -> Iterator[str]:
    """The files the subscriptions count now (content mode's start: what the last action saw)."""
    for sub in subs:
        if os.path.isdir(sub.path):
            yield from files_below(sub.path, sub.path, sub.matcher)
        elif os.path.isfile(sub.path):
            yield sub.path


class Daemon:
    """Runs a `Config` until stopped. `run()` must be called on the main thread to own signals.

    `reload` re-reads the configuration (None: nothing to reload, e.g. a command-line watch).
    """

    def __init__(
        self,
        config: Config,
        *,
        reload: Callable[[], Config] | None = None,
        notifier: Notifier | None = None,
        dry_run: bool = False,
        kill: KillFunc = os.kill,
        clock: Callable[[], float] = time.monotonic,
        handle_signals: bool = True,
        terminal: Terminal | None = None,
        control: ControlServer | None = None,
        metrics: Callable[[Callable[[], Snapshot | None]], MetricsServer] | None = None,
    ) -> None:
        """Raises ListenError if a `listen` address cannot be bound, WatchFailed if a watch
        cannot be built for another reason (nothing started, nothing left bound).

        `control` is the control socket, bound already (the daemon serves and closes it);
        `metrics` makes the metrics server from the daemon's snapshot source (it is bound now:
        its error is raised, with everything closed)."""
        self.config = config
        self.dry_run = dry_run
        self._reload_config = reload
        self.notifier = notifier or Notifier(None)
        self._kill = kill
        self._clock = clock
        self._handle_signals = handle_signals
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._poller = select.poll()
        self._poller.register(self._rfd, select.POLLIN)
        # (watch key, change, when it was received): the quiet period counts from the event's
        # arrival, not from when the loop got round to it
        self._incoming: deque[tuple[int, Change | Uncounted, float]] = deque()
        self._imports: deque[tuple[int, list[str]]] = deque()  # (watch key, files its app imported)
        self._armed = False  # a wake-up byte for changes is already in the pipe
        # A change received at or after this time needs no wake-up: the loop wakes by itself
        # early enough to open its batch in time (see _loop). Starts at "always wake".
        self._wake_below = math.inf
        self._check_roots_now = False
        self._stop_code: int | None = None
        self._config_error: str | None = None
        self._tallies: dict[str, Tally] = {}  # by watch name: kept while a reload keeps the name
        self._asked: deque[tuple[Callable[[], object], Future[object]]] = deque()  # from other threads
        self._started_at = time.time()
        self.control = control
        self.metrics: MetricsServer | None = None
        self._failed: dict[str, str] = {}  # watch -> why it could not start at the last reload
        self.ready = threading.Event()
        self.reloads = 0  # completed reload attempts, for tests and status
        self.stats: WatchStats | None = None
        # log lines show paths relative to where watchd was started, when they are below it
        self._base = os.getcwd()
        self._verbose = log.isEnabledFor(logging.DEBUG)
        self._active: dict[int, _Active] = {}
        self._next_key = 0
        self._config_batcher = Batcher("config", CONFIG_DEBOUNCE, 1.0)
        self.terminal = terminal
        self.keyboard: Keyboard | None = None  # --interactive: the keyboard is watchd's
        self._keys: deque[str] = deque()  # typed, for the loop
        if config.interactive:
            if terminal is None:
                log.warning("--interactive: stdin is not a terminal in whose foreground watchd runs; no keys")
            else:
                self.keyboard = Keyboard(terminal, self._on_key)
        self._screen: Screen | None = None  # watchd's stdout, when several watches share it
        self._writers = _writers(config.watches)
        self.listeners = Listeners()
        try:
            if metrics is not None:
                self.metrics = metrics(self.snapshot)
            made = self._make_watches(config.watches)
        except Exception:
            self.listeners.close()
            if self.metrics is not None:
                self.metrics.close()
            if self.control is not None:
                self.control.close()
            for fd in (self._rfd, self._wfd):
                os.close(fd)
            raise
        self._active.update((a.key, a) for a in made)
        self._pending_start = made  # started by run(), once the watches are live
        self.watcher = Watcher([], self._on_change, self._on_root_lost)
        self.watcher.skip = own_output_files()  # `watchd ... > watchd.log` in the watched directory
        if self._verbose:
            self.watcher.explain = self._explain  # -v: why a change did not count
        self.watcher.add([s for a in made for s in a.subs])

    # -------------------------------------------------------------- building watches

    def _make_watches(self, watches: tuple[Watch, ...] | list[Watch]) -> list[_Active]:
        """Build the watches' actions (not started yet). All or nothing: if one cannot be built,
        those built before it are closed and ListenError (a listen address in use) or
        WatchFailed (anything else, in one line naming the watch) raised."""
        made: list[_Active] = []
        try:
            for w in watches:
                try:
                    made.append(self._make_watch(w))
                except ListenError:
                    raise
                except Exception as exc:  # a bug, or a call this platform lacks: not a traceback
                    log.debug("%s: could not set up the watch", w.name, exc_info=exc)  # with -v
                    raise WatchFailed(f"{w.name}: could not set up the watch: {one_line(exc)}") from exc
        except Exception:
            for a in made:
                a.worker.close(self._clock() + a.worker.grace)
            raise
        return made

    def _make_watch(self, w: Watch) -> _Active:
        key = self._next_key
        self._next_key += 1
        subs = [
            Subscription(
                key=key,
                name=w.name,
                path=str(p),
                matcher=Matcher(w.counted_patterns, w.ignore, ignore_defaults=w.ignore_defaults),
                ignore_directories=w.ignore_directories,
                gitignore=w.gitignore,
                poll=w.poll,
                poll_interval=w.poll_interval,
            )
            for p in w.paths
        ]
        if w.env_file is not None:  # its edits count whatever the patterns say: the next run reads it
            subs.append(Subscription(key=key, name=w.name, path=str(w.env_file), matcher=_EVERY_FILE))
        tally = self._tallies.setdefault(w.name, Tally(self._clock))
        worker = WatchWorker(
            w.name,
            on_done=self._on_done,
            quiet=w.debounce,
            command_line=self.config.source is None,
            tally=tally,
        )
        ctx = Context(
            name=w.name,
            base=self._base,
            dry_run=self.dry_run,
            kill=self._kill,
            post=worker.post,
            post_later=worker.post_later,
            give_way=worker.give_way,
            finish=self.stop,
            terminal=self.terminal if self.keyboard is None else None,  # -I: no app takes the keyboard
            listeners=self.listeners,
            status_changed=self._refresh_status,
            watch_files=lambda paths: self._on_imported(key, paths),
            tally=tally,
            counts=lambda path: counted_by(subs, path),
            output=self._prefixer(w),
            environment=WatchEnvironment(w.name, w.env, w.env_file),
        )
        action = build(w, ctx)
        worker.attach(action)
        batcher = Batcher(w.name, w.debounce, w.max_delay, early=action.early)
        content = ContentMemory(w.name) if w.content else None
        return _Active(key, w, batcher, worker, subs, tally, content=content)

    def _prefixer(self, w: Watch) -> Prefixer | None:
        """[name] before each line of the watch's output, when more than one command or run watch
        writes to watchd's stdout and it is a terminal (unless the watch says prefix: false)."""
        if not isinstance(w.action, CommandSettings | RunSettings) or not w.action.prefix:
            return None
        if len(self._writers) < 2 or w.name not in self._writers or not os.isatty(1):
            return None
        if self._screen is None:
            self._screen = Screen()
        return Prefixer(w.name, self._screen, label(w.name, self._writers.index(w.name), wants_colour()))

    def _start(self, made: list[_Active]) -> list[tuple[_Active, WatchFailed]]:
        """Start the actions (apps start here: after the watches are live) and the workers;
        return those that could not start, with why (their workers are not running)."""
        failed = []
        for a in made:
            try:
                a.worker.start()
            except WatchFailed as exc:
                failed.append((a, exc))
            else:
                if a.content is not None:
                    subs = list(a.subs)
                    a.content.start(lambda subs=subs: _counted_files(subs))  # type: ignore[misc]
        return failed

    # -------------------------------------------------------------- called from other threads

    def _wake(self, byte: bytes) -> None:
        try:
            os.write(self._wfd, byte)
        except BlockingIOError:
            pass  # the pipe is full, so the loop is awake anyway
        except OSError:
            pass  # closed during shutdown

    def _on_change(self, key: int, change: Change | Uncounted) -> None:
        """The watcher's thread: enqueue, and wake the loop if it would not be up in time.

        While a tree lands (tar, rsync, a checkout) the loop then wakes once per quiet period,
        not once per read of events."""
        received = self._clock()
        self._incoming.append((key, change, received))
        if not self._armed and received < self._wake_below:
            self._armed = True
            self._wake(_EVENT_BYTE)

    def _on_imported(self, key: int, paths: list[str]) -> None:
        """An app's import hook reported files (on its reader thread): the loop watches them."""
        self._imports.append((key, paths))
        self._wake(_EVENT_BYTE)

    def _take_imports(self) -> None:
        while self._imports:
            key, paths = self._imports.popleft()
            active = self._active.get(key)
            if active is not None:
                self._watch_imported(active, paths)

    def _watch_imported(self, active: _Active, paths: list[str]) -> None:
        """Watch the files an app imported that its watch does not already count (one inotify
        watch per directory); they stay watched while the watch exists."""
        w = active.watch
        new = [
            p
            for p in paths
            if p not in active.imported and not self._counted(active, p) and os.path.isfile(p)
        ]
        if not new:
            return
        first = not active.imported
        subs = [
            Subscription(
                key=active.key,
                name=w.name,
                path=p,
                matcher=_EVERY_FILE,
                poll=w.poll,
                poll_interval=w.poll_interval,
            )
            for p in new
        ]
        self.watcher.add(subs)
        active.imported.update(new)  # after: what it lists is watched (a test waits on it)
        directories = len({os.path.dirname(p) for p in active.imported})
        if first:
            log.info(
                "%s: watching %s the app imported (in %s) besides the watch's paths",
                w.name,
                count(len(new), "file"),
                count(directories, "directory"),
            )
        if log.isEnabledFor(logging.DEBUG):  # -v: where, with how many files in each directory
            per_dir = Counter(os.path.dirname(p) for p in new)
            shown = ", ".join(f"{display_path(d, self._base)}/ ({n})" for d, n in sorted(per_dir.items()))
            log.debug("%s: watching %s it imported in %s", w.name, count(len(new), "file"), shown)

    @staticmethod
    def _counted(active: _Active, path: str) -> bool:
        """True if one of the watch's own paths and patterns already counts `path`."""
        return counted_by(active.subs, path)

    def _on_root_lost(self) -> None:
        self._check_roots_now = True
        self._wake(_EVENT_BYTE)

    def _on_done(self, name: str, outcome: str | None) -> None:
        """A worker finished an action (its tally has it): refresh systemd's STATUS line."""
        if outcome:
            self._refresh_status()

    def _refresh_status(self) -> None:
        self.notifier.status(self.status())

    def stop(self, code: int = 0) -> None:
        """Ask the loop to exit with `code` (thread-safe)."""
        self._stop_code = code
        self._wake(_EVENT_BYTE)

    def request_reload(self) -> None:
        """Ask the loop to re-read the config (thread-safe; what SIGHUP does)."""
        self._wake(bytes([signal.SIGHUP]))

    def ask(self, question: Callable[[], T], timeout: float = ASK_TIMEOUT) -> T:
        """Run `question` on the loop's thread and return its answer (thread-safe); raises
        TimeoutError if the loop does not answer within `timeout` seconds."""
        done: Future[object] = Future()
        self._asked.append((question, done))
        self._wake(_EVENT_BYTE)
        try:
            return done.result(timeout)  # type: ignore[return-value]  # (what question returned)
        except FutureTimeout:
            done.cancel()
            raise TimeoutError(f"watchd's main loop did not answer within {timeout:g} s") from None

    def _answer_asked(self) -> None:
        while self._asked:
            question, done = self._asked.popleft()
            if not done.set_running_or_notify_cancel():
                continue  # the asker gave up
            try:
                done.set_result(question())
            except Exception as exc:  # told to the asker, who reports it
                done.set_exception(exc)

    # -------------------------------------------------------------- the loop

    def status(self) -> str:
        """systemd's STATUS line, from the watches' tallies."""
        actives = list(self._active.values())
        n = len(actives)
        s = self.stats
        where = f", {count(s.roots, 'root')}, {count(s.directories, 'directory')}" if s else ""
        last = max(
            ((a.watch.name, la) for a in actives if (la := a.tally.counts().last_action) is not None),
            key=lambda pair: pair[1].at,
            default=None,
        )
        done = "none yet"
        if last is not None:
            done = f"{last[0]}: {last[1].what} at {time.strftime('%H:%M:%S', time.localtime(last[1].at))}"
        text = f"{count(n, 'watch')}{where}; last action: {done}"
        paused = [a.watch.name for a in actives if a.paused_until is not None]
        if paused:
            text += f"; paused: {', '.join(paused)}"
        apps = [t for a in actives if a.worker.action and (t := a.worker.action.status())]
        if apps:
            text += "; " + ", ".join(apps)
        if self._failed:
            text = f"failed at the last reload: {'; '.join(self._failed.values())} | {text}"
        if self._config_error:
            text = f"config error, running the previous config: {self._config_error} | {text}"
        return text

    def run(self) -> int:
        """Watch until SIGTERM/SIGINT (or `stop()`); return the exit status (0, or 130 for SIGINT)."""
        restore = self._install_signals() if self._handle_signals else None
        try:
            try:
                self.stats = self.watcher.start()
            except WatchError as exc:
                raise DaemonError(str(exc)) from None
            if self._reload_config is not None and self.config.source is not None:
                # saving the config file reloads it, as SIGHUP does
                self.watcher.add(
                    [
                        Subscription(
                            CONFIG_KEY, "config", str(self.config.source), Matcher(ignore_defaults=False)
                        )
                    ]
                )
            failed = self._start(self._pending_start)
            self._pending_start = []
            if failed:  # at start, fatal: the `finally` closes every watch (nothing half-started)
                raise WatchFailed("; ".join(str(why) for _, why in failed))
            logformat.set_watches(frozenset(a.watch.name for a in self._active.values()))
            for a in self._active.values():
                self._look(a)
            control: dict[str, object] = {}
            if self.control is not None:
                self.control.start(self.handle_control)
                # on the ready line: where `watchd status`, `trigger`, `pause` and `resume` talk to it
                control["control"] = str(self.control.path)
            if self.metrics is not None:
                self.metrics.start()
            s = self.stats
            (log.warning if s.degraded else log.info)(
                "watching %s: %s, %s%s; ready%s%s",
                count(len(self._active), "watch"),
                count(s.roots, "root"),
                count(s.directories, "directory"),
                (f" ({s.missing} not there yet)" if s.missing else "")
                + (
                    f" (degraded: {count(s.degraded, 'root')} polled, inotify watch limit)"
                    if s.degraded
                    else ""
                ),
                f"; control socket {self.control.path}" if self.control is not None else "",
                " [dry run: nothing will be signalled, run or started]" if self.dry_run else "",
                extra=logformat.fields("start", **control),
            )
            if self.metrics is not None:
                log.info("metrics: %s/metrics, health: %s/healthz", self.metrics.url, self.metrics.url)
            if self.keyboard is not None:
                self.keyboard.start()
                log.info("%s", HELP)
            self.ready.set()
            self.notifier.ready(self.status())
            self._run_at_start(list(self._active.values()))  # after READY=1: never delays it
            return self._loop()
        finally:
            if self.keyboard is not None:
                self.keyboard.close()  # first: the terminal's modes back, whatever comes next
            self.notifier.stopping()
            self._shutdown()
            self.notifier.close()
            if restore is not None:
                restore()

    def _loop(self) -> int:
        now = self._clock()
        next_root_check = now + self._root_check_interval()
        ping_every = self.notifier.watchdog_interval
        next_ping = now if ping_every else None
        while True:
            now = self._clock()
            if next_ping is not None and ping_every is not None and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + ping_every
            deadlines = [d for a in self._active.values() if (d := a.batcher.deadline()) is not None]
            deadlines += [d for a in self._active.values() if (d := a.batcher.early_deadline()) is not None]
            for a in self._active.values():
                if a.paused_until is not None and a.paused_until != math.inf:
                    deadlines.append(a.paused_until)  # `pause --for`: resumes by itself
            if (d := self._config_batcher.deadline()) is not None:
                deadlines.append(d)
            if next_ping is not None:
                deadlines.append(next_ping)
            wake_at = min([next_root_check, *deadlines])
            self._publish_wake(wake_at)  # first: then a change appended after the next line sees it
            timeout = 0.0 if self._incoming or self._asked else max(0.0, wake_at - now)
            # poll, not select: select() cannot wait on descriptors numbered 1024 or more
            readable = self._poller.poll(math.ceil(timeout * 1000))
            if readable:
                for sig in self._drain():
                    if sig in (signal.SIGTERM, signal.SIGINT):
                        log.info(
                            "%s received; stopping", signal.Signals(sig).name, extra=logformat.fields("stop")
                        )
                        return 130 if sig == signal.SIGINT else 0
                    if sig == signal.SIGHUP:
                        self._reload("SIGHUP")
                    if sig == signal.SIGUSR1:
                        self.trigger(None, why="SIGUSR1")
            if self._stop_code is not None:
                return self._stop_code
            self._take_changes()
            self._take_imports()
            self._answer_asked()
            self._take_keys()
            if self._stop_code is not None:
                return self._stop_code
            now = self._clock()
            if self._check_roots_now or now >= next_root_check:
                self._check_roots_now = False
                try:
                    self.watcher.check_roots()
                except Exception:  # logged; the next check tries again
                    log.exception("checking the watched roots failed")
                if not self.watcher.alive():
                    log.error("the filesystem observer stopped unexpectedly; exiting")
                    return 1
                next_root_check = now + self._root_check_interval()
            if self._config_batcher.take(now) is not None:
                self._reload("config file changed")
            for a in list(self._active.values()):
                if a.paused_until is not None and now >= a.paused_until:
                    self._resume(a, why="the pause's time is up")
                early = a.batcher.take_early(now)
                if early is not None and a.paused_until is None:
                    a.worker.prepare(early)
                batch = a.batcher.take(now)
                if batch is not None and a.content is not None:
                    batch = self._sift(a, batch)
                    if batch is None:
                        a.worker.forget()  # an app `prepare` started for it has nothing to take over
                if batch is not None:
                    self._dispatch(a, batch)

    def _publish_wake(self, wake_at: float) -> None:
        """Tell `_on_change` which changes need a wake-up, when the loop will wake at `wake_at`.

        A change must reach its batch by its arrival + the shortest debounce (or early start) of
        any watch: the earliest deadline it can make. Waking at `wake_at` is in time for changes
        received from `wake_at - lead` on; earlier ones wake the loop. The loop publishes this
        before it looks at `_incoming` for the last time, so a change appended after that look
        is judged by the new threshold, and one appended before it is taken without sleeping.
        """
        lead = min(
            [CONFIG_DEBOUNCE]
            + [
                a.batcher.early if a.batcher.early is not None else a.batcher.debounce
                for a in self._active.values()
            ]
        )
        self._wake_below = wake_at - lead

    def _root_check_interval(self) -> float:
        return ROOT_CHECK_INTERVAL_NATIVE if self.watcher.all_native() else ROOT_CHECK_INTERVAL

    def _drain(self) -> list[int]:
        """Empty the wake-up pipe; return the signal numbers in it.

        Order matters: the pipe is emptied first, then `_armed` cleared, then (by the caller)
        the deque taken. A change appended before the clear is taken below; one appended after
        it sees `_armed` False and writes a fresh byte, which stays in the pipe for the next
        select. (Clearing first let a byte written in between be read here, leaving `_armed`
        True over an empty pipe: every later change then waited for the next timeout.)
        """
        signals: list[int] = []
        while True:
            data = self._read_wakeups()
            if not data:
                break
            signals.extend(b for b in data if b != 0)
        self._armed = False
        return signals

    def _read_wakeups(self) -> bytes:
        try:
            return os.read(self._rfd, 4096)
        except BlockingIOError:
            return b""

    def _take_changes(self) -> None:
        incoming = self._incoming
        while incoming:
            key, change, received = incoming.popleft()
            if key == CONFIG_KEY:
                if isinstance(change, Change):
                    self._config_batcher.add(change, received)
                continue
            active = self._active.get(key)
            if active is None:
                continue  # from a watch a reload just removed
            if isinstance(change, Uncounted):  # keeps an open batch open, unless it is churn
                if active.batcher.touch(change.path, received):
                    self._churn_found(active, change.path)
                continue
            active.tally.changed(rescan=change.kind is ChangeKind.RESCAN)
            if active.batcher.add(change, received) and self._verbose:
                where = display_path(change.path, self._base)
                if change.dest is not None:
                    where += " -> " + display_path(change.dest, self._base)
                why = self._why(active, change.dest or change.path, change.is_dir)
                facts = logformat.fields(
                    "change", change=change.kind.value, paths=1, first_path=change.dest or change.path
                )
                log.debug("%s: %s %s%s", active.watch.name, change.kind.value, where, why, extra=facts)

    def _sift(self, active: _Active, batch: Batch) -> Batch | None:
        """content: true -- drop the files whose bytes are as they were at the last action."""
        assert active.content is not None
        kept, dropped = active.content.sift(batch)
        if kept is None:
            log.info(
                "%s: %s, but the content is as it was: nothing to do",
                active.watch.name,
                batch.what(self._base),
            )
        elif dropped and self._verbose:
            log.debug("%s: %s with its content as it was", active.watch.name, count(dropped, "file"))
        return kept

    def _churn_found(self, active: _Active, path: str) -> None:
        """Say once that `path` changes all the time, and how to stop watching it."""
        found = self._under(active, path)
        rel = found[1] if found is not None else None
        log.warning(
            "%s: %s keeps changing (in %d of the last %d quiet periods): it no longer holds back "
            "actions; if it is not part of the app, add %s",
            active.watch.name,
            display_path(path, self._base),
            CHURN_HITS,
            CHURN_WINDOWS,
            ignore_hint([rel or os.path.basename(path)], command_line=self.config.source is None),
        )

    @staticmethod
    def _under(active: _Active, path: str) -> tuple[Subscription, str] | None:
        """The first of the watch's paths `path` lies below, and `path` relative to it."""
        for sub in active.subs:
            rel = under(path, sub.path)
            if rel:
                return sub, rel
        return None

    def _why(self, active: _Active, path: str, is_dir: bool) -> str:
        """' (matches '*.py')': which pattern decided, for -v."""
        found = self._under(active, path)
        return f" ({found[0].matcher.explain(found[1], is_dir=is_dir)})" if found is not None else ""

    def _explain(self, key: int, path: str, is_dir: bool, why: str | None) -> None:
        """-v, on the watcher's thread: a change a watch does not count, and why."""
        active = self._active.get(key)
        if active is not None and path not in active.batcher.churning:  # (said once, as churn)
            where = display_path(path, self._base)
            why = f" ({why})" if why is not None else self._why(active, path, is_dir)
            log.debug("%s: %s not counted%s", active.watch.name, where, why)

    # -------------------------------------------------------------- trigger, pause, resume

    def _dispatch(self, a: _Active, batch: Batch) -> None:
        """A batch is due: to the worker, or held while the watch is paused."""
        a.tally.batched(batch)
        if a.paused_until is None:
            a.worker.submit(batch)
            return
        a.held = batch if a.held is None else a.held.merged(batch)
        log.debug("%s: paused; holding %s", a.watch.name, a.held.summary(self._base))

    def _chosen(self, name: str | None) -> list[_Active]:
        """The watch named `name` (None: every watch); ValueError naming the watches if none is."""
        actives = sorted(self._active.values(), key=lambda a: a.key)
        if name is None:
            return actives
        chosen = [a for a in actives if a.watch.name == name]
        if not chosen:
            names = ", ".join(a.watch.name for a in actives) or "none"
            raise ValueError(f"no watch {name!r} (watches: {names})")
        return chosen

    def trigger(self, name: str | None, *, why: str = "watchd trigger") -> list[str]:
        """Act now as if a change had come (on the loop's thread): an empty batch, WATCHD_TRIGGER=manual.
        A paused watch acts too, on what it holds, and stays paused."""
        chosen = self._chosen(name)
        now = self._clock()
        for a in chosen:
            batch = Batch(a.watch.name, (), now, now, trigger="manual")
            if a.held is not None:
                batch, a.held = a.held.merged(batch), None
            log.info("%s: %s: acting now", a.watch.name, why, extra=logformat.fields("trigger", by=why))
            a.worker.submit(batch)
        return [a.watch.name for a in chosen]

    def _on_key(self, key: str) -> None:
        """The keyboard's thread: a key for the loop."""
        self._keys.append(key)
        self._wake(_EVENT_BYTE)

    def _take_keys(self) -> None:
        while self._keys:
            key = self._keys.popleft()
            if key == "r":
                self.trigger(None, why="key r")
            elif key == "p":
                actives = list(self._active.values())
                if actives and all(a.paused_until is not None for a in actives):
                    self.resume(None)
                else:
                    self.pause(None)
            elif key == "c":
                from watchd.actions.process import clear_screen  # noqa: PLC0415 (only with -I)

                clear_screen()
            elif key == "q":
                log.info("key q: stopping", extra=logformat.fields("stop"))
                self._stop_code = 0
                return
            elif key in "?h":
                log.info("%s", HELP)
            elif key not in "\r\n ":
                log.info("key %r does nothing (? lists the keys)", key)

    def _run_at_start(self, actives: list[_Active]) -> None:
        """run_at_start: the command once now, as a batch with no changes (WATCHD_TRIGGER=start),
        through the worker (the check gate, on_busy) like any run; a paused watch holds it."""
        now = self._clock()
        for a in actives:
            if isinstance(a.watch.action, CommandSettings) and a.watch.action.run_at_start:
                batch = Batch(a.watch.name, (), now, now, trigger="start")
                if a.paused_until is None:
                    a.worker.submit(batch)
                else:
                    a.held = batch if a.held is None else a.held.merged(batch)

    def pause(self, name: str | None, seconds: float | None = None) -> list[str]:
        """Hold the batches of a watch (every watch) back until `resume`, or for `seconds`."""
        chosen = self._chosen(name)
        until = math.inf if seconds is None else self._clock() + seconds
        for a in chosen:
            a.paused_until = until
            how = f"for {format_duration(seconds)}" if seconds is not None else "until resumed"
            log.info(
                "%s: paused %s: changes are collected, and acted on once when it resumes",
                a.watch.name,
                how,
                extra=logformat.fields("pause", seconds=seconds),
            )
        self._refresh_status()
        return [a.watch.name for a in chosen]

    def resume(self, name: str | None) -> list[str]:
        chosen = self._chosen(name)
        for a in chosen:
            self._resume(a, why="resumed")
        return [a.watch.name for a in chosen]

    def _resume(self, a: _Active, *, why: str) -> None:
        if a.paused_until is None:
            return
        a.paused_until = None
        held, a.held = a.held, None
        what = f"acting once on {held.what(self._base)}" if held is not None else "nothing changed meanwhile"
        log.info("%s: %s; %s", a.watch.name, why, what, extra=logformat.fields("resume"))
        if held is not None:
            a.worker.submit(held)
        self._refresh_status()

    # -------------------------------------------------------------- reports, health, control

    def _look(self, a: _Active) -> tuple[list[str], bool]:
        """The watch's paths that were there and are gone (a root's directory deleted or its
        filesystem unmounted), and whether any has never been there yet."""
        gone, waiting = [], False
        for p in a.watch.paths:
            path = str(p)
            was_dir = a.seen.get(path)
            if os.path.isdir(path):
                a.seen[path] = True
            elif os.path.lexists(path):
                a.seen[path] = False
            elif was_dir is None:
                waiting = True
            elif was_dir or not os.path.isdir(os.path.dirname(path)):
                gone.append(path)  # a file's directory gone (the file itself comes and goes)
        return gone, waiting

    def report(self, a: _Active) -> Report:
        """The watch as `watchd status`, /metrics and /healthz show it (on the loop's thread)."""
        counts = a.tally.counts()
        others = frozenset(k for k in self._active if k != a.key) | {CONFIG_KEY}
        watched = self.watcher.stats(internal=others)
        gone, waiting = self._look(a)
        problems = [f"{p} is gone (deleted or unmounted; watched again when it is back)" for p in gone]
        app = counts.app
        if app is not None and app.crash_looping:
            problems.append(
                f"the app keeps exiting ({app.exits} times in a row; last: {app.last_exit or 'running'})"
            )
        if a.paused_until is not None:
            state = "paused"
        elif gone:
            state = "failed"
        elif waiting:
            state = "waiting"
        elif watched.degraded:
            state = "polling"
        else:
            state = "watching"
        until = None
        if a.paused_until is not None and a.paused_until != math.inf:
            until = time.time() + (a.paused_until - self._clock())
        return Report(
            name=a.watch.name,
            action=a.watch.action.kind,
            state=state,
            problem="; ".join(problems) or None,
            roots=tuple(str(p) for p in a.watch.paths),
            missing=tuple(gone),
            directories=watched.directories,
            polled=watched.degraded,
            paused_until=until,
            held=len(a.held.paths) if a.held is not None else 0,
            counts=counts,
            busy=a.worker.busy,
        )

    def _failed_report(self, name: str, why: str) -> Report:
        tally = self._tallies.get(name) or Tally(self._clock)
        return Report(name, "", "failed", why, (), (), 0, 0, None, 0, tally.counts())

    def reports(self) -> list[Report]:
        out = [self.report(a) for a in sorted(self._active.values(), key=lambda a: a.key)]
        out += [self._failed_report(name, why) for name, why in self._failed.items()]
        return out

    def snapshot(self) -> Snapshot | None:
        """Every report and what makes watchd unhealthy (any thread; None: the loop did not answer)."""
        from watchd.metrics import Snapshot  # noqa: PLC0415 (only with metrics on)

        def take() -> Snapshot:
            reports = tuple(self.reports())
            problems = [f"{r.name}: {r.problem}" for r in reports if r.problem is not None]
            if not self.watcher.alive():
                problems.append("a file-system observer thread died")
            return Snapshot(reports, tuple(problems))

        try:
            return self.ask(take)
        except TimeoutError:
            return None

    def handle_control(self, request: dict[str, object]) -> dict[str, object]:
        """A control socket's request (on its thread): answered by the loop."""
        command = request.get("command")
        name = request.get("watch")
        every = request.get("all") is True
        if command not in ("status", "trigger", "pause", "resume"):
            return {"ok": False, "error": f"unknown command {command!r} (status, trigger, pause, resume)"}
        if command != "status" and not every and not isinstance(name, str):
            return {"ok": False, "error": f"{command}: name a watch, or give all"}
        target = None if every else name if isinstance(name, str) else None
        seconds = request.get("for")
        if seconds is not None and (not isinstance(seconds, int | float) or seconds <= 0):
            return {
                "ok": False,
                "error": f"pause: 'for' must be a positive number of seconds, got {seconds!r}",
            }

        def answer() -> dict[str, object]:
            if command == "status":
                reports = self.reports()
                return {
                    "ok": True,
                    "pid": os.getpid(),
                    "version": __version__,
                    "config": str(self.config.source) if self.config.source is not None else None,
                    "started": self._started_at,
                    "config_error": self._config_error,
                    "watches": [r.to_json() for r in reports],
                }
            try:
                if command == "trigger":
                    done = self.trigger(target)
                elif command == "pause":
                    done = self.pause(target, float(seconds) if seconds is not None else None)
                else:
                    done = self.resume(target)
            except ValueError as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "watches": done}

        try:
            return self.ask(answer)
        except TimeoutError as exc:
            return {"ok": False, "error": str(exc)}

    # -------------------------------------------------------------- reload

    def _reload(self, why: str) -> None:
        if self._reload_config is None:
            log.info(
                "%s: nothing to reload (no config file: watchd was started with command-line options)", why
            )
            return
        self.notifier.reloading()
        log.info("%s: reloading %s", why, self.config.source, extra=logformat.fields("reload"))
        try:
            new = self._reload_config()
        except ConfigError as exc:
            self._reject(exc)
            return
        try:
            self._apply(new)
        except Exception as exc:  # a reload must never end the daemon, nor be a traceback
            log.debug("reloading the config failed", exc_info=exc)  # the traceback, with -v
            self._reject(WatchFailed(one_line(exc)))

    def _apply(self, new: Config) -> None:
        old = {a.watch.name: a for a in self._active.values()}
        wanted = {w.name: w for w in new.watches}
        keep = {name for name, a in old.items() if wanted.get(name) == a.watch}
        writers, self._writers = self._writers, _writers(new.watches)
        try:
            # built before the old ones close: an address the new config cannot bind keeps the
            # old config, and one both use is the same socket (the app's clients never notice)
            added = self._make_watches([w for name, w in wanted.items() if name not in keep])
        except (ListenError, WatchFailed) as exc:
            self._writers = writers
            self._reject(exc)
            return
        self._config_error = None
        self._failed.clear()
        gone = [a for name, a in old.items() if name not in keep]
        for a in gone:
            del self._active[a.key]
        self._close(gone)
        self.watcher.remove({a.key for a in gone})
        for a in added:  # a changed watch stays paused, with what it held
            before = old.get(a.watch.name)
            if before is not None:
                a.paused_until, a.held, a.seen = before.paused_until, before.held, before.seen
        for name in set(self._tallies) - set(wanted):
            del self._tallies[name]
        self._active.update((a.key, a) for a in added)
        self.watcher.add([s for a in added for s in a.subs])
        failed = self._start(added)  # as at launch: apps start once their watches are live
        for a, why in failed:
            # the old config's watch of that name is closed already: this one is marked failed
            # (closed, listed in the status) and the next reload tries it again
            log.error("%s; the watch is stopped until the next reload", why)
            self._failed[a.watch.name] = str(why)
            del self._active[a.key]
        self._close([a for a, _ in failed])
        self.watcher.remove({a.key for a, _ in failed})
        for key in ("metrics", "log_format", "control", "interactive"):
            if getattr(new, key) != getattr(self.config, key):
                log.warning("config reloaded: %s changed: it takes effect when watchd is started again", key)
        self.config = dataclasses.replace(self.config, watches=new.watches)
        logformat.set_watches(frozenset(a.watch.name for a in self._active.values()))
        self.stats = self.watcher.stats(internal=frozenset({CONFIG_KEY}))
        changed = sum(1 for a in added if a.watch.name in old)
        names = ", ".join(a.watch.name for a, _ in failed)
        log.info(
            "config reloaded: %d unchanged, %d changed, %d added, %d removed%s",
            len(keep),
            changed,
            len(added) - changed,
            len(gone) - changed,
            f"; {len(failed)} failed to start: {names}" if failed else "",
            extra=logformat.fields("reload", result="ok"),
        )
        self.reloads += 1
        self.notifier.ready(self.status())
        self._run_at_start([a for a in added if a.key in self._active])  # as at launch

    def _reject(self, exc: Exception) -> None:
        """A reload that cannot be done: say why, keep running the previous config."""
        self._config_error = str(exc)
        log.error(
            "config not reloaded, still running the previous one: %s",
            exc,
            extra=logformat.fields("reload", result="failed"),
        )
        self.reloads += 1
        self.notifier.ready(self.status())

    # -------------------------------------------------------------- shutdown and signals

    def _close(self, actives: list[_Active]) -> None:
        """Close watches' actions in parallel: each stops its processes with its own stop timeout."""
        if not actives:
            return
        deadline = self._clock() + max(a.worker.grace for a in actives)
        for a in actives:
            a.worker.request_close(deadline)
            if a.content is not None:
                a.content.close()
        for a in actives:
            if not a.worker.join(deadline + 1.0):
                log.warning("%s: did not close within %.1f s", a.watch.name, a.worker.grace)

    def _shutdown(self) -> None:
        if self.control is not None:
            self.control.close()  # first: a second watchd may start as soon as this one stops
        if self.metrics is not None:
            self.metrics.close()
        for _, done in self._asked:
            done.cancel()
        self.watcher.stop()
        self._close(list(self._active.values()))
        self._active.clear()
        self._pending_start = []
        self.listeners.close()
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _install_signals(self) -> Callable[[], None]:
        """Route SIGTERM, SIGINT and SIGHUP into the loop through the wake-up pipe; return an undo."""

        def note(signum: int, frame: FrameType | None) -> None:
            pass  # the byte written by set_wakeup_fd does the work

        old_wakeup = signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)
        saved = {s: signal.signal(s, note) for s in _HANDLED}

        def restore() -> None:
            for s, h in saved.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_wakeup)

        return restore
