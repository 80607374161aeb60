"""The daemon loop: wires watching -> batching -> actions and owns signals, reloads and shutdown.

One thread (the caller's) runs the loop. Watchdog's thread hands changes over through a deque
and a wake-up pipe; POSIX signals arrive on the same pipe (`signal.set_wakeup_fd`), so the loop
sleeps in one `select` until a change, a signal or a deadline (a batch due, the periodic check
that watched roots still exist, a systemd watchdog ping).

SIGHUP, or saving the config file, re-reads the config: an invalid one is reported and the
running watches are kept; otherwise unchanged watches keep running untouched (no event lost),
removed ones stop and new or changed ones start.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from watchd.actions import Context, KillFunc, build
from watchd.batching import CHURN_HITS, CHURN_WINDOWS, Batcher
from watchd.changes import Change, Uncounted, display_path
from watchd.environment import WatchEnvironment
from watchd.errors import ConfigError, WatchFailed, one_line
from watchd.logtext import count, ignore_hint
from watchd.matching import Matcher
from watchd.model import Config, Watch
from watchd.paths import under
from watchd.sockets import ListenError, Listeners
from watchd.systemd import Notifier
from watchd.terminal import Terminal
from watchd.watching import Subscription, Watcher, WatchError, WatchStats, own_output_files
from watchd.worker import WatchWorker

log = logging.getLogger(__name__)

# Seconds between checks that watched roots still exist. Native (inotify) roots report their own
# loss at once, so while every root is native the check is only a safety net.
ROOT_CHECK_INTERVAL = 0.5
ROOT_CHECK_INTERVAL_NATIVE = 5.0
CONFIG_DEBOUNCE = 0.1  # editors write a config in several steps
CONFIG_KEY = -1  # subscription key of the config file itself
_EVERY_FILE = Matcher(ignore_defaults=False)  # an imported file is watched whatever its name
_EVENT_BYTE = b"\0"  # on the wake-up pipe; any other byte is a signal number
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
    imported: set[str] = field(default_factory=set)  # files its app imported, watched (watch_imports)


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
    ) -> None:
        """Raises ListenError if a `listen` address cannot be bound, WatchFailed if a watch
        cannot be built for another reason (nothing started, nothing left bound)."""
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
        self._last_action = "none yet"
        self._config_error: str | None = None
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
        self.listeners = Listeners()
        try:
            made = self._make_watches(config.watches)
        except (ListenError, WatchFailed):
            self.listeners.close()
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
                matcher=Matcher(w.patterns, w.ignore, ignore_defaults=w.ignore_defaults),
                ignore_directories=w.ignore_directories,
                gitignore=w.gitignore,
                poll=w.poll,
                poll_interval=w.poll_interval,
            )
            for p in w.paths
        ]
        if w.env_file is not None:  # its edits count whatever the patterns say: the next run reads it
            subs.append(Subscription(key=key, name=w.name, path=str(w.env_file), matcher=_EVERY_FILE))
        worker = WatchWorker(
            w.name, on_done=self._on_done, quiet=w.debounce, command_line=self.config.source is None
        )
        ctx = Context(
            name=w.name,
            base=self._base,
            dry_run=self.dry_run,
            kill=self._kill,
            post=worker.post,
            post_later=worker.post_later,
            finish=self.stop,
            terminal=self.terminal,
            listeners=self.listeners,
            status_changed=self._refresh_status,
            watch_files=lambda paths: self._on_imported(key, paths),
            counts=lambda path: counted_by(subs, path),
            environment=WatchEnvironment(w.name, w.env, w.env_file),
        )
        action = build(w, ctx)
        worker.attach(action)
        batcher = Batcher(w.name, w.debounce, w.max_delay, early=action.early)
        return _Active(key, w, batcher, worker, subs)

    def _start(self, made: list[_Active]) -> list[tuple[_Active, WatchFailed]]:
        """Start the actions (apps start here: after the watches are live) and the workers;
        return those that could not start, with why (their workers are not running)."""
        failed = []
        for a in made:
            try:
                a.worker.start()
            except WatchFailed as exc:
                failed.append((a, exc))
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
        """A worker finished an action: remember it for systemd's STATUS line."""
        if outcome:
            self._last_action = f"{name}: {outcome} at {time.strftime('%H:%M:%S')}"
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

    # -------------------------------------------------------------- the loop

    def status(self) -> str:
        n = len(self._active)
        s = self.stats
        where = f", {count(s.roots, 'root')}, {count(s.directories, 'directory')}" if s else ""
        text = f"{count(n, 'watch')}{where}; last action: {self._last_action}"
        apps = [t for a in list(self._active.values()) if a.worker.action and (t := a.worker.action.status())]
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
            s = self.stats
            (log.warning if s.degraded else log.info)(
                "watching %s: %s, %s%s; ready%s",
                count(len(self._active), "watch"),
                count(s.roots, "root"),
                count(s.directories, "directory"),
                (f" ({s.missing} not there yet)" if s.missing else "")
                + (
                    f" (degraded: {count(s.degraded, 'root')} polled, inotify watch limit)"
                    if s.degraded
                    else ""
                ),
                " [dry run: nothing will be signalled, run or started]" if self.dry_run else "",
            )
            self.ready.set()
            self.notifier.ready(self.status())
            return self._loop()
        finally:
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
            if (d := self._config_batcher.deadline()) is not None:
                deadlines.append(d)
            if next_ping is not None:
                deadlines.append(next_ping)
            wake_at = min([next_root_check, *deadlines])
            self._publish_wake(wake_at)  # first: then a change appended after the next line sees it
            timeout = 0.0 if self._incoming else max(0.0, wake_at - now)
            # poll, not select: select() cannot wait on descriptors numbered 1024 or more
            readable = self._poller.poll(math.ceil(timeout * 1000))
            if readable:
                for sig in self._drain():
                    if sig in (signal.SIGTERM, signal.SIGINT):
                        log.info("%s received; stopping", signal.Signals(sig).name)
                        return 130 if sig == signal.SIGINT else 0
                    if sig == signal.SIGHUP:
                        self._reload("SIGHUP")
            if self._stop_code is not None:
                return self._stop_code
            self._take_changes()
            self._take_imports()
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
                early = a.batcher.take_early(now)
                if early is not None:
                    a.worker.prepare(early)
                batch = a.batcher.take(now)
                if batch is not None:
                    a.worker.submit(batch)

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
            if active.batcher.add(change, received) and self._verbose:
                where = display_path(change.path, self._base)
                if change.dest is not None:
                    where += " -> " + display_path(change.dest, self._base)
                why = self._why(active, change.dest or change.path, change.is_dir)
                log.debug("%s: %s %s%s", active.watch.name, change.kind.value, where, why)

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

    # -------------------------------------------------------------- reload

    def _reload(self, why: str) -> None:
        if self._reload_config is None:
            log.info(
                "%s: nothing to reload (no config file: watchd was started with command-line options)", why
            )
            return
        self.notifier.reloading()
        log.info("%s: reloading %s", why, self.config.source)
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
        try:
            # built before the old ones close: an address the new config cannot bind keeps the
            # old config, and one both use is the same socket (the app's clients never notice)
            added = self._make_watches([w for name, w in wanted.items() if name not in keep])
        except (ListenError, WatchFailed) as exc:
            self._reject(exc)
            return
        self._config_error = None
        self._failed.clear()
        gone = [a for name, a in old.items() if name not in keep]
        for a in gone:
            del self._active[a.key]
        self._close(gone)
        self.watcher.remove({a.key for a in gone})
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
        self.config = Config(watches=new.watches, source=self.config.source)
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
        )
        self.reloads += 1
        self.notifier.ready(self.status())

    def _reject(self, exc: Exception) -> None:
        """A reload that cannot be done: say why, keep running the previous config."""
        self._config_error = str(exc)
        log.error("config not reloaded, still running the previous one: %s", exc)
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
        for a in actives:
            if not a.worker.join(deadline + 1.0):
                log.warning("%s: did not close within %.1f s", a.watch.name, a.worker.grace)

    def _shutdown(self) -> None:
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
